/* Finite-difference gradient checks of the whole model: every parameter of
 * small RNN, LSTM and GRU models (1 and 2 layers, one-hot and embedded input,
 * with and without dropout) against central differences of the summed loss,
 * starting from a non-zero carried state so the gradient must flow through
 * the recurrence within the chunk. Then the gradient of that starting state
 * (model_work.dh0, dc0) for 1 to 3 layers, and everything again with rows
 * shorter than the chunk (model_work.len; a row of length 0 included) and
 * the loss masked beyond each row's length (model_work.mask).
 *
 * The model computes in float, so the differences use a step of 1e-2 and the
 * loss is evaluated in double from the per-position losses. Measured worst
 * relative errors are 1e-3 to 5e-3; the bound is 2e-2, and a wrong sign, a
 * missing term or an off-by-one step gives errors of order 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/model.h"
#include "testlib.h"

enum { V = 5, T = 4, B = 2 };

static double eval_loss(const model *m, model_work *w, const model_state *s0, model_state *s,
                        const int32_t *x, const int32_t *y, int train)
{
    size_t n = (size_t)s0->layers * s0->batch * s0->hidden;
    memcpy(s->h, s0->h, n * sizeof(float));
    if (s0->c)
        memcpy(s->c, s0->c, n * sizeof(float));
    model_forward(m, w, s, x, y, T, train, 12345);
    double total = 0.0;
    for (int i = 0; i < T * B; i++)
        total += w->head.loss[i];
    return total;
}

static double gradcheck(cell_kind cell, int layers, int embed, float dropout)
{
    model_config cfg = {.cell = cell, .vocab = V, .layers = layers, .hidden = 4, .embed = embed,
                        .dropout = dropout};
    model m;
    model_build(&m, &cfg);
    model_init_uniform(&m, 0.5f, 7, NAN);
    model_work w;
    model_work_init(&w, &m, T, B);
    model_state s0, s;
    model_state_init(&s0, &cfg, B);
    model_state_init(&s, &cfg, B);
    size_t ns = (size_t)layers * B * cfg.hidden;
    testlib_fill_uniform(s0.h, ns, 0.5f, 3);
    if (s0.c)
        testlib_fill_uniform(s0.c, ns, 0.5f, 4);
    int32_t x[T * B], y[T * B];
    for (int i = 0; i < T * B; i++) {
        x[i] = (i * 3 + 1) % V;
        y[i] = (i * 2 + 3) % V;
    }
    int train = dropout > 0.0f;
    eval_loss(&m, &w, &s0, &s, x, y, train);
    model_zero_grads(&m);
    model_backward(&m, &w, x, y, 1.0f, NULL, NULL);

    double worst = 0.0;
    const float hstep = 1e-2f;
    for (size_t i = 0; i < m.n_params; i++) {
        float keep = m.params[i];
        m.params[i] = keep + hstep;
        double lp = eval_loss(&m, &w, &s0, &s, x, y, train);
        m.params[i] = keep - hstep;
        double lm = eval_loss(&m, &w, &s0, &s, x, y, train);
        m.params[i] = keep;
        double num = (lp - lm) / (2.0 * hstep);
        double ana = m.grads[i];
        double rel = fabs(num - ana) / fmax(1e-2, fabs(num) + fabs(ana));
        if (rel > worst)
            worst = rel;
    }
    model_state_free(&s0);
    model_state_free(&s);
    model_work_free(&w);
    model_free(&m);
    printf("  gradcheck %s L%d E%d dropout %.1f: worst relative error %.2e\n", cell_name(cell),
           layers, embed, (double)dropout, worst);
    return worst;
}

#define GRADCHECK_BOUND 2e-2

enum { SB = 3 }; /* rows in the state checks */

static double rel_err(double num, double ana)
{
    return fabs(num - ana) / fmax(1e-2, fabs(num) + fabs(ana));
}

