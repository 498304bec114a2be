/* The head seam: the language-model and classification heads behind
 * head_ops. Finite-difference gradient checks of whole models with the
 * classification head (every pooling, every cell, rows of several lengths,
 * a masked row) and of the language-model head under a loss mask; the
 * tensor table each head declares; masked targets give no loss; a padded
 * batch of rows of several lengths gives the classifier the losses and
 * gradients of the rows run one by one (the language model's counterpart is
 * in test_stack.c).
 *
 * As in test_gradcheck.c the model computes in float: central differences
 * with a step of 1e-2 on the loss summed in double, bound 2e-2 on the
 * relative error (measured worst errors are printed); a wrong pooling
 * gradient or an ignored mask gives errors of order 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/head.h"
#include "charnn/model.h"
#include "testlib.h"

enum { V = 5, T = 4, B = 3, C = 3, HID = 4 };
#define GRADCHECK_BOUND 2e-2
#define PAD_TOL 1e-5

typedef struct {
    model m;
    model_work w;
    model_state s0, s;
    int32_t x[T * B], y[T * B];
} fixture;

static void fixture_init(fixture *f, const model_config *cfg)
{
    model_build(&f->m, cfg);
    model_init_uniform(&f->m, 0.5f, 7, NAN);
    model_work_init(&f->w, &f->m, T, B);
    model_state_init(&f->s0, cfg, B);
    model_state_init(&f->s, cfg, B);
    size_t ns = (size_t)cfg->layers * B * cfg->hidden;
    testlib_fill_uniform(f->s0.h, ns, 0.5f, 3);
    if (f->s0.c)
        testlib_fill_uniform(f->s0.c, ns, 0.5f, 4);
    for (int i = 0; i < T * B; i++) {
        f->x[i] = (i * 3 + 1) % V;
        f->y[i] = (i * 2 + 3) % (cfg->head.kind == HEAD_CLASSIFY ? C : V);
    }
}

static void fixture_free(fixture *f)
{
    model_state_free(&f->s0);
    model_state_free(&f->s);
    model_work_free(&f->w);
    model_free(&f->m);
}

/* Summed masked loss from the carried state s0, in double from the targets' losses. */
static double loss_at(fixture *f)
{
    size_t ns = (size_t)f->s0.layers * B * f->s0.hidden;
    memcpy(f->s.h, f->s0.h, ns * sizeof(float));
    if (f->s0.c)
        memcpy(f->s.c, f->s0.c, ns * sizeof(float));
    model_forward(&f->m, &f->w, &f->s, f->x, f->y, T, 0, 0);
    double total = 0.0;
    for (int i = 0; i < f->w.head.n; i++)
        total += f->w.head.loss[i];
    return total;
}

/* Whether max pooling's winning steps after the last forward (the head's
 * argmax buffer) are ref's; always 1 without max pooling, 0 with ref NULL. */
static int same_argmax(const fixture *f, const int32_t *ref)
{
    if (f->m.cfg.head.kind != HEAD_CLASSIFY || f->m.cfg.head.pool != HEAD_POOL_MAX)
        return 1;
    return ref && memcmp(f->w.head.buf[1], ref, (size_t)B * HID * sizeof(int32_t)) == 0;
}

/* Worst relative error of model_backward's gradient against central
 * differences. Max pooling is not differentiable where a step's winner
 * changes: a parameter whose +-step moves a winner is skipped (counted into
 * *skipped, which the caller bounds). */
static double worst_error(fixture *f, int *skipped)
{
    int32_t ref[B * HID];
    loss_at(f);
    if (!same_argmax(f, NULL))
        memcpy(ref, f->w.head.buf[1], sizeof ref);
    model_zero_grads(&f->m);
    model_backward(&f->m, &f->w, f->x, f->y, 1.0f, NULL, NULL);
    double worst = 0.0;
    const float hstep = 1e-2f;
    *skipped = 0;
    for (size_t i = 0; i < f->m.n_params; i++) {
        float keep = f->m.params[i];
        f->m.params[i] = keep + hstep;
        double lp = loss_at(f);
        int smooth = same_argmax(f, ref);
        f->m.params[i] = keep - hstep;
        double lm = loss_at(f);
        smooth = smooth && same_argmax(f, ref);
        f->m.params[i] = keep;
        if (!smooth) {
            (*skipped)++;
            continue;
        }
        double num = (lp - lm) / (2.0 * hstep);
        double ana = f->m.grads[i];
        double rel = fabs(num - ana) / fmax(1e-2, fabs(num) + fabs(ana));
        if (rel > worst)
            worst = rel;
    }
    return worst;
}

