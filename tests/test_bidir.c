/* Bidirectional stacks (model_config.bidirectional):
 *
 *  - the tensor table: PyTorch's names (weight_ih_l0_reverse, ...), layer
 *    l > 0 reading 2H features, heads reading 2H (model_top_width).
 *  - the reverse direction is a unidirectional layer run over each row
 *    reversed within its own length: a 1-layer bidirectional stack's reverse
 *    half at position t equals a unidirectional model holding the _reverse
 *    weights run on row b's first len[b] characters reversed, at step
 *    len[b]-1-t; its forward half equals the same model on the row as read.
 *  - padding equals unpadded: rows of different lengths (one of them 0)
 *    padded to T give the outputs, final states, dL/dh0 and parameter
 *    gradients of each row run alone, for every cell, 1 to 3 layers, one-hot
 *    and embedded input (a reverse pass that started at T-1 instead of
 *    len[b]-1 would read padding and fail here).
 *  - finite differences of a loss reading the top outputs (2H wide) at valid
 *    positions and the final states of both directions, with lengths, every
 *    cell, 1 to 3 layers, one-hot and embedded input, and one case with
 *    dropout between layers (masks keyed, so the loss is a fixed function).
 *
 * Bounds as in test_stack.c: padded vs per-row 1e-5 relative (the GEMMs sum
 * over different position sets), finite differences 2e-2 (float model, step
 * 1e-2; measured errors printed). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/head.h"
#include "charnn/model.h"
#include "charnn/stack.h"
#include "testlib.h"

#define PAD_TOL 1e-5
#define FD_BOUND 2e-2

enum { V = 6, HID = 4, W2 = 2 * HID };

typedef struct {
    model_config cfg;
    int T, B, S;        /* S = 2L state slices */
    const int32_t *len; /* (B) or NULL */
    int32_t *x;         /* (T, B) */
    float *h0, *c0;     /* (S, B, H) */
    float *dtop;        /* (T, B, 2H), padded positions +-1e3 */
    float *dhf, *dcf;   /* (S, B, H) */
} bi_case;

static void case_init(bi_case *k, cell_kind cell, int layers, int embed, float dropout, int T,
                      int B, const int32_t *len, unsigned seed)
{
    memset(k, 0, sizeof *k);
    k->cfg = (model_config){.cell = cell, .vocab = V, .layers = layers, .hidden = HID,
                            .embed = embed, .dropout = dropout, .bidirectional = 1};
    k->T = T;
    k->B = B;
    k->S = 2 * layers;
    k->len = len;
    size_t ns = (size_t)k->S * B * HID, nt = (size_t)T * B;
    k->x = cn_xmalloc(nt * sizeof *k->x);
    for (size_t i = 0; i < nt; i++)
        k->x[i] = (int32_t)((i * 5 + seed) % V);
    k->h0 = cn_xmalloc(ns * sizeof(float));
    k->c0 = cn_xmalloc(ns * sizeof(float));
    k->dhf = cn_xmalloc(ns * sizeof(float));
    k->dcf = cn_xmalloc(ns * sizeof(float));
    k->dtop = cn_xmalloc(nt * W2 * sizeof(float));
    testlib_fill_uniform(k->h0, ns, 0.8f, seed + 1);
    testlib_fill_uniform(k->c0, ns, 0.8f, seed + 2);
    testlib_fill_uniform(k->dhf, ns, 1.0f, seed + 3);
    testlib_fill_uniform(k->dcf, ns, 1.0f, seed + 4);
    testlib_fill_uniform(k->dtop, nt * W2, 1.0f, seed + 5);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            if (len && t >= len[b])
                for (int j = 0; j < W2; j++)
                    k->dtop[((size_t)t * B + b) * W2 + j] *= 1e3f;
}

static void case_free(bi_case *k)
{
    free(k->x);
    free(k->h0);
    free(k->c0);
    free(k->dtop);
    free(k->dhf);
    free(k->dcf);
}

typedef struct {
    float *top;       /* (T, B, 2H) */
    float *hT, *cT;   /* (S, B, H) */
    float *dh0, *dc0; /* (S, B, H) */
} bi_out;

