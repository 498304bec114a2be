/* The tagging head (head_tag.c): finite-difference gradient checks of whole
 * models with a tag at every position, unidirectional and bidirectional,
 * every cell, 1 to 3 layers, rows of several lengths (one empty) and a
 * masked position; positions past a row's length and masked ones give no
 * loss whatever their targets; the tensor table.
 *
 * As in test_head.c: central differences, step 1e-2, the loss summed in
 * double, bound 2e-2 on the relative error (measured errors printed); a
 * head that leaked padding or ignored the mask gives errors of order 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/head.h"
#include "charnn/model.h"
#include "charnn/tagger.h"
#include "testlib.h"

enum { V = 5, T = 4, B = 3, K = 3, HID = 4 };
#define GRADCHECK_BOUND 2e-2

static const int32_t row_len[B] = {4, 2, 0};

typedef struct {
    model m;
    model_work w;
    model_state s;
    int32_t x[T * B], y[T * B];
    float mask[T * B];
} fixture;

static void fixture_init(fixture *f, cell_kind cell, int layers, int bidir, int embed)
{
    model_config cfg = {.cell = cell, .vocab = V, .layers = layers, .hidden = HID, .embed = embed,
                        .bidirectional = bidir, .head = {.kind = HEAD_TAG, .classes = K}};
    model_build(&f->m, &cfg);
    model_init_uniform(&f->m, 0.5f, 7, NAN);
    model_work_init(&f->w, &f->m, T, B);
    model_state_init(&f->s, &cfg, B);
    for (int i = 0; i < T * B; i++) {
        f->x[i] = (i * 3 + 1) % V;
        f->y[i] = (i * 2 + 1) % K;
        f->mask[i] = i == 1 * B + 0 ? 0.0f : 1.0f; /* row 0's step 1 is not tagged */
    }
    f->w.len = row_len;
    f->w.mask = f->mask;
}

static void fixture_free(fixture *f)
{
    model_state_free(&f->s);
    model_work_free(&f->w);
    model_free(&f->m);
}

static double loss_at(fixture *f)
{
    model_state_reset(&f->s);
    double ret = model_forward(&f->m, &f->w, &f->s, f->x, f->y, T, 0, 0);
    double total = 0.0;
    for (int i = 0; i < f->w.head.n; i++)
        total += f->w.head.loss[i];
    CU_ASSERT(fabs(ret - total) <= 1e-5 * fmax(1.0, fabs(total)));
    return total;
}

static double gradcheck(cell_kind cell, int layers, int bidir, int embed)
{
    fixture f;
    fixture_init(&f, cell, layers, bidir, embed);
    loss_at(&f);
    /* no loss past a row's length or at the masked position */
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            if (t >= row_len[b] || (t == 1 && b == 0))
                CU_ASSERT(f.w.head.loss[t * B + b] == 0.0f);
    model_zero_grads(&f.m);
    model_backward(&f.m, &f.w, f.x, f.y, 1.0f, NULL, NULL);
    double worst = 0.0;
    const float h = 1e-2f;
    for (size_t i = 0; i < f.m.n_params; i++) {
        float keep = f.m.params[i];
        f.m.params[i] = keep + h;
        double lp = loss_at(&f);
        f.m.params[i] = keep - h;
        double lm = loss_at(&f);
        f.m.params[i] = keep;
        double num = (lp - lm) / (2.0 * h), ana = f.m.grads[i];
        worst = fmax(worst, fabs(num - ana) / fmax(1e-2, fabs(num) + fabs(ana)));
    }
    printf("\n    tag %s L%d E%d %s: worst relative error %.2e", cell_name(cell), layers, embed,
           bidir ? "bidirectional" : "unidirectional", worst);
    fixture_free(&f);
    return worst;
}

