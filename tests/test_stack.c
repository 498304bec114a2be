/* The recurrent stack with rows of different lengths and with the state's
 * gradients (model_work.len, dh0, dc0, dh_final, dc_final):
 *
 *  - padding equals unpadded: a batch whose rows have different lengths
 *    (one of them 0), padded to T, gives the same top outputs at valid
 *    positions, the same final states, the same dL/dh0 (dL/dc0) and the same
 *    parameter gradients as each row run alone (B = 1, T = its length),
 *    for every cell and 1 to 3 layers, one-hot and embedded input. The
 *    gradient from above at padded positions is garbage (+-1e3) and must be
 *    ignored; the gradient of the final state enters at T and must reach
 *    each row at its length.
 *  - the same at model level (model_forward/model_backward, the loss masked
 *    by model_work.mask): the same per-position losses and gradients.
 *  - finite differences of a loss that reads the top outputs at valid
 *    positions and the final states (so dh_final and dc_final are checked),
 *    with lengths, against every parameter and every element of h0 and c0.
 *
 * Tolerances: the padded and the per-row runs do the same float operations
 * per element except that the weight-gradient GEMMs sum over different sets
 * of positions (with zeros in between) and OpenBLAS may block them
 * differently. Measured: outputs, states and dL/dh0 bit-identical, parameter
 * gradients within 3.3e-7 relative; the bound is 1e-5 (a position that
 * leaks, a missing pass-through or a wrong length gives errors of order
 * 1e-2 .. 1). The finite-difference bound is the one
 * of test_gradcheck.c (2e-2; measured 1e-3 .. 9e-3). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/model.h"
#include "charnn/stack.h"
#include "testlib.h"

#define PAD_TOL 1e-5
#define FD_BOUND 2e-2

enum { V = 6, HID = 5 };

static float *fdup(const float *x, size_t n)
{
    float *y = cn_xmalloc((n ? n : 1) * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

static void report(const char *what, double err)
{
    printf("\n    max err %-52s %.3g", what, err);
}

/* Everything a stack run starts from: parameters, tokens, h0/c0, the gradient
 * from above and of the final state. */
typedef struct {
    model_config cfg;
    int T, B;
    const int32_t *len;
    int32_t *x;    /* (T, B) */
    float *h0, *c0;  /* (L, B, H) */
    float *dtop;     /* (T, B, H) valid positions random, padded ones +-1e3 */
    float *dhf, *dcf; /* (L, B, H) gradient of the final state */
} stack_case;

static void case_init(stack_case *k, cell_kind cell, int layers, int embed, int T, int B,
                      const int32_t *len, unsigned seed)
{
    memset(k, 0, sizeof *k);
    k->cfg = (model_config){.cell = cell, .vocab = V, .layers = layers, .hidden = HID,
                            .embed = embed};
    k->T = T;
    k->B = B;
    k->len = len;
    size_t ns = (size_t)layers * B * HID, nt = (size_t)T * B;
    k->x = cn_xmalloc(nt * sizeof *k->x);
    for (size_t i = 0; i < nt; i++)
        k->x[i] = (int32_t)((i * 5 + seed) % V);
    k->h0 = cn_xmalloc(ns * sizeof(float));
    k->c0 = cn_xmalloc(ns * sizeof(float));
    k->dhf = cn_xmalloc(ns * sizeof(float));
    k->dcf = cn_xmalloc(ns * sizeof(float));
    k->dtop = cn_xmalloc(nt * HID * sizeof(float));
    testlib_fill_uniform(k->h0, ns, 0.8f, seed + 1);
    testlib_fill_uniform(k->c0, ns, 0.8f, seed + 2);
    testlib_fill_uniform(k->dhf, ns, 1.0f, seed + 3);
    testlib_fill_uniform(k->dcf, ns, 1.0f, seed + 4);
    testlib_fill_uniform(k->dtop, nt * HID, 1.0f, seed + 5);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            if (len && t >= len[b])
                for (int j = 0; j < HID; j++)
                    k->dtop[((size_t)t * B + b) * HID + j] *= 1e3f;
}

static void case_free(stack_case *k)
{
    free(k->x);
    free(k->h0);
    free(k->c0);
    free(k->dtop);
    free(k->dhf);
    free(k->dcf);
}

/* The results of one run: top outputs, final state, state gradients; the
 * parameter gradients stay in the model's slab. */
