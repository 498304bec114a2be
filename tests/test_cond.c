/* Conditioning (cond.h): a condition vector c (B, D) per row through the
 * three modes, for every cell.
 *
 *  - finite differences of the masked summed loss against every parameter
 *    (the condition's tensors included) for init, input and every, with rows
 *    of different lengths (one of length 0), one layer with one-hot input and two
 *    with an embedding, starting from a non-zero carried state that init must
 *    replace (so its gradient into dL/dh0 must be zero);
 *  - what each mode does, against naive loops: init's starting state is
 *    c W_h^T + b_h (c W_c^T + b_c for the LSTM's cell state) per layer; input
 *    changes step 0 only (a chunk that continues the rows adds nothing: the
 *    same outputs as with no condition); every adds c W^T at every step (a
 *    continuing chunk too); init's tensor gradients equal the naive
 *    dL/dh0^T c;
 *  - the same with the condition standardised by features.mean/std, whose
 *    gradient must stay exactly zero (data, never trained);
 *  - a model with mode none has no condition tensors and the same slab as
 *    before conditioning existed.
 *
 * Tolerances as in test_gradcheck.c: steps of 1e-2 in float, bound 2e-2
 * (measured worst: printed per case); naive against fast 1e-5 relative. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/cond.h"
#include "charnn/model.h"
#include "charnn/stack.h"
#include "testlib.h"

enum { V = 5, T = 4, B = 3, D = 3, HID = 4 };

#define FD_BOUND 2e-2
#define NAIVE_TOL 1e-5

static const int32_t row_len[B] = {4, 2, 0};
static int standardize; /* the next case_init's cond.standardize */

typedef struct {
    model m;
    model_work w;
    model_state s0, s;
    int32_t x[T * B], y[T * B];
    float mask[T * B];
    float c[B * D];
} cond_case;

static void case_init(cond_case *k, cell_kind cell, int layers, int embed, cond_mode mode)
{
    memset(k, 0, sizeof *k);
    model_config cfg = {.cell = cell, .vocab = V, .layers = layers, .hidden = HID,
                        .embed = embed,
                        .cond = {mode, mode == COND_NONE ? 0 : D, mode != COND_NONE && standardize}};
    CU_ASSERT_FATAL(model_config_check(&cfg) == 0);
    model_build(&k->m, &cfg);
    model_init_uniform(&k->m, 0.5f, 11, NAN);
    if (cfg.cond.standardize)
        for (int d = 0; d < D; d++) {
            k->m.cond.mean[d] = 0.3f * (float)(d - 1);
            k->m.cond.std[d] = 0.5f + 0.4f * (float)d;
        }
    model_work_init(&k->w, &k->m, T, B);
    model_state_init(&k->s0, &cfg, B);
    model_state_init(&k->s, &cfg, B);
    size_t ns = (size_t)layers * B * HID;
    testlib_fill_uniform(k->s0.h, ns, 0.8f, 5);
    if (k->s0.c)
        testlib_fill_uniform(k->s0.c, ns, 0.8f, 6);
    testlib_fill_uniform(k->c, B * D, 1.0f, 9);
    for (int i = 0; i < T * B; i++) {
        k->x[i] = (i * 3 + 2) % V;
        k->y[i] = (i * 2 + 1) % V;
        k->mask[i] = i / B < row_len[i % B] ? 1.0f : 0.0f;
    }
    k->w.len = row_len;
    k->w.mask = k->mask;
    k->w.cond = mode == COND_NONE ? NULL : k->c;
    k->w.cond_first = 1;
}

static void case_free(cond_case *k)
{
    model_state_free(&k->s0);
    model_state_free(&k->s);
    model_work_free(&k->w);
    model_free(&k->m);
}

static double eval_loss(cond_case *k)
{
    size_t n = (size_t)k->s0.layers * B * HID;
    memcpy(k->s.h, k->s0.h, n * sizeof(float));
    if (k->s0.c)
        memcpy(k->s.c, k->s0.c, n * sizeof(float));
    model_forward(&k->m, &k->w, &k->s, k->x, k->y, T, 0, 0);
    double total = 0.0;
    for (int i = 0; i < T * B; i++)
        total += k->mask[i] * (double)k->w.head.loss[i];
    return total;
}

static double rel_err(double num, double ana)
{
    return fabs(num - ana) / fmax(1e-2, fabs(num) + fabs(ana));
}

/* Worst relative error over every parameter; *cond_mag gets the largest
 * |gradient| of a condition tensor, *dh0_mag the largest |dL/dh0|. */
