/* Products against a weight matrix packed once and used for many steps: the
 * recurrent step multiplies T times by the same W_hh, and a general GEMM packs
 * it again on every call (OpenBLAS: ~30% of the step at B = 32). See
 * kernels.h.
 *
 * Layout: B (K, N) is cut into panels of KP_W = 32 columns; panel j holds
 * rows k = 0..K-1 of columns 32j..32j+31 contiguously (32 floats per k),
 * zero-padded past N. The AVX-512 micro-kernel keeps a block of up to 8 x 32 of
 * C in 16 registers and streams one panel row per k; threads take whole panels, so
 * every element of C is summed in the same k order whatever the thread count.
 * Without AVX-512 (or without a panel buffer) the products go to kern_gemm.
 *
 * The AVX-512 functions carry target attributes, so this file builds without
 * -march flags (CHARNN_NATIVE=OFF) and the CPU is asked once at run time;
 * CHARNN_AVX512=0 in the environment forces the fallback. */
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KP_X86 1
#include <immintrin.h>
#endif

enum { KP_W = 32, KP_MR = 8 };

static int kp_panels(int N)
{
    return (N + KP_W - 1) / KP_W;
}

size_t kern_pack_floats(int N, int K)
{
    return (size_t)kp_panels(N) * KP_W * (size_t)K;
}

size_t kern_pack_need(int N, int K)
{
    return kern_get_precision() == KERN_BF16 ? kern_pack_bf16_words(N, K) : kern_pack_floats(N, K);
}

/* 1: AVX-512 panels; 0: the CPU has no AVX-512 (or not x86-64); -1: turned off
 * by CHARNN_AVX512=0. Decided once; the first call comes from one thread
 * (kern_pack runs before its parallel region). */
static int kp_choice(void)
{
    static int choice = 2;
    if (choice == 2) {
        const char *env = getenv("CHARNN_AVX512");
#ifdef KP_X86
        __builtin_cpu_init();
        choice = __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
        choice = 0;
#endif
        if (choice == 1 && env && strcmp(env, "0") == 0)
            choice = -1;
    }
    return choice;
}

int kern_packed_available(void)
{
    return kp_choice() == 1;
}

const char *kern_packed_name(void)
{
    if (kern_get_precision() == KERN_BF16)
        return "AVX512_BF16 packed W_hh (bf16 panels)";
    switch (kp_choice()) {
    case 1:
        return "AVX-512 packed W_hh";
    case -1:
        return "BLAS sgemm (AVX-512 off: CHARNN_AVX512=0)";
    default:
        return "BLAS sgemm (no AVX-512 on this CPU)";
    }
}

void kern_pack(kern_packed *p, const float *w, int N, int K, int trans, float *panels)
{
    p->w = w;
    p->n = N;
    p->k = K;
    p->trans = trans;
    p->panels = panels;
    p->bf16 = 0;
    if (panels != NULL && kern_get_precision() == KERN_BF16) {
        kern_pack_bf16(p, w, N, K, trans, panels);
        return;
    }
    p->packed = panels != NULL && kern_packed_available();
    if (!p->packed)
        return;
    CHARNN_ASSERT(((uintptr_t)panels & 63) == 0);
    const int np = kp_panels(N);
#pragma omp parallel for schedule(static)
    for (int j = 0; j < np; j++) {
        float *pj = panels + (size_t)j * K * KP_W;
        const int cols = N - j * KP_W < KP_W ? N - j * KP_W : KP_W;
        if (cols < KP_W)
            memset(pj, 0, (size_t)K * KP_W * sizeof(float));
        for (int c = 0; c < cols; c++) {
            const int n = j * KP_W + c;
            if (trans) { /* B[k][n] = w[n][k]: w is (N, K) */
                const float *wr = w + (size_t)n * K;
                for (int k = 0; k < K; k++)
                    pj[(size_t)k * KP_W + c] = wr[k];
            } else { /* B[k][n] = w[k][n]: w is (K, N) */
                for (int k = 0; k < K; k++)
                    pj[(size_t)k * KP_W + c] = w[(size_t)k * N + n];
            }
        }
    }
}