/* Summed loss over the positions the mask keeps (all when it is NULL). */
static double eval_masked(const model *m, model_work *w, const model_state *s0, model_state *s,
                          const int32_t *x, const int32_t *y, int train)
{
    size_t n = (size_t)s0->layers * s0->batch * s0->hidden;
    memcpy(s->h, s0->h, n * sizeof(float));
    if (s0->c)
        memcpy(s->c, s0->c, n * sizeof(float));
    model_forward(m, w, s, x, y, T, train, 12345);
    double total = 0.0;
    for (int i = 0; i < T * SB; i++)
        total += w->mask ? w->mask[i] * (double)w->head.loss[i] : w->head.loss[i];
    return total;
}

/* dL/dh0 and dL/dc0 of every layer, and (with len) every parameter, against
 * central differences; len NULL or (SB) row lengths with the loss masked
 * beyond them. Returns the worst relative error; *state_mag gets the largest
 * |dL/dh0| so a vanishing gradient cannot pass unnoticed. */
static double gradcheck_state(cell_kind cell, int layers, int embed, float dropout,
                              const int32_t *len, double *state_mag)
{
    model_config cfg = {.cell = cell, .vocab = V, .layers = layers, .hidden = 4, .embed = embed,
                        .dropout = dropout};
    model m;
    model_build(&m, &cfg);
    model_init_uniform(&m, 0.5f, 17, NAN);
    model_work w;
    model_work_init(&w, &m, T, SB);
    model_state s0, s;
    model_state_init(&s0, &cfg, SB);
    model_state_init(&s, &cfg, SB);
    size_t ns = (size_t)layers * SB * cfg.hidden;
    testlib_fill_uniform(s0.h, ns, 0.8f, 5);
    if (s0.c)
        testlib_fill_uniform(s0.c, ns, 0.8f, 6);
    int32_t x[T * SB], y[T * SB];
    float weight[T * SB];
    for (int i = 0; i < T * SB; i++) {
        x[i] = (i * 3 + 2) % V;
        y[i] = (i * 2 + 1) % V;
        weight[i] = len && i / SB >= len[i % SB] ? 0.0f : 1.0f;
    }
    w.len = len;
    w.mask = len ? weight : NULL;
    float *dh0 = cn_xmalloc(ns * sizeof *dh0), *dc0 = cn_xmalloc(ns * sizeof *dc0);
    w.dh0 = dh0;
    w.dc0 = cell == CELL_LSTM ? dc0 : NULL;
    int train = dropout > 0.0f;
    eval_masked(&m, &w, &s0, &s, x, y, train);
    model_zero_grads(&m);
    model_backward(&m, &w, x, y, 1.0f, NULL, NULL);

    double worst = 0.0, mag = 0.0;
    const float hstep = 1e-2f;
    for (int k = 0; k < (s0.c ? 2 : 1); k++) {
        float *st = k == 0 ? s0.h : s0.c;
        const float *ana = k == 0 ? dh0 : dc0;
        for (size_t i = 0; i < ns; i++) {
            float keep = st[i];
            st[i] = keep + hstep;
            double lp = eval_masked(&m, &w, &s0, &s, x, y, train);
            st[i] = keep - hstep;
            double lm = eval_masked(&m, &w, &s0, &s, x, y, train);
            st[i] = keep;
            worst = fmax(worst, rel_err((lp - lm) / (2.0 * hstep), ana[i]));
            if (k == 0)
                mag = fmax(mag, fabs(ana[i]));
            /* a row of length 0 never reads its state: exactly zero */
            if (len && len[(i / cfg.hidden) % SB] == 0)
                CU_ASSERT(ana[i] == 0.0f);
        }
    }
    if (len) {
        for (size_t i = 0; i < m.n_params; i++) {
            float keep = m.params[i];
            m.params[i] = keep + hstep;
            double lp = eval_masked(&m, &w, &s0, &s, x, y, train);
            m.params[i] = keep - hstep;
            double lm = eval_masked(&m, &w, &s0, &s, x, y, train);
            m.params[i] = keep;
            worst = fmax(worst, rel_err((lp - lm) / (2.0 * hstep), m.grads[i]));
        }
    }
    free(dh0);
    free(dc0);
    model_state_free(&s0);
    model_state_free(&s);
    model_work_free(&w);
    model_free(&m);
    printf("  gradcheck %s L%d E%d dropout %.1f %s: worst relative error %.2e, max |dL/dh0| "
           "%.2e\n",
           cell_name(cell), layers, embed, (double)dropout,
           len ? "lengths, params and h0" : "h0", worst, mag);
    *state_mag = mag;
    return worst;
}

