/* Conditioning the stack on a vector per row: the tensors, the forward hooks
 * stack.c calls and their gradients. See cond.h. */
#include "charnn/cond.h"

#include <stdio.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/kernels.h"

static const char *const mode_names[] = {"none", "init", "input", "every"};

int cond_mode_parse(const char *name)
{
    for (int i = 0; i < (int)(sizeof mode_names / sizeof mode_names[0]); i++)
        if (strcmp(name, mode_names[i]) == 0)
            return i;
    return -1;
}

const char *cond_mode_name(cond_mode mode)
{
    CHARNN_ASSERT(mode >= COND_NONE && mode <= COND_EVERY);
    return mode_names[mode];
}

int cond_config_check(const model_config *cfg)
{
    const cond_config *c = &cfg->cond;
    if (c->mode < COND_NONE || c->mode > COND_EVERY)
        return cn_err("unknown condition mode %d", (int)c->mode);
    if (c->mode == COND_NONE)
        return c->dim == 0 ? 0 : cn_err("a condition width %d needs a --cond-mode", c->dim);
    if (c->dim < 1 || c->dim > 65536)
        return cn_err("the condition width must be between 1 and 65536, got %d", c->dim);
    return 0;
}

/* The view into slab of the tensor `name`, which must exist. */
static float *tensor_view(float *slab, const model *m, const char *name)
{
    const model_tensor *t = model_find_tensor(m, name);
    CHARNN_ASSERT(t != NULL);
    return slab + t->offset;
}

/* Tensor names, in the order cond_declare appends them. */
static void init_name(char *out, size_t n, const char *what, int l)
{
    snprintf(out, n, "cond.%s_l%d", what, l);
}

void cond_declare(model *m, int bucket)
{
    const cond_config *c = &m->cfg.cond;
    const int H = m->cfg.hidden, D = c->dim;
    char name[32];
    /* without a stack (mlp.h) the vector is the input: no maps into one */
    const int maps = m->cfg.layers > 0;
    if (maps && c->mode == COND_INIT) {
        for (int l = 0; l < m->cfg.layers; l++) {
            init_name(name, sizeof name, "weight_h", l);
            model_add_tensor(m, name, H, D, 0, bucket);
            init_name(name, sizeof name, "bias_h", l);
            model_add_tensor(m, name, H, 0, 1, bucket);
            if (m->cfg.cell == CELL_LSTM) {
                init_name(name, sizeof name, "weight_c", l);
                model_add_tensor(m, name, H, D, 0, bucket);
                init_name(name, sizeof name, "bias_c", l);
                model_add_tensor(m, name, H, 0, 1, bucket);
            }
        }
    } else if (maps && (c->mode == COND_INPUT || c->mode == COND_EVERY)) {
        model_add_tensor(m, "cond.weight_ih", m->gates * H, D, 0, bucket);
    }
    /* never trained: their gradient stays zero, and as biases they get no
     * weight decay, so every optimizer leaves them as the data set them */
    if (c->mode != COND_NONE && c->standardize) {
        model_add_tensor(m, "features.mean", D, 0, 1, bucket);
        model_add_tensor(m, "features.std", D, 0, 1, bucket);
    }
}

static void bind_views(model_cond *v, float *slab, const model *m)
{
    char name[32];
    memset(v, 0, sizeof *v);
    const int maps = m->cfg.layers > 0;
    if (maps && m->cfg.cond.mode == COND_INIT) {
        for (int l = 0; l < m->cfg.layers; l++) {
            init_name(name, sizeof name, "weight_h", l);
            v->w_h[l] = tensor_view(slab, m, name);
            init_name(name, sizeof name, "bias_h", l);
            v->b_h[l] = tensor_view(slab, m, name);
            if (m->cfg.cell == CELL_LSTM) {
                init_name(name, sizeof name, "weight_c", l);
                v->w_c[l] = tensor_view(slab, m, name);
                init_name(name, sizeof name, "bias_c", l);
                v->b_c[l] = tensor_view(slab, m, name);
            }
        }
    } else if (maps && m->cfg.cond.mode != COND_NONE) {
        v->w_in = tensor_view(slab, m, "cond.weight_ih");
    }
    if (m->cfg.cond.mode != COND_NONE && m->cfg.cond.standardize) {
        v->mean = tensor_view(slab, m, "features.mean");
        v->std = tensor_view(slab, m, "features.std");
    }
}

void cond_bind(model *m)
{
    bind_views(&m->cond, m->params, m);
    bind_views(&m->gcond, m->grads, m);
}

void cond_work_init(model_work *w, const model *m, int B)
{
    const size_t BH = (size_t)B * m->cfg.hidden, L = (size_t)m->cfg.layers;
    switch (L > 0 ? m->cfg.cond.mode : COND_NONE) {
    case COND_INIT:
        w->cond_dh0 = model_work_alloc(w, L * BH);
        if (m->cfg.cell == CELL_LSTM)
            w->cond_dc0 = model_work_alloc(w, L * BH);
        break;
    case COND_INPUT:
    case COND_EVERY:
        w->cond_proj = model_work_alloc(w, (size_t)B * m->gates * m->cfg.hidden);
        break;
    case COND_NONE:
        break;
    }
    if (m->cfg.cond.mode != COND_NONE && m->cfg.cond.standardize)
        w->cond_std = model_work_alloc(w, (size_t)B * m->cfg.cond.dim);
}