typedef struct {
    float *top;     /* (T, B, H) */
    float *hT, *cT; /* (L, B, H) */
    float *dh0, *dc0; /* (L, B, H) */
} stack_out;

static void out_init(stack_out *o, const stack_case *k)
{
    size_t ns = (size_t)k->cfg.layers * k->B * HID;
    o->top = cn_xcalloc((size_t)k->T * k->B * HID + 1, sizeof(float));
    o->hT = cn_xcalloc(ns, sizeof(float));
    o->cT = cn_xcalloc(ns, sizeof(float));
    o->dh0 = cn_xcalloc(ns, sizeof(float));
    o->dc0 = cn_xcalloc(ns, sizeof(float));
}

static void out_free(stack_out *o)
{
    free(o->top);
    free(o->hT);
    free(o->cT);
    free(o->dh0);
    free(o->dc0);
}

/* Forward and backward of the stack over case k (T >= 1), adding the
 * parameter gradients into m->grads. */
static void run_stack(model *m, const stack_case *k, stack_out *o)
{
    const int L = k->cfg.layers, lstm = k->cfg.cell == CELL_LSTM;
    const size_t ns = (size_t)L * k->B * HID, nt = (size_t)k->T * k->B;
    model_work w;
    model_work_init(&w, m, k->T, k->B);
    model_state s;
    model_state_init(&s, &k->cfg, k->B);
    memcpy(s.h, k->h0, ns * sizeof(float));
    if (lstm)
        memcpy(s.c, k->c0, ns * sizeof(float));
    w.len = k->len;
    w.dh0 = o->dh0;
    w.dc0 = lstm ? o->dc0 : NULL;
    w.dh_final = k->dhf;
    w.dc_final = lstm ? k->dcf : NULL;
    const float *top = stack_forward(m, &w, &s, k->x, k->T, 0, 0);
    memcpy(o->top, top, nt * HID * sizeof(float));
    memcpy(o->hT, s.h, ns * sizeof(float));
    if (lstm)
        memcpy(o->cT, s.c, ns * sizeof(float));
    float *dtop = fdup(k->dtop, nt * HID);
    stack_backward(m, &w, k->x, dtop, NULL, NULL);
    free(dtop);
    model_state_free(&s);
    model_work_free(&w);
}

/* Row b of the padded case k as a case of its own: B = 1, T = len[b] >= 1. */
static void case_row(stack_case *r, const stack_case *k, int b)
{
    const int L = k->cfg.layers, T = k->len[b], B = k->B;
    memset(r, 0, sizeof *r);
    r->cfg = k->cfg;
    r->T = T;
    r->B = 1;
    size_t ns = (size_t)L * HID;
    r->x = cn_xmalloc((size_t)T * sizeof *r->x);
    r->dtop = cn_xmalloc((size_t)T * HID * sizeof(float));
    r->h0 = cn_xmalloc(ns * sizeof(float));
    r->c0 = cn_xmalloc(ns * sizeof(float));
    r->dhf = cn_xmalloc(ns * sizeof(float));
    r->dcf = cn_xmalloc(ns * sizeof(float));
    for (int t = 0; t < T; t++) {
        r->x[t] = k->x[(size_t)t * B + b];
        memcpy(r->dtop + (size_t)t * HID, k->dtop + ((size_t)t * B + b) * HID,
               HID * sizeof(float));
    }
    for (int l = 0; l < L; l++) {
        size_t src = ((size_t)l * B + b) * HID, dst = (size_t)l * HID;
        memcpy(r->h0 + dst, k->h0 + src, HID * sizeof(float));
        memcpy(r->c0 + dst, k->c0 + src, HID * sizeof(float));
        memcpy(r->dhf + dst, k->dhf + src, HID * sizeof(float));
        memcpy(r->dcf + dst, k->dcf + src, HID * sizeof(float));
    }
}

/* Largest relative difference of row b's (L, H) slice of a padded (L, B, H)
 * state against a (L, 1, H) one. */
static double state_diff(const float *padded, const float *row, int L, int B, int b)
{
    double e = 0.0;
    for (int l = 0; l < L; l++)
        e = fmax(e, testlib_max_rel_diff(padded + ((size_t)l * B + b) * HID, row + (size_t)l * HID,
                                         HID));
    return e;
}

