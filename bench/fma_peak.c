/* FP32 FMA peak of this machine, measured, not looked up.
 *
 * Each thread runs NACC independent chains acc = acc * m + a on float vectors
 * (GCC vector extensions; 512-bit when the compiler targets AVX-512, 256-bit
 * otherwise, and the 256-bit kernel is measured too: on Zen 4 a 512-bit FMA is
 * two 256-bit halves, so the two agree there). Enough chains to cover the FMA
 * latency times the number of FMA pipes. One FMA = 2 FLOPs per lane.
 *
 * With AVX512_BF16 (-march=native on such a CPU) the bf16 peak is measured the
 * same way: NACC chains acc = vdpbf16ps(acc, a, b), each instruction 16 lanes
 * x 2 bf16 products added into FP32 = 64 FLOPs (--precision bf16's products).
 *
 * Build: gcc -std=gnu11 -O3 -march=native -mfma -fopenmp fma_peak.c -o fma_peak
 * Prints one JSON line:
 *   {"peak_gflops_1":..., "peak_gflops_all":..., "threads":..., ...,
 *    "bf16_gflops_1":..., "bf16_gflops_all":...}  (0 without AVX512_BF16)
 * peak_gflops_1 = one thread, peak_gflops_all = all OpenMP threads together
 * (best of a few repetitions each, ~0.5 s per repetition).
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NACC 16

typedef float v8 __attribute__((vector_size(32)));
#ifdef __AVX512F__
typedef float v16 __attribute__((vector_size(64)));
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* The kernels return a checksum so the compiler cannot drop the work. */
#define KERNEL(NAME, VT, LANES)                                              \
    static float NAME(long iters, float seed) {                              \
        VT acc[NACC];                                                        \
        VT m, a;                                                             \
        for (int l = 0; l < LANES; l++) { m[l] = 0.999999f; a[l] = 1e-7f; }  \
        for (int i = 0; i < NACC; i++)                                       \
            for (int l = 0; l < LANES; l++) acc[i][l] = seed + 0.001f * i + l; \
        for (long it = 0; it < iters; it++) {                                \
            _Pragma("GCC unroll 16")                                         \
            for (int i = 0; i < NACC; i++) acc[i] = acc[i] * m + a;          \
            __asm__ volatile("" : "+x"(m));                                  \
        }                                                                    \
        float s = 0;                                                         \
        for (int i = 0; i < NACC; i++)                                       \
            for (int l = 0; l < LANES; l++) s += acc[i][l];                  \
        return s;                                                            \
    }

KERNEL(kernel8, v8, 8)
#ifdef __AVX512F__
KERNEL(kernel16, v16, 16)
#endif

#ifdef __AVX512BF16__
/* NACC chains of vdpbf16ps: 32 multiply-adds per instruction. The products
 * are tiny, so the accumulators stay finite. */
static float kernel_bf16(long iters, float seed) {
    __m512 acc[NACC];
    __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
    __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-4f), _mm512_set1_ps(1e-4f));
    for (int i = 0; i < NACC; i++) acc[i] = _mm512_set1_ps(seed + 0.001f * i);
    for (long it = 0; it < iters; it++) {
        _Pragma("GCC unroll 16")
        for (int i = 0; i < NACC; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(a));
    }
    float s = 0;
    for (int i = 0; i < NACC; i++) s += _mm512_reduce_add_ps(acc[i]);
    return s;
}
#endif

typedef float (*kernel_fn)(long, float);

/* GFLOP/s of `nthreads` threads each running `iters` iterations of k. */
static double run(kernel_fn k, int lanes, int nthreads, long iters, volatile float *sink) {
    double t0 = 0, t1 = 0;
    float total = 0;
#pragma omp parallel num_threads(nthreads) reduction(+ : total)
    {
#pragma omp barrier
#pragma omp master
        t0 = now();
        total += k(iters, (float)omp_get_thread_num());
#pragma omp barrier
#pragma omp master
        t1 = now();
    }
    *sink += total;
    double flops = (double)nthreads * iters * NACC * lanes * 2.0;
    return flops / (t1 - t0) / 1e9;
}

static double best(kernel_fn k, int lanes, int nthreads, volatile float *sink) {
    /* Calibrate to ~0.5 s with one short run, then keep the best of 3. */
    long iters = 1 << 20;
    double g = run(k, lanes, nthreads, iters, sink);
    double per_iter = (double)nthreads * NACC * lanes * 2.0 / (g * 1e9); /* s per iteration */
    iters = (long)(0.5 / per_iter);
    if (iters < (1 << 20)) iters = 1 << 20;
    double b = 0;
    for (int r = 0; r < 3; r++) {
        double x = run(k, lanes, nthreads, iters, sink);
        if (x > b) b = x;
    }
    return b;
}

int main(void) {
    volatile float sink = 0;
    int nth = omp_get_max_threads();
    double g8_1 = best(kernel8, 8, 1, &sink);
    double g8_all = best(kernel8, 8, nth, &sink);
    double g16_1 = 0, g16_all = 0;
#ifdef __AVX512F__
    g16_1 = best(kernel16, 16, 1, &sink);
    g16_all = best(kernel16, 16, nth, &sink);
#endif
    double gb_1 = 0, gb_all = 0;
#ifdef __AVX512BF16__
    /* 64 FLOPs per instruction and accumulator: "lanes" 32 x 2 */
    gb_1 = best(kernel_bf16, 32, 1, &sink);
    gb_all = best(kernel_bf16, 32, nth, &sink);
#endif
    double p1 = g8_1 > g16_1 ? g8_1 : g16_1;
    double pall = g8_all > g16_all ? g8_all : g16_all;
    printf("{\"peak_gflops_1\": %.1f, \"peak_gflops_all\": %.1f, \"threads\": %d, "
           "\"avx2_gflops_1\": %.1f, \"avx2_gflops_all\": %.1f, "
           "\"avx512_gflops_1\": %.1f, \"avx512_gflops_all\": %.1f, "
           "\"bf16_gflops_1\": %.1f, \"bf16_gflops_all\": %.1f, \"checksum\": %g}\n",
           p1, pall, nth, g8_1, g8_all, g16_1, g16_all, gb_1, gb_all, (double)sink);
    return 0;
}