static double classify_gradcheck(cell_kind cell, int layers, head_pool pool, int ragged)
{
    model_config cfg = {.cell = cell, .vocab = V, .layers = layers, .hidden = HID,
                        .head = {.kind = HEAD_CLASSIFY, .classes = C, .pool = pool}};
    fixture f;
    fixture_init(&f, &cfg);
    const int32_t len[B] = {T, 2, 3};
    const float mask[B] = {1.0f, 0.0f, 1.0f};
    if (ragged) {
        f.w.len = len;
        f.w.mask = mask;
    }
    int skipped;
    double worst = worst_error(&f, &skipped);
    if (ragged)
        CU_ASSERT(f.w.head.loss[1] == 0.0f);
    /* the skipped parameters must stay few, or the check says little */
    CU_ASSERT(skipped * 10 < (int)f.m.n_params);
    printf("  classify %s L%d pool %s%s: worst relative error %.2e (%d of %zu parameters "
           "skipped at a max-pooling kink)\n",
           cell_name(cell), layers, head_pool_name(pool), ragged ? " ragged, masked row" : "",
           worst, skipped, f.m.n_params);
    fixture_free(&f);
    return worst;
}

static void check_pool(head_pool pool)
{
    const cell_kind cells[3] = {CELL_RNN, CELL_LSTM, CELL_GRU};
    for (int k = 0; k < 3; k++) {
        CU_ASSERT(classify_gradcheck(cells[k], 1, pool, 0) < GRADCHECK_BOUND);
        CU_ASSERT(classify_gradcheck(cells[k], 2, pool, 1) < GRADCHECK_BOUND);
    }
}

static void test_classify_last(void)
{
    check_pool(HEAD_POOL_LAST);
}

static void test_classify_mean(void)
{
    check_pool(HEAD_POOL_MEAN);
}

static void test_classify_max(void)
{
    check_pool(HEAD_POOL_MAX);
}

/* The pooled vector is what the head's docs say: for each pooling, the
 * classifier's output equals softmax(W pooled + b) computed here by hand from
 * the top layer's states over each row's length. */
static void test_classify_pooling_values(void)
{
    for (int pool = 0; pool < 3; pool++) {
        model_config cfg = {.cell = CELL_GRU, .vocab = V, .layers = 1, .hidden = HID,
                            .head = {.kind = HEAD_CLASSIFY, .classes = C, .pool = pool}};
        fixture f;
        fixture_init(&f, &cfg);
        const int32_t len[B] = {T, 1, 3};
        f.w.len = len;
        loss_at(&f);
        const float *top = f.w.hs[0] + (size_t)B * HID;
        double worst = 0.0;
        for (int b = 0; b < B; b++) {
            double p[HID], z[C], zmax = -INFINITY, sum = 0.0;
            for (int j = 0; j < HID; j++) {
                p[j] = pool == HEAD_POOL_MAX ? -INFINITY : 0.0;
                for (int t = 0; t < len[b]; t++) {
                    double h = top[((size_t)t * B + b) * HID + j];
                    if (pool == HEAD_POOL_MEAN)
                        p[j] += h / len[b];
                    else if (pool == HEAD_POOL_MAX)
                        p[j] = fmax(p[j], h);
                    else if (t == len[b] - 1)
                        p[j] = h;
                }
            }
            for (int c = 0; c < C; c++) {
                z[c] = f.m.head.p[1][c];
                for (int j = 0; j < HID; j++)
                    z[c] += (double)f.m.head.p[0][c * HID + j] * p[j];
                zmax = fmax(zmax, z[c]);
            }
            for (int c = 0; c < C; c++)
                sum += exp(z[c] - zmax);
            for (int c = 0; c < C; c++)
                worst = fmax(worst, fabs(exp(z[c] - zmax) / sum - head_output(&f.w, (size_t)b)[c]));
            CU_ASSERT(fabs(-log(exp(z[f.y[b]] - zmax) / sum) - f.w.head.loss[b]) < 1e-5);
        }
        CU_ASSERT(worst < 1e-6);
        CU_ASSERT(f.w.head.n == B && f.w.head.K == C);
        fixture_free(&f);
    }
}

/* The language-model head under a loss mask: masked positions give no loss,
 * the others the same loss as without a mask, and the gradient is that of
 * the masked loss. */