static void out_init(bi_out *o, const bi_case *k)
{
    size_t ns = (size_t)k->S * k->B * HID;
    o->top = cn_xcalloc((size_t)k->T * k->B * W2 + 1, sizeof(float));
    o->hT = cn_xcalloc(ns, sizeof(float));
    o->cT = cn_xcalloc(ns, sizeof(float));
    o->dh0 = cn_xcalloc(ns, sizeof(float));
    o->dc0 = cn_xcalloc(ns, sizeof(float));
}

static void out_free(bi_out *o)
{
    free(o->top);
    free(o->hT);
    free(o->cT);
    free(o->dh0);
    free(o->dc0);
}

static void state_load(model_state *s, const bi_case *k)
{
    const size_t ns = (size_t)k->S * k->B * HID;
    CU_ASSERT_FATAL(s->layers == k->S);
    memcpy(s->h, k->h0, ns * sizeof(float));
    if (s->c)
        memcpy(s->c, k->c0, ns * sizeof(float));
}

/* Forward (train mode: dropout keyed by 77) and backward over case k; fills
 * o unless NULL (then only the loss is wanted) and returns the loss
 * sum <dtop, top> at valid positions + <dhf, h_T> + <dcf, c_T>. */
static double run_case(model *m, const bi_case *k, bi_out *o)
{
    const int lstm = k->cfg.cell == CELL_LSTM;
    const size_t ns = (size_t)k->S * k->B * HID, nt = (size_t)k->T * k->B;
    model_work w;
    model_work_init(&w, m, k->T, k->B);
    model_state s;
    model_state_init(&s, &k->cfg, k->B);
    state_load(&s, k);
    w.len = k->len;
    if (o) {
        w.dh0 = o->dh0;
        w.dc0 = lstm ? o->dc0 : NULL;
        w.dh_final = k->dhf;
        w.dc_final = lstm ? k->dcf : NULL;
    }
    const float *top = stack_forward(m, &w, &s, k->x, k->T, 1, 77);
    double loss = 0.0;
    for (int t = 0; t < k->T; t++)
        for (int b = 0; b < k->B; b++)
            if (!k->len || t < k->len[b])
                for (int j = 0; j < W2; j++) {
                    size_t i = ((size_t)t * k->B + b) * W2 + j;
                    loss += (double)k->dtop[i] * top[i];
                }
    for (size_t i = 0; i < ns; i++)
        loss += (double)k->dhf[i] * s.h[i] + (lstm ? (double)k->dcf[i] * s.c[i] : 0.0);
    if (o) {
        memcpy(o->top, top, nt * W2 * sizeof(float));
        memcpy(o->hT, s.h, ns * sizeof(float));
        if (lstm)
            memcpy(o->cT, s.c, ns * sizeof(float));
        float *dtop = cn_xmalloc(nt * W2 * sizeof(float));
        memcpy(dtop, k->dtop, nt * W2 * sizeof(float));
        stack_backward(m, &w, k->x, dtop, NULL, NULL);
        free(dtop);
    }
    model_state_free(&s);
    model_work_free(&w);
    return loss;
}

static void report(const char *what, double err)
{
    printf("\n    max err %-58s %.3g", what, err);
}

/* ------------------------------------------------------------ tensor table */

static void test_tensor_table(void)
{
    model_config cfg = {.cell = CELL_GRU, .vocab = V, .layers = 2, .hidden = HID, .embed = 3,
                        .bidirectional = 1,
                        .head = {.kind = HEAD_CLASSIFY, .classes = 3, .pool = HEAD_POOL_MEAN}};
    model m;
    model_build(&m, &cfg);
    const int GH = 3 * HID;
    CU_ASSERT(model_top_width(&cfg) == 2 * HID);
    CU_ASSERT(model_directions(&cfg) == 2);
    static const struct {
        const char *name;
        int rows, cols;
    } want[] = {
        {"classifier.weight", 3, 2 * HID}, {"weight_ih_l1", GH, 2 * HID},
        {"weight_ih_l1_reverse", GH, 2 * HID}, {"weight_hh_l1_reverse", GH, HID},
        {"bias_ih_l1_reverse", GH, 1}, {"bias_hh_l0_reverse", GH, 1},
        {"weight_ih_l0", GH, 3}, {"weight_ih_l0_reverse", GH, 3}, {"embedding.weight", V, 3},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const model_tensor *t = model_find_tensor(&m, want[i].name);
        CU_ASSERT_FATAL(t != NULL);
        CU_ASSERT(t->shape[0] == want[i].rows && t->shape[1] == want[i].cols);
    }
    /* each layer's bucket holds both directions */
    const model_tensor *r = model_find_tensor(&m, "weight_hh_l1_reverse");
    CU_ASSERT(r->bucket == model_find_tensor(&m, "weight_hh_l1")->bucket);
    model_state s;
    model_state_init(&s, &cfg, 3);
    CU_ASSERT(s.layers == 4);
    model_state_free(&s);
    model_free(&m);
    cfg.bidirectional = 0;
    model_build(&m, &cfg);
    CU_ASSERT(model_find_tensor(&m, "weight_ih_l0_reverse") == NULL);
    CU_ASSERT(model_find_tensor(&m, "weight_ih_l1")->shape[1] == HID);
    model_free(&m);
}

