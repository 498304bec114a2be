/* cellmath: the scalar nonlinearities of the cell and softmax kernels (private).
 *
 * libm's expf/tanhf are calls that the compiler cannot vectorize, and the gate
 * math of a chunk evaluates hundreds of millions of them. These versions are
 * branch-free, so `omp simd` loops vectorize them (AVX-512: 16 lanes):
 * exp by Cephes' range reduction x = n ln2 + r and a degree-6 polynomial
 * (relative error ~2 ulp over the clamped range), sigmoid and tanh from it.
 * The naive references keep libm in double, and the tests bound the
 * difference. */
#ifndef CHARNN_CELLMATH_H
#define CHARNN_CELLMATH_H

#include <math.h>
#include <stdint.h>

#if defined(__GNUC__)
#define CN_INLINE static inline __attribute__((always_inline))
#else
#define CN_INLINE static inline
#endif

/* Portable builds (CHARNN_NATIVE=OFF: baseline x86-64) give the per-row gate
 * loops AVX-512 and AVX2 clones as well, picked once per process for the CPU
 * (GCC function multiversioning). Every clone does the same float operations
 * on each element (no reductions, and ISO C mode contracts no FMAs), so they
 * agree bit for bit. A cloned function must not contain a parallel region:
 * GCC outlines those before it clones, so they would stay baseline. */
#if defined(CHARNN_PORTABLE) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CN_ROW_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CN_ROW_CLONES
#endif

CN_INLINE float cn_expf(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* round to nearest by the 1.5 * 2^23 trick: floorf() would block vectorization */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)n + 127) << 23};
    return p * scale.f;
}

CN_INLINE float cn_sigmoidf(float x)
{
    return 1.0f / (1.0f + cn_expf(-x));
}

/* tanh x = 1 - 2 / (e^{2x} + 1): exact limits at +-1, absolute error ~1e-7 */
CN_INLINE float cn_tanhf(float x)
{
    return 1.0f - 2.0f / (cn_expf(2.0f * x) + 1.0f);
}

#endif
