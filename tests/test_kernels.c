/* Fast kernels (CBLAS + OpenMP) and fast cells against their naive references
 * (plain loops, products accumulated in double), on random inputs; and the
 * thread-count independence the headers promise.
 *
 * Tolerances. Most comparisons use testlib_max_rel_diff, i.e. the error
 * relative to max(1, |reference|). A float result that a double reference
 * rounds to a float can differ by about one float ulp per operation (float
 * unit roundoff 6e-8). Real mistakes show up as errors of 1e-3 .. 1 (checked
 * by injecting bugs into private copies of the sources), so the bounds below
 * leave 10-100x headroom over what was measured (gcc -O2, OpenBLAS 1 thread):
 *  - gemm: K products summed in float grow like sqrt(K) ulps on random data,
 *    so 1e-5 * sqrt(K). Measured 1.8e-6 (K = 53, bound 7.3e-5) and 5.2e-6
 *    (K = 257, bound 1.6e-4); alpha = -1.375 and beta = 0.6 included.
 *  - kern_sum_rows adds N rows in float: same argument, 1e-5 * sqrt(N).
 *    Measured 8.7e-6 for N = 1000 (bound 3.2e-4; column sums reach tens).
 *  - softmax: expf/logf within 1-2 ulp, the row sum over V terms in float:
 *    1e-5 for probabilities, losses (relative; a loss of 164 included) and
 *    |row sum - 1|. Measured 4.5e-8, 1.2e-7, 3.6e-7.
 *  - cells: T <= 5 steps of short products (K = G*H <= 160) and float
 *    expf/tanhf, the error carried through the recurrence: 5e-5 forward and
 *    backward. Measured <= 6.4e-7 (H = 40) and <= 1.5e-7 (H = 7).
 *  - cells with row lengths, a final-state gradient, dL/dh0 and the
 *    records: the same bound; measured <= 9.6e-7 (H = 40). Held states,
 *    zero gradients past a row's length and the pass-through of a row of
 *    length 0 are exact on both sides; every row at T matches no lengths
 *    (measured: bit for bit, packed and BLAS).
 *  - sumsq is double on both sides, only the order differs: 1e-12 relative,
 *    measured 1.1e-13.
 * Gather, scatter-add and softmax backward do the same float operations as a
 * float reference in the same order: measured 0 (gather), 0 (scatter vs naive;
 * 1.1e-6 vs a double sum of ~30 terms, bound 1e-5 * sqrt(30)), 1.4e-9 absolute
 * (softmax backward with scale 1/40, bound 1e-7 * scale).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "charnn/cells.h"
#include "charnn/common.h"
#include "charnn/kernels.h"
#include "testlib.h"

static void report(const char *what, double err)
{
    printf("\n    max err %-44s %.3g", what, err);
}

static void set_threads(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

static int max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static float *fmalloc(size_t n)
{
    return cn_xmalloc((n ? n : 1) * sizeof(float));
}

static float *fdup(const float *x, size_t n)
{
    float *y = fmalloc(n);
    memcpy(y, x, n * sizeof *y);
    return y;
}

/* ids in [0, range) from a small LCG; with N > range there are repeats. */
static void fill_ids(int32_t *ids, size_t n, int range, unsigned seed)
{
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        ids[i] = (int32_t)((s >> 8) % (uint32_t)range);
    }
}

/* ---------------------------------------------------------------- GEMM */

static double gemm_case(int ta, int tb, int M, int N, int K, float alpha, float beta,
                        unsigned seed)
{
    /* stored shapes: A (M, K) or (K, M); B (K, N) or (N, K); leading
     * dimensions padded beyond the minimum */
    int arows = ta ? K : M, acols = ta ? M : K;
    int brows = tb ? N : K, bcols = tb ? K : N;
    int lda = acols + 3, ldb = bcols + 5, ldc = N + 7;
    size_t na = (size_t)arows * lda, nb = (size_t)brows * ldb, nc = (size_t)M * ldc;
    float *A = fmalloc(na), *B = fmalloc(nb), *C0 = fmalloc(nc);
    testlib_fill_uniform(A, na, 1.0f, seed);
    testlib_fill_uniform(B, nb, 1.0f, seed + 1);
    testlib_fill_uniform(C0, nc, 1.0f, seed + 2);
    float *Cf = fdup(C0, nc), *Cn = fdup(C0, nc);
    kern_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Cf, ldc);
    kern_gemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Cn, ldc);
    double worst = 0.0;
    for (int i = 0; i < M; i++) {
        double e = testlib_max_rel_diff(Cf + (size_t)i * ldc, Cn + (size_t)i * ldc, (size_t)N);
        worst = e > worst ? e : worst;
        /* padding columns of C are not touched */
        CU_ASSERT(memcmp(Cf + (size_t)i * ldc + N, C0 + (size_t)i * ldc + N,
                         (size_t)(ldc - N) * sizeof(float)) == 0);
        CU_ASSERT(memcmp(Cn + (size_t)i * ldc + N, C0 + (size_t)i * ldc + N,
                         (size_t)(ldc - N) * sizeof(float)) == 0);
    }
    /* a sanity check of the reference itself: one element by hand */
    {
        double acc = 0.0;
        int i = M - 1, j = N / 2;
        for (int k = 0; k < K; k++) {
            double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
            double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
            acc += a * b;
        }
        double want = alpha * acc + beta * C0[(size_t)i * ldc + j];
        CU_ASSERT_DOUBLE_EQUAL(Cn[(size_t)i * ldc + j], want, 1e-5 * (fabs(want) + 1.0));
    }
    double tol = 1e-5 * sqrt((double)K);
    CU_ASSERT(worst <= tol);
    free(A);
    free(B);
    free(C0);
    free(Cf);
    free(Cn);
    return worst;
}

static void test_gemm(void)
{
    static const int shapes[][3] = {{37, 29, 53}, {5, 130, 257}, {1, 1, 1}, {3, 28, 7}};
    static const float betas[] = {0.0f, 0.6f, 1.0f};
    unsigned seed = 100;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        double worst = 0.0;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t bi = 0; bi < sizeof betas / sizeof betas[0]; bi++) {
                    double e = gemm_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2],
                                         -1.375f, betas[bi], seed += 7);
                    worst = e > worst ? e : worst;
                }
        char name[64];
        snprintf(name, sizeof name, "gemm M=%d N=%d K=%d (all trans, betas)", shapes[s][0],
                 shapes[s][1], shapes[s][2]);
        report(name, worst);
    }
}