static void pad_case(cell_kind cell, int layers, int embed, unsigned seed)
{
    enum { T = 7, B = 5 };
    static const int32_t len[B] = {7, 3, 0, 5, 1};
    const int lstm = cell == CELL_LSTM;
    stack_case k;
    case_init(&k, cell, layers, embed, T, B, len, seed);
    model mp, mr;
    model_build(&mp, &k.cfg);
    model_build(&mr, &k.cfg);
    model_init_uniform(&mp, 0.4f, seed, NAN);
    memcpy(mr.params, mp.params, mp.n_params * sizeof(float));
    model_zero_grads(&mp);
    model_zero_grads(&mr);
    stack_out op;
    out_init(&op, &k);
    run_stack(&mp, &k, &op);

    double e_top = 0.0, e_state = 0.0, e_d0 = 0.0;
    for (int b = 0; b < B; b++) {
        if (len[b] == 0) {
            /* a row of length 0 holds its state and hands the final gradient
             * straight back, bit for bit */
            for (int l = 0; l < layers; l++) {
                size_t o = ((size_t)l * B + b) * HID;
                CU_ASSERT(memcmp(op.hT + o, k.h0 + o, HID * sizeof(float)) == 0);
                CU_ASSERT(memcmp(op.dh0 + o, k.dhf + o, HID * sizeof(float)) == 0);
                if (lstm) {
                    CU_ASSERT(memcmp(op.cT + o, k.c0 + o, HID * sizeof(float)) == 0);
                    CU_ASSERT(memcmp(op.dc0 + o, k.dcf + o, HID * sizeof(float)) == 0);
                }
            }
            continue;
        }
        stack_case r;
        case_row(&r, &k, b);
        stack_out orow;
        out_init(&orow, &r);
        run_stack(&mr, &r, &orow);
        for (int t = 0; t < len[b]; t++)
            e_top = fmax(e_top, testlib_max_rel_diff(op.top + ((size_t)t * B + b) * HID,
                                                     orow.top + (size_t)t * HID, HID));
        /* past the length the top output is the last valid one, unchanged */
        for (int t = len[b]; t < T; t++)
            CU_ASSERT(memcmp(op.top + ((size_t)t * B + b) * HID,
                             op.top + ((size_t)(len[b] - 1) * B + b) * HID,
                             HID * sizeof(float)) == 0);
        e_state = fmax(e_state, state_diff(op.hT, orow.hT, layers, B, b));
        e_d0 = fmax(e_d0, state_diff(op.dh0, orow.dh0, layers, B, b));
        if (lstm) {
            e_state = fmax(e_state, state_diff(op.cT, orow.cT, layers, B, b));
            e_d0 = fmax(e_d0, state_diff(op.dc0, orow.dc0, layers, B, b));
        }
        out_free(&orow);
        case_free(&r);
    }
    double e_grad = testlib_max_rel_diff(mp.grads, mr.grads, mp.n_params);
    double gmag = 0.0;
    for (size_t i = 0; i < mp.n_params; i++)
        gmag = fmax(gmag, fabs(mr.grads[i]));
    char name[96];
    snprintf(name, sizeof name, "%s L%d E%d top outputs", cell_name(cell), layers, embed);
    report(name, e_top);
    snprintf(name, sizeof name, "%s L%d E%d final states", cell_name(cell), layers, embed);
    report(name, e_state);
    snprintf(name, sizeof name, "%s L%d E%d dL/dh0%s", cell_name(cell), layers, embed,
             lstm ? ", dL/dc0" : "");
    report(name, e_d0);
    snprintf(name, sizeof name, "%s L%d E%d parameter gradients", cell_name(cell), layers, embed);
    report(name, e_grad);
    CU_ASSERT(e_top <= PAD_TOL);
    CU_ASSERT(e_state <= PAD_TOL);
    CU_ASSERT(e_d0 <= PAD_TOL);
    CU_ASSERT(e_grad <= PAD_TOL);
    CU_ASSERT(gmag > 1e-1); /* the gradients are not vacuous */
    out_free(&op);
    model_free(&mp);
    model_free(&mr);
    case_free(&k);
}

static void pad_cell(cell_kind cell)
{
    pad_case(cell, 1, 0, 10);
    pad_case(cell, 2, 0, 20);
    pad_case(cell, 2, 4, 30);
    pad_case(cell, 3, 0, 40);
    pad_case(cell, 3, 7, 50);
}

static void test_pad_rnn(void)
{
    pad_cell(CELL_RNN);
}

static void test_pad_lstm(void)
{
    pad_cell(CELL_LSTM);
}

