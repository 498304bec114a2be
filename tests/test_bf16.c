/* The bf16 products (kernels_bf16.c, --precision bf16) against the naive FP32
 * references, and the model's gradients in bf16 against FP32 finite
 * differences. Skips (77) on a CPU without AVX512_BF16.
 *
 * Bounds, from the rounding (u = 2^-8, bf16's unit roundoff; v = 2^-24, FP32's):
 * each operand is rounded once to bf16, so a product a b becomes
 * a b (1 + d1)(1 + d2), |d| <= u, and the product of two bf16 numbers is exact
 * in FP32. The K products are then summed in FP32 (vdpbf16ps adds one product
 * at a time, the k-blocks add into C), alpha and beta cost a rounding each:
 *   |C - C_ref| <= (2u + u^2 + g) |alpha| sum_k |a_ik| |b_kj| + g |beta c_ij|,
 *   g = n v / (1 - n v), n = 2K + 8 (a generous count of FP32 roundings),
 * plus one FP32 rounding of the reference itself. Every element must meet its
 * own bound. The sum bound grows with K; the operand part does not, and on
 * random data the error is about u sum |a b| / sqrt(K)-ish, far below it.
 * Two more checks make sure bf16 is really what runs: the result matches
 * the naive product of the operands rounded to bf16 (kern_bf16_round) within
 * the FP32 part g alone, and differs from the FP32 product by more than FP32
 * rounding could explain.
 *
 * Gradients: the bf16 analytic gradient of small models (the same as
 * test_gradcheck's) is compared with central differences of the FP32 loss
 * (bf16 differences would see the weights' bf16 steps, not the slope). Each
 * product's operands carry 2^-8 relative errors and a gradient goes through a
 * few products, so a small element can be off by tens of percent of itself
 * (measured up to 0.44 with test_gradcheck's elementwise measure): the checks
 * are on the whole gradient instead, max |error| / max |gradient| and the
 * relative 2-norm error, both measured 1.2e-3 .. 6.6e-3 (H = 8, T = 4); the
 * bound is 3e-2, while a wrong sign, a missing term or an off-by-one step
 * gives errors of order 1 (test_gradcheck's "detects" case). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "charnn/common.h"
#include "charnn/kernels.h"
#include "charnn/model.h"
#include "testlib.h"

static const double U = 1.0 / 256.0, V32 = 1.0 / 16777216.0;

static float *fmalloc(size_t n)
{
    return cn_xmalloc((n ? n : 1) * sizeof(float));
}

static double gamma_n(int K)
{
    double n = 2.0 * K + 8.0;
    return n * V32 / (1.0 - n * V32);
}

/* op(A)[i][k] and op(B)[k][j] of the stored matrices */
static float opa(const float *A, int lda, int ta, int i, int k)
{
    return ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
}

static float opb(const float *B, int ldb, int tb, int k, int j)
{
    return tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
}

/* Copy of x with every element rounded to bf16. */
static float *rounded(const float *x, size_t n)
{
    float *y = fmalloc(n);
    for (size_t i = 0; i < n; i++)
        y[i] = kern_bf16_round(x[i]);
    return y;
}

typedef struct {
    double worst_ratio;  /* max |C - C_ref| / bound, must be <= 1 */
    double worst_emul;   /* max |C - C_emulated| / its bound, must be <= 1 */
    double max_rel_f32;  /* max |C - C_ref| / sum |a b|: shows the bf16 rounding */
} check;

/* C (bf16 kernel) against the FP32 reference Cn and the emulation Ce, both made
 * from the same C0. */
static void compare(check *ck, int ta, int tb, int M, int N, int K, float alpha, float beta,
                    const float *A, int lda, const float *B, int ldb, const float *C0,
                    const float *C, const float *Cn, const float *Ce, int ldc)
{
    const double g = gamma_n(K);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0, se = 0.0;
            for (int k = 0; k < K; k++) {
                s += fabs((double)opa(A, lda, ta, i, k) * opb(B, ldb, tb, k, j));
                se += fabs((double)kern_bf16_round(opa(A, lda, ta, i, k)) *
                           kern_bf16_round(opb(B, ldb, tb, k, j)));
            }
            const size_t at = (size_t)i * ldc + j;
            const double c0 = beta == 0.0f ? 0.0 : fabs((double)beta * C0[at]);
            const double ref = fabs((double)Cn[at]);
            double bound = (2 * U + U * U + g) * fabs((double)alpha) * s + g * c0 + V32 * ref +
                           1e-30;
            double bound_e = g * fabs((double)alpha) * se + g * c0 + V32 * ref + 1e-30;
            double e = fabs((double)C[at] - Cn[at]), ee = fabs((double)C[at] - Ce[at]);
            if (e / bound > ck->worst_ratio)
                ck->worst_ratio = e / bound;
            if (ee / bound_e > ck->worst_emul)
                ck->worst_emul = ee / bound_e;
            if (s > 0 && e / (fabs((double)alpha) * s) > ck->max_rel_f32)
                ck->max_rel_f32 = e / (fabs((double)alpha) * s);
        }
}