/* The packed product against the naive GEMM: every row count of a block (1-8)
 * and blocks of 8 with every tail, full and partial 32-column panels, W used
 * as it is and transposed, beta 0 (ignoring NaN in C) and 1; with the AVX-512
 * panels also bit-identical for 1 and 2 threads, and a row's result the same
 * bits whether it falls in a block of 8 or is computed alone. */
static void test_gemm_packed(void)
{
    static const int Ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 15, 64}, Ns[] = {1, 31, 32, 33, 100}, Ks[] = {1, 7, 64};
    int saved = max_threads();
    double worst = 0.0;
    unsigned seed = 500;
    for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms; mi++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
            for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++)
                for (int trans = 0; trans < 2; trans++)
                    for (int beta = 0; beta < 2; beta++) {
                        const int M = Ms[mi], N = Ns[ni], K = Ks[ki], lda = K + 3, ldc = N + 5;
                        float *A = fmalloc((size_t)M * lda), *W = fmalloc((size_t)N * K);
                        float *Cp = fmalloc((size_t)M * ldc), *Cn = fmalloc((size_t)M * ldc);
                        float *C2 = fmalloc((size_t)M * ldc);
                        size_t bytes = (kern_pack_floats(N, K) * sizeof(float) + 63) / 64 * 64;
                        float *panels = aligned_alloc(64, bytes);
                        CU_ASSERT_FATAL(panels != NULL);
                        testlib_fill_uniform(A, (size_t)M * lda, 1.0f, seed += 3);
                        testlib_fill_uniform(W, (size_t)N * K, 1.0f, seed += 3);
                        testlib_fill_uniform(Cn, (size_t)M * ldc, 1.0f, seed += 3);
                        if (!beta)
                            for (int i = 0; i < M; i++)
                                for (int j = 0; j < N; j++)
                                    Cn[(size_t)i * ldc + j] = NAN;
                        memcpy(Cp, Cn, (size_t)M * ldc * sizeof(float));
                        memcpy(C2, Cn, (size_t)M * ldc * sizeof(float));
                        kern_packed p;
                        kern_pack(&p, W, N, K, trans, panels);
                        set_threads(1);
                        kern_gemm_packed(M, A, lda, &p, (float)beta, Cp, ldc);
                        set_threads(2);
                        kern_gemm_packed(M, A, lda, &p, (float)beta, C2, ldc);
                        set_threads(saved);
                        kern_gemm_naive(0, trans, M, N, K, 1.0f, A, lda, W, trans ? K : N,
                                        (float)beta, Cn, ldc);
                        /* promises of the panels; BLAS (the fallback) may split and
                         * block the product differently for other thread counts and rows */
                        if (kern_packed_available())
                            CU_ASSERT(memcmp(Cp, C2, (size_t)M * ldc * sizeof(float)) == 0);
                        if (M > 1 && beta == 0 && kern_packed_available()) {
                            float *row = fmalloc((size_t)N);
                            kern_gemm_packed(1, A + (size_t)(M - 1) * lda, lda, &p, 0.0f, row, N);
                            CU_ASSERT(memcmp(row, Cp + (size_t)(M - 1) * ldc,
                                             (size_t)N * sizeof(float)) == 0);
                            free(row);
                        }
                        double e = testlib_max_rel_diff(Cp, Cn, (size_t)M * ldc);
                        CU_ASSERT(e <= 1e-5 * sqrt((double)K));
                        worst = e > worst ? e : worst;
                        free(A);
                        free(W);
                        free(Cp);
                        free(Cn);
                        free(C2);
                        free(panels);
                    }
    report(kern_packed_available() ? "gemm_packed (AVX-512 panels), all shapes"
                                   : "gemm_packed (no AVX-512: kern_gemm), all shapes",
           worst);
}

/* beta == 0 must ignore whatever C held (BLAS semantics), even NaN. */
static void test_gemm_beta0_ignores_c(void)
{
    const int M = 6, N = 5, K = 4;
    float A[6 * 4], B[4 * 5], Cf[6 * 5], Cn[6 * 5];
    testlib_fill_uniform(A, sizeof A / sizeof A[0], 1.0f, 1);
    testlib_fill_uniform(B, sizeof B / sizeof B[0], 1.0f, 2);
    for (int i = 0; i < M * N; i++)
        Cf[i] = Cn[i] = NAN;
    kern_gemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, Cf, N);
    kern_gemm_naive(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, Cn, N);
    CU_ASSERT(kern_all_finite(Cf, (size_t)M * N));
    CU_ASSERT(kern_all_finite(Cn, (size_t)M * N));
    CU_ASSERT(testlib_max_rel_diff(Cf, Cn, (size_t)M * N) <= 1e-5 * sqrt((double)K));
}

/* ---------------------------------------------------- gather / scatter */

static void test_gather_rows(void)
{
    const int V = 23, D = 150;
    const size_t N = 301;
    float *table = fmalloc((size_t)V * D), *bias = fmalloc(D);
    float *of = fmalloc(N * D), *on = fmalloc(N * D);
    int32_t *ids = cn_xmalloc(N * sizeof *ids);
    testlib_fill_uniform(table, (size_t)V * D, 2.0f, 11);
    testlib_fill_uniform(bias, D, 0.5f, 12);
    fill_ids(ids, N, V, 13);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        const float *bb = with_bias ? bias : NULL;
        kern_gather_rows(of, table, ids, N, D, bb);
        kern_gather_rows_naive(on, table, ids, N, D, bb);
        double e = testlib_max_rel_diff(of, on, N * D);
        report(with_bias ? "gather_rows with bias" : "gather_rows without bias", e);
        CU_ASSERT(e == 0.0);
        /* and against the definition */
        int bad = 0;
        for (size_t n = 0; n < N; n++)
            for (int d = 0; d < D; d++) {
                float want = table[(size_t)ids[n] * D + d] + (bb ? bb[d] : 0.0f);
                bad += of[n * D + d] != want;
            }
        CU_ASSERT_EQUAL(bad, 0);
    }
    free(table);
    free(bias);
    free(of);
    free(on);
    free(ids);
}

