/* The model without a stack (layers 0, mlp.h): classify --features as a
 * plain MLP, standardised vector -> Linear(D, H) -> tanh or relu ->
 * classifier.
 *
 *  - finite differences of the masked summed loss against every trained
 *    parameter (mlp.weight, mlp.bias, classifier.weight, classifier.bias),
 *    with a padding row (mask 0) and features.mean/std away from 0 and 1,
 *    whose gradient must stay exactly zero (data, never trained); for tanh
 *    and for relu (whose kink is kept away from the checked points: no
 *    pre-activation within 2 steps of 0);
 *  - the fast forward (GEMM + activation) and backward against the naive
 *    loops, both activations;
 *  - the slab: the tensors by name and shape, two buckets (the head, then
 *    the MLP with the standardisation), no stack tensors, no cond.weight_ih;
 *  - layers 0 for anything but a classifier of a vector is refused with one
 *    message, and an activation for a recurrent stack too.
 *
 * Tolerances as in test_gradcheck.c: steps of 1e-2 in float, bound 2e-2
 * (measured worst: printed); naive against fast 1e-5 relative. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/mlp.h"
#include "charnn/model.h"
#include "testlib.h"

enum { B = 4, D = 3, HID = 5, C = 3 };

#define FD_BOUND 2e-2
#define NAIVE_TOL 1e-5

typedef struct {
    model m;
    model_work w;
    model_state s;
    int32_t x[B], y[B], len[B];
    float mask[B];
    float c[B * D];
} mlp_case;

static model_config mlp_config(mlp_activation act)
{
    return (model_config){.cell = CELL_LSTM, .vocab = 1, .layers = 0, .hidden = HID,
                          .head = {.kind = HEAD_CLASSIFY, .classes = C, .pool = HEAD_POOL_LAST},
                          .cond = {COND_INPUT, D, 1}, .mlp_act = act};
}

static void case_init(mlp_case *k, mlp_activation act)
{
    memset(k, 0, sizeof *k);
    model_config cfg = mlp_config(act);
    CU_ASSERT_FATAL(model_config_check(&cfg) == 0);
    model_build(&k->m, &cfg);
    model_init_uniform(&k->m, 0.5f, 11, NAN);
    for (int d = 0; d < D; d++) {
        k->m.cond.mean[d] = 0.3f * (float)(d - 1);
        k->m.cond.std[d] = 0.5f + 0.4f * (float)d;
    }
    model_work_init(&k->w, &k->m, 1, B);
    model_state_init(&k->s, &cfg, B);
    testlib_fill_uniform(k->c, B * D, 1.5f, 9);
    for (int b = 0; b < B; b++) {
        k->x[b] = 0;
        k->y[b] = (b * 2 + 1) % C;
        k->len[b] = 1;
        k->mask[b] = b == B - 1 ? 0.0f : 1.0f; /* the last row is padding */
    }
    k->w.len = k->len;
    k->w.mask = k->mask;
    k->w.cond = k->c;
    k->w.cond_first = 1;
}

static void case_free(mlp_case *k)
{
    model_state_free(&k->s);
    model_work_free(&k->w);
    model_free(&k->m);
}

static double eval_loss(mlp_case *k)
{
    return model_forward(&k->m, &k->w, &k->s, k->x, k->y, 1, 0, 0);
}

static double rel_err(double num, double ana)
{
    return fabs(num - ana) / fmax(1e-2, fabs(num) + fabs(ana));
}

static void gradcheck(mlp_activation act)
{
    mlp_case k;
    case_init(&k, act);
    eval_loss(&k);
    model_zero_grads(&k.m);
    model_backward(&k.m, &k.w, k.x, k.y, 1.0f, NULL, NULL);
    const model_tensor *fm = model_find_tensor(&k.m, "features.mean");
    const model_tensor *fs = model_find_tensor(&k.m, "features.std");
    CU_ASSERT_FATAL(fm != NULL && fs != NULL);
    for (size_t i = fm->offset; i < fm->offset + fm->size; i++)
        CU_ASSERT(k.m.grads[i] == 0.0f);
    for (size_t i = fs->offset; i < fs->offset + fs->size; i++)
        CU_ASSERT(k.m.grads[i] == 0.0f);
    double worst = 0.0, mag_mlp = 0.0;
    const float step = 1e-2f;
    const model_tensor *mw = model_find_tensor(&k.m, "mlp.weight");
    /* the smallest |pre-activation| must stay clear of relu's kink under the
     * steps: a step of 1e-2 in a weight moves it by 1e-2 times a standardised
     * c, |c| <= (1.5 + 0.3) / 0.5 = 3.6, so by less than 0.04 */
    double closest = INFINITY;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < HID; j++) {
            double z = k.m.mlp.b[j];
            for (int d = 0; d < D; d++)
                z += (double)k.m.mlp.w[j * D + d] *
                     ((k.c[b * D + d] - k.m.cond.mean[d]) / k.m.cond.std[d]);
            closest = fmin(closest, fabs(z));
        }
    CU_ASSERT(act == MLP_TANH || closest > 0.05);
    for (size_t i = 0; i < k.m.n_params; i++) {
        if (i >= fm->offset && i < fs->offset + fs->size)
            continue;
        float keep = k.m.params[i];
        k.m.params[i] = keep + step;
        double lp = eval_loss(&k);
        k.m.params[i] = keep - step;
        double lm = eval_loss(&k);
        k.m.params[i] = keep;
        worst = fmax(worst, rel_err((lp - lm) / (2.0 * step), k.m.grads[i]));
        if (i >= mw->offset && i < mw->offset + mw->size)
            mag_mlp = fmax(mag_mlp, fabs(k.m.grads[i]));
    }
    printf("\n    gradcheck mlp %s: worst %.2e, |dmlp.weight| %.3f, closest |pre-activation| %.3f",
           mlp_act_name(act), worst, mag_mlp, closest);
    CU_ASSERT(worst < FD_BOUND);
    CU_ASSERT(mag_mlp > 1e-3); /* there is a gradient to check */
    case_free(&k);
}