static void test_lm_mask(void)
{
    const cell_kind cells[3] = {CELL_RNN, CELL_LSTM, CELL_GRU};
    for (int k = 0; k < 3; k++) {
        model_config cfg = {.cell = cells[k], .vocab = V, .layers = 2, .hidden = HID};
        fixture f;
        fixture_init(&f, &cfg);
        float mask[T * B];
        for (int i = 0; i < T * B; i++)
            mask[i] = i % 4 == 1 ? 0.0f : 1.0f;
        double plain = loss_at(&f);
        float loss[T * B];
        memcpy(loss, f.w.head.loss, sizeof loss);
        f.w.mask = mask;
        double masked = loss_at(&f), expect = 0.0;
        for (int i = 0; i < T * B; i++) {
            CU_ASSERT(f.w.head.loss[i] == (mask[i] ? loss[i] : 0.0f));
            expect += mask[i] ? loss[i] : 0.0;
        }
        CU_ASSERT(masked == expect && masked < plain);
        int skipped;
        double worst = worst_error(&f, &skipped);
        CU_ASSERT(skipped == 0);
        printf("  lm %s L2 with a loss mask: worst relative error %.2e\n", cell_name(cells[k]),
               worst);
        CU_ASSERT(worst < GRADCHECK_BOUND);
        fixture_free(&f);
    }
}

/* Each head's tensors head the slab in bucket 0 under PyTorch's names; the
 * language model's layout is the one every checkpoint since v1 has. */
static void test_tensor_tables(void)
{
    model_config lm = {.cell = CELL_LSTM, .vocab = V, .layers = 2, .hidden = HID};
    model m;
    model_build(&m, &lm);
    CU_ASSERT_STRING_EQUAL(m.tensor[0].name, "decoder.weight");
    CU_ASSERT(m.tensor[0].offset == 0 && m.tensor[0].shape[0] == V && m.tensor[0].shape[1] == HID);
    CU_ASSERT_STRING_EQUAL(m.tensor[1].name, "decoder.bias");
    CU_ASSERT(m.tensor[1].offset == (size_t)V * HID && m.tensor[1].is_bias);
    CU_ASSERT_STRING_EQUAL(m.tensor[2].name, "weight_ih_l1");
    CU_ASSERT(m.bucket_size[0] == (size_t)V * HID + V && m.head.outputs == V);
    CU_ASSERT(m.head.ops == &head_lm_ops && m.head.p[0] == m.params && m.head.g[1] == m.grads + V * HID);
    model_free(&m);

    model_config cls = {.cell = CELL_GRU, .vocab = V, .layers = 1, .hidden = HID,
                        .head = {.kind = HEAD_CLASSIFY, .classes = 7, .pool = HEAD_POOL_MEAN}};
    model_build(&m, &cls);
    const model_tensor *w = model_find_tensor(&m, "classifier.weight");
    const model_tensor *b = model_find_tensor(&m, "classifier.bias");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT(w->offset == 0 && w->shape[0] == 7 && w->shape[1] == HID && w->bucket == 0);
    CU_ASSERT(b->offset == 7 * HID && b->size == 7 && b->is_bias && b->bucket == 0);
    CU_ASSERT(model_find_tensor(&m, "decoder.weight") == NULL);
    CU_ASSERT(m.bucket_size[0] == 7 * HID + 7 && m.head.outputs == 7);
    model_free(&m);
}

static void test_names_and_checks(void)
{
    CU_ASSERT(head_parse("lm") == HEAD_LM && head_parse("classify") == HEAD_CLASSIFY);
    CU_ASSERT(head_parse("tag") == HEAD_TAG && head_parse("nonesuch") == -1);
    CU_ASSERT_STRING_EQUAL(head_name(HEAD_CLASSIFY), "classify");
    CU_ASSERT(head_pool_parse("last") == HEAD_POOL_LAST && head_pool_parse("max") == HEAD_POOL_MAX);
    CU_ASSERT(head_pool_parse("sum") == -1);
    CU_ASSERT_STRING_EQUAL(head_pool_name(HEAD_POOL_MEAN), "mean");
    model_config cfg = {.cell = CELL_LSTM, .vocab = V, .layers = 1, .hidden = HID,
                        .head = {.kind = HEAD_CLASSIFY, .classes = 1}};
    CU_ASSERT(model_config_check(&cfg) == -1);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), "a classifier needs at least 2 classes, got 1");
    cfg.head.classes = 2;
    CU_ASSERT(model_config_check(&cfg) == 0);
}

/* Padding equals unpadded, classification head: a batch of rows of lengths
 * 6, 2, 0 (masked) and 4, padded to T = 6, gives each row the loss and the
 * model the gradients (classifier's included) of the rows run one by one at
 * their own lengths, and leaves each row's state at its length, for every
 * pooling and every cell. */