static void test_scatter_add_rows(void)
{
    const int V = 17, D = 150; /* 150 = two full 64-column blocks and a partial */
    const size_t N = 500;      /* ~30 repeats per row: real accumulation */
    float *dout = fmalloc(N * D), *d0 = fmalloc((size_t)V * D);
    int32_t *ids = cn_xmalloc(N * sizeof *ids);
    testlib_fill_uniform(dout, N * D, 1.0f, 21);
    testlib_fill_uniform(d0, (size_t)V * D, 1.0f, 22); /* += onto existing values */
    fill_ids(ids, N, V, 23);
    float *dn = fdup(d0, (size_t)V * D), *d1 = fdup(d0, (size_t)V * D),
          *d2 = fdup(d0, (size_t)V * D);
    int saved = max_threads();
    kern_scatter_add_rows_naive(dn, dout, ids, N, D);
    set_threads(1);
    kern_scatter_add_rows(d1, dout, ids, N, D);
    set_threads(2);
    kern_scatter_add_rows(d2, dout, ids, N, D);
    set_threads(saved);
    CU_ASSERT(memcmp(d1, d2, (size_t)V * D * sizeof(float)) == 0);
    double e = testlib_max_rel_diff(d1, dn, (size_t)V * D);
    report("scatter_add_rows (repeated ids)", e);
    CU_ASSERT(e <= 1e-6);
    /* against a double-accumulated sum: float accumulation of ~30 terms */
    double worst = 0.0;
    for (int v = 0; v < V; v++)
        for (int d = 0; d < D; d++) {
            double acc = d0[(size_t)v * D + d];
            for (size_t n = 0; n < N; n++)
                if (ids[n] == v)
                    acc += dout[n * D + d];
            double err = fabs(acc - d1[(size_t)v * D + d]) / (fabs(acc) > 1.0 ? fabs(acc) : 1.0);
            worst = err > worst ? err : worst;
        }
    report("scatter_add_rows vs double sum", worst);
    CU_ASSERT(worst <= 1e-5 * sqrt((double)N / V));
    /* ids never touched stay as they were: use a range that leaves rows out */
    fill_ids(ids, N, V - 3, 24);
    memcpy(d1, d0, (size_t)V * D * sizeof(float));
    kern_scatter_add_rows(d1, dout, ids, N, D);
    CU_ASSERT(memcmp(d1 + (size_t)(V - 3) * D, d0 + (size_t)(V - 3) * D,
                     (size_t)3 * D * sizeof(float)) == 0);
    free(dout);
    free(d0);
    free(dn);
    free(d1);
    free(d2);
    free(ids);
}

/* ------------------------------------------------------------ sum rows */

static void test_sum_rows(void)
{
    const int D = 150;
    const size_t N = 1000;
    float *dy = fmalloc(N * D), *b0 = fmalloc(D);
    testlib_fill_uniform(dy, N * D, 1.0f, 31);
    testlib_fill_uniform(b0, D, 1.0f, 32);
    float *bf = fdup(b0, D), *bn = fdup(b0, D), *b2 = fdup(b0, D);
    int saved = max_threads();
    set_threads(1);
    kern_sum_rows(bf, dy, N, D);
    set_threads(2);
    kern_sum_rows(b2, dy, N, D);
    set_threads(saved);
    kern_sum_rows_naive(bn, dy, N, D);
    CU_ASSERT(memcmp(bf, b2, D * sizeof(float)) == 0);
    double e = testlib_max_rel_diff(bf, bn, D);
    report("sum_rows N=1000 D=150", e);
    CU_ASSERT(e <= 1e-5 * sqrt((double)N));
    /* a tiny case: N = 1 is a plain add, exact */
    memcpy(bf, b0, D * sizeof(float));
    memcpy(bn, b0, D * sizeof(float));
    kern_sum_rows(bf, dy, 1, D);
    kern_sum_rows_naive(bn, dy, 1, D);
    CU_ASSERT(testlib_max_rel_diff(bf, bn, D) == 0.0);
    free(dy);
    free(b0);
    free(bf);
    free(bn);
    free(b2);
}

/* ------------------------------------------------------------- softmax */