const float *cond_features(const model *m, model_work *w)
{
    if (!m->cfg.cond.standardize)
        return w->cond;
    const int D = m->cfg.cond.dim;
    for (int b = 0; b < w->B; b++)
        for (int d = 0; d < D; d++)
            w->cond_std[(size_t)b * D + d] =
                (w->cond[(size_t)b * D + d] - m->cond.mean[d]) / m->cond.std[d];
    return w->cond_std;
}

cond_mode cond_active(const model *m, const model_work *w)
{
    cond_mode mode = m->cfg.cond.mode;
    if (mode == COND_NONE || !w->cond)
        return COND_NONE;
    if (mode == COND_EVERY || w->cond_first)
        return mode;
    return COND_NONE;
}

/* y (B, R) = c (B, D) W^T + bias. */
static void project(float *y, const float *c, const float *W, const float *bias, int B, int R,
                    int D)
{
    if (bias)
        for (int b = 0; b < B; b++)
            memcpy(y + (size_t)b * R, bias, (size_t)R * sizeof(float));
    kern_gemm(0, 1, B, R, D, 1.0f, c, D, W, D, bias ? 1.0f : 0.0f, y, R);
}

/* dW (R, D) += dy^T c; dbias (R) += column sums of dy (B, R). */
static void project_backward(float *dW, float *dbias, const float *dy, const float *c, int B,
                             int R, int D)
{
    kern_gemm(1, 0, R, D, B, 1.0f, dy, R, c, D, 1.0f, dW, D);
    if (dbias)
        kern_sum_rows(dbias, dy, (size_t)B, R);
}

void cond_forward_state(const model *m, model_work *w, model_state *s)
{
    const int B = w->B, H = m->cfg.hidden, D = m->cfg.cond.dim;
    const size_t BH = (size_t)B * H;
    const float *c = cond_features(m, w);
    for (int l = 0; l < m->cfg.layers; l++) {
        project(s->h + l * BH, c, m->cond.w_h[l], m->cond.b_h[l], B, H, D);
        if (m->cfg.cell == CELL_LSTM)
            project(s->c + l * BH, c, m->cond.w_c[l], m->cond.b_c[l], B, H, D);
    }
}

void cond_forward_input(const model *m, model_work *w, float *gates0, int T)
{
    const int B = w->B, GH = m->gates * m->cfg.hidden;
    const size_t BG = (size_t)B * GH;
    project(w->cond_proj, cond_features(m, w), m->cond.w_in, NULL, B, GH, m->cfg.cond.dim);
    const int steps = w->cond_on == COND_EVERY ? T : 1;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < steps; t++)
        for (size_t i = 0; i < BG; i++)
            gates0[(size_t)t * BG + i] += w->cond_proj[i];
}

void cond_backward(model *m, model_work *w, const float *gates0, int T)
{
    const int B = w->B, H = m->cfg.hidden, GH = m->gates * H, D = m->cfg.cond.dim;
    const size_t BG = (size_t)B * GH, BH = (size_t)B * H;
    /* forward left the standardised condition in cond_std */
    const float *c = m->cfg.cond.standardize ? w->cond_std : w->cond;
    if (w->cond_on == COND_INIT) {
        for (int l = 0; l < m->cfg.layers; l++) {
            project_backward(m->gcond.w_h[l], m->gcond.b_h[l], w->cond_dh0 + l * BH, c, B, H, D);
            if (m->cfg.cell == CELL_LSTM)
                project_backward(m->gcond.w_c[l], m->gcond.b_c[l], w->cond_dc0 + l * BH, c, B,
                                 H, D);
        }
        return;
    }
    const float *dproj = gates0; /* input: step 0's gate gradients */
    if (w->cond_on == COND_EVERY) {
        /* sum over t of dgates[t] (b, :) times c[b]: sum the steps first */
        float *sum = w->cond_proj;
        memcpy(sum, gates0, BG * sizeof(float));
        for (int t = 1; t < T; t++) {
            const float *g = gates0 + (size_t)t * BG;
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < BG; i++)
                sum[i] += g[i];
        }
        dproj = sum;
    }
    project_backward(m->gcond.w_in, NULL, dproj, c, B, GH, D);
}

void cond_project_naive(float *y, const float *c, const float *W, const float *bias, int B,
                        int R, int D)
{
    for (int b = 0; b < B; b++)
        for (int r = 0; r < R; r++) {
            double acc = bias ? bias[r] : 0.0;
            for (int d = 0; d < D; d++)
                acc += (double)c[(size_t)b * D + d] * W[(size_t)r * D + d];
            y[(size_t)b * R + r] = (float)acc;
        }
}

void cond_project_backward_naive(float *dW, float *dbias, const float *dy, const float *c, int B,
                                 int R, int D)
{
    for (int r = 0; r < R; r++) {
        for (int d = 0; d < D; d++) {
            double acc = 0.0;
            for (int b = 0; b < B; b++)
                acc += (double)dy[(size_t)b * R + r] * c[(size_t)b * D + d];
            dW[(size_t)r * D + d] += (float)acc;
        }
        if (dbias) {
            double acc = 0.0;
            for (int b = 0; b < B; b++)
                acc += dy[(size_t)b * R + r];
            dbias[r] += (float)acc;
        }
    }
}