static void check_state(cell_kind cell)
{
    static const int32_t lens[SB] = {T, 2, 0};
    static const int32_t short_lens[SB] = {1, 3, 2}; /* no row runs all T steps */
    static const struct {
        int layers, embed;
        float dropout;
        const int32_t *len;
    } cases[] = {
        {1, 0, 0.0f, NULL},  {2, 0, 0.0f, NULL}, {3, 3, 0.0f, NULL}, {3, 0, 0.3f, NULL},
        {1, 0, 0.0f, lens},  {2, 3, 0.0f, lens}, {3, 0, 0.3f, lens}, {2, 0, 0.0f, short_lens},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        double mag = 0.0;
        CU_ASSERT(gradcheck_state(cell, cases[k].layers, cases[k].embed, cases[k].dropout,
                                  cases[k].len, &mag) < GRADCHECK_BOUND);
        CU_ASSERT(mag > 1e-2);
    }
}

static void test_state_rnn(void)
{
    check_state(CELL_RNN);
}

static void test_state_lstm(void)
{
    check_state(CELL_LSTM);
}

static void test_state_gru(void)
{
    check_state(CELL_GRU);
}

static void check_cell(cell_kind cell)
{
    CU_ASSERT(gradcheck(cell, 1, 0, 0.0f) < GRADCHECK_BOUND);
    CU_ASSERT(gradcheck(cell, 2, 0, 0.0f) < GRADCHECK_BOUND);
    CU_ASSERT(gradcheck(cell, 2, 3, 0.0f) < GRADCHECK_BOUND);
    CU_ASSERT(gradcheck(cell, 3, 0, 0.3f) < GRADCHECK_BOUND);
    /* embeddings narrower and wider than H (4) under one and two layers: the
     * backward routes the embedding's gradient through different buffers */
    CU_ASSERT(gradcheck(cell, 1, 3, 0.0f) < GRADCHECK_BOUND);
    CU_ASSERT(gradcheck(cell, 1, 6, 0.0f) < GRADCHECK_BOUND);
    CU_ASSERT(gradcheck(cell, 2, 6, 0.3f) < GRADCHECK_BOUND);
}

static void test_rnn(void)
{
    check_cell(CELL_RNN);
}

static void test_lstm(void)
{
    check_cell(CELL_LSTM);
}

static void test_gru(void)
{
    check_cell(CELL_GRU);
}

/* A broken gradient must be caught: scale one analytic gradient and check the
 * same comparison fails, so the bound above is not vacuous. */
static void test_detects_error(void)
{
    model_config cfg = {.cell = CELL_LSTM, .vocab = V, .layers = 1, .hidden = 4};
    model m;
    model_build(&m, &cfg);
    model_init_uniform(&m, 0.5f, 7, NAN);
    model_work w;
    model_work_init(&w, &m, T, B);
    model_state s0, s;
    model_state_init(&s0, &cfg, B);
    model_state_init(&s, &cfg, B);
    int32_t x[T * B], y[T * B];
    for (int i = 0; i < T * B; i++) {
        x[i] = i % V;
        y[i] = (i + 1) % V;
    }
    eval_loss(&m, &w, &s0, &s, x, y, 0);
    model_zero_grads(&m);
    model_backward(&m, &w, x, y, 1.0f, NULL, NULL);
    const model_tensor *t = model_find_tensor(&m, "weight_hh_l0");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    size_t i = t->offset + 5;
    float keep = m.params[i];
    m.params[i] = keep + 1e-2f;
    double lp = eval_loss(&m, &w, &s0, &s, x, y, 0);
    m.params[i] = keep - 1e-2f;
    double lm = eval_loss(&m, &w, &s0, &s, x, y, 0);
    m.params[i] = keep;
    double num = (lp - lm) / 2e-2;
    double wrong = 0.8 * m.grads[i];
    double rel = fabs(num - wrong) / fmax(1e-2, fabs(num) + fabs(wrong));
    CU_ASSERT(rel > GRADCHECK_BOUND);
    model_state_free(&s0);
    model_state_free(&s);
    model_work_free(&w);
    model_free(&m);
}

