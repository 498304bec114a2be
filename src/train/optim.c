/* Optimizers over the flat parameter slab. See optim.h for the update rules.
 *
 * Each kind is one elementwise OpenMP loop: every element depends only on its
 * own parameter, gradient and state, so the result is bit-identical for any
 * number of threads. Per-step scalars (bias corrections, decay factor) are
 * computed once, in double, outside the loop. */
#include "charnn/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"

static const char *const optim_names[] = {"sgd", "adam", "rmsprop", "adagrad"};
enum { OPTIM_KINDS = sizeof optim_names / sizeof optim_names[0] };

const char *optim_name(optim_kind kind)
{
    if ((unsigned)kind >= OPTIM_KINDS)
        return "unknown";
    return optim_names[kind];
}

int optim_parse(const char *name, optim_kind *out)
{
    for (unsigned k = 0; k < OPTIM_KINDS; k++) {
        if (strcmp(name, optim_names[k]) == 0) {
            *out = (optim_kind)k;
            return 0;
        }
    }
    return cn_err("unknown optimizer '%s' (expected sgd, adam, rmsprop or adagrad)", name);
}

void optim_config_default(optim_config *cfg, optim_kind kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->momentum = 0.9f;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->alpha = 0.95f;
    cfg->eps = 1e-8f;
    cfg->weight_decay = 0.0f;
}

int optim_state_count(optim_kind kind)
{
    switch (kind) {
    case OPTIM_SGD:
        return 1; /* kept even at momentum 0, so the layout never depends on a value */
    case OPTIM_ADAM:
        return 2;
    case OPTIM_RMSPROP:
    case OPTIM_ADAGRAD:
        return 1;
    }
    CHARNN_ASSERT(!"unknown optimizer kind");
    return 0;
}

void optim_init(optim *o, const optim_config *cfg, size_t n)
{
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    o->t = 0;
    switch (cfg->kind) {
    case OPTIM_SGD:
        o->m = cn_xcalloc(n, sizeof *o->m);
        break;
    case OPTIM_ADAM:
        o->m = cn_xcalloc(n, sizeof *o->m);
        o->v = cn_xcalloc(n, sizeof *o->v);
        break;
    case OPTIM_RMSPROP:
    case OPTIM_ADAGRAD:
        o->v = cn_xcalloc(n, sizeof *o->v);
        break;
    default:
        CHARNN_ASSERT(!"unknown optimizer kind");
    }
}

void optim_free(optim *o)
{
    if (!o)
        return;
    free(o->m);
    free(o->v);
    o->m = NULL;
    o->v = NULL;
    o->n = 0;
    o->t = 0;
}

/* sgd: buf = momentum * buf + g; p -= lr * buf */
static void step_sgd(optim *o, float *restrict p, const float *restrict g, float lr, size_t begin,
                     size_t n)
{
    float *restrict buf = o->m + begin;
    const float mom = o->cfg.momentum;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float b = mom * buf[i] + g[i];
        buf[i] = b;
        p[i] -= lr * b;
    }
}

/* adam / adamw, in torch.optim.AdamW's order: decay the weight, update the
 * moments, then p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). */
static void step_adam(optim *o, float *restrict p, const float *restrict g, float lr,
                      const uint8_t *restrict decay_mask, size_t begin, size_t n, int64_t updates)
{
    float *restrict m = o->m + begin;
    float *restrict v = o->v + begin;
    const double t = (double)updates;
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    const float one_minus_b1 = (float)(1.0 - (double)b1);
    const float one_minus_b2 = (float)(1.0 - (double)b2);
    const double bc1 = 1.0 - pow((double)b1, t);
    const double bc2 = 1.0 - pow((double)b2, t);
    const float step_size = (float)((double)lr / bc1);
    const float inv_bc2_sqrt = (float)(1.0 / sqrt(bc2));
    /* Multiplying by 1.0f is exact, so undecayed elements are untouched. */
    const float keep = o->cfg.weight_decay > 0.0f
                           ? (float)(1.0 - (double)lr * (double)o->cfg.weight_decay)
                           : 1.0f;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float k = (decay_mask && !decay_mask[i]) ? 1.0f : keep;
        float gi = g[i];
        float mi = b1 * m[i] + one_minus_b1 * gi;
        float vi = b2 * v[i] + one_minus_b2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * k - step_size * mi / (sqrtf(vi) * inv_bc2_sqrt + eps);
    }
}

/* rmsprop: v = alpha v + (1-alpha) g^2; p -= lr * g / (sqrt(v) + eps) */
static void step_rmsprop(optim *o, float *restrict p, const float *restrict g, float lr,
                         size_t begin, size_t n)
{
    float *restrict v = o->v + begin;
    const float alpha = o->cfg.alpha, eps = o->cfg.eps;
    const float one_minus_alpha = (float)(1.0 - (double)alpha);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float vi = alpha * v[i] + one_minus_alpha * (gi * gi);
        v[i] = vi;
        p[i] -= lr * gi / (sqrtf(vi) + eps);
    }
}

/* adagrad: v += g^2; p -= lr * g / sqrt(v + eps) */
static void step_adagrad(optim *o, float *restrict p, const float *restrict g, float lr,
                         size_t begin, size_t n)
{
    float *restrict v = o->v + begin;
    const float eps = o->cfg.eps;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float vi = v[i] + gi * gi;
        v[i] = vi;
        p[i] -= lr * gi / sqrtf(vi + eps);
    }
}

void optim_step_range(optim *o, float *params, const float *grads, float lr,
                      const uint8_t *decay_mask, size_t begin, size_t end, int64_t updates)
{
    CHARNN_ASSERT(begin <= end && end <= o->n && updates >= 1);
    CHARNN_ASSERT(begin == end || (params && grads));
    float *p = params + begin;
    const float *g = grads + begin;
    const size_t n = end - begin;
    switch (o->cfg.kind) {
    case OPTIM_SGD:
        step_sgd(o, p, g, lr, begin, n);
        break;
    case OPTIM_ADAM:
        step_adam(o, p, g, lr, decay_mask ? decay_mask + begin : NULL, begin, n, updates);
        break;
    case OPTIM_RMSPROP:
        step_rmsprop(o, p, g, lr, begin, n);
        break;
    case OPTIM_ADAGRAD:
        step_adagrad(o, p, g, lr, begin, n);
        break;
    default:
        CHARNN_ASSERT(!"unknown optimizer kind");
    }
}

void optim_step(optim *o, float *params, const float *grads, float lr, const uint8_t *decay_mask)
{
    CHARNN_ASSERT(o->n == 0 || (params && grads));
    o->t++;
    optim_step_range(o, params, grads, lr, decay_mask, 0, o->n, o->t);
}