static void test_softmax_xent(void)
{
    const size_t N = 64;
    const int V = 83;
    float *z = fmalloc(N * V);
    int32_t *y = cn_xmalloc(N * sizeof *y);
    testlib_fill_uniform(z, N * V, 5.0f, 41);
    fill_ids(y, N, V, 42);
    /* extreme rows: the target far above, far below, all equal and huge,
     * +-80 mixed, and tiny logits */
    for (int v = 0; v < V; v++) {
        z[0 * V + v] = -80.0f;
        z[1 * V + v] = 80.0f;
        z[2 * V + v] = 80.0f;
        z[3 * V + v] = (v % 3) ? -80.0f : 80.0f;
        z[4 * V + v] *= 1e-3f;
    }
    z[0 * V + y[0]] = 80.0f;
    z[1 * V + y[1]] = -80.0f;
    float *zf = fdup(z, N * V), *zn = fdup(z, N * V);
    float *lf = fmalloc(N), *ln = fmalloc(N);
    double tf = kern_softmax_xent(zf, y, N, V, lf);
    double tn = kern_softmax_xent_naive(zn, y, N, V, ln);
    CU_ASSERT(kern_all_finite(zf, N * V));
    CU_ASSERT(kern_all_finite(lf, N));
    double ep = testlib_max_rel_diff(zf, zn, N * V);
    double el = testlib_max_rel_diff(lf, ln, N);
    double et = fabs(tf - tn) / (fabs(tn) > 1.0 ? fabs(tn) : 1.0);
    report("softmax_xent probabilities", ep);
    report("softmax_xent row losses", el);
    report("softmax_xent total loss", et);
    CU_ASSERT(ep <= 1e-5);
    CU_ASSERT(el <= 1e-5);
    CU_ASSERT(et <= 1e-5);
    /* the returned total is the sum of the row losses */
    double s = 0.0;
    for (size_t n = 0; n < N; n++)
        s += lf[n];
    CU_ASSERT_DOUBLE_EQUAL(tf, s, 1e-9 * (fabs(s) + 1.0));
    /* rows sum to 1 */
    double worst_sum = 0.0;
    for (size_t n = 0; n < N; n++) {
        double rs = 0.0;
        for (int v = 0; v < V; v++) {
            CU_ASSERT(zf[n * V + v] >= 0.0f && zf[n * V + v] <= 1.0f);
            rs += zf[n * V + v];
        }
        worst_sum = fabs(rs - 1.0) > worst_sum ? fabs(rs - 1.0) : worst_sum;
    }
    report("softmax_xent |row sum - 1|", worst_sum);
    CU_ASSERT(worst_sum <= 1e-5);
    /* the extreme rows against closed forms */
    CU_ASSERT_DOUBLE_EQUAL(lf[0], 0.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(zf[0 * V + y[0]], 1.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(lf[1], 160.0 + log((double)(V - 1)), 1e-5 * 165.0);
    CU_ASSERT_DOUBLE_EQUAL(lf[2], log((double)V), 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(zf[2 * V + 5], 1.0 / V, 1e-6);
    /* a NULL target list: probabilities only, zero losses */
    memcpy(zf, z, N * V * sizeof(float));
    double t0 = kern_softmax_xent(zf, NULL, N, V, lf);
    CU_ASSERT_EQUAL(t0, 0.0);
    CU_ASSERT(testlib_max_rel_diff(zf, zn, N * V) <= 1e-5);
    free(z);
    free(y);
    free(zf);
    free(zn);
    free(lf);
    free(ln);
}

static void test_softmax_xent_backward(void)
{
    const size_t N = 40;
    const int V = 65;
    const float scale = 1.0f / 40.0f;
    float *z = fmalloc(N * V), *lf = fmalloc(N);
    int32_t *y = cn_xmalloc(N * sizeof *y);
    testlib_fill_uniform(z, N * V, 4.0f, 51);
    fill_ids(y, N, V, 52);
    kern_softmax_xent(z, y, N, V, lf);
    float *p = fdup(z, N * V);
    kern_softmax_xent_backward(z, y, N, V, scale);
    double worst = 0.0;
    for (size_t n = 0; n < N; n++) {
        double row = 0.0;
        for (int v = 0; v < V; v++) {
            double want = (double)scale * ((double)p[n * V + v] - (v == y[n] ? 1.0 : 0.0));
            double err = fabs(z[n * V + v] - want);
            worst = err > worst ? err : worst;
            row += z[n * V + v];
        }
        /* the gradient of each row sums to zero (probabilities sum to 1) */
        CU_ASSERT_DOUBLE_EQUAL(row, 0.0, 1e-5 * scale);
    }
    report("softmax_xent_backward vs scale*(p-onehot)", worst);
    CU_ASSERT(worst <= 1e-7 * scale);
    free(z);
    free(lf);
    free(y);
    free(p);
}

/* --------------------------------------------------------------- sumsq */

static void test_sumsq(void)
{
    static const size_t sizes[] = {0, 1, 5, 255, 256, 257, 100003};
    float *x = fmalloc(100003);
    testlib_fill_uniform(x, 100003, 3.0f, 61);
    int saved = max_threads();
    double worst = 0.0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        double want = 0.0;
        for (size_t i = 0; i < n; i++)
            want += (double)x[i] * (double)x[i];
        set_threads(1);
        double s1 = kern_sumsq(x, n);
        set_threads(2);
        double s2 = kern_sumsq(x, n);
        CU_ASSERT(memcmp(&s1, &s2, sizeof s1) == 0);
        double e = fabs(s1 - want) / (want > 1.0 ? want : 1.0);
        worst = e > worst ? e : worst;
        CU_ASSERT(e <= 1e-12);
    }
    set_threads(saved);
    report("sumsq vs double loop", worst);
    free(x);
}

/* -------------------------------------------------------------- argmax */

/* The predicted class of every head: the largest entry, the lowest index on
 * a tie (what greedy decoding and the metrics count on), -inf and a single
 * entry included. */
static void test_argmax(void)
{
    const float a[] = {0.1f, 0.7f, 0.2f};
    const float tie[] = {0.2f, 0.4f, 0.4f, 0.0f};
    const float neg[] = {-INFINITY, -3.0f, -INFINITY, -2.5f, -2.5f};
    const float one[] = {-1.0f};
    CU_ASSERT_EQUAL(kern_argmax(a, 3), 1);
    CU_ASSERT_EQUAL(kern_argmax(a, 1), 0);
    CU_ASSERT_EQUAL(kern_argmax(tie, 4), 1);
    CU_ASSERT_EQUAL(kern_argmax(neg, 5), 3);
    CU_ASSERT_EQUAL(kern_argmax(neg, 2), 1);
    CU_ASSERT_EQUAL(kern_argmax(one, 1), 0);
}

/* ------------------------------------------------------------- dropout */

static void test_dropout(void)
{
    const size_t n = 100000;
    static const float ps[] = {0.1f, 0.3f, 0.5f};
    float *x = fmalloc(n);
    testlib_fill_uniform(x, n, 0.5f, 71);
    for (size_t i = 0; i < n; i++)
        x[i] += 1.0f; /* in [0.5, 1.5]: a zero output can only be a dropped value */
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        float p = ps[k];
        float scale = 1.0f / (1.0f - p);
        float *a = fdup(x, n), *b = fdup(x, n), *c = fdup(x, n);
        kern_dropout(a, n, p, 1234);
        kern_dropout(b, n, p, 1234);
        kern_dropout(c, n, p, 1235);
        CU_ASSERT(memcmp(a, b, n * sizeof(float)) == 0); /* same key, same mask */
        size_t zeros = 0, badkept = 0, differ = 0;
        for (size_t i = 0; i < n; i++) {
            if (a[i] == 0.0f)
                zeros++;
            else if (a[i] != x[i] * scale)
                badkept++;
            differ += (a[i] == 0.0f) != (c[i] == 0.0f);
        }
        double frac = (double)zeros / (double)n;
        printf("\n    dropout p=%.1f: zero fraction %.4f, masks of keys 1234/1235 differ at "
               "%.4f (expect %.4f)",
               p, frac, (double)differ / (double)n, 2.0 * p * (1.0 - p));
        CU_ASSERT(fabs(frac - p) <= 0.01);
        CU_ASSERT_EQUAL(badkept, 0);
        /* independent masks disagree at about 2p(1-p) of the positions */
        CU_ASSERT(fabs((double)differ / (double)n - 2.0 * p * (1.0 - p)) <= 0.02);
        /* backward: the same mask and scale on the gradient */
        float *dx = fmalloc(n);
        testlib_fill_uniform(dx, n, 1.0f, 72 + k);
        float *d0 = fdup(dx, n);
        kern_dropout_backward(dx, n, p, 1234);
        size_t badb = 0;
        for (size_t i = 0; i < n; i++) {
            float want = a[i] == 0.0f ? 0.0f : d0[i] * scale;
            badb += dx[i] != want;
        }
        CU_ASSERT_EQUAL(badb, 0);
        /* thread count does not change the mask */
        int saved = max_threads();
        float *e = fdup(x, n);
        set_threads(1);
        kern_dropout(e, n, p, 1234);
        set_threads(saved);
        CU_ASSERT(memcmp(a, e, n * sizeof(float)) == 0);
        free(a);
        free(b);
        free(c);
        free(e);
        free(dx);
        free(d0);
    }
    /* p == 0 leaves x untouched */
    float *a = fdup(x, n);
    kern_dropout(a, n, 0.0f, 99);
    CU_ASSERT(memcmp(a, x, n * sizeof(float)) == 0);
    kern_dropout_backward(a, n, 0.0f, 99);
    CU_ASSERT(memcmp(a, x, n * sizeof(float)) == 0);
    free(a);
    free(x);
}

/* --------------------------------------------------------------- cells */

/* All the buffers of one chunk and its backward, owned together. */
typedef struct {
    cell_kind kind;
    int T, B, H, G;
    float *w_hh, *b_hh, *gates, *hs, *cs, *hn, *hproj;
    float *dh, *dgh, *dh_next, *dc_next;
    float *wpack; /* scratch for the packed W_hh, NULL when cells_packed is 0 */
    /* optional (NULL unless bufs_add_state): row lengths, the final state's
     * gradient in, dL/dh0 (dL/dc0) out, and the recorded dL/dh_t (dL/dc_t) */
    int32_t *len;
    float *dhf, *dcf, *dh0, *dc0, *rec_h, *rec_c;
} cell_bufs;

/* whether the fast cells get a wpack buffer (the packed step products) */
static int cells_packed = 1;

static float *wpack_alloc(cell_kind kind, int H)
{
    if (!cells_packed)
        return NULL;
    size_t bytes = (cell_wpack_floats(kind, H) * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    CU_ASSERT_FATAL(p != NULL);
    return p;
}

static size_t n_gates(const cell_bufs *s)
{
    return (size_t)s->T * s->B * s->G * s->H;
}
static size_t n_states(const cell_bufs *s)
{
    return (size_t)(s->T + 1) * s->B * s->H;
}
static size_t n_steps(const cell_bufs *s)
{
    return (size_t)s->T * s->B * s->H;
}

static void bufs_init(cell_bufs *s, cell_kind kind, int T, int B, int H, unsigned seed)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->T = T;
    s->B = B;
    s->H = H;
    s->G = cell_gates(kind);
    size_t GH = (size_t)s->G * H;
    s->w_hh = fmalloc(GH * H);
    s->b_hh = fmalloc(GH);
    s->gates = fmalloc(n_gates(s));
    s->hs = fmalloc(n_states(s));
    s->cs = fmalloc(n_states(s));
    s->hn = fmalloc(n_steps(s));
    s->hproj = fmalloc((size_t)B * GH);
    s->dh = fmalloc(n_steps(s));
    s->dgh = fmalloc(n_steps(s));
    s->dh_next = fmalloc((size_t)B * H);
    s->dc_next = fmalloc((size_t)B * H);
    s->wpack = wpack_alloc(kind, H);
    testlib_fill_uniform(s->w_hh, GH * H, 0.5f, seed + 1);
    testlib_fill_uniform(s->b_hh, GH, 0.5f, seed + 2);
    testlib_fill_uniform(s->gates, n_gates(s), 1.0f, seed + 3); /* input projections */
    testlib_fill_uniform(s->hs, n_states(s), 1.0f, seed + 4);   /* hs[0] matters */
    testlib_fill_uniform(s->cs, n_states(s), 1.0f, seed + 5);   /* cs[0] matters */
    testlib_fill_uniform(s->hn, n_steps(s), 1.0f, seed + 6);
    testlib_fill_uniform(s->hproj, (size_t)B * GH, 1.0f, seed + 7);
    testlib_fill_uniform(s->dh, n_steps(s), 1.0f, seed + 8);
    testlib_fill_uniform(s->dgh, n_steps(s), 1.0f, seed + 9);
    testlib_fill_uniform(s->dh_next, (size_t)B * H, 1.0f, seed + 10);
    testlib_fill_uniform(s->dc_next, (size_t)B * H, 1.0f, seed + 11);
}

static void bufs_copy(cell_bufs *d, const cell_bufs *s)
{
    *d = *s;
    size_t GH = (size_t)s->G * s->H;
    d->w_hh = fdup(s->w_hh, GH * s->H);
    d->b_hh = fdup(s->b_hh, GH);
    d->gates = fdup(s->gates, n_gates(s));
    d->hs = fdup(s->hs, n_states(s));
    d->cs = fdup(s->cs, n_states(s));
    d->hn = fdup(s->hn, n_steps(s));
    d->hproj = fdup(s->hproj, (size_t)s->B * GH);
    d->dh = fdup(s->dh, n_steps(s));
    d->dgh = fdup(s->dgh, n_steps(s));
    d->dh_next = fdup(s->dh_next, (size_t)s->B * s->H);
    d->dc_next = fdup(s->dc_next, (size_t)s->B * s->H);
    d->wpack = wpack_alloc(s->kind, s->H);
    size_t BH = (size_t)s->B * s->H;
    if (s->len) {
        d->len = cn_xmalloc((size_t)s->B * sizeof *d->len);
        memcpy(d->len, s->len, (size_t)s->B * sizeof *d->len);
        d->dhf = fdup(s->dhf, BH);
        d->dcf = fdup(s->dcf, BH);
        d->dh0 = fdup(s->dh0, BH);
        d->dc0 = fdup(s->dc0, BH);
        d->rec_h = fdup(s->rec_h, n_steps(s));
        d->rec_c = fdup(s->rec_c, n_steps(s));
    }
}

/* Lengths len[b] (in [0, T], one row of 0 and one of T when B >= 2), a random
 * final-state gradient, and outputs for dh0, dc0 and the records. */
static void bufs_add_state(cell_bufs *s, unsigned seed)
{
    size_t BH = (size_t)s->B * s->H;
    s->len = cn_xmalloc((size_t)s->B * sizeof *s->len);
    for (int b = 0; b < s->B; b++)
        s->len[b] = b == 1 ? 0 : (b * 2 + s->T) % (s->T + 1);
    s->dhf = fmalloc(BH);
    s->dcf = fmalloc(BH);
    s->dh0 = fmalloc(BH);
    s->dc0 = fmalloc(BH);
    s->rec_h = fmalloc(n_steps(s));
    s->rec_c = fmalloc(n_steps(s));
    testlib_fill_uniform(s->dhf, BH, 1.0f, seed + 20);
    testlib_fill_uniform(s->dcf, BH, 1.0f, seed + 21);
    testlib_fill_uniform(s->dh0, BH, 1.0f, seed + 22);
    testlib_fill_uniform(s->dc0, BH, 1.0f, seed + 23);
    testlib_fill_uniform(s->rec_h, n_steps(s), 1.0f, seed + 24);
    testlib_fill_uniform(s->rec_c, n_steps(s), 1.0f, seed + 25);
}

static void bufs_free(cell_bufs *s)
{
    free(s->w_hh);
    free(s->b_hh);
    free(s->gates);
    free(s->hs);
    free(s->cs);
    free(s->hn);
    free(s->hproj);
    free(s->dh);
    free(s->dgh);
    free(s->dh_next);
    free(s->dc_next);
    free(s->wpack);
    free(s->len);
    free(s->dhf);
    free(s->dcf);
    free(s->dh0);
    free(s->dc0);
    free(s->rec_h);
    free(s->rec_c);
}

static cell_chunk chunk_of(const cell_bufs *s)
{
    cell_chunk c = {.kind = s->kind, .T = s->T, .B = s->B, .H = s->H, .w_hh = s->w_hh,
                    .b_hh = s->b_hh, .gates = s->gates, .hs = s->hs, .cs = s->cs, .hn = s->hn,
                    .hproj = s->hproj, .wpack = s->wpack, .len = s->len};
    return c;
}

/* dgh: the GRU's n part of the h-side gradient (T, B, H). */
static cell_grads grads_of(const cell_bufs *s)
{
    const int lstm = s->kind == CELL_LSTM;
    cell_grads g = {.dh = s->dh,
                    .dgh_n = s->kind == CELL_GRU ? s->dgh : NULL,
                    .dh_next = s->dh_next,
                    .dc_next = s->dc_next,
                    .dh_record = s->rec_h,
                    .dc_record = lstm ? s->rec_c : NULL,
                    .dh_final = s->dhf,
                    .dc_final = lstm ? s->dcf : NULL,
                    .dh0 = s->dh0,
                    .dc0 = lstm ? s->dc0 : NULL};
    return g;
}

static void run_forward(cell_bufs *s, int naive)
{
    cell_chunk c = chunk_of(s);
    if (naive)
        cell_forward_naive(&c);
    else
        cell_forward(&c);
}

static void run_backward(cell_bufs *s, int naive)
{
    cell_chunk c = chunk_of(s);
    cell_grads g = grads_of(s);
    if (naive)
        cell_backward_naive(&c, &g);
    else
        cell_backward(&c, &g);
}

#define CELL_TOL 5e-5

static void cell_case(cell_kind kind, int T, int B, int H, unsigned seed)
{
    cell_bufs base, f, n;
    bufs_init(&base, kind, T, B, H, seed);
    bufs_copy(&f, &base);
    bufs_copy(&n, &base);
    run_forward(&f, 0);
    run_forward(&n, 1);
    char name[96];
    double e;
    /* hs[0] and cs[0] are inputs and must come back unchanged */
    CU_ASSERT(memcmp(f.hs, base.hs, (size_t)B * H * sizeof(float)) == 0);
    e = testlib_max_rel_diff(f.hs, n.hs, n_states(&base));
    snprintf(name, sizeof name, "%s T=%d B=%d H=%d forward hs", cell_name(kind), T, B, H);
    report(name, e);
    CU_ASSERT(e <= CELL_TOL);
    e = testlib_max_rel_diff(f.gates, n.gates, n_gates(&base));
    snprintf(name, sizeof name, "%s T=%d B=%d H=%d forward gates", cell_name(kind), T, B, H);
    report(name, e);
    CU_ASSERT(e <= CELL_TOL);
    if (kind == CELL_LSTM) {
        CU_ASSERT(memcmp(f.cs, base.cs, (size_t)B * H * sizeof(float)) == 0);
        e = testlib_max_rel_diff(f.cs, n.cs, n_states(&base));
        snprintf(name, sizeof name, "%s T=%d B=%d H=%d forward cs", cell_name(kind), T, B, H);
        report(name, e);
        CU_ASSERT(e <= CELL_TOL);
    }
    if (kind == CELL_GRU) {
        e = testlib_max_rel_diff(f.hn, n.hn, n_steps(&base));
        snprintf(name, sizeof name, "%s T=%d B=%d H=%d forward hn", cell_name(kind), T, B, H);
        report(name, e);
        CU_ASSERT(e <= CELL_TOL);
    }
    /* the outputs are not trivially saturated */
    CU_ASSERT(kern_all_finite(f.hs, n_states(&base)));

    /* backward from one and the same forward state (the naive one), so only
     * the backward differs */
    cell_bufs bf, bn;
    bufs_copy(&bf, &n);
    bufs_copy(&bn, &n);
    run_backward(&bf, 0);
    run_backward(&bn, 1);
    e = testlib_max_rel_diff(bf.gates, bn.gates, n_gates(&base));
    snprintf(name, sizeof name, "%s T=%d B=%d H=%d backward dgates", cell_name(kind), T, B, H);
    report(name, e);
    CU_ASSERT(e <= CELL_TOL);
    if (kind == CELL_GRU) {
        e = testlib_max_rel_diff(bf.dgh, bn.dgh, n_steps(&base));
        snprintf(name, sizeof name, "%s T=%d B=%d H=%d backward dgh", cell_name(kind), T, B, H);
        report(name, e);
        CU_ASSERT(e <= CELL_TOL);
    }
    /* the saved forward state is read-only for backward */
    CU_ASSERT(memcmp(bf.hs, n.hs, n_states(&base) * sizeof(float)) == 0);
    if (kind == CELL_LSTM)
        CU_ASSERT(memcmp(bf.cs, n.cs, n_states(&base) * sizeof(float)) == 0);
    if (kind == CELL_GRU)
        CU_ASSERT(memcmp(bf.hn, n.hn, n_steps(&base) * sizeof(float)) == 0);
    /* gradients are not all zero (the test would be vacuous) */
    double mag = 0.0;
    for (size_t i = 0; i < n_gates(&base); i++)
        mag += fabs(bn.gates[i]);
    CU_ASSERT(mag > 1e-3 * (double)n_gates(&base));

    bufs_free(&base);
    bufs_free(&f);
    bufs_free(&n);
    bufs_free(&bf);
    bufs_free(&bn);
}

/* Each cell with and without the packed step products; B = 11 gives one block
 * of 8 rows and 3 single rows, H = 40 full and partial 32-column panels. */
static void cell_cases(cell_kind kind, unsigned seed)
{
    for (int packed = 1; packed >= 0; packed--) {
        cells_packed = packed;
        cell_case(kind, 5, 3, 7, seed);
        cell_case(kind, 4, 6, 40, seed + 100);
        cell_case(kind, 3, 11, 40, seed + 200);
    }
    cells_packed = 1;
}

static void test_cell_rnn(void)
{
    cell_cases(CELL_RNN, 1000);
}

static void test_cell_lstm(void)
{
    cell_cases(CELL_LSTM, 2000);
}

static void test_cell_gru(void)
{
    cell_cases(CELL_GRU, 3000);
}

/* Rows of different lengths (one of 0, one of T), a gradient of the final
 * state, dL/dh0 (dL/dc0) and the records of dL/dh_t (dL/dc_t), fast against
 * naive with the same tolerance as above. Exact properties on both sides: a
 * row past its length holds its state bit for bit, its pre-activation
 * gradients are exactly zero, and a row of length 0 hands the final
 * gradient back unchanged as its dL/dh0. */
static double held_rows_bad(const cell_bufs *s, const float *st)
{
    int bad = 0;
    for (int b = 0; b < s->B; b++)
        for (int t = s->len[b]; t < s->T; t++)
            bad += memcmp(st + ((size_t)(t + 1) * s->B + b) * s->H,
                          st + ((size_t)t * s->B + b) * s->H, (size_t)s->H * sizeof(float)) != 0;
    return bad;
}

static int masked_grads_bad(const cell_bufs *s)
{
    const size_t GH = (size_t)s->G * s->H;
    int bad = 0;
    for (int b = 0; b < s->B; b++)
        for (int t = s->len[b]; t < s->T; t++)
            for (size_t k = 0; k < GH; k++)
                bad += s->gates[((size_t)t * s->B + b) * GH + k] != 0.0f;
    return bad;
}

static void cell_case_len(cell_kind kind, int T, int B, int H, unsigned seed)
{
    const int lstm = kind == CELL_LSTM;
    const size_t BH = (size_t)B * H;
    cell_bufs base, f, n;
    bufs_init(&base, kind, T, B, H, seed);
    bufs_add_state(&base, seed);
    bufs_copy(&f, &base);
    bufs_copy(&n, &base);
    run_forward(&f, 0);
    run_forward(&n, 1);
    char name[112];
    double e = testlib_max_rel_diff(f.hs, n.hs, n_states(&base));
    if (lstm)
        e = fmax(e, testlib_max_rel_diff(f.cs, n.cs, n_states(&base)));
    snprintf(name, sizeof name, "%s T=%d B=%d H=%d lengths: forward states", cell_name(kind), T,
             B, H);
    report(name, e);
    CU_ASSERT(e <= CELL_TOL);
    CU_ASSERT_EQUAL(held_rows_bad(&f, f.hs), 0);
    CU_ASSERT_EQUAL(held_rows_bad(&n, n.hs), 0);
    if (lstm) {
        CU_ASSERT_EQUAL(held_rows_bad(&f, f.cs), 0);
        CU_ASSERT_EQUAL(held_rows_bad(&n, n.cs), 0);
    }

    /* backward from the naive forward state; the gradient from above is
     * garbage past each row's length and must not matter */
    for (int b = 0; b < B; b++)
        for (int t = n.len[b]; t < T; t++)
            for (int j = 0; j < H; j++)
                n.dh[((size_t)t * B + b) * H + j] = 1e3f * (float)(j + 1);
    cell_bufs bf, bn;
    bufs_copy(&bf, &n);
    bufs_copy(&bn, &n);
    run_backward(&bf, 0);
    run_backward(&bn, 1);
    e = testlib_max_rel_diff(bf.gates, bn.gates, n_gates(&base));
    if (kind == CELL_GRU)
        e = fmax(e, testlib_max_rel_diff(bf.dgh, bn.dgh, n_steps(&base)));
    snprintf(name, sizeof name, "%s T=%d B=%d H=%d lengths: backward dgates", cell_name(kind), T,
             B, H);
    report(name, e);
    CU_ASSERT(e <= CELL_TOL);
    e = testlib_max_rel_diff(bf.dh0, bn.dh0, BH);
    if (lstm)
        e = fmax(e, testlib_max_rel_diff(bf.dc0, bn.dc0, BH));
    snprintf(name, sizeof name, "%s T=%d B=%d H=%d lengths: dL/dh0%s", cell_name(kind), T, B, H,
             lstm ? ", dL/dc0" : "");
    report(name, e);
    CU_ASSERT(e <= CELL_TOL);
    e = testlib_max_rel_diff(bf.rec_h, bn.rec_h, n_steps(&base));
    if (lstm)
        e = fmax(e, testlib_max_rel_diff(bf.rec_c, bn.rec_c, n_steps(&base)));
    snprintf(name, sizeof name, "%s T=%d B=%d H=%d lengths: recorded dL/dh_t%s", cell_name(kind),
             T, B, H, lstm ? ", dL/dc_t" : "");
    report(name, e);
    CU_ASSERT(e <= CELL_TOL);
    CU_ASSERT_EQUAL(masked_grads_bad(&bf), 0);
    CU_ASSERT_EQUAL(masked_grads_bad(&bn), 0);
    /* row 1 has length 0 */
    CU_ASSERT(memcmp(bf.dh0 + H, base.dhf + H, (size_t)H * sizeof(float)) == 0);
    CU_ASSERT(memcmp(bn.dh0 + H, base.dhf + H, (size_t)H * sizeof(float)) == 0);
    if (lstm) {
        CU_ASSERT(memcmp(bf.dc0 + H, base.dcf + H, (size_t)H * sizeof(float)) == 0);
        CU_ASSERT(memcmp(bn.dc0 + H, base.dcf + H, (size_t)H * sizeof(float)) == 0);
    }
    /* dL/dh0 is not vacuous: the rows that ran have a gradient of their own */
    double mag = 0.0;
    for (size_t i = 0; i < BH; i++)
        mag += fabs(bn.dh0[i] - base.dhf[i]);
    CU_ASSERT(mag > 1e-2 * (double)BH);

    /* every row at full length: the same forward bits as without lengths,
     * and the same backward within the tolerance (the step product then
     * accumulates onto a zeroed dh_next instead of overwriting it) */
    cell_bufs a, z;
    bufs_copy(&a, &base);
    bufs_copy(&z, &base);
    for (int b = 0; b < B; b++)
        a.len[b] = T;
    free(z.len);
    z.len = NULL;
    run_forward(&a, 0);
    run_forward(&z, 0);
    CU_ASSERT(memcmp(a.hs, z.hs, n_states(&base) * sizeof(float)) == 0);
    CU_ASSERT(memcmp(a.gates, z.gates, n_gates(&base) * sizeof(float)) == 0);
    run_backward(&a, 0);
    run_backward(&z, 0);
    e = testlib_max_rel_diff(a.gates, z.gates, n_gates(&base));
    e = fmax(e, testlib_max_rel_diff(a.dh0, z.dh0, BH));
    snprintf(name, sizeof name, "%s T=%d B=%d H=%d all rows at T vs no lengths", cell_name(kind),
             T, B, H);
    report(name, e);
    CU_ASSERT(e <= CELL_TOL);
    bufs_free(&a);
    bufs_free(&z);

    bufs_free(&base);
    bufs_free(&f);
    bufs_free(&n);
    bufs_free(&bf);
    bufs_free(&bn);
}

static void test_cells_lengths(void)
{
    for (int packed = 1; packed >= 0; packed--) {
        cells_packed = packed;
        for (int k = CELL_RNN; k <= CELL_GRU; k++) {
            cell_case_len((cell_kind)k, 5, 3, 7, 5000 + 100 * (unsigned)k);
            cell_case_len((cell_kind)k, 4, 11, 40, 5010 + 100 * (unsigned)k);
            cell_case_len((cell_kind)k, 1, 2, 33, 5020 + 100 * (unsigned)k);
        }
    }
    cells_packed = 1;
}

/* The fast cells give bit-identical results with 1 and 2 OpenMP threads
 * (OpenBLAS itself runs single-threaded: OPENBLAS_NUM_THREADS=1). */
static void test_cells_thread_independent(void)
{
    static const int shapes[][3] = {{5, 3, 7}, {4, 6, 40}, {3, 17, 40}};
    int saved = max_threads();
    for (int k = CELL_RNN; k <= CELL_GRU; k++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            cell_bufs base, a, b;
            bufs_init(&base, (cell_kind)k, shapes[s][0], shapes[s][1], shapes[s][2],
                      4000 + 100 * (unsigned)k + (unsigned)s);
            if (s == 2) /* with lengths, dh_final, dh0 and the records */
                bufs_add_state(&base, 4100 + 100 * (unsigned)k);
            bufs_copy(&a, &base);
            bufs_copy(&b, &base);
            set_threads(1);
            run_forward(&a, 0);
            set_threads(2);
            run_forward(&b, 0);
            CU_ASSERT(memcmp(a.hs, b.hs, n_states(&base) * sizeof(float)) == 0);
            CU_ASSERT(memcmp(a.gates, b.gates, n_gates(&base) * sizeof(float)) == 0);
            if (k == CELL_LSTM)
                CU_ASSERT(memcmp(a.cs, b.cs, n_states(&base) * sizeof(float)) == 0);
            if (k == CELL_GRU)
                CU_ASSERT(memcmp(a.hn, b.hn, n_steps(&base) * sizeof(float)) == 0);
            /* and the backward */
            set_threads(1);
            run_backward(&a, 0);
            set_threads(2);
            run_backward(&b, 0);
            CU_ASSERT(memcmp(a.gates, b.gates, n_gates(&base) * sizeof(float)) == 0);
            if (k == CELL_GRU)
                CU_ASSERT(memcmp(a.dgh, b.dgh, n_steps(&base) * sizeof(float)) == 0);
            if (base.len) {
                size_t BH = (size_t)base.B * base.H;
                CU_ASSERT(memcmp(a.dh0, b.dh0, BH * sizeof(float)) == 0);
                CU_ASSERT(memcmp(a.rec_h, b.rec_h, n_steps(&base) * sizeof(float)) == 0);
                if (k == CELL_LSTM) {
                    CU_ASSERT(memcmp(a.cs, b.cs, n_states(&base) * sizeof(float)) == 0);
                    CU_ASSERT(memcmp(a.dc0, b.dc0, BH * sizeof(float)) == 0);
                    CU_ASSERT(memcmp(a.rec_c, b.rec_c, n_steps(&base) * sizeof(float)) == 0);
                }
            }
            bufs_free(&base);
            bufs_free(&a);
            bufs_free(&b);
        }
    set_threads(saved);
}

static void test_cell_names(void)
{
    cell_kind k = CELL_RNN;
    CU_ASSERT_EQUAL(cell_gates(CELL_RNN), 1);
    CU_ASSERT_EQUAL(cell_gates(CELL_LSTM), 4);
    CU_ASSERT_EQUAL(cell_gates(CELL_GRU), 3);
    CU_ASSERT_EQUAL(cell_parse("lstm", &k), 0);
    CU_ASSERT_EQUAL(k, CELL_LSTM);
    CU_ASSERT_EQUAL(cell_parse("gru", &k), 0);
    CU_ASSERT_EQUAL(k, CELL_GRU);
    CU_ASSERT_EQUAL(cell_parse("rnn", &k), 0);
    CU_ASSERT_EQUAL(k, CELL_RNN);
    CU_ASSERT_EQUAL(cell_parse("LSTM", &k), -1);
    CU_ASSERT_EQUAL(k, CELL_RNN);
    CU_ASSERT_STRING_EQUAL(cell_name(CELL_GRU), "gru");
}

int main(int argc, char **argv)
{
    CU_pSuite k = testlib_suite("kernels");
    testlib_add(k, "gemm: 4 transpose combos, padded ld, alpha, beta", test_gemm);
    testlib_add(k, "gemm: beta 0 ignores C", test_gemm_beta0_ignores_c);
    testlib_add(k, "gemm_packed vs naive, 1 vs 2 threads", test_gemm_packed);
    testlib_add(k, "gather_rows with and without bias", test_gather_rows);
    testlib_add(k, "scatter_add_rows: repeats, 1 vs 2 threads", test_scatter_add_rows);
    testlib_add(k, "sum_rows", test_sum_rows);
    testlib_add(k, "softmax_xent incl. +-80 logits", test_softmax_xent);
    testlib_add(k, "softmax_xent_backward", test_softmax_xent_backward);
    testlib_add(k, "sumsq: vs double, 1 vs 2 threads", test_sumsq);
    testlib_add(k, "argmax: largest, lowest index on ties", test_argmax);
    testlib_add(k, "dropout: rate, scale, keys, backward", test_dropout);

    CU_pSuite c = testlib_suite("cells");
    testlib_add(c, "names and gate counts", test_cell_names);
    testlib_add(c, "rnn fast vs naive", test_cell_rnn);
    testlib_add(c, "lstm fast vs naive", test_cell_lstm);
    testlib_add(c, "gru fast vs naive", test_cell_gru);
    testlib_add(c, "lengths, final-state gradients, dh0/dc0, records: fast vs naive",
                test_cells_lengths);
    testlib_add(c, "fast cells: 1 vs 2 threads bit-identical", test_cells_thread_independent);
    return testlib_run(argc, argv);
}