static void gemm_case(check *ck, int ta, int tb, int M, int N, int K, float alpha, float beta,
                      unsigned seed)
{
    int arows = ta ? K : M, acols = ta ? M : K;
    int brows = tb ? N : K, bcols = tb ? K : N;
    int lda = acols + 3, ldb = bcols + 5, ldc = N + 7;
    size_t na = (size_t)arows * lda, nb = (size_t)brows * ldb, nc = (size_t)M * ldc;
    float *A = fmalloc(na), *B = fmalloc(nb), *C0 = fmalloc(nc);
    testlib_fill_uniform(A, na, 1.0f, seed);
    testlib_fill_uniform(B, nb, 1.0f, seed + 1);
    testlib_fill_uniform(C0, nc, 1.0f, seed + 2);
    float *C = fmalloc(nc), *C2 = fmalloc(nc), *Cn = fmalloc(nc), *Ce = fmalloc(nc);
    memcpy(C, C0, nc * sizeof(float));
    memcpy(C2, C0, nc * sizeof(float));
    memcpy(Cn, C0, nc * sizeof(float));
    memcpy(Ce, C0, nc * sizeof(float));
    float *Ar = rounded(A, na), *Br = rounded(B, nb);
    omp_set_num_threads(1);
    kern_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    omp_set_num_threads(2);
    kern_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc);
    kern_gemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Cn, ldc);
    kern_gemm_naive(ta, tb, M, N, K, alpha, Ar, lda, Br, ldb, beta, Ce, ldc);
    /* the same bits for any thread count; padding columns untouched */
    CU_ASSERT(memcmp(C, C2, nc * sizeof(float)) == 0);
    for (int i = 0; i < M; i++)
        CU_ASSERT(memcmp(C + (size_t)i * ldc + N, C0 + (size_t)i * ldc + N,
                         (size_t)(ldc - N) * sizeof(float)) == 0);
    compare(ck, ta, tb, M, N, K, alpha, beta, A, lda, B, ldb, C0, C, Cn, Ce, ldc);
    free(A);
    free(B);
    free(C0);
    free(C);
    free(C2);
    free(Cn);
    free(Ce);
    free(Ar);
    free(Br);
}

static void report(const char *what, const check *ck)
{
    printf("\n    %-34s error/bound %.3f, vs bf16 emulation error/bound %.3f, "
           "max |err|/sum|ab| %.2e",
           what, ck->worst_ratio, ck->worst_emul, ck->max_rel_f32);
}

static void test_gemm(void)
{
    /* K odd and across the k-blocks (1024, or 512 with A transposed); M not a
     * multiple of 8 and across the row blocks (64); N not a multiple of 32 */
    static const int shapes[][3] = {{1, 1, 1},   {7, 33, 5},    {9, 31, 64},  {17, 65, 257},
                                    {64, 300, 33}, {13, 40, 600}, {8, 256, 512}, {3, 5, 2},
                                    {130, 45, 1031}};
    check ck = {0};
    unsigned seed = 100;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                gemm_case(&ck, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 1.0f,
                          seed += 3);
                gemm_case(&ck, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], -1.375f,
                          0.0f, seed += 3);
                gemm_case(&ck, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 0.6f,
                          seed += 3);
            }
    report("gemm_bf16, all shapes", &ck);
    CU_ASSERT(ck.worst_ratio <= 1.0);
    CU_ASSERT(ck.worst_emul <= 1.0);
    /* FP32 products would be within g (about 1e-5 here) of the sum; bf16 operands
     * on random data reach a sizeable part of 2u */
    CU_ASSERT(ck.max_rel_f32 > 1e-3);
}

