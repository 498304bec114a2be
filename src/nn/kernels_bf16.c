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
 * kern_gemm_bf16 packs B one block of KB_KC k's at a time into a buffer it keeps
 * (grown to the largest product), and the threads split the rows of C;
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
    KB_MC = 64    /* rows of C per block of kern_gemm_bf16 (a multiple of KB_MR) */
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

/* Panels of columns [n0, n0 + ncols) and k-pairs [p0, p0 + kp) of op(B) (K, N),
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
        kb_pack_panel(out + (size_t)j * kp * KB_W, w, trans ? K : N, trans, K, j * KB_W, cols, 0,
                      kp);
    }
}

#ifdef KB_X86
/* Rows [i, i + R) and k in [k0, k0 + kc) of op(A) into blk: word r * ldp + p is
 * (op(A)[i+r][k0+2p], op(A)[i+r][k0+2p+1]); rows past R and the odd k's partner
 * are zero. op(A)[m][k] = A[k * lda + m] when trans, else A[m * lda + k]. */
KB_TARGET static void kb_convert_a(uint32_t *blk, int ldp, int trans, const float *A, int lda,
                                   int i, int R, int k0, int kc, int K)
{
    const int kp = (kc + 1) / 2;
    if (!trans) {
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
        return;
    }
    const __mmask8 m = (__mmask8)((1u << R) - 1u);
    uint32_t col[KB_MR];
    for (int p = 0; p < kp; p++) {
        const int k = k0 + 2 * p;
        const __m256 lo = _mm256_maskz_loadu_ps(m, A + (size_t)k * lda + i);
        const __m256 hi = k + 1 < K && 2 * p + 1 < kc
                              ? _mm256_maskz_loadu_ps(m, A + (size_t)(k + 1) * lda + i)
                              : _mm256_setzero_ps();
        const __m128i l = (__m128i)_mm256_cvtneps_pbh(lo), h = (__m128i)_mm256_cvtneps_pbh(hi);
        _mm_storeu_si128((__m128i *)col, _mm_unpacklo_epi16(l, h));
        _mm_storeu_si128((__m128i *)(col + 4), _mm_unpackhi_epi16(l, h));
        for (int r = 0; r < KB_MR; r++)
            blk[(size_t)r * ldp + p] = col[r];
    }
}

/* kb_pack_panel for B not transposed (B (K, N) row-major): the pairs of 16
 * columns come from 16 contiguous floats of two rows, as in kb_convert_at. */
KB_TARGET static void kb_pack_panel_rows(uint32_t *out, const float *w, int ldw, int K, int n0,
                                         int ncols, int p0, int kp)
{
    for (int p = 0; p < kp; p++) {
        const int k = 2 * (p0 + p);
        const float *lo_row = w + (size_t)k * ldw + n0;
        const float *hi_row = k + 1 < K ? lo_row + ldw : NULL;
        uint32_t *o = out + (size_t)p * KB_W;
        for (int c = 0; c < KB_W; c += 16) {
            const int n = ncols - c < 0 ? 0 : ncols - c < 16 ? ncols - c : 16;
            const __mmask16 m = (__mmask16)((1u << n) - 1u);
            const __m512 lo = _mm512_maskz_loadu_ps(m, lo_row + c);
            const __m512 hi = hi_row ? _mm512_maskz_loadu_ps(m, hi_row + c) : _mm512_setzero_ps();
            const __m256i l = (__m256i)_mm512_cvtneps_pbh(lo), h = (__m256i)_mm512_cvtneps_pbh(hi);
            const __m256i u0 = _mm256_unpacklo_epi16(l, h), u1 = _mm256_unpackhi_epi16(l, h);
            _mm256_store_si256((__m256i *)(o + c), _mm256_permute2x128_si256(u0, u1, 0x20));
            _mm256_store_si256((__m256i *)(o + c + 8), _mm256_permute2x128_si256(u0, u1, 0x31));
        }
    }
}

/* kb_convert_a's transposed case for up to KB_MC rows at once: rows
 * [i0, i0 + mrows) of op(A) = columns of A, read 16 contiguous floats at a time
 * from two rows of A (one k-pair), so that a block touches each row of A once. */
KB_TARGET static void kb_convert_at(uint32_t *ab, int ldp, const float *A, int lda, int i0,
                                    int mrows, int k0, int kc)
{
    const int kp = (kc + 1) / 2;
    for (int p = 0; p < kp; p++) {
        const float *lo_row = A + (size_t)(k0 + 2 * p) * lda + i0;
        const float *hi_row = 2 * p + 1 < kc ? lo_row + lda : NULL;
        for (int c = 0; c < mrows; c += 16) {
            const int n = mrows - c < 16 ? mrows - c : 16;
            const __mmask16 m = (__mmask16)((1u << n) - 1u);
            const __m512 lo = _mm512_maskz_loadu_ps(m, lo_row + c);
            const __m512 hi = hi_row ? _mm512_maskz_loadu_ps(m, hi_row + c) : _mm512_setzero_ps();
            const __m256i l = (__m256i)_mm512_cvtneps_pbh(lo), h = (__m256i)_mm512_cvtneps_pbh(hi);
            /* per 128-bit lane: u0 = rows 0-3 | 8-11, u1 = rows 4-7 | 12-15 */
            const __m256i u0 = _mm256_unpacklo_epi16(l, h), u1 = _mm256_unpackhi_epi16(l, h);
            uint32_t w[16];
            _mm256_storeu_si256((__m256i *)w, _mm256_permute2x128_si256(u0, u1, 0x20));
            _mm256_storeu_si256((__m256i *)(w + 8), _mm256_permute2x128_si256(u0, u1, 0x31));
            for (int q = 0; q < n; q++)
                ab[(size_t)(c + q) * ldp + p] = w[q];
        }
    }
}