/* --------------------------------------------- reverse = reversed row */

/* Copy direction d of layer 0 of bidirectional bm into unidirectional um. */
static void copy_direction(model *um, const model *bm, int d)
{
    static const char *base[4] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};
    char name[40];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s%s", base[i], d ? "_reverse" : "");
        const model_tensor *src = model_find_tensor(bm, name);
        const model_tensor *dst = model_find_tensor(um, base[i]);
        CU_ASSERT_FATAL(src && dst && src->size == dst->size);
        memcpy(um->params + dst->offset, bm->params + src->offset, src->size * sizeof(float));
    }
}

static void reverse_case(cell_kind cell)
{
    enum { T = 6, B = 3 };
    static const int32_t len[B] = {6, 4, 1};
    model_config bc = {.cell = cell, .vocab = V, .layers = 1, .hidden = HID, .bidirectional = 1};
    model_config uc = bc;
    uc.bidirectional = 0;
    model bm, um;
    model_build(&bm, &bc);
    model_build(&um, &uc);
    model_init_uniform(&bm, 0.5f, 11, NAN);
    int32_t x[T * B];
    for (int i = 0; i < T * B; i++)
        x[i] = (i * 7 + 2) % V;
    model_work bw;
    model_work_init(&bw, &bm, T, B);
    model_state bs;
    model_state_init(&bs, &bc, B);
    bw.len = len;
    const float *top = stack_forward(&bm, &bw, &bs, x, T, 0, 0);
    double e = 0.0;
    for (int d = 0; d < 2; d++) {
        copy_direction(&um, &bm, d);
        for (int b = 0; b < B; b++) {
            const int n = len[b];
            int32_t xr[T];
            for (int t = 0; t < n; t++)
                xr[t] = x[(d ? n - 1 - t : t) * B + b];
            model_work uw;
            model_work_init(&uw, &um, n, 1);
            model_state us;
            model_state_init(&us, &uc, 1);
            const float *u = stack_forward(&um, &uw, &us, xr, n, 0, 0);
            for (int t = 0; t < n; t++) {
                const int tu = d ? n - 1 - t : t;
                e = fmax(e, testlib_max_rel_diff(top + ((size_t)t * B + b) * W2 + d * HID,
                                                 u + (size_t)tu * HID, HID));
            }
            /* the final state of direction d is the unidirectional one's */
            e = fmax(e, testlib_max_rel_diff(bs.h + ((size_t)d * B + b) * HID, us.h, HID));
            model_state_free(&us);
            model_work_free(&uw);
        }
    }
    char name[64];
    snprintf(name, sizeof name, "%s: both halves vs a unidirectional layer on the row", cell_name(cell));
    report(name, e);
    CU_ASSERT(e <= PAD_TOL);
    model_state_free(&bs);
    model_work_free(&bw);
    model_free(&um);
    model_free(&bm);
}

static void test_reverse_semantics(void)
{
    reverse_case(CELL_RNN);
    reverse_case(CELL_LSTM);
    reverse_case(CELL_GRU);
}

/* ------------------------------------------------- padding = unpadded */

static double slices_diff(const float *padded, const float *row, int S, int B, int b)
{
    double e = 0.0;
    for (int s = 0; s < S; s++)
        e = fmax(e, testlib_max_rel_diff(padded + ((size_t)s * B + b) * HID,
                                         row + (size_t)s * HID, HID));
    return e;
}