#ifdef KP_X86
/* C block (R, 32) = A rows (R, K) x panel (K, 32) (+ C when beta), R <= 8 a
 * constant at every call site, so that the loops over rows unroll and the 2R
 * accumulators live in registers. Each row sums over k in the same order
 * whatever R, so a row's result does not depend on the block it falls in. */
__attribute__((target("avx512f"), always_inline)) static inline void
kp_block(const int R, const float *A, int lda, const float *P, int K, float *C, int ldc, int beta)
{
    __m512 acc[KP_MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        const __m512 b0 = _mm512_load_ps(P + (size_t)k * KP_W);
        const __m512 b1 = _mm512_load_ps(P + (size_t)k * KP_W + 16);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512 x = _mm512_set1_ps(A[(size_t)r * lda + k]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        float *cr = C + (size_t)r * ldc;
        __m512 v0 = acc[r][0], v1 = acc[r][1];
        if (beta) {
            v0 = _mm512_add_ps(v0, _mm512_loadu_ps(cr));
            v1 = _mm512_add_ps(v1, _mm512_loadu_ps(cr + 16));
        }
        _mm512_storeu_ps(cr, v0);
        _mm512_storeu_ps(cr + 16, v1);
    }
}

/* kp_block for 1 <= rows <= 8, one specialised copy per row count: a tail of
 * B mod 8 rows streams the panel once, not once per row. */
__attribute__((target("avx512f"))) static void kp_rows(int rows, const float *A, int lda,
                                                        const float *P, int K, float *C, int ldc,
                                                        int beta)
{
    switch (rows) {
    case 8: kp_block(8, A, lda, P, K, C, ldc, beta); break;
    case 7: kp_block(7, A, lda, P, K, C, ldc, beta); break;
    case 6: kp_block(6, A, lda, P, K, C, ldc, beta); break;
    case 5: kp_block(5, A, lda, P, K, C, ldc, beta); break;
    case 4: kp_block(4, A, lda, P, K, C, ldc, beta); break;
    case 3: kp_block(3, A, lda, P, K, C, ldc, beta); break;
    case 2: kp_block(2, A, lda, P, K, C, ldc, beta); break;
    case 1: kp_block(1, A, lda, P, K, C, ldc, beta); break;
    default: CHARNN_ASSERT(0);
    }
}
#endif

void kern_gemm_packed(int M, const float *A, int lda, const kern_packed *p, float beta, float *C,
                      int ldc)
{
    CHARNN_ASSERT(beta == 0.0f || beta == 1.0f);
    const int N = p->n, K = p->k;
    if (p->bf16) {
        kern_gemm_packed_bf16(M, A, lda, p, beta, C, ldc);
        return;
    }
    if (!p->packed) {
        kern_gemm(0, p->trans, M, N, K, 1.0f, A, lda, p->w, p->trans ? K : N, beta, C, ldc);
        return;
    }
#ifdef KP_X86
    const int np = kp_panels(N), acc = beta != 0.0f;
#pragma omp parallel for schedule(static)
    for (int j = 0; j < np; j++) {
        const float *pj = p->panels + (size_t)j * K * KP_W;
        const int n0 = j * KP_W, cols = N - n0 < KP_W ? N - n0 : KP_W;
        _Alignas(64) float tmp[KP_MR * KP_W];
        for (int i = 0; i < M; i += KP_MR) {
            const int rows = M - i < KP_MR ? M - i : KP_MR;
            float *cb = C + (size_t)i * ldc + n0;
            if (cols == KP_W) {
                kp_rows(rows, A + (size_t)i * lda, lda, pj, K, cb, ldc, acc);
            } else { /* the last, partial panel: through a buffer */
                kp_rows(rows, A + (size_t)i * lda, lda, pj, K, tmp, KP_W, 0);
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < cols; c++)
                        cb[(size_t)r * ldc + c] =
                            tmp[r * KP_W + c] + (acc ? cb[(size_t)r * ldc + c] : 0.0f);
            }
        }
    }
#endif
}