/* Resident pages of this process (Linux /proc/self/statm), or -1. */
static long resident_pages(void)
{
    long size = -1, res = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res;
}

/* model_work_release (used before checkpoint writes) must give the pages back
 * and change nothing: steps with a release in between give the same bits as
 * steps without, for every cell, with dropout and an embedding. */
static void test_work_release(void)
{
    enum { TT = 32, BB = 8, STEPS = 3 };
    for (int k = 0; k < 3; k++) {
        cell_kind cell = k == 0 ? CELL_RNN : k == 1 ? CELL_LSTM : CELL_GRU;
        model_config cfg = {.cell = cell, .vocab = V, .layers = 2, .hidden = 96, .embed = 8,
                            .dropout = 0.25f};
        model a, b;
        model_build(&a, &cfg);
        model_build(&b, &cfg);
        model_init_uniform(&a, 0.2f, 11, NAN);
        model_init_uniform(&b, 0.2f, 11, NAN);
        model_work wa, wb;
        model_work_init(&wa, &a, TT, BB);
        model_work_init(&wb, &b, TT, BB);
        model_state sa, sb;
        model_state_init(&sa, &cfg, BB);
        model_state_init(&sb, &cfg, BB);
        int32_t x[TT * BB], y[TT * BB];
        for (int i = 0; i < TT * BB; i++) {
            x[i] = (i * 7 + i / 3) % V;
            y[i] = (i * 5 + 1) % V;
        }
        for (int step = 0; step < STEPS; step++) {
            model_forward(&a, &wa, &sa, x, y, TT, 1, 77 + (uint64_t)step);
            model_zero_grads(&a);
            model_backward(&a, &wa, x, y, 0.01f, NULL, NULL);
            for (size_t i = 0; i < a.n_params; i++)
                a.params[i] -= 0.1f * a.grads[i];

            long before = resident_pages();
            model_work_release(&wb);
            long after = resident_pages();
            /* the gate buffers alone are several pages per layer */
            CU_ASSERT(before > 0 && after > 0 && before - after >= 8);
            model_forward(&b, &wb, &sb, x, y, TT, 1, 77 + (uint64_t)step);
            model_zero_grads(&b);
            model_backward(&b, &wb, x, y, 0.01f, NULL, NULL);
            for (size_t i = 0; i < b.n_params; i++)
                b.params[i] -= 0.1f * b.grads[i];
        }
        CU_ASSERT(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0);
        size_t ns = (size_t)cfg.layers * BB * cfg.hidden;
        CU_ASSERT(memcmp(sa.h, sb.h, ns * sizeof(float)) == 0);
        model_state_free(&sa);
        model_state_free(&sb);
        model_work_free(&wa);
        model_work_free(&wb);
        model_free(&a);
        model_free(&b);
    }
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("gradcheck");
    testlib_add(s, "work release between steps changes nothing", test_work_release);
    testlib_add(s, "rnn", test_rnn);
    testlib_add(s, "lstm", test_lstm);
    testlib_add(s, "gru", test_gru);
    testlib_add(s, "rnn dL/dh0, lengths", test_state_rnn);
    testlib_add(s, "lstm dL/dh0 and dL/dc0, lengths", test_state_lstm);
    testlib_add(s, "gru dL/dh0, lengths", test_state_gru);
    testlib_add(s, "detects a wrong gradient", test_detects_error);
    return testlib_run(argc, argv);
}