static void classify_pad_case(cell_kind cell, head_pool pool)
{
    enum { TP = 6, BP = 4, L = 2 };
    static const int32_t len[BP] = {6, 2, 0, 4};
    static const float mask[BP] = {1.0f, 1.0f, 0.0f, 1.0f};
    model_config cfg = {.cell = cell, .vocab = V, .layers = L, .hidden = HID,
                        .head = {.kind = HEAD_CLASSIFY, .classes = C, .pool = pool}};
    model mp, mr;
    model_build(&mp, &cfg);
    model_build(&mr, &cfg);
    model_init_uniform(&mp, 0.4f, 3, NAN);
    memcpy(mr.params, mp.params, mp.n_params * sizeof(float));
    model_zero_grads(&mp);
    model_zero_grads(&mr);
    int32_t x[TP * BP], y[BP];
    for (int i = 0; i < TP * BP; i++)
        x[i] = (i * 7 + 1) % V;
    for (int b = 0; b < BP; b++)
        y[b] = (b * 2 + 1) % C;
    const size_t ns = (size_t)L * BP * HID;
    float h0[L * BP * HID], c0[L * BP * HID];
    testlib_fill_uniform(h0, ns, 0.8f, 7);
    testlib_fill_uniform(c0, ns, 0.8f, 8);

    model_work w;
    model_work_init(&w, &mp, TP, BP);
    model_state s;
    model_state_init(&s, &cfg, BP);
    memcpy(s.h, h0, sizeof h0);
    if (s.c)
        memcpy(s.c, c0, sizeof c0);
    w.len = len;
    w.mask = mask;
    double total = model_forward(&mp, &w, &s, x, y, TP, 0, 0);
    model_backward(&mp, &w, x, y, 0.5f, NULL, NULL);
    CU_ASSERT(w.head.loss[2] == 0.0f);

    double e_loss = 0.0, rows_total = 0.0;
    for (int b = 0; b < BP; b++) {
        if (len[b] == 0)
            continue;
        const int Tb = len[b];
        model_work wr;
        model_work_init(&wr, &mr, Tb, 1);
        model_state sr;
        model_state_init(&sr, &cfg, 1);
        int32_t xr[TP];
        for (int t = 0; t < Tb; t++)
            xr[t] = x[t * BP + b];
        for (int l = 0; l < L; l++) {
            memcpy(sr.h + l * HID, h0 + ((size_t)l * BP + b) * HID, HID * sizeof(float));
            if (sr.c)
                memcpy(sr.c + l * HID, c0 + ((size_t)l * BP + b) * HID, HID * sizeof(float));
        }
        rows_total += model_forward(&mr, &wr, &sr, xr, &y[b], Tb, 0, 0);
        model_backward(&mr, &wr, xr, &y[b], 0.5f, NULL, NULL);
        e_loss = fmax(e_loss, fabs(wr.head.loss[0] - w.head.loss[b]) /
                                  fmax(1.0, fabs(wr.head.loss[0])));
        for (int k = 0; k < C; k++)
            e_loss = fmax(e_loss, fabs(head_output(&wr, 0)[k] - head_output(&w, (size_t)b)[k]));
        /* the state left behind is each row's at its own length */
        for (int l = 0; l < L; l++)
            CU_ASSERT(memcmp(sr.h + l * HID, s.h + ((size_t)l * BP + b) * HID,
                             HID * sizeof(float)) == 0);
        model_state_free(&sr);
        model_work_free(&wr);
    }
    const double e_total = fabs(total - rows_total) / fmax(1.0, fabs(rows_total));
    const double e_grad = testlib_max_rel_diff(mp.grads, mr.grads, mp.n_params);
    printf("  %s pool %s: padded vs one by one: loss %.1e, total %.1e, gradients %.1e\n",
           cell_name(cell), head_pool_name(pool), e_loss, e_total, e_grad);
    CU_ASSERT(e_loss <= PAD_TOL && e_total <= PAD_TOL && e_grad <= PAD_TOL);
    model_state_free(&s);
    model_work_free(&w);
    model_free(&mp);
    model_free(&mr);
}

static void test_classify_padding(void)
{
    const cell_kind cells[3] = {CELL_RNN, CELL_LSTM, CELL_GRU};
    for (int k = 0; k < 3; k++)
        for (int pool = 0; pool < 3; pool++)
            classify_pad_case(cells[k], (head_pool)pool);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("head");
    testlib_add(s, "tensor tables of the lm and classify heads", test_tensor_tables);
    testlib_add(s, "names and config checks", test_names_and_checks);
    testlib_add(s, "classify: pooled outputs by hand", test_classify_pooling_values);
    testlib_add(s, "classify gradcheck, pool last", test_classify_last);
    testlib_add(s, "classify gradcheck, pool mean", test_classify_mean);
    testlib_add(s, "classify gradcheck, pool max", test_classify_max);
    testlib_add(s, "lm loss mask: no loss, no gradient", test_lm_mask);
    testlib_add(s, "classify: padding equals unpadded", test_classify_padding);
    return testlib_run(argc, argv);
}
