/* The products of one training step of a language model, FP32 (OpenBLAS and
 * the AVX-512 W_hh panels) against bf16 (kernels_bf16.c), one shape at a time:
 * GFLOP/s per CPU-second of the process (CLOCK_PROCESS_CPUTIME_ID, so that a
 * busy machine's time slicing counts less; caches shared with other processes
 * still do). Shapes of a cell of G gates (LSTM 4, GRU 3, RNN 1), H x GH, with
 * B streams and T steps (default 512, 64, 100, 4: the LSTM 2x512 B64 T100):
 *   step fwd  h W_hh^T      M = B,     N = GH, K = H   (packed panels)
 *   step bwd  dG W_hh       M = B,     N = H,  K = GH  (packed panels)
 *   in proj   x W_ih^T      M = T B,   N = GH, K = H
 *   dW        dG^T x        M = GH,    N = H,  K = T B
 *   dx        dG W_ih       M = T B,   N = H,  K = GH
 *
 * Build (from the repository, after cmake --build build):
 *   gcc -std=gnu11 -O2 -fopenmp -Iinclude bench/bf16_kernels.c build/libcharnn_core.a \
 *       -lopenblas -lm -o build/bf16_kernels
 * Run: OMP_NUM_THREADS=1 build/bf16_kernels [H B T G]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "charnn/kernels.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static float *fill(size_t n)
{
    float *x = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    return x;
}

/* GFLOP/s of a general product (ta, tb) or, packed, of a step product on
 * panels packed beforehand (tb = trans) */
static double measure(int packed, int ta, int tb, int M, int N, int K, int reps)
{
    float *A = fill((size_t)M * K), *B = fill((size_t)N * K), *C = fill((size_t)M * N);
    float *panels = fill(kern_pack_floats(N, K));
    kern_packed p;
    if (packed) /* once per chunk of T steps: not timed */
        kern_pack(&p, B, N, K, tb, panels);
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        double t0 = cpu_now();
        if (packed) {
            kern_gemm_packed(M, A, K, &p, 1.0f, C, N);
        } else {
            kern_gemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 1.0f, C, N);
        }
        double g = 2.0 * M * N * K / (cpu_now() - t0) / 1e9;
        best = g > best ? g : best;
    }
    free(A);
    free(B);
    free(C);
    free(panels);
    return best;
}

int main(int argc, char **argv)
{
    int H = argc > 1 ? atoi(argv[1]) : 512, B = argc > 2 ? atoi(argv[2]) : 64,
        T = argc > 3 ? atoi(argv[3]) : 100, G = argc > 4 ? atoi(argv[4]) : 4;
    struct {
        const char *name;
        int packed, ta, tb, M, N, K, reps;
    } s[] = {
        {"step fwd (packed)", 1, 0, 1, B, G * H, H, 20},
        {"step bwd (packed)", 1, 0, 0, B, H, G * H, 20},
        {"in proj x W_ih^T", 0, 0, 1, T * B, G * H, H, 3},
        {"dW = dG^T x", 0, 1, 0, G * H, H, T * B, 3},
        {"dx = dG W_ih", 0, 0, 0, T * B, H, G * H, 3},
    };
    printf("H %d B %d T %d G %d (GFLOP/s per CPU-second, best of reps)\n", H, B, T, G);
    printf("%-20s %10s %10s %7s\n", "product", "f32", "bf16", "ratio");
    int bf16 = kern_bf16_missing() == NULL;
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        kern_set_precision(KERN_F32);
        double f = measure(s[i].packed, s[i].ta, s[i].tb, s[i].M, s[i].N, s[i].K, s[i].reps);
        double b = 0.0;
        if (bf16) {
            kern_set_precision(KERN_BF16);
            b = measure(s[i].packed, s[i].ta, s[i].tb, s[i].M, s[i].N, s[i].K, s[i].reps);
        }
        printf("%-20s %10.1f %10.1f %7.2f\n", s[i].name, f, b, b / f);
    }
    return 0;
}