static void gradcheck_cell(cell_kind cell)
{
    for (int bidir = 0; bidir < 2; bidir++) {
        CU_ASSERT(gradcheck(cell, 1, bidir, 0) < GRADCHECK_BOUND);
        CU_ASSERT(gradcheck(cell, 2, bidir, 3) < GRADCHECK_BOUND);
        CU_ASSERT(gradcheck(cell, 3, bidir, 0) < GRADCHECK_BOUND);
    }
}

static void test_gradcheck_rnn(void)
{
    gradcheck_cell(CELL_RNN);
}

static void test_gradcheck_lstm(void)
{
    gradcheck_cell(CELL_LSTM);
}

static void test_gradcheck_gru(void)
{
    gradcheck_cell(CELL_GRU);
}

/* The targets at untagged positions do not matter. */
static void test_padding_targets_ignored(void)
{
    fixture f;
    fixture_init(&f, CELL_LSTM, 2, 1, 0);
    double a = loss_at(&f);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            if (t >= row_len[b] || (t == 1 && b == 0))
                f.y[t * B + b] = (f.y[t * B + b] + 1) % K;
    double b2 = loss_at(&f);
    CU_ASSERT(a == b2);
    CU_ASSERT(a > 0.0);
    fixture_free(&f);
}

static void test_tensor_table(void)
{
    model_config cfg = {.cell = CELL_GRU, .vocab = V, .layers = 1, .hidden = HID,
                        .bidirectional = 1, .head = {.kind = HEAD_TAG, .classes = K}};
    model m;
    model_build(&m, &cfg);
    CU_ASSERT_STRING_EQUAL(m.tensor[0].name, "tagger.weight");
    CU_ASSERT(m.tensor[0].shape[0] == K && m.tensor[0].shape[1] == 2 * HID);
    CU_ASSERT_STRING_EQUAL(m.tensor[1].name, "tagger.bias");
    CU_ASSERT(m.head.outputs == K);
    CU_ASSERT(head_parse("tag") == HEAD_TAG);
    model_free(&m);
    cfg.head.classes = 1;
    CU_ASSERT(model_config_check(&cfg) == -1);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), "a tagger needs at least 2 tags, got 1");
}

/* "ab cd ef" predicted as "ab cde f": a space found, one missed, one too
 * many; only the first word is restored (the second loses its end, the third
 * its start and gets a space inside). */
static void test_spacing_scores(void)
{
    const uint8_t gold[6] = {0, 1, 0, 1, 0, 0}, pred[6] = {0, 1, 0, 0, 1, 0};
    tag_scores sc;
    memset(&sc, 0, sizeof sc);
    tag_score_line(&sc, gold, pred, 6);
    CU_ASSERT(sc.chars == 6 && sc.correct == 4);
    CU_ASSERT(sc.spaces_true == 2 && sc.spaces_pred == 2 && sc.spaces_hit == 1);
    CU_ASSERT(tag_precision(&sc) == 0.5 && tag_recall(&sc) == 0.5 && tag_f1(&sc) == 0.5);
    CU_ASSERT(sc.words == 3 && sc.words_exact == 1);
    /* a perfect line adds its words whole */
    tag_score_line(&sc, gold, gold, 6);
    CU_ASSERT(sc.words == 6 && sc.words_exact == 4 && sc.lines == 2);
    CU_ASSERT(fabs(tag_f1(&sc) - 0.75) < 1e-12);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("tag");
    testlib_add(s, "tensor table and check", test_tensor_table);
    testlib_add(s, "spacing scores by hand", test_spacing_scores);
    testlib_add(s, "untagged positions: their targets do not matter", test_padding_targets_ignored);
    testlib_add(s, "rnn gradcheck, uni- and bidirectional", test_gradcheck_rnn);
    testlib_add(s, "lstm gradcheck, uni- and bidirectional", test_gradcheck_lstm);
    testlib_add(s, "gru gradcheck, uni- and bidirectional", test_gradcheck_gru);
    return testlib_run(argc, argv);
}