static void test_pad_gru(void)
{
    pad_cell(CELL_GRU);
}

/* ------------------------------------------------------------ model level */

/* model_forward + model_backward over a padded batch, the loss masked beyond
 * each row's length, against the rows one by one: the same per-position
 * losses and the same gradients, the decoder's included. */
static void model_pad_case(cell_kind cell)
{
    enum { T = 6, B = 4, L = 2 };
    static const int32_t len[B] = {6, 2, 0, 4};
    model_config cfg = {.cell = cell, .vocab = V, .layers = L, .hidden = HID};
    model mp, mr;
    model_build(&mp, &cfg);
    model_build(&mr, &cfg);
    model_init_uniform(&mp, 0.4f, 3, NAN);
    memcpy(mr.params, mp.params, mp.n_params * sizeof(float));
    model_zero_grads(&mp);
    model_zero_grads(&mr);
    int32_t x[T * B], y[T * B];
    float weight[T * B];
    for (int i = 0; i < T * B; i++) {
        x[i] = (i * 7 + 1) % V;
        y[i] = (i * 3 + 2) % V;
        weight[i] = i / B < len[i % B] ? 1.0f : 0.0f;
    }
    size_t ns = (size_t)L * B * HID;
    float *h0 = cn_xmalloc(ns * sizeof(float)), *c0 = cn_xmalloc(ns * sizeof(float));
    testlib_fill_uniform(h0, ns, 0.8f, 7);
    testlib_fill_uniform(c0, ns, 0.8f, 8);

    model_work w;
    model_work_init(&w, &mp, T, B);
    model_state s;
    model_state_init(&s, &cfg, B);
    memcpy(s.h, h0, ns * sizeof(float));
    if (s.c)
        memcpy(s.c, c0, ns * sizeof(float));
    w.len = len;
    w.mask = weight;
    model_forward(&mp, &w, &s, x, y, T, 0, 0);
    model_backward(&mp, &w, x, y, 0.5f, NULL, NULL);

    double e_loss = 0.0;
    for (int b = 0; b < B; b++) {
        if (len[b] == 0)
            continue;
        const int Tb = len[b];
        model_work wr;
        model_work_init(&wr, &mr, Tb, 1);
        model_state sr;
        model_state_init(&sr, &cfg, 1);
        int32_t xr[T], yr[T];
        for (int t = 0; t < Tb; t++) {
            xr[t] = x[t * B + b];
            yr[t] = y[t * B + b];
        }
        for (int l = 0; l < L; l++) {
            memcpy(sr.h + l * HID, h0 + ((size_t)l * B + b) * HID, HID * sizeof(float));
            if (sr.c)
                memcpy(sr.c + l * HID, c0 + ((size_t)l * B + b) * HID, HID * sizeof(float));
        }
        model_forward(&mr, &wr, &sr, xr, yr, Tb, 0, 0);
        model_backward(&mr, &wr, xr, yr, 0.5f, NULL, NULL);
        for (int t = 0; t < Tb; t++)
            e_loss = fmax(e_loss, fabs(wr.head.loss[t] - w.head.loss[t * B + b]) /
                                      fmax(1.0, fabs(wr.head.loss[t])));
        CU_ASSERT(state_diff(s.h, sr.h, L, B, b) <= PAD_TOL);
        model_state_free(&sr);
        model_work_free(&wr);
    }
    double e_grad = testlib_max_rel_diff(mp.grads, mr.grads, mp.n_params);
    char name[96];
    snprintf(name, sizeof name, "%s model: losses at valid positions", cell_name(cell));
    report(name, e_loss);
    snprintf(name, sizeof name, "%s model: gradients incl. decoder", cell_name(cell));
    report(name, e_grad);
    CU_ASSERT(e_loss <= PAD_TOL);
    CU_ASSERT(e_grad <= PAD_TOL);
    free(h0);
    free(c0);
    model_state_free(&s);
    model_work_free(&w);
    model_free(&mp);
    model_free(&mr);
}

static void test_model_pad(void)
{
    model_pad_case(CELL_RNN);
    model_pad_case(CELL_LSTM);
    model_pad_case(CELL_GRU);
}

/* -------------------------------------------------- finite differences */

/* loss = sum over valid positions of <dtop, top> + <dhf, h_T> + <dcf, c_T>,
 * in double: its gradient is exactly what run_stack feeds backward. */
