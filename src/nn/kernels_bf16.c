/* bf16 matrix products with FP32 accumulation (--precision bf16), on
 * AVX512_BF16's vdpbf16ps: per 32-bit lane it adds a[2i] b[2i] + a[2i+1] b[2i+1]
 * to an FP32 accumulator, twice the multiply-adds of an FP32 FMA. See kernels.h.
 *
 * Operands are rounded to bf16 (round to nearest even; denormal inputs count as
 * zero, as vdpbf16ps counts them) right before a product; results, and every
 * sum, stay FP32. Both operands go through the same layouts as the FP32 panels
 * (kernels_packed.c), with k taken in pairs:
 *   B panels: 32 columns wide, per k-pair p 32 lanes of (B[2p][n], B[2p+1][n]),
 *             zero-padded past N and past an odd K;
 *   A block:  up to 8 rows of op(A), per row and k-pair one lane (A[r][2p], A[r][2p+1]).
 * The micro-kernel keeps an 8 x 32 block of C in 16 registers, as the FP32 one.
 *
 * kern_gemm_bf16 packs B one block of KB_KC k's (KB_KC_T with A transposed) at a
 * time into a buffer it keeps (grown to the largest product), and the threads
 * split the rows of C, each converting its own blocks of op(A);
 * kern_gemm_packed_bf16 takes W_hh's panels packed once per chunk (kern_pack_bf16) and the threads
 * split the panels, as the FP32 step products do. Either way every element of C
 * is summed in one fixed order (k-blocks in order, pairs in order within one),
 * whatever the thread count, so runs are reproducible and resume is exact.
 *
 * The AVX512_BF16 code carries target attributes, so the file builds without
 * -march flags and the CPU is asked at run time. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KB_X86 1
#include <immintrin.h>
#define KB_TARGET __attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl")))
#endif

enum {
    KB_W = 32,   /* panel width (columns of C per micro-kernel call) */
    KB_MR = 8,   /* rows of C per micro-kernel call */
    KB_KC = 1024, /* k per block (even) */
    KB_KC_T = 512, /* k per block of kern_gemm_bf16 with A transposed (a weight gradient,
                      C the weight's size): C is passed over twice as often, from cache,
                      and the scratch is half as large (dW +1-5%, bf16_kernels) */
    KB_MC = 64,   /* rows of C per block of kern_gemm_bf16 (a multiple of KB_MR) */
    KB_PF = 4     /* k-pairs ahead that the packing of row pairs asks for */
};

/* ---- CPU and precision -------------------------------------------------- */

static kern_precision kb_precision = KERN_F32;

/* The first instruction set the bf16 products need that this CPU lacks, or
 * NULL; CHARNN_AVX512_BF16=0 in the environment hides avx512_bf16. */
static const char *kb_cpu_missing(void)
{
#ifdef KB_X86
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f"))
        return "avx512f";
    if (!__builtin_cpu_supports("avx512bw"))
        return "avx512bw";
    if (!__builtin_cpu_supports("avx512vl"))
        return "avx512vl";
    if (!__builtin_cpu_supports("avx512bf16"))
        return "avx512_bf16";
    /* the documented test hook: hide the instruction set */
    const char *env = getenv("CHARNN_AVX512_BF16");
    if (env && strcmp(env, "0") == 0)
        return "avx512_bf16";
    return NULL;
#else
    return "avx512_bf16";
#endif
}

/* Decided once; the first call comes from one thread (kern_set_precision). */
const char *kern_bf16_missing(void)
{
    static int asked = 0;
    static const char *missing = NULL;
    if (!asked) {
        missing = kb_cpu_missing();
        asked = 1;
    }
    return missing;
}

const char *kern_precision_name(kern_precision p)
{
    return p == KERN_BF16 ? "bf16" : "f32";
}

int kern_precision_parse(const char *name, kern_precision *out)
{
    if (strcmp(name, "f32") == 0)
        *out = KERN_F32;
    else if (strcmp(name, "bf16") == 0)
        *out = KERN_BF16;
    else
        return -1;
    return 0;
}