static void case_row(bi_case *r, const bi_case *k, int b)
{
    const int T = k->len[b], B = k->B;
    memset(r, 0, sizeof *r);
    r->cfg = k->cfg;
    r->T = T;
    r->B = 1;
    r->S = k->S;
    size_t ns = (size_t)k->S * HID;
    r->x = cn_xmalloc((size_t)T * sizeof *r->x);
    r->dtop = cn_xmalloc((size_t)T * W2 * sizeof(float));
    r->h0 = cn_xmalloc(ns * sizeof(float));
    r->c0 = cn_xmalloc(ns * sizeof(float));
    r->dhf = cn_xmalloc(ns * sizeof(float));
    r->dcf = cn_xmalloc(ns * sizeof(float));
    for (int t = 0; t < T; t++) {
        r->x[t] = k->x[(size_t)t * B + b];
        memcpy(r->dtop + (size_t)t * W2, k->dtop + ((size_t)t * B + b) * W2, W2 * sizeof(float));
    }
    for (int s = 0; s < k->S; s++) {
        size_t src = ((size_t)s * B + b) * HID, dst = (size_t)s * HID;
        memcpy(r->h0 + dst, k->h0 + src, HID * sizeof(float));
        memcpy(r->c0 + dst, k->c0 + src, HID * sizeof(float));
        memcpy(r->dhf + dst, k->dhf + src, HID * sizeof(float));
        memcpy(r->dcf + dst, k->dcf + src, HID * sizeof(float));
    }
}

static void pad_case(cell_kind cell, int layers, int embed, unsigned seed)
{
    enum { T = 7, B = 5 };
    static const int32_t len[B] = {7, 3, 0, 5, 1};
    const int lstm = cell == CELL_LSTM;
    bi_case k;
    case_init(&k, cell, layers, embed, 0.0f, T, B, len, seed);
    model mp, mr;
    model_build(&mp, &k.cfg);
    model_build(&mr, &k.cfg);
    model_init_uniform(&mp, 0.4f, seed, NAN);
    memcpy(mr.params, mp.params, mp.n_params * sizeof(float));
    model_zero_grads(&mp);
    model_zero_grads(&mr);
    bi_out op;
    out_init(&op, &k);
    run_case(&mp, &k, &op);
    double e_top = 0.0, e_state = 0.0, e_d0 = 0.0;
    for (int b = 0; b < B; b++) {
        if (len[b] == 0) {
            for (int s = 0; s < k.S; s++) {
                size_t o = ((size_t)s * B + b) * HID;
                CU_ASSERT(memcmp(op.hT + o, k.h0 + o, HID * sizeof(float)) == 0);
                CU_ASSERT(memcmp(op.dh0 + o, k.dhf + o, HID * sizeof(float)) == 0);
            }
            continue;
        }
        bi_case r;
        case_row(&r, &k, b);
        bi_out orow;
        out_init(&orow, &r);
        run_case(&mr, &r, &orow);
        for (int t = 0; t < len[b]; t++)
            e_top = fmax(e_top, testlib_max_rel_diff(op.top + ((size_t)t * B + b) * W2,
                                                     orow.top + (size_t)t * W2, W2));
        e_state = fmax(e_state, slices_diff(op.hT, orow.hT, k.S, B, b));
        e_d0 = fmax(e_d0, slices_diff(op.dh0, orow.dh0, k.S, B, b));
        if (lstm) {
            e_state = fmax(e_state, slices_diff(op.cT, orow.cT, k.S, B, b));
            e_d0 = fmax(e_d0, slices_diff(op.dc0, orow.dc0, k.S, B, b));
        }
        out_free(&orow);
        case_free(&r);
    }
    double e_grad = testlib_max_rel_diff(mp.grads, mr.grads, mp.n_params);
    double gmag = 0.0;
    for (size_t i = 0; i < mp.n_params; i++)
        gmag = fmax(gmag, fabs(mr.grads[i]));
    char name[96];
    snprintf(name, sizeof name, "%s L%d E%d outputs, states, dL/dh0, gradients", cell_name(cell),
             layers, embed);
    report(name, fmax(fmax(e_top, e_state), fmax(e_d0, e_grad)));
    CU_ASSERT(e_top <= PAD_TOL);
    CU_ASSERT(e_state <= PAD_TOL);
    CU_ASSERT(e_d0 <= PAD_TOL);
    CU_ASSERT(e_grad <= PAD_TOL);
    CU_ASSERT(gmag > 1e-1);
    out_free(&op);
    model_free(&mp);
    model_free(&mr);
    case_free(&k);
}