static double gradcheck_cond(cell_kind cell, int layers, int embed, cond_mode mode,
                             double *cond_mag, double *dh0_mag)
{
    cond_case k;
    case_init(&k, cell, layers, embed, mode);
    size_t ns = (size_t)layers * B * HID;
    float *dh0 = cn_xcalloc(ns, sizeof(float)), *dc0 = cn_xcalloc(ns, sizeof(float));
    k.w.dh0 = dh0;
    k.w.dc0 = k.s0.c ? dc0 : NULL;
    eval_loss(&k);
    model_zero_grads(&k.m);
    model_backward(&k.m, &k.w, k.x, k.y, 1.0f, NULL, NULL);
    k.w.dh0 = k.w.dc0 = NULL;
    *dh0_mag = 0.0;
    for (size_t i = 0; i < ns; i++)
        *dh0_mag = fmax(*dh0_mag, fmax(fabs(dh0[i]), fabs(dc0[i])));
    *cond_mag = 0.0;
    const model_tensor *first = NULL;
    for (int t = 0; t < k.m.n_tensors; t++)
        if (strncmp(k.m.tensor[t].name, "cond.", 5) == 0 && !first)
            first = &k.m.tensor[t];
    CU_ASSERT_FATAL(first != NULL);
    for (size_t i = first->offset; i < k.m.n_params; i++)
        *cond_mag = fmax(*cond_mag, fabs(k.m.grads[i]));

    /* features.mean and .std are data, never trained: zero gradient, no check */
    size_t frozen_begin = k.m.n_params;
    const model_tensor *fm = model_find_tensor(&k.m, "features.mean");
    if (fm) {
        frozen_begin = fm->offset;
        for (size_t i = frozen_begin; i < k.m.n_params; i++)
            CU_ASSERT(k.m.grads[i] == 0.0f);
    }
    double worst = 0.0;
    const float step = 1e-2f;
    for (size_t i = 0; i < frozen_begin; i++) {
        float keep = k.m.params[i];
        k.m.params[i] = keep + step;
        double lp = eval_loss(&k);
        k.m.params[i] = keep - step;
        double lm = eval_loss(&k);
        k.m.params[i] = keep;
        worst = fmax(worst, rel_err((lp - lm) / (2.0 * step), k.m.grads[i]));
    }
    printf("\n    gradcheck %-4s %-5s L%d E%d: worst %.2e, |dcond| %.3f", cell_name(cell),
           cond_mode_name(mode), layers, embed, worst, *cond_mag);
    free(dh0);
    free(dc0);
    case_free(&k);
    return worst;
}

static void test_gradcheck_modes(void)
{
    const cell_kind cells[] = {CELL_RNN, CELL_LSTM, CELL_GRU};
    const cond_mode modes[] = {COND_INIT, COND_INPUT, COND_EVERY};
    for (int ci = 0; ci < 3; ci++)
        for (int mi = 0; mi < 3; mi++)
            /* one layer with one-hot input, two layers with an embedding */
            for (int layers = 1; layers <= 2; layers++) {
                double cmag, dmag;
                double worst = gradcheck_cond(cells[ci], layers, layers == 2 ? 3 : 0, modes[mi],
                                              &cmag, &dmag);
                CU_ASSERT(worst < FD_BOUND);
                /* the condition's gradient is there to check */
                CU_ASSERT(cmag > 1e-3);
                /* init replaced the carried state: nothing flows into it */
                CU_ASSERT(modes[mi] == COND_INIT ? dmag == 0.0 : dmag > 1e-3);
            }
}

/* The standardised condition (c - mean) / std: finite differences for every
 * mode with mean and std away from 0 and 1, for the LSTM and the GRU. */
static void test_gradcheck_standardized(void)
{
    const cond_mode modes[] = {COND_INIT, COND_INPUT, COND_EVERY};
    standardize = 1;
    for (int mi = 0; mi < 3; mi++)
        for (int ci = 0; ci < 2; ci++) {
            double cmag, dmag;
            double worst = gradcheck_cond(ci ? CELL_GRU : CELL_LSTM, 1, 0, modes[mi], &cmag, &dmag);
            CU_ASSERT(worst < FD_BOUND);
            CU_ASSERT(cmag > 1e-3);
        }
    standardize = 0;
}

/* init's starting state and its tensor gradients against the naive loops. */
static void test_init_naive(void)
{
    const cell_kind cells[] = {CELL_RNN, CELL_LSTM, CELL_GRU};
    for (int ci = 0; ci < 3; ci++) {
        cond_case k;
        case_init(&k, cells[ci], 2, 0, COND_INIT);
        memcpy(k.s.h, k.s0.h, (size_t)2 * B * HID * sizeof(float));
        model_forward(&k.m, &k.w, &k.s, k.x, k.y, T, 0, 0);
        const size_t BH = (size_t)B * HID;
        float want[B * HID], dW[HID * D], db[HID];
        for (int l = 0; l < 2; l++) {
            cond_project_naive(want, k.c, k.m.cond.w_h[l], k.m.cond.b_h[l], B, HID, D);
            CU_ASSERT(testlib_max_rel_diff(k.w.hs[l], want, BH) < NAIVE_TOL);
            if (cells[ci] == CELL_LSTM) {
                cond_project_naive(want, k.c, k.m.cond.w_c[l], k.m.cond.b_c[l], B, HID, D);
                CU_ASSERT(testlib_max_rel_diff(k.w.cs[l], want, BH) < NAIVE_TOL);
            }
        }
        model_zero_grads(&k.m);
        model_backward(&k.m, &k.w, k.x, k.y, 1.0f, NULL, NULL);
        for (int l = 0; l < 2; l++) {
            memset(dW, 0, sizeof dW);
            memset(db, 0, sizeof db);
            cond_project_backward_naive(dW, db, k.w.cond_dh0 + l * BH, k.c, B, HID, D);
            CU_ASSERT(testlib_max_rel_diff(k.m.gcond.w_h[l], dW, HID * D) < NAIVE_TOL);
            CU_ASSERT(testlib_max_rel_diff(k.m.gcond.b_h[l], db, HID) < NAIVE_TOL);
        }
        case_free(&k);
    }
}