int kern_set_precision(kern_precision p)
{
    if (p == KERN_BF16) {
        const char *missing = kern_bf16_missing();
        if (missing)
            return cn_err("--precision bf16 needs a CPU with AVX512_BF16 (this one has no %s)",
                          missing);
    }
    kb_precision = p;
    return 0;
}

kern_precision kern_get_precision(void)
{
    return kb_precision;
}

/* ---- conversion ----------------------------------------------------------- */

/* FP32 -> bf16 bits, round to nearest even, as vcvtne2ps2bf16 (denormals to a
 * signed zero, NaN stays a quiet NaN). */
static uint32_t kb_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0)
        return (u >> 16) & 0x8000u;
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (u >> 16) | 0x40u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

float kern_bf16_round(float x)
{
    uint32_t u = kb_round(x) << 16;
    float y;
    memcpy(&y, &u, sizeof y);
    return y;
}

static uint32_t kb_pair(float lo, float hi)
{
    return kb_round(lo) | kb_round(hi) << 16;
}

size_t kern_pack_bf16_words(int N, int K)
{
    return (size_t)((N + KB_W - 1) / KB_W) * KB_W * (size_t)((K + 1) / 2);
}

#ifndef KB_X86
/* Without x86-64 the products never run in bf16 (kern_bf16_missing), but the
 * file builds: the portable packing. Panels of columns [n0, n0 + ncols) and k-pairs [p0, p0 + kp) of op(B) (K, N),
 * B[k][n] = w[n * ldw + k] when trans, else w[k * ldw + n], into out
 * (panel-major, kp x 32 words per panel). */
static void kb_pack_panel(uint32_t *out, const float *w, int ldw, int trans, int K, int n0,
                          int ncols, int p0, int kp)
{
    for (int p = 0; p < kp; p++) {
        const int k = 2 * (p0 + p);
        uint32_t *o = out + (size_t)p * KB_W;
        for (int c = 0; c < KB_W; c++) {
            if (c >= ncols) {
                o[c] = 0;
                continue;
            }
            const int n = n0 + c;
            float lo, hi;
            if (trans) {
                lo = w[(size_t)n * ldw + k];
                hi = k + 1 < K ? w[(size_t)n * ldw + k + 1] : 0.0f;
            } else {
                lo = w[(size_t)k * ldw + n];
                hi = k + 1 < K ? w[(size_t)(k + 1) * ldw + n] : 0.0f;
            }
            o[c] = kb_pair(lo, hi);
        }
    }
}
#endif

#ifdef KB_X86
/* Rows [i, i + R) and k in [k0, k0 + kc) of A (M, K) row-major into blk: word
 * r * ldp + p is (A[i+r][k0+2p], A[i+r][k0+2p+1]); rows past R (up to 8) and the
 * odd k's partner are zero. */
