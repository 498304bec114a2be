/* The recurrent stack's stand-in for --layers 0: one tanh (or relu) layer over the
 * (standardised) condition vector. See mlp.h. */
#include "charnn/mlp.h"

#include <math.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/cond.h"
#include "charnn/kernels.h"

static const char *const act_names[] = {"tanh", "relu"};

int mlp_act_parse(const char *name)
{
    for (int i = 0; i < (int)(sizeof act_names / sizeof act_names[0]); i++)
        if (strcmp(name, act_names[i]) == 0)
            return i;
    return -1;
}

const char *mlp_act_name(mlp_activation act)
{
    CHARNN_ASSERT(act == MLP_TANH || act == MLP_RELU);
    return act_names[act];
}

/* act's derivative from its output h */
static float act_grad(mlp_activation act, float h)
{
    return act == MLP_RELU ? (h > 0.0f ? 1.0f : 0.0f) : 1.0f - h * h;
}

void mlp_declare(model *m, int bucket)
{
    model_add_tensor(m, "mlp.weight", m->cfg.hidden, m->cfg.cond.dim, 0, bucket);
    model_add_tensor(m, "mlp.bias", m->cfg.hidden, 0, 1, bucket);
}

void mlp_bind(model *m)
{
    const model_tensor *w = model_find_tensor(m, "mlp.weight");
    const model_tensor *b = model_find_tensor(m, "mlp.bias");
    CHARNN_ASSERT(w != NULL && b != NULL);
    m->mlp.w = m->params + w->offset;
    m->mlp.b = m->params + b->offset;
    m->gmlp.w = m->grads + w->offset;
    m->gmlp.b = m->grads + b->offset;
}

void mlp_work_init(model_work *w, const model *m, int T, int B)
{
    CHARNN_ASSERT(T == 1);
    w->T = T;
    w->B = B;
    w->mlp_h = model_work_alloc(w, (size_t)B * m->cfg.hidden);
    w->dh_a = model_work_alloc(w, (size_t)B * m->cfg.hidden);
}

const float *mlp_forward(const model *m, model_work *w, int T)
{
    const int B = w->B, H = m->cfg.hidden, D = m->cfg.cond.dim;
    CHARNN_ASSERT(T == 1 && w->cond != NULL);
    w->t_used = T;
    w->dropout_on = 0;
    w->cond_on = COND_INPUT;
    const float *c = cond_features(m, w);
    float *h = w->mlp_h;
    for (int b = 0; b < B; b++)
        memcpy(h + (size_t)b * H, m->mlp.b, (size_t)H * sizeof(float));
    kern_gemm(0, 1, B, H, D, 1.0f, c, D, m->mlp.w, D, 1.0f, h, H);
    const size_t n = (size_t)B * H;
    if (m->cfg.mlp_act == MLP_RELU) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            h[i] = h[i] > 0.0f ? h[i] : 0.0f;
    } else {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            h[i] = tanhf(h[i]);
    }
    return h;
}

void mlp_backward(model *m, model_work *w, float *dtop, model_bucket_fn on_bucket, void *ctx)
{
    const int B = w->B, H = m->cfg.hidden, D = m->cfg.cond.dim;
    /* forward left the condition it read in cond_std when standardising */
    const float *c = m->cfg.cond.standardize ? w->cond_std : w->cond;
    const float *h = w->mlp_h;
    const mlp_activation act = m->cfg.mlp_act;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < (size_t)B * H; i++)
        dtop[i] *= act_grad(act, h[i]);
    kern_gemm(1, 0, H, D, B, 1.0f, dtop, H, c, D, 1.0f, m->gmlp.w, D);
    kern_sum_rows(m->gmlp.b, dtop, (size_t)B, H);
    if (on_bucket)
        on_bucket(ctx, 1);
}

void mlp_forward_naive(float *h, const float *c, const float *W, const float *b, int B, int H,
                       int D, mlp_activation act)
{
    for (int r = 0; r < B; r++)
        for (int j = 0; j < H; j++) {
            double acc = b[j];
            for (int d = 0; d < D; d++)
                acc += (double)c[(size_t)r * D + d] * W[(size_t)j * D + d];
            h[(size_t)r * H + j] = act == MLP_RELU ? (float)(acc > 0.0 ? acc : 0.0)
                                                   : (float)tanh(acc);
        }
}

void mlp_backward_naive(float *dW, float *db, const float *dh, const float *h, const float *c,
                        int B, int H, int D, mlp_activation act)
{
    for (int j = 0; j < H; j++) {
        double accb = 0.0;
        for (int d = 0; d < D; d++) {
            double acc = 0.0;
            for (int r = 0; r < B; r++) {
                acc += (double)dh[(size_t)r * H + j] * act_grad(act, h[(size_t)r * H + j]) *
                       c[(size_t)r * D + d];
            }
            dW[(size_t)j * D + d] += (float)acc;
        }
        for (int r = 0; r < B; r++) {
            accb += (double)dh[(size_t)r * H + j] * act_grad(act, h[(size_t)r * H + j]);
        }
        db[j] += (float)accb;
    }
}
