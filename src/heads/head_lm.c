/* The language-model head: a linear decoder (V, H) to next-symbol logits over
 * all T*B positions in one GEMM, then softmax cross-entropy against one target
 * per position. Tensors decoder.weight (V, H) and decoder.bias (V): the
 * first two of the slab, as in every checkpoint since v1. See head.h. */
#include <string.h>

#include "charnn/common.h"
#include "charnn/head.h"
#include "charnn/kernels.h"

enum { LM_WEIGHT = 0, LM_BIAS = 1 };

static int lm_check(const model_config *cfg)
{
    (void)cfg;
    return 0;
}

static int lm_outputs(const model_config *cfg)
{
    return cfg->vocab;
}

static void lm_declare(model *m)
{
    model_head_add_tensor(m, "decoder.weight", m->cfg.vocab, model_top_width(&m->cfg), 0);
    model_head_add_tensor(m, "decoder.bias", m->cfg.vocab, 0, 1);
}

static void lm_work_init(model_work *w, const model *m, int T, int B)
{
    const size_t N = (size_t)T * B;
    w->head.prob = model_work_alloc(w, N * (size_t)m->cfg.vocab);
    w->head.loss = model_work_alloc(w, N);
}

static double lm_forward(const model *m, model_work *w, const float *top, const int32_t *y, int T)
{
    const int V = m->cfg.vocab, H = model_top_width(&m->cfg);
    const size_t N = (size_t)T * w->B;
    const float *dec_w = m->head.p[LM_WEIGHT], *dec_b = m->head.p[LM_BIAS];
    w->head.n = (int)N;
    for (size_t n = 0; n < N; n++)
        memcpy(w->head.prob + n * V, dec_b, (size_t)V * sizeof(float));
    kern_gemm(0, 1, (int)N, V, H, 1.0f, top, H, dec_w, H, 1.0f, w->head.prob, V);
    double total = kern_softmax_xent(w->head.prob, y, N, V, w->head.loss);
    return y && w->mask ? head_mask_loss(w, N) : total;
}

static void lm_backward(model *m, model_work *w, const float *top, const int32_t *y, int T,
                        float scale, float *dtop)
{
    const int V = m->cfg.vocab, H = model_top_width(&m->cfg);
    const size_t N = (size_t)T * w->B;
    float *dlogits = w->head.prob; /* (N, V) */
    CHARNN_ASSERT(y != NULL && (size_t)w->head.n == N);
    kern_softmax_xent_backward(dlogits, y, N, V, scale);
    head_mask_rows(w, dlogits, N, V);
    kern_gemm(1, 0, V, H, (int)N, 1.0f, dlogits, V, top, H, 1.0f, m->head.g[LM_WEIGHT], H);
    kern_sum_rows(m->head.g[LM_BIAS], dlogits, N, V);
    kern_gemm(0, 0, (int)N, H, V, 1.0f, dlogits, V, m->head.p[LM_WEIGHT], H, 0.0f, dtop, H);
}

const head_ops head_lm_ops = {
    .name = "lm",
    .check = lm_check,
    .outputs = lm_outputs,
    .declare = lm_declare,
    .work_init = lm_work_init,
    .forward = lm_forward,
    .backward = lm_backward,
};