KB_TARGET static void kb_convert_a(uint32_t *blk, int ldp, const float *A, int lda, int i, int R,
                                   int k0, int kc)
{
    const int kp = (kc + 1) / 2;
    for (int r = 0; r < KB_MR; r++) {
        uint32_t *o = blk + (size_t)r * ldp;
        if (r >= R) {
            memset(o, 0, (size_t)kp * sizeof *o);
            continue;
        }
        const float *a = A + (size_t)(i + r) * lda + k0;
        int k = 0;
        for (; k + 32 <= kc; k += 32) {
            __m512 lo = _mm512_loadu_ps(a + k), hi = _mm512_loadu_ps(a + k + 16);
            _mm512_storeu_si512(o + k / 2, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
        for (; k < kc; k += 2)
            o[k / 2] = kb_pair(a[k], k + 1 < kc ? a[k + 1] : 0.0f);
    }
}

/* Pairs of two rows of a row-major matrix X, 16 columns at a time:
 * out[c] = (X[k][c0 + c], X[k + 1][c0 + c]) for c < n (n <= 16), the second zero
 * without row k + 1 (hi NULL). */
KB_TARGET static inline void kb_pairs16(uint32_t *out, const float *lo_row, const float *hi_row,
                                        int n)
{
    const __mmask16 m = (__mmask16)((1u << n) - 1u);
    const __m512 lo = _mm512_maskz_loadu_ps(m, lo_row);
    const __m512 hi = hi_row ? _mm512_maskz_loadu_ps(m, hi_row) : _mm512_setzero_ps();
    const __m256i l = (__m256i)_mm512_cvtneps_pbh(lo), h = (__m256i)_mm512_cvtneps_pbh(hi);
    /* per 128-bit lane: u0 = columns 0-3 | 8-11, u1 = 4-7 | 12-15 */
    const __m256i u0 = _mm256_unpacklo_epi16(l, h), u1 = _mm256_unpackhi_epi16(l, h);
    _mm256_storeu_si256((__m256i *)out, _mm256_permute2x128_si256(u0, u1, 0x20));
    _mm256_storeu_si256((__m256i *)(out + 8), _mm256_permute2x128_si256(u0, u1, 0x31));
}

/* kb_pack_panel for B = W^T (W (N, K) row-major): pairs (W[n][k], W[n][k+1])
 * are adjacent, so each column of the panel converts 32 contiguous floats of a
 * row of W at a time. */
KB_TARGET static void kb_pack_panel_t(uint32_t *out, const float *w, int ldw, int K, int n0,
                                      int ncols, int p0, int kp)
{
    const int kend = K - 2 * p0 < 2 * kp ? K - 2 * p0 : 2 * kp;
    for (int c = 0; c < KB_W; c++) {
        if (c >= ncols) {
            for (int p = 0; p < kp; p++)
                out[(size_t)p * KB_W + c] = 0;
            continue;
        }
        const float *row = w + (size_t)(n0 + c) * ldw + 2 * p0;
        int p = 0;
        for (; 2 * p + 32 <= kend; p += 16) {
            uint32_t t[16];
            const __m512 lo = _mm512_loadu_ps(row + 2 * p), hi = _mm512_loadu_ps(row + 2 * p + 16);
            _mm512_storeu_si512(t, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
            for (int q = 0; q < 16; q++)
                out[(size_t)(p + q) * KB_W + c] = t[q];
        }
        for (; p < kp; p++)
            out[(size_t)p * KB_W + c] = kb_pair(row[2 * p], 2 * p + 1 < kend ? row[2 * p + 1] : 0.0f);
    }
}

/* kb_pack_panel for B = W (W (K, N) row-major, the backward step's W_hh):
 * each k-pair converts two rows of the panel's columns, 16 at a time. */
KB_TARGET static void kb_pack_panel_n(uint32_t *out, const float *w, int ldw, int K, int n0,
                                      int ncols, int p0, int kp)
{
    for (int p = 0; p < kp; p++) {
        const int k = 2 * (p0 + p);
        const float *lo = w + (size_t)k * ldw + n0, *hi = k + 1 < K ? lo + ldw : NULL;
        for (int c = 0; c < KB_W; c += 16) {
            const int n = ncols - c <= 0 ? 0 : ncols - c < 16 ? ncols - c : 16;
            kb_pairs16(out + (size_t)p * KB_W + c, lo + c, hi ? hi + c : NULL, n);
        }
    }
}

/* C block (R, 32) = alpha * A block (R rows of kp pairs; pair p of row r at
 * A[r * sr + p * sp]) x panel
 * (kp x 32 words) + beta * C, beta 0 (C not read) or not. Columns past cols are
 * neither read nor written. Each row sums its pairs in order, whatever R. */
KB_TARGET __attribute__((always_inline)) static inline void
kb_block(const int R, const uint32_t *A, size_t sr, size_t sp, const uint32_t *P, int kp,
         float *C, int ldc,
         int cols, float alpha, float beta)
{
    __m512 acc[KB_MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int p = 0; p < kp; p++) {
        const __m512bh b0 = (__m512bh)_mm512_load_si512(P + (size_t)p * KB_W);
        const __m512bh b1 = (__m512bh)_mm512_load_si512(P + (size_t)p * KB_W + 16);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)A[r * sr + (size_t)p * sp]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
        }
    }
    const __mmask16 m0 = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1u);
    const __mmask16 m1 = cols >= 32 ? 0xffff : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1u);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        float *cr = C + (size_t)r * ldc;
        __m512 v0 = _mm512_mul_ps(va, acc[r][0]), v1 = _mm512_mul_ps(va, acc[r][1]);
        if (beta != 0.0f) {
            v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), v0);
            v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), v1);
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