static void test_gradcheck(void)
{
    gradcheck(MLP_TANH);
    gradcheck(MLP_RELU);
}

static void naive(mlp_activation act)
{
    mlp_case k;
    case_init(&k, act);
    eval_loss(&k);
    float cs[B * D], h[B * HID], dW[HID * D], db[HID], dh[B * HID];
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++)
            cs[b * D + d] = (k.c[b * D + d] - k.m.cond.mean[d]) / k.m.cond.std[d];
    mlp_forward_naive(h, cs, k.m.mlp.w, k.m.mlp.b, B, HID, D, act);
    CU_ASSERT(testlib_max_rel_diff(k.w.mlp_h, h, B * HID) < NAIVE_TOL);
    /* backward from a given dL/dh */
    testlib_fill_uniform(dh, B * HID, 1.0f, 4);
    memset(dW, 0, sizeof dW);
    memset(db, 0, sizeof db);
    mlp_backward_naive(dW, db, dh, k.w.mlp_h, cs, B, HID, D, act);
    model_zero_grads(&k.m);
    float dtop[B * HID];
    memcpy(dtop, dh, sizeof dtop);
    mlp_backward(&k.m, &k.w, dtop, NULL, NULL);
    CU_ASSERT(testlib_max_rel_diff(k.m.gmlp.w, dW, HID * D) < NAIVE_TOL);
    CU_ASSERT(testlib_max_rel_diff(k.m.gmlp.b, db, HID) < NAIVE_TOL);
    if (act == MLP_RELU) { /* some units are off, some on */
        int zeros = 0;
        for (int i = 0; i < B * HID; i++)
            zeros += k.w.mlp_h[i] == 0.0f;
        CU_ASSERT(zeros > 0 && zeros < B * HID);
    }
    case_free(&k);
}

static void test_naive(void)
{
    naive(MLP_TANH);
    naive(MLP_RELU);
}

static void test_slab(void)
{
    mlp_case k;
    case_init(&k, MLP_TANH);
    static const struct {
        const char *name;
        int rows, cols, bucket;
    } want[] = {{"classifier.weight", C, HID, 0}, {"classifier.bias", C, 1, 0},
                {"mlp.weight", HID, D, 1},        {"mlp.bias", HID, 1, 1},
                {"features.mean", D, 1, 1},       {"features.std", D, 1, 1}};
    const int n = (int)(sizeof want / sizeof want[0]);
    CU_ASSERT_FATAL(k.m.n_tensors == n);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const model_tensor *t = &k.m.tensor[i];
        CU_ASSERT(strcmp(t->name, want[i].name) == 0);
        CU_ASSERT(t->shape[0] == want[i].rows && t->shape[1] == want[i].cols);
        CU_ASSERT(t->bucket == want[i].bucket && t->offset == total && !t->transposed);
        total += t->size;
    }
    CU_ASSERT(k.m.n_params == total);
    CU_ASSERT(k.m.n_buckets == 2 && k.m.bucket_offset[1] == (size_t)C * HID + C &&
              k.m.bucket_size[0] + k.m.bucket_size[1] == total);
    CU_ASSERT(k.m.cond.w_in == NULL && k.w.cond_proj == NULL && k.s.layers == 0);
    case_free(&k);
}

static void test_refused(void)
{
    const char *msg = "--layers 0 (a plain MLP, no recurrent stack) is only for --task classify "
                      "--features";
    model_config lm = {.cell = CELL_LSTM, .vocab = 5, .layers = 0, .hidden = HID};
    CU_ASSERT(model_config_check(&lm) == -1 && strcmp(cn_errmsg(), msg) == 0);
    model_config cls = mlp_config(MLP_TANH);
    cls.cond = (cond_config){COND_NONE, 0, 0};
    CU_ASSERT(model_config_check(&cls) == -1 && strcmp(cn_errmsg(), msg) == 0);
    model_config gen = {.cell = CELL_GRU, .vocab = 5, .layers = 0, .hidden = HID,
                        .cond = {COND_INPUT, D, 0}};
    CU_ASSERT(model_config_check(&gen) == -1 && strcmp(cn_errmsg(), msg) == 0);
    model_config bi = mlp_config(MLP_TANH);
    bi.bidirectional = 1;
    CU_ASSERT(model_config_check(&bi) == -1 &&
              strcmp(cn_errmsg(), "--bidirectional needs a recurrent stack; --layers 0 has none") ==
                  0);
    model_config stack = mlp_config(MLP_RELU);
    stack.layers = 1;
    CU_ASSERT(model_config_check(&stack) == -1 &&
              strcmp(cn_errmsg(),
                     "--activation is for the MLP of --layers 0, not a recurrent stack") == 0);
    CU_ASSERT(mlp_act_parse("relu") == MLP_RELU && mlp_act_parse("sigmoid") == -1);
    model_config neg = mlp_config(MLP_TANH);
    neg.layers = -1;
    CU_ASSERT(model_config_check(&neg) == -1 &&
              strcmp(cn_errmsg(), "--layers must be between 0 and 16, got -1") == 0);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("mlp");
    testlib_add(s, "gradcheck of the layers-0 classifier", test_gradcheck);
    testlib_add(s, "forward and backward against naive", test_naive);
    testlib_add(s, "tensors, shapes and buckets", test_slab);
    testlib_add(s, "layers 0 elsewhere is refused", test_refused);
    return testlib_run(argc, argv);
}