/* kern_gemm itself dispatches on the precision. */
static void test_gemm_dispatch(void)
{
    enum { M = 5, N = 40, K = 70 };
    float A[M * K], B[K * N], Cb[M * N], Cd[M * N];
    testlib_fill_uniform(A, M * K, 1.0f, 7);
    testlib_fill_uniform(B, K * N, 1.0f, 8);
    CU_ASSERT_FATAL(kern_set_precision(KERN_BF16) == 0);
    CU_ASSERT(kern_get_precision() == KERN_BF16);
    kern_gemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, Cd, N);
    kern_gemm_bf16(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, Cb, N);
    CU_ASSERT(memcmp(Cb, Cd, sizeof Cb) == 0);
    CU_ASSERT_FATAL(kern_set_precision(KERN_F32) == 0);
    kern_gemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, Cd, N);
    CU_ASSERT(memcmp(Cb, Cd, sizeof Cb) != 0);
    kern_precision p;
    CU_ASSERT(kern_precision_parse("bf16", &p) == 0 && p == KERN_BF16);
    CU_ASSERT(kern_precision_parse("f32", &p) == 0 && p == KERN_F32);
    CU_ASSERT(kern_precision_parse("fp16", &p) == -1);
    CU_ASSERT(strcmp(kern_precision_name(KERN_BF16), "bf16") == 0);
}

/* The recurrent step products: panels packed in bf16 precision. */
static void test_gemm_packed(void)
{
    static const int Ms[] = {1, 3, 8, 9, 15, 64}, Ns[] = {1, 31, 33, 100},
                     Ks[] = {1, 7, 64, 300, 1100};
    check ck = {0};
    unsigned seed = 500;
    CU_ASSERT_FATAL(kern_set_precision(KERN_BF16) == 0);
    for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms; mi++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
            for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++)
                for (int trans = 0; trans < 2; trans++)
                    for (int beta = 0; beta < 2; beta++) {
                        const int M = Ms[mi], N = Ns[ni], K = Ks[ki], lda = K + 3, ldc = N + 5;
                        const size_t nc = (size_t)M * ldc, nw = (size_t)N * K;
                        float *A = fmalloc((size_t)M * lda), *W = fmalloc(nw);
                        float *C0 = fmalloc(nc), *C = fmalloc(nc), *C2 = fmalloc(nc);
                        float *Cn = fmalloc(nc), *Ce = fmalloc(nc);
                        size_t bytes = (kern_pack_floats(N, K) * sizeof(float) + 63) / 64 * 64;
                        CU_ASSERT(kern_pack_bf16_words(N, K) <= kern_pack_floats(N, K));
                        float *panels = aligned_alloc(64, bytes);
                        CU_ASSERT_FATAL(panels != NULL);
                        testlib_fill_uniform(A, (size_t)M * lda, 1.0f, seed += 3);
                        testlib_fill_uniform(W, nw, 1.0f, seed += 3);
                        testlib_fill_uniform(C0, nc, 1.0f, seed += 3);
                        memcpy(C, C0, nc * sizeof(float));
                        memcpy(C2, C0, nc * sizeof(float));
                        memcpy(Cn, C0, nc * sizeof(float));
                        memcpy(Ce, C0, nc * sizeof(float));
                        kern_packed p;
                        kern_pack(&p, W, N, K, trans, panels);
                        CU_ASSERT(p.packed && p.bf16);
                        omp_set_num_threads(1);
                        kern_gemm_packed(M, A, lda, &p, (float)beta, C, ldc);
                        omp_set_num_threads(2);
                        kern_gemm_packed(M, A, lda, &p, (float)beta, C2, ldc);
                        CU_ASSERT(memcmp(C, C2, nc * sizeof(float)) == 0);
                        const int ldw = trans ? K : N;
                        kern_gemm_naive(0, trans, M, N, K, 1.0f, A, lda, W, ldw, (float)beta,
                                        Cn, ldc);
                        float *Ar = rounded(A, (size_t)M * lda), *Wr = rounded(W, nw);
                        kern_gemm_naive(0, trans, M, N, K, 1.0f, Ar, lda, Wr, ldw, (float)beta,
                                        Ce, ldc);
                        compare(&ck, 0, trans, M, N, K, 1.0f, (float)beta, A, lda, W, ldw, C0,
                                C, Cn, Ce, ldc);
                        for (int i = 0; i < M; i++)
                            CU_ASSERT(memcmp(C + (size_t)i * ldc + N, C0 + (size_t)i * ldc + N,
                                             (size_t)(ldc - N) * sizeof(float)) == 0);
                        free(A);
                        free(W);
                        free(C0);
                        free(C);
                        free(C2);
                        free(Cn);
                        free(Ce);
                        free(Ar);
                        free(Wr);
                        free(panels);
                    }
    CU_ASSERT_FATAL(kern_set_precision(KERN_F32) == 0);
    report("gemm_packed bf16 panels, all shapes", &ck);
    CU_ASSERT(ck.worst_ratio <= 1.0);
    CU_ASSERT(ck.worst_emul <= 1.0);
    CU_ASSERT(ck.max_rel_f32 > 1e-3);
}

/* ------------------------------------------------------ gradient checks */

enum { GV = 5, GT = 4, GB = 2 };