/* kb_block for 1 <= rows <= 8, one specialised copy per row count. */
KB_TARGET static void kb_rows(int rows, const uint32_t *A, size_t sr, size_t sp,
                              const uint32_t *P, int kp,
                              float *C, int ldc, int cols, float alpha, float beta)
{
    switch (rows) {
    case 8: kb_block(8, A, sr, sp, P, kp, C, ldc, cols, alpha, beta); break;
    case 7: kb_block(7, A, sr, sp, P, kp, C, ldc, cols, alpha, beta); break;
    case 6: kb_block(6, A, sr, sp, P, kp, C, ldc, cols, alpha, beta); break;
    case 5: kb_block(5, A, sr, sp, P, kp, C, ldc, cols, alpha, beta); break;
    case 4: kb_block(4, A, sr, sp, P, kp, C, ldc, cols, alpha, beta); break;
    case 3: kb_block(3, A, sr, sp, P, kp, C, ldc, cols, alpha, beta); break;
    case 2: kb_block(2, A, sr, sp, P, kp, C, ldc, cols, alpha, beta); break;
    case 1: kb_block(1, A, sr, sp, P, kp, C, ldc, cols, alpha, beta); break;
    default: CHARNN_ASSERT(0);
    }
}

/* Asks for row pair p + KB_PF of a matrix (rows 2p, 2p + 1 at lo and lo + ld;
 * n floats each) while pair p converts: the packing of the weight-gradient
 * products streams two (T B, H)-sized operands from memory, and the hardware
 * prefetcher alone left it waiting on the loads (dW 293 -> 360 GFLOP/s). */
KB_TARGET static inline void kb_prefetch_pair(const float *lo, size_t ld, int n)
{
    const float *q = lo + 2 * KB_PF * ld;
    for (int c = 0; c < n; c += 16) {
        _mm_prefetch((const char *)(q + c), _MM_HINT_T0);
        _mm_prefetch((const char *)(q + ld + c), _MM_HINT_T0);
    }
}

/* Asks for the C block (rows, 32) at C into L1 ahead of its kb_rows call, so
 * that its loads (beta != 0) or the stores' line fills are not waited for at
 * the end of the block: C is read once per k-block and, for the whole-chunk
 * products and a step's gates, comes from memory. */
KB_TARGET static inline void kb_prefetch_c(const float *C, int ldc, int rows)
{
    for (int r = 0; r < rows; r++) {
        const char *q = (const char *)(C + (size_t)r * ldc);
        _mm_prefetch(q, _MM_HINT_T0);
        _mm_prefetch(q + 64, _MM_HINT_T0);
    }
}

/* C (M, N) = op(A) B + beta C on panels packed over all of K: the threads split
 * the panels; each converts a block of A's rows at a time, KB_KC columns of it
 * per pass (C collects the passes in order). */
KB_TARGET static void kb_gemm_panels(int M, const float *A, int lda, const kern_packed *p,
                                     float beta, float *C, int ldc)
{
    const int N = p->n, K = p->k, np = (N + KB_W - 1) / KB_W, kpall = (K + 1) / 2;
    const uint32_t *panels = (const uint32_t *)(const void *)p->panels;
#pragma omp parallel
    {
        _Alignas(64) uint32_t blk[KB_MR * (KB_KC / 2)];
        const int nt = omp_get_num_threads(), id = omp_get_thread_num();
        const int j0 = (int)((long long)np * id / nt), j1 = (int)((long long)np * (id + 1) / nt);
        for (int i = 0; j0 < j1 && i < M; i += KB_MR) {
            const int rows = M - i < KB_MR ? M - i : KB_MR;
            for (int k0 = 0; k0 < K; k0 += KB_KC) {
                const int kc = K - k0 < KB_KC ? K - k0 : KB_KC, kp = (kc + 1) / 2;
                kb_convert_a(blk, KB_KC / 2, A, lda, i, rows, k0, kc);
                const float b = k0 == 0 ? beta : 1.0f;
                for (int j = j0; j < j1; j++) {
                    const int n0 = j * KB_W, cols = N - n0 < KB_W ? N - n0 : KB_W;
                    if (j + 1 < j1) /* the next block: this row block's next panel */
                        kb_prefetch_c(C + (size_t)i * ldc + n0 + KB_W, ldc, rows);
                    else if (i + KB_MR < M) /* or the next row block's first */
                        kb_prefetch_c(C + (size_t)(i + KB_MR) * ldc + j0 * KB_W, ldc,
                                      M - i - KB_MR < KB_MR ? M - i - KB_MR : KB_MR);
                    kb_rows(rows, blk, KB_KC / 2, 1, panels + ((size_t)j * kpall + k0 / 2) * KB_W,
                            kp, C + (size_t)i * ldc + n0, ldc, cols, 1.0f, b);
                }
            }
        }
    }
}