/* C block (R, 32) = alpha * A block (R rows of kp pairs, row stride ldp) x panel
 * (kp x 32 words) + beta * C, beta 0 (C not read) or not. Columns past cols are
 * neither read nor written. Each row sums its pairs in order, whatever R. */
KB_TARGET __attribute__((always_inline)) static inline void
kb_block(const int R, const uint32_t *A, int ldp, const uint32_t *P, int kp, float *C, int ldc,
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
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)A[(size_t)r * ldp + p]);
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
KB_TARGET static void kb_rows(int rows, const uint32_t *A, int ldp, const uint32_t *P, int kp,
                              float *C, int ldc, int cols, float alpha, float beta)
{
    switch (rows) {
    case 8: kb_block(8, A, ldp, P, kp, C, ldc, cols, alpha, beta); break;
    case 7: kb_block(7, A, ldp, P, kp, C, ldc, cols, alpha, beta); break;
    case 6: kb_block(6, A, ldp, P, kp, C, ldc, cols, alpha, beta); break;
    case 5: kb_block(5, A, ldp, P, kp, C, ldc, cols, alpha, beta); break;
    case 4: kb_block(4, A, ldp, P, kp, C, ldc, cols, alpha, beta); break;
    case 3: kb_block(3, A, ldp, P, kp, C, ldc, cols, alpha, beta); break;
    case 2: kb_block(2, A, ldp, P, kp, C, ldc, cols, alpha, beta); break;
    case 1: kb_block(1, A, ldp, P, kp, C, ldc, cols, alpha, beta); break;
    default: CHARNN_ASSERT(0);
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
                kb_convert_a(blk, KB_KC / 2, 0, A, lda, i, rows, k0, kc, K);
                const float b = k0 == 0 ? beta : 1.0f;
                for (int j = j0; j < j1; j++) {
                    const int n0 = j * KB_W, cols = N - n0 < KB_W ? N - n0 : KB_W;
                    kb_rows(rows, blk, KB_KC / 2, panels + ((size_t)j * kpall + k0 / 2) * KB_W,
                            kp, C + (size_t)i * ldc + n0, ldc, cols, 1.0f, b);
                }
            }
        }
    }
}

/* The packing buffer of kern_gemm_bf16, grown to the largest product and kept
 * (so that a step does not fault pages in again): B's panels for one k-block,
 * then per thread KB_MC rows of A. Products run one at a time, from outside
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
 * the threads take KB_MC rows of C at a time, convert those rows of A once,
 * and run every panel over them, so that a panel is reused from cache
 * KB_MC / 8 times and C is passed over once per k-block. */
KB_TARGET static void kb_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                              const float *A, int lda, const float *B, int ldb, float beta,
                              float *C, int ldc)
{
    CHARNN_ASSERT(!omp_in_parallel());
    const int np = (N + KB_W - 1) / KB_W, kc_max = K < KB_KC ? K : KB_KC;
    const int kp_max = (kc_max + 1) / 2, nthreads = omp_get_max_threads();
    const size_t bwords = (size_t)np * kp_max * KB_W, awords = (size_t)KB_MC * kp_max;
    uint32_t *bp = kb_scratch(bwords + (size_t)nthreads * awords);
    const int nmb = (M + KB_MC - 1) / KB_MC;
    for (int k0 = 0; k0 < K; k0 += KB_KC) {
        const int kc = K - k0 < KB_KC ? K - k0 : KB_KC, kp = (kc + 1) / 2;
        const float b = k0 == 0 ? beta : 1.0f;
#pragma omp parallel
        {
#pragma omp for schedule(static)
            for (int j = 0; j < np; j++) {
                const int c0 = j * KB_W, cols = N - c0 < KB_W ? N - c0 : KB_W;
                if (trans_b)
                    kb_pack_panel(bp + (size_t)j * kp * KB_W, B, ldb, 1, K, c0, cols, k0 / 2, kp);
                else
                    kb_pack_panel_rows(bp + (size_t)j * kp * KB_W, B, ldb, K, c0, cols, k0 / 2,
                                       kp);
            }
            uint32_t *ab = bp + bwords + (size_t)omp_get_thread_num() * awords;
#pragma omp for schedule(static)
            for (int mb = 0; mb < nmb; mb++) {
                const int i0 = mb * KB_MC, mrows = M - i0 < KB_MC ? M - i0 : KB_MC;
                if (trans_a)
                    kb_convert_at(ab, kp, A, lda, i0, mrows, k0, kc);
                else
                    for (int i = 0; i < mrows; i += KB_MR)
                        kb_convert_a(ab + (size_t)i * kp, kp, 0, A, lda, i0 + i,
                                     mrows - i < KB_MR ? mrows - i : KB_MR, k0, kc, K);
                for (int j = 0; j < np; j++) {
                    const int c0 = j * KB_W, cols = N - c0 < KB_W ? N - c0 : KB_W;
                    for (int i = 0; i < mrows; i += KB_MR)
                        kb_rows(mrows - i < KB_MR ? mrows - i : KB_MR, ab + (size_t)i * kp, kp,
                                bp + (size_t)j * kp * KB_W, kp, C + (size_t)(i0 + i) * ldc + c0,
                                ldc, cols, alpha, b);
                }
            }
        }
    }
}
#endif

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
