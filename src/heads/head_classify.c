/* The classification head (many-to-one): the top states of each row are
 * pooled over the row's length (the last state, their mean or their
 * element-wise max), a linear layer maps the pooled vector to C class logits,
 * and softmax cross-entropy compares them with one label per row. Tensors
 * classifier.weight (C, H) and classifier.bias (C), as torch.nn.Linear(H, C).
 * See head.h. */
#include <string.h>

#include "charnn/common.h"
#include "charnn/head.h"
#include "charnn/kernels.h"

enum { CLS_WEIGHT = 0, CLS_BIAS = 1 };
/* w->head.buf[]: */
enum {
    CLS_POOLED = 0,  /* (B, H) the pooled top states */
    CLS_ARGMAX = 1,  /* (B, H) int32: max pooling's winning step, -1 for an empty row */
    CLS_DPOOLED = 2, /* (B, H) dL/dpooled */
};

static int classify_check(const model_config *cfg)
{
    if (cfg->head.classes < 2)
        return cn_err("a classifier needs at least 2 classes, got %d", cfg->head.classes);
    if ((int)cfg->head.pool < 0 || cfg->head.pool > HEAD_POOL_MAX)
        return cn_err("unknown pooling kind %d", (int)cfg->head.pool);
    return 0;
}

static int classify_outputs(const model_config *cfg)
{
    return cfg->head.classes;
}

static void classify_declare(model *m)
{
    model_head_add_tensor(m, "classifier.weight", m->cfg.head.classes, model_top_width(&m->cfg), 0);
    model_head_add_tensor(m, "classifier.bias", m->cfg.head.classes, 0, 1);
}

static void classify_work_init(model_work *w, const model *m, int T, int B)
{
    (void)T;
    const size_t BH = (size_t)B * model_top_width(&m->cfg);
    w->head.prob = model_work_alloc(w, (size_t)B * m->cfg.head.classes);
    w->head.loss = model_work_alloc(w, (size_t)B);
    w->head.buf[CLS_POOLED] = model_work_alloc(w, BH);
    w->head.buf[CLS_ARGMAX] = model_work_alloc(w, BH);
    w->head.buf[CLS_DPOOLED] = model_work_alloc(w, BH);
}

static int row_len(const model_work *w, int b, int T)
{
    if (!w->len)
        return T;
    CHARNN_ASSERT(w->len[b] >= 0 && w->len[b] <= T);
    return w->len[b];
}

static int32_t *argmax_buf(const model_work *w)
{
    return (int32_t *)(void *)w->head.buf[CLS_ARGMAX];
}

/* pooled[b] from top (T, B, H) over the first len[b] steps; an empty row
 * pools to zeros. */
static void pool_rows(const model *m, const model_work *w, const float *top, int T)
{
    const int B = w->B, H = model_top_width(&m->cfg);
    float *pooled = w->head.buf[CLS_POOLED];
    int32_t *arg = argmax_buf(w);
    for (int b = 0; b < B; b++) {
        const int n = row_len(w, b, T);
        float *p = pooled + (size_t)b * H;
        int32_t *a = arg + (size_t)b * H;
        memset(p, 0, (size_t)H * sizeof(float));
        if (n == 0) {
            for (int j = 0; j < H; j++)
                a[j] = -1;
            continue;
        }
        switch (m->cfg.head.pool) {
        case HEAD_POOL_LAST:
            memcpy(p, top + ((size_t)(n - 1) * B + b) * H, (size_t)H * sizeof(float));
            break;
        case HEAD_POOL_MEAN:
            for (int t = 0; t < n; t++) {
                const float *h = top + ((size_t)t * B + b) * H;
                for (int j = 0; j < H; j++)
                    p[j] += h[j];
            }
            for (int j = 0; j < H; j++)
                p[j] /= (float)n;
            break;
        case HEAD_POOL_MAX:
            for (int j = 0; j < H; j++) {
                p[j] = top[(size_t)b * H + j];
                a[j] = 0;
            }
            for (int t = 1; t < n; t++) {
                const float *h = top + ((size_t)t * B + b) * H;
                for (int j = 0; j < H; j++)
                    if (h[j] > p[j]) {
                        p[j] = h[j];
                        a[j] = t;
                    }
            }
            break;
        }
    }
}

static double classify_forward(const model *m, model_work *w, const float *top, const int32_t *y,
                               int T)
{
    const int B = w->B, H = model_top_width(&m->cfg), C = m->cfg.head.classes;
    w->head.n = B;
    pool_rows(m, w, top, T);
    for (int b = 0; b < B; b++)
        memcpy(w->head.prob + (size_t)b * C, m->head.p[CLS_BIAS], (size_t)C * sizeof(float));
    kern_gemm(0, 1, B, C, H, 1.0f, w->head.buf[CLS_POOLED], H, m->head.p[CLS_WEIGHT], H, 1.0f,
              w->head.prob, C);
    double total = kern_softmax_xent(w->head.prob, y, (size_t)B, C, w->head.loss);
    return y && w->mask ? head_mask_loss(w, (size_t)B) : total;
}

static void classify_backward(model *m, model_work *w, const float *top, const int32_t *y, int T,
                              float scale, float *dtop)
{
    (void)top;
    const int B = w->B, H = model_top_width(&m->cfg), C = m->cfg.head.classes;
    const float *pooled = w->head.buf[CLS_POOLED];
    float *dpooled = w->head.buf[CLS_DPOOLED];
    const int32_t *arg = argmax_buf(w);
    float *dlogits = w->head.prob; /* (B, C) */
    CHARNN_ASSERT(y != NULL && w->head.n == B);
    kern_softmax_xent_backward(dlogits, y, (size_t)B, C, scale);
    head_mask_rows(w, dlogits, (size_t)B, C);
    kern_gemm(1, 0, C, H, B, 1.0f, dlogits, C, pooled, H, 1.0f, m->head.g[CLS_WEIGHT], H);
    kern_sum_rows(m->head.g[CLS_BIAS], dlogits, (size_t)B, C);
    kern_gemm(0, 0, B, H, C, 1.0f, dlogits, C, m->head.p[CLS_WEIGHT], H, 0.0f, dpooled, H);
    memset(dtop, 0, (size_t)T * B * H * sizeof(float));
    for (int b = 0; b < B; b++) {
        const int n = row_len(w, b, T);
        const float *d = dpooled + (size_t)b * H;
        if (n == 0)
            continue;
        switch (m->cfg.head.pool) {
        case HEAD_POOL_LAST:
            memcpy(dtop + ((size_t)(n - 1) * B + b) * H, d, (size_t)H * sizeof(float));
            break;
        case HEAD_POOL_MEAN:
            for (int t = 0; t < n; t++) {
                float *g = dtop + ((size_t)t * B + b) * H;
                for (int j = 0; j < H; j++)
                    g[j] = d[j] / (float)n;
            }
            break;
        case HEAD_POOL_MAX:
            for (int j = 0; j < H; j++)
                dtop[((size_t)arg[(size_t)b * H + j] * B + b) * H + j] = d[j];
            break;
        }
    }
}

const head_ops head_classify_ops = {
    .name = "classify",
    .check = classify_check,
    .outputs = classify_outputs,
    .declare = classify_declare,
    .work_init = classify_work_init,
    .forward = classify_forward,
    .backward = classify_backward,
};
