/* The tagging head (many-to-many while reading): a linear layer maps the top
 * state at every position to K tag logits in one GEMM over all T*B
 * positions, and softmax cross-entropy compares them with one tag per
 * position. Positions at or past a row's length (w->len) and positions whose
 * w->mask is 0 give no loss and no gradient. Tensors tagger.weight (K, W)
 * and tagger.bias (K), as torch.nn.Linear(W, K) with W = model_top_width
 * (2H for a bidirectional stack). See head.h. */
#include <string.h>

#include "charnn/common.h"
#include "charnn/head.h"
#include "charnn/kernels.h"

enum { TAG_WEIGHT = 0, TAG_BIAS = 1 };

static int tag_check(const model_config *cfg)
{
    if (cfg->head.classes < 2)
        return cn_err("a tagger needs at least 2 tags, got %d", cfg->head.classes);
    return 0;
}

static int tag_outputs(const model_config *cfg)
{
    return cfg->head.classes;
}

static void tag_declare(model *m)
{
    model_head_add_tensor(m, "tagger.weight", m->cfg.head.classes, model_top_width(&m->cfg), 0);
    model_head_add_tensor(m, "tagger.bias", m->cfg.head.classes, 0, 1);
}

static void tag_work_init(model_work *w, const model *m, int T, int B)
{
    const size_t N = (size_t)T * B;
    w->head.prob = model_work_alloc(w, N * (size_t)m->cfg.head.classes);
    w->head.loss = model_work_alloc(w, N);
}

/* Whether position n = t*B + b lies past its row's length. */
static int past_len(const model_work *w, size_t n)
{
    return w->len && (int)(n / (size_t)w->B) >= w->len[n % (size_t)w->B];
}

static double tag_forward(const model *m, model_work *w, const float *top, const int32_t *y, int T)
{
    const int K = m->cfg.head.classes, W = model_top_width(&m->cfg);
    const size_t N = (size_t)T * w->B;
    w->head.n = (int)N;
    for (size_t n = 0; n < N; n++)
        memcpy(w->head.prob + n * K, m->head.p[TAG_BIAS], (size_t)K * sizeof(float));
    kern_gemm(0, 1, (int)N, K, W, 1.0f, top, W, m->head.p[TAG_WEIGHT], W, 1.0f, w->head.prob, K);
    kern_softmax_xent(w->head.prob, y, N, K, w->head.loss);
    if (!y)
        return 0.0;
    double total = head_mask_loss(w, N);
    for (size_t n = 0; w->len && n < N; n++)
        if (past_len(w, n)) {
            total -= w->head.loss[n];
            w->head.loss[n] = 0.0f;
        }
    return total;
}

static void tag_backward(model *m, model_work *w, const float *top, const int32_t *y, int T,
                         float scale, float *dtop)
{
    const int K = m->cfg.head.classes, W = model_top_width(&m->cfg);
    const size_t N = (size_t)T * w->B;
    float *dlogits = w->head.prob; /* (N, K) */
    CHARNN_ASSERT(y != NULL && (size_t)w->head.n == N);
    kern_softmax_xent_backward(dlogits, y, N, K, scale);
    head_mask_rows(w, dlogits, N, K);
    for (size_t n = 0; w->len && n < N; n++)
        if (past_len(w, n))
            memset(dlogits + n * K, 0, (size_t)K * sizeof(float));
    kern_gemm(1, 0, K, W, (int)N, 1.0f, dlogits, K, top, W, 1.0f, m->head.g[TAG_WEIGHT], W);
    kern_sum_rows(m->head.g[TAG_BIAS], dlogits, N, K);
    kern_gemm(0, 0, (int)N, W, K, 1.0f, dlogits, K, m->head.p[TAG_WEIGHT], W, 0.0f, dtop, W);
}

const head_ops head_tag_ops = {
    .name = "tag",
    .check = tag_check,
    .outputs = tag_outputs,
    .declare = tag_declare,
    .work_init = tag_work_init,
    .forward = tag_forward,
    .backward = tag_backward,
};