/* The packing buffer of kern_gemm_bf16, grown to the largest product and kept
 * (so that a step does not fault pages in again): B's panels for one k-block,
 * then per thread KB_MC rows of op(A). Products run one at a time, from outside
 * any parallel region (asserted). */
static uint32_t *kb_buf;
static size_t kb_buf_words;

static uint32_t *kb_scratch(size_t words)
{
    if (words > kb_buf_words) {
        free(kb_buf);
        kb_buf = cn_xaligned_alloc(64, words * sizeof(uint32_t));
        kb_buf_words = words;
    }
    return kb_buf;
}

/* The general product, blocked as GotoBLAS does: per block of KB_KC k's, all
 * of B's panels for it are packed once (the threads split the panels); then
 * the threads take KB_MC rows of C at a time, convert those rows of op(A) once
 * into their own buffer, and run every panel over them, so that a panel is
 * reused from cache KB_MC / 8 times and C is passed over once per k-block.
 * With A transposed (the weight gradients, op(A) = dG^T), a block is KB_MC
 * columns of A's rows k0..: 256 contiguous bytes of each row, the pairs of
 * rows asked for KB_PF ahead, and the k-blocks are KB_KC_T long. The scratch
 * is B's panels for one k-block plus KB_MC rows of op(A) per thread for it,
 * whatever M is. */