static double stack_loss(const model *m, const stack_case *k)
{
    const int L = k->cfg.layers, lstm = k->cfg.cell == CELL_LSTM;
    const size_t ns = (size_t)L * k->B * HID;
    model_work w;
    model_work_init(&w, m, k->T, k->B);
    model_state s;
    model_state_init(&s, &k->cfg, k->B);
    memcpy(s.h, k->h0, ns * sizeof(float));
    if (lstm)
        memcpy(s.c, k->c0, ns * sizeof(float));
    w.len = k->len;
    const float *top = stack_forward(m, &w, &s, k->x, k->T, 0, 0);
    double loss = 0.0;
    for (int t = 0; t < k->T; t++)
        for (int b = 0; b < k->B; b++)
            if (!k->len || t < k->len[b])
                for (int j = 0; j < HID; j++) {
                    size_t i = ((size_t)t * k->B + b) * HID + j;
                    loss += (double)k->dtop[i] * top[i];
                }
    for (size_t i = 0; i < ns; i++)
        loss += (double)k->dhf[i] * s.h[i] + (lstm ? (double)k->dcf[i] * s.c[i] : 0.0);
    model_state_free(&s);
    model_work_free(&w);
    return loss;
}

/* Central difference of stack_loss in *v. */
static double central_diff(const model *m, const stack_case *k, float *v)
{
    const float step = 1e-2f;
    float keep = *v;
    *v = keep + step;
    double lp = stack_loss(m, k);
    *v = keep - step;
    double lm = stack_loss(m, k);
    *v = keep;
    return (lp - lm) / (2.0 * step);
}

static double rel_err(double num, double ana)
{
    return fabs(num - ana) / fmax(1e-2, fabs(num) + fabs(ana));
}

static double fd_case(cell_kind cell, int layers, int embed, const int32_t *len)
{
    enum { T = 4, B = 3 };
    stack_case k;
    case_init(&k, cell, layers, embed, T, B, len, 60);
    model m;
    model_build(&m, &k.cfg);
    model_init_uniform(&m, 0.5f, 9, NAN);
    model_zero_grads(&m);
    stack_out o;
    out_init(&o, &k);
    run_stack(&m, &k, &o);
    const size_t ns = (size_t)layers * B * HID;
    double worst = 0.0;
    for (size_t i = 0; i < m.n_params; i++)
        worst = fmax(worst, rel_err(central_diff(&m, &k, &m.params[i]), m.grads[i]));
    for (size_t i = 0; i < ns; i++) {
        worst = fmax(worst, rel_err(central_diff(&m, &k, &k.h0[i]), o.dh0[i]));
        if (cell == CELL_LSTM)
            worst = fmax(worst, rel_err(central_diff(&m, &k, &k.c0[i]), o.dc0[i]));
    }
    printf("\n    finite differences %s L%d E%d%s: worst relative error %.2e", cell_name(cell),
           layers, embed, len ? " with lengths" : "", worst);
    out_free(&o);
    model_free(&m);
    case_free(&k);
    return worst;
}

static void fd_cell(cell_kind cell)
{
    static const int32_t len[3] = {4, 2, 0};
    CU_ASSERT(fd_case(cell, 1, 0, NULL) < FD_BOUND);
    CU_ASSERT(fd_case(cell, 1, 0, len) < FD_BOUND);
    CU_ASSERT(fd_case(cell, 2, 3, len) < FD_BOUND);
    CU_ASSERT(fd_case(cell, 3, 0, len) < FD_BOUND);
}

static void test_fd_rnn(void)
{
    fd_cell(CELL_RNN);
}

static void test_fd_lstm(void)
{
    fd_cell(CELL_LSTM);
}

static void test_fd_gru(void)
{
    fd_cell(CELL_GRU);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("stack");
    testlib_add(s, "rnn: padding equals unpadded", test_pad_rnn);
    testlib_add(s, "lstm: padding equals unpadded", test_pad_lstm);
    testlib_add(s, "gru: padding equals unpadded", test_pad_gru);
    testlib_add(s, "model level: padding equals unpadded", test_model_pad);
    testlib_add(s, "rnn: final-state gradient in, dL/dh0 out, finite differences", test_fd_rnn);
    testlib_add(s, "lstm: final-state gradients in, dL/dh0 dL/dc0 out, finite differences",
                test_fd_lstm);
    testlib_add(s, "gru: final-state gradient in, dL/dh0 out, finite differences", test_fd_gru);
    return testlib_run(argc, argv);
}