static double eval_loss(const model *m, model_work *w, const model_state *s0, model_state *s,
                        const int32_t *x, const int32_t *y)
{
    size_t n = (size_t)s0->layers * s0->batch * s0->hidden;
    memcpy(s->h, s0->h, n * sizeof(float));
    if (s0->c)
        memcpy(s->c, s0->c, n * sizeof(float));
    model_forward(m, w, s, x, y, GT, 0, 12345);
    double total = 0.0;
    for (int i = 0; i < GT * GB; i++)
        total += w->head.loss[i];
    return total;
}

/* Worst elementwise relative error and the relative 2-norm error of the bf16
 * gradient against FP32 central differences. */
static void gradcheck_bf16(cell_kind cell, int layers, int embed, double *elem, double *norm)
{
    model_config cfg = {.cell = cell, .vocab = GV, .layers = layers, .hidden = 8,
                        .embed = embed};
    model m;
    model_build(&m, &cfg);
    model_init_uniform(&m, 0.5f, 7, NAN);
    model_work w;
    model_work_init(&w, &m, GT, GB);
    model_state s0, s;
    model_state_init(&s0, &cfg, GB);
    model_state_init(&s, &cfg, GB);
    size_t ns = (size_t)layers * GB * cfg.hidden;
    testlib_fill_uniform(s0.h, ns, 0.5f, 3);
    if (s0.c)
        testlib_fill_uniform(s0.c, ns, 0.5f, 4);
    int32_t x[GT * GB], y[GT * GB];
    for (int i = 0; i < GT * GB; i++) {
        x[i] = (i * 3 + 1) % GV;
        y[i] = (i * 2 + 3) % GV;
    }
    CU_ASSERT_FATAL(kern_set_precision(KERN_BF16) == 0);
    eval_loss(&m, &w, &s0, &s, x, y);
    model_zero_grads(&m);
    model_backward(&m, &w, x, y, 1.0f, NULL, NULL);
    CU_ASSERT_FATAL(kern_set_precision(KERN_F32) == 0);

    double worst = 0.0, gmax = 0.0, d2 = 0.0, n2 = 0.0;
    const float hstep = 1e-2f;
    for (size_t i = 0; i < m.n_params; i++) {
        float keep = m.params[i];
        m.params[i] = keep + hstep;
        double lp = eval_loss(&m, &w, &s0, &s, x, y);
        m.params[i] = keep - hstep;
        double lm = eval_loss(&m, &w, &s0, &s, x, y);
        m.params[i] = keep;
        double num = (lp - lm) / (2.0 * hstep);
        double ana = m.grads[i];
        worst = fabs(num - ana) > worst ? fabs(num - ana) : worst;
        gmax = fabs(num) > gmax ? fabs(num) : gmax;
        d2 += (num - ana) * (num - ana);
        n2 += num * num;
    }
    model_state_free(&s0);
    model_state_free(&s);
    model_work_free(&w);
    model_free(&m);
    *elem = worst / gmax;
    *norm = sqrt(d2 / n2);
    printf("\n    bf16 gradcheck %s L%d E%d: max |error| / max |gradient| %.2e, 2-norm %.2e", cell_name(cell),
           layers, embed, *elem, *norm);
}

#define BF16_GRAD_BOUND 3e-2

static void check_cell(cell_kind cell)
{
    static const int configs[][2] = {{1, 0}, {2, 0}, {2, 6}};
    for (size_t i = 0; i < sizeof configs / sizeof *configs; i++) {
        double elem, norm;
        gradcheck_bf16(cell, configs[i][0], configs[i][1], &elem, &norm);
        CU_ASSERT(elem <= BF16_GRAD_BOUND);
        CU_ASSERT(norm <= BF16_GRAD_BOUND);
    }
}

static void test_grad_rnn(void)
{
    check_cell(CELL_RNN);
}

static void test_grad_lstm(void)
{
    check_cell(CELL_LSTM);
}

static void test_grad_gru(void)
{
    check_cell(CELL_GRU);
}

int main(int argc, char **argv)
{
    const char *missing = kern_bf16_missing();
    if (missing) {
        printf("skipped: this CPU has no %s\n", missing);
        return 77;
    }
    CU_pSuite s = testlib_suite("bf16");
    testlib_add(s, "gemm_bf16 vs naive FP32, bounds from bf16 rounding", test_gemm);
    testlib_add(s, "kern_gemm follows the precision", test_gemm_dispatch);
    testlib_add(s, "packed step products in bf16", test_gemm_packed);
    testlib_add(s, "rnn gradients in bf16", test_grad_rnn);
    testlib_add(s, "lstm gradients in bf16", test_grad_lstm);
    testlib_add(s, "gru gradients in bf16", test_grad_gru);
    return testlib_run(argc, argv);
}