KB_TARGET static void kb_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                              const float *A, int lda, const float *B, int ldb, float beta,
                              float *C, int ldc)
{
    CHARNN_ASSERT(!omp_in_parallel());
    const int kb = trans_a ? KB_KC_T : KB_KC;
    const int np = (N + KB_W - 1) / KB_W, kc_max = K < kb ? K : kb;
    const int kp_max = (kc_max + 1) / 2, nthreads = omp_get_max_threads();
    const size_t bwords = (size_t)np * kp_max * KB_W, awords = (size_t)KB_MC * kp_max;
    uint32_t *bp = kb_scratch(bwords + (size_t)nthreads * awords);
    const int nmb = (M + KB_MC - 1) / KB_MC;
    for (int k0 = 0; k0 < K; k0 += kb) {
        const int kc = K - k0 < kb ? K - k0 : kb, kp = (kc + 1) / 2;
        const float b = k0 == 0 ? beta : 1.0f;
#pragma omp parallel
        {
            if (trans_b) {
#pragma omp for schedule(static)
                for (int j = 0; j < np; j++) {
                    const int c0 = j * KB_W, cols = N - c0 < KB_W ? N - c0 : KB_W;
                    kb_pack_panel_t(bp + (size_t)j * kp * KB_W, B, ldb, K, c0, cols, k0 / 2, kp);
                }
            } else { /* B (K, N) row-major: each pair of rows read once, whole */
                uint32_t tail[16];
#pragma omp for schedule(static)
                for (int p = 0; p < kp; p++) {
                    const float *lo = B + (size_t)(k0 + 2 * p) * ldb;
                    const float *hi = 2 * p + 1 < kc ? lo + ldb : NULL;
                    if (p + KB_PF < kp)
                        kb_prefetch_pair(lo, (size_t)ldb, N);
                    for (int c = 0; c < np * KB_W; c += 16) {
                        uint32_t *o = bp + ((size_t)(c / KB_W) * kp + p) * KB_W + c % KB_W;
                        const int n = N - c <= 0 ? 0 : N - c < 16 ? N - c : 16;
                        kb_pairs16(n == 16 ? o : tail, lo + c, hi ? hi + c : NULL, n);
                        if (n < 16)
                            for (int q = 0; q < 16; q++)
                                o[q] = q < n ? tail[q] : 0;
                    }
                }
            }
            uint32_t *ab = bp + bwords + (size_t)omp_get_thread_num() * awords;
#pragma omp for schedule(static)
            for (int mb = 0; mb < nmb; mb++) {
                const int i0 = mb * KB_MC, mrows = M - i0 < KB_MC ? M - i0 : KB_MC;
                /* pair p of row i0 + i of op(A): ab[i * kp + p], or ab[p * KB_MC + i] */
                const size_t sr = trans_a ? 1 : (size_t)kp, sp = trans_a ? (size_t)KB_MC : 1;
                if (trans_a) {
                    for (int p = 0; p < kp; p++) {
                        const float *lo = A + (size_t)(k0 + 2 * p) * lda + i0;
                        const float *hi = 2 * p + 1 < kc ? lo + lda : NULL;
                        if (p + KB_PF < kp)
                            kb_prefetch_pair(lo, (size_t)lda, mrows);
                        for (int c = 0; c < mrows; c += 16) /* stores 16 words: c + 16 <= KB_MC */
                            kb_pairs16(ab + (size_t)p * KB_MC + c, lo + c, hi ? hi + c : NULL,
                                       mrows - c < 16 ? mrows - c : 16);
                    }
                } else {
                    for (int i = 0; i < mrows; i += KB_MR)
                        kb_convert_a(ab + (size_t)i * kp, kp, A, lda, i0 + i,
                                     mrows - i < KB_MR ? mrows - i : KB_MR, k0, kc);
                }
                for (int j = 0; j < np; j++) {
                    const int c0 = j * KB_W, cols = N - c0 < KB_W ? N - c0 : KB_W;
                    if (j + 1 < np) /* the next panel's column block of these rows */
                        kb_prefetch_c(C + (size_t)i0 * ldc + c0 + KB_W, ldc, mrows);
                    for (int i = 0; i < mrows; i += KB_MR)
                        kb_rows(mrows - i < KB_MR ? mrows - i : KB_MR, ab + (size_t)i * sr, sr,
                                sp, bp + (size_t)j * kp * KB_W, kp,
                                C + (size_t)(i0 + i) * ldc + c0, ldc, cols, alpha, b);
                }
            }
        }
    }
}
#endif

void kern_pack_bf16(kern_packed *p, const float *w, int N, int K, int trans, float *panels)
{
    CHARNN_ASSERT(panels != NULL && ((uintptr_t)panels & 63) == 0);
    p->w = w;
    p->n = N;
    p->k = K;
    p->trans = trans;
    p->panels = panels;
    p->packed = 1;
    p->bf16 = 1;
    uint32_t *out = (uint32_t *)(void *)panels;
    const int np = (N + KB_W - 1) / KB_W, kp = (K + 1) / 2;
#pragma omp parallel for schedule(static)
    for (int j = 0; j < np; j++) {
        const int cols = N - j * KB_W < KB_W ? N - j * KB_W : KB_W;
#ifdef KB_X86
        if (trans)
            kb_pack_panel_t(out + (size_t)j * kp * KB_W, w, K, K, j * KB_W, cols, 0, kp);
        else
            kb_pack_panel_n(out + (size_t)j * kp * KB_W, w, N, K, j * KB_W, cols, 0, kp);
#else
        kb_pack_panel(out + (size_t)j * kp * KB_W, w, trans ? K : N, trans, K, j * KB_W, cols, 0,
                      kp);
#endif
    }
}

void kern_gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    CHARNN_ASSERT(kern_bf16_missing() == NULL);
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
#ifdef KB_X86
    kb_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

void kern_gemm_packed_bf16(int M, const float *A, int lda, const kern_packed *p, float beta,
                           float *C, int ldc)
{
    CHARNN_ASSERT(p->packed && p->bf16 && kern_bf16_missing() == NULL);
#ifdef KB_X86
    kb_gemm_panels(M, A, lda, p, beta, C, ldc);
#endif
}