static void pad_cell(cell_kind cell)
{
    pad_case(cell, 1, 0, 10);
    pad_case(cell, 2, 0, 20);
    pad_case(cell, 2, 9, 30); /* E > 2H */
    pad_case(cell, 3, 3, 40);
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

/* ---------------------------------------------- finite differences */

static double rel_err(double num, double ana)
{
    return fabs(num - ana) / fmax(1e-2, fabs(num) + fabs(ana));
}

static double central_diff(model *m, const bi_case *k, float *v)
{
    const float step = 1e-2f;
    float keep = *v;
    *v = keep + step;
    double lp = run_case(m, k, NULL);
    *v = keep - step;
    double lm = run_case(m, k, NULL);
    *v = keep;
    return (lp - lm) / (2.0 * step);
}

static double fd_case(cell_kind cell, int layers, int embed, float dropout, const int32_t *len)
{
    enum { T = 4, B = 3 };
    bi_case k;
    case_init(&k, cell, layers, embed, dropout, T, B, len, 60);
    model m;
    model_build(&m, &k.cfg);
    model_init_uniform(&m, 0.5f, 9, NAN);
    model_zero_grads(&m);
    bi_out o;
    out_init(&o, &k);
    run_case(&m, &k, &o);
    const size_t ns = (size_t)k.S * B * HID;
    double worst = 0.0, gmag = 0.0;
    for (size_t i = 0; i < m.n_params; i++) {
        worst = fmax(worst, rel_err(central_diff(&m, &k, &m.params[i]), m.grads[i]));
        gmag = fmax(gmag, fabs(m.grads[i]));
    }
    for (size_t i = 0; i < ns; i++) {
        worst = fmax(worst, rel_err(central_diff(&m, &k, &k.h0[i]), o.dh0[i]));
        if (cell == CELL_LSTM)
            worst = fmax(worst, rel_err(central_diff(&m, &k, &k.c0[i]), o.dc0[i]));
    }
    CU_ASSERT(gmag > 1e-1);
    printf("\n    finite differences %s L%d E%d%s%s: worst relative error %.2e", cell_name(cell),
           layers, embed, dropout > 0.0f ? " dropout" : "", len ? " with lengths" : "", worst);
    out_free(&o);
    model_free(&m);
    case_free(&k);
    return worst;
}

static void fd_cell(cell_kind cell)
{
    static const int32_t len[3] = {4, 2, 0};
    CU_ASSERT(fd_case(cell, 1, 0, 0.0f, NULL) < FD_BOUND);
    CU_ASSERT(fd_case(cell, 1, 0, 0.0f, len) < FD_BOUND);
    CU_ASSERT(fd_case(cell, 2, 3, 0.0f, len) < FD_BOUND);
    CU_ASSERT(fd_case(cell, 3, 0, 0.0f, len) < FD_BOUND);
    CU_ASSERT(fd_case(cell, 2, 0, 0.3f, len) < FD_BOUND);
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
    CU_pSuite s = testlib_suite("bidir");
    testlib_add(s, "tensor table: torch names, 2H inputs above layer 0", test_tensor_table);
    testlib_add(s, "each half is a unidirectional layer over the row (reversed)",
                test_reverse_semantics);
    testlib_add(s, "rnn: padding equals unpadded", test_pad_rnn);
    testlib_add(s, "lstm: padding equals unpadded", test_pad_lstm);
    testlib_add(s, "gru: padding equals unpadded", test_pad_gru);
    testlib_add(s, "rnn: finite differences, both directions", test_fd_rnn);
    testlib_add(s, "lstm: finite differences, both directions", test_fd_lstm);
    testlib_add(s, "gru: finite differences, both directions", test_fd_gru);
    return testlib_run(argc, argv);
}