/* Top outputs of one forward of k from s0 with the given condition settings. */
static void run_top(cond_case *k, const float *c, int first, float *top)
{
    size_t n = (size_t)k->s0.layers * B * HID;
    memcpy(k->s.h, k->s0.h, n * sizeof(float));
    if (k->s0.c)
        memcpy(k->s.c, k->s0.c, n * sizeof(float));
    k->w.cond = c;
    k->w.cond_first = first;
    k->w.len = NULL;
    const float *out = stack_forward(&k->m, &k->w, &k->s, k->x, T, 0, 0);
    memcpy(top, out, (size_t)T * B * HID * sizeof(float));
}

static int rows_equal(const float *a, const float *b, int t)
{
    return memcmp(a + (size_t)t * B * HID, b + (size_t)t * B * HID,
                  (size_t)B * HID * sizeof(float)) == 0;
}

/* input changes step 0 only when first, nothing when continuing; every adds
 * c W^T at every step, first or not: against a layer-0 pre-activation built
 * by hand (the model with the condition folded into b_ih). */
static void test_input_every_steps(void)
{
    const cell_kind cells[] = {CELL_RNN, CELL_LSTM, CELL_GRU};
    float none[T * B * HID], with[T * B * HID], cont[T * B * HID];
    for (int ci = 0; ci < 3; ci++) {
        cond_case k;
        case_init(&k, cells[ci], 1, 0, COND_INPUT);
        run_top(&k, NULL, 1, none);
        run_top(&k, k.c, 1, with);
        run_top(&k, k.c, 0, cont);
        CU_ASSERT(!rows_equal(none, with, 0));
        CU_ASSERT(memcmp(none, cont, sizeof none) == 0);
        case_free(&k);

        /* every, one row per case so c W^T folds into b_ih exactly */
        case_init(&k, cells[ci], 1, 0, COND_EVERY);
        run_top(&k, k.c, 0, with);
        const int GH = k.m.gates * HID;
        float *proj = cn_xmalloc((size_t)B * GH * sizeof(float));
        cond_project_naive(proj, k.c, k.m.cond.w_in, NULL, B, GH, D);
        float *bias = cn_xmalloc((size_t)GH * sizeof(float));
        memcpy(bias, k.m.layer[0].b_ih, (size_t)GH * sizeof(float));
        for (int b = 0; b < B; b++) {
            for (int j = 0; j < GH; j++)
                k.m.layer[0].b_ih[j] = bias[j] + proj[(size_t)b * GH + j];
            run_top(&k, NULL, 1, none);
            double e = 0.0;
            for (int t = 0; t < T; t++)
                e = fmax(e, testlib_max_rel_diff(with + ((size_t)t * B + b) * HID,
                                                 none + ((size_t)t * B + b) * HID, HID));
            CU_ASSERT(e < NAIVE_TOL);
        }
        free(proj);
        free(bias);
        case_free(&k);
    }
}

static void test_none_unchanged(void)
{
    cond_case k;
    case_init(&k, CELL_LSTM, 2, 3, COND_NONE);
    for (int t = 0; t < k.m.n_tensors; t++)
        CU_ASSERT(strncmp(k.m.tensor[t].name, "cond.", 5) != 0);
    /* 4 tensors per layer, the embedding, decoder weight and bias */
    CU_ASSERT(k.m.n_tensors == 4 * 2 + 1 + 2);
    CU_ASSERT(k.w.cond_proj == NULL && k.w.cond_dh0 == NULL);
    case_free(&k);
    model_config bad = {.cell = CELL_GRU, .vocab = V, .layers = 1, .hidden = HID,
                        .cond = {COND_INPUT, 0}};
    CU_ASSERT(model_config_check(&bad) == -1);
    CU_ASSERT(cond_mode_parse("every") == COND_EVERY && cond_mode_parse("bogus") == -1);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("cond");
    testlib_add(s, "gradcheck init/input/every x rnn/lstm/gru", test_gradcheck_modes);
    testlib_add(s, "standardised conditions: gradcheck", test_gradcheck_standardized);
    testlib_add(s, "init state and gradients against naive", test_init_naive);
    testlib_add(s, "input at step 0 only, every at every step", test_input_every_steps);
    testlib_add(s, "mode none adds nothing", test_none_unchanged);
    return testlib_run(argc, argv);
}
