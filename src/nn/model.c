/* The model's parameter slab, its carried state and its chunk workspace, and
 * the forward/backward that joins the stack to the head. See model.h. */
/* madvise(MADV_DONTNEED) for model_work_release: glibc's posix_madvise ignores
 * POSIX_MADV_DONTNEED */
#define _DEFAULT_SOURCE
#include "charnn/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "charnn/common.h"
#include "charnn/cond.h"
#include "charnn/head.h"
#include "charnn/kernels.h"
#include "charnn/mlp.h"
#include "charnn/stack.h"

int model_config_check(const model_config *cfg)
{
    if (cfg->vocab < 1)
        return cn_err("vocabulary is empty");
    if (cfg->layers < 0 || cfg->layers > MODEL_MAX_LAYERS)
        return cn_err("--layers must be between 0 and %d, got %d", MODEL_MAX_LAYERS, cfg->layers);
    if (cfg->layers == 0 && (cfg->head.kind != HEAD_CLASSIFY || cfg->cond.mode != COND_INPUT))
        return cn_err("--layers 0 (a plain MLP, no recurrent stack) is only for --task classify "
                      "--features");
    if (cfg->mlp_act != MLP_TANH && cfg->mlp_act != MLP_RELU)
        return cn_err("unknown MLP activation %d", (int)cfg->mlp_act);
    if (cfg->layers > 0 && cfg->mlp_act != MLP_TANH)
        return cn_err("--activation is for the MLP of --layers 0, not a recurrent stack");
    if (cfg->layers == 0 && cfg->bidirectional)
        return cn_err("--bidirectional needs a recurrent stack; --layers 0 has none");
    if (cfg->hidden < 1 || cfg->hidden > 65536)
        return cn_err("--hidden must be between 1 and 65536, got %d", cfg->hidden);
    if (cfg->embed < 0 || cfg->embed > 65536)
        return cn_err("--embed must be between 0 and 65536, got %d", cfg->embed);
    if (!(cfg->dropout >= 0.0f && cfg->dropout < 1.0f))
        return cn_err("--dropout must be in [0, 1), got %g", (double)cfg->dropout);
    if (cfg->cell != CELL_RNN && cfg->cell != CELL_LSTM && cfg->cell != CELL_GRU)
        return cn_err("unknown cell kind %d", (int)cfg->cell);
    if (cond_config_check(cfg) < 0)
        return -1;
    if (cfg->bidirectional != 0 && cfg->bidirectional != 1)
        return cn_err("bidirectional must be 0 or 1, got %d", cfg->bidirectional);
    if (cfg->bidirectional && cfg->cond.mode != COND_NONE)
        return cn_err("a bidirectional stack takes no condition (--cond-mode)");
    const head_ops *head = head_for(cfg->head.kind);
    if (!head)
        return cn_err("unknown head kind %d", (int)cfg->head.kind);
    return head->check(cfg);
}

int model_directions(const model_config *cfg)
{
    return cfg->bidirectional ? 2 : 1;
}

int model_top_width(const model_config *cfg)
{
    return model_directions(cfg) * cfg->hidden;
}

static float *slab_alloc(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = cn_xaligned_alloc(64, bytes);
    memset(p, 0, bytes);
    return p;
}

/* Append a tensor to the table; returns its offset. */
static size_t add_tensor(model *m, const char *name, int rows, int cols, int transposed,
                         int is_bias, int bucket)
{
    CHARNN_ASSERT(m->n_tensors < MODEL_MAX_TENSORS);
    model_tensor *t = &m->tensor[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = m->n_params;
    t->ndim = cols > 0 ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols > 0 ? cols : 1;
    t->size = (size_t)rows * (size_t)t->shape[1];
    t->transposed = transposed;
    t->is_bias = is_bias;
    t->bucket = bucket;
    m->n_params += t->size;
    return t->offset;
}

void model_head_add_tensor(model *m, const char *name, int rows, int cols, int is_bias)
{
    CHARNN_ASSERT(m->head.n_tensors < HEAD_MAX_TENSORS);
    m->head.tensor[m->head.n_tensors++] = m->n_tensors;
    add_tensor(m, name, rows, cols, 0, is_bias, 0);
}

void model_head_add_transposed(model *m, const char *name, int rows, int cols)
{
    CHARNN_ASSERT(m->head.n_tensors < HEAD_MAX_TENSORS);
    m->head.tensor[m->head.n_tensors++] = m->n_tensors;
    add_tensor(m, name, rows, cols, 1, 0, 0);
}

void model_add_tensor(model *m, const char *name, int rows, int cols, int is_bias, int bucket)
{
    add_tensor(m, name, rows, cols, 0, is_bias, bucket);
}

void model_build(model *m, const model_config *cfg)
{
    CHARNN_ASSERT(model_config_check(cfg) == 0);
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->gates = cell_gates(cfg->cell);
    const int V = cfg->vocab, H = cfg->hidden, E = cfg->embed, L = cfg->layers;
    const int GH = m->gates * H;
    const int dirs = model_directions(cfg);
    size_t off_emb = 0;
    size_t off[MODEL_MAX_LAYERS][2][4];
    char name[32];
    const char *pre = "";

    /* Slab order = order in which backward finishes: head, top layer ... layer 0. */
    m->head.ops = head_for(cfg->head.kind);
    m->head.outputs = m->head.ops->outputs(cfg);
    m->n_buckets = L > 0 ? 1 + L : 2;
    m->bucket_offset[0] = 0;
    m->head.ops->declare(m);
    m->bucket_size[0] = m->n_params;
    if (L == 0) {
        m->bucket_offset[1] = m->n_params;
        mlp_declare(m, 1);
        cond_declare(m, 1);
        m->bucket_size[1] = m->n_params - m->bucket_offset[1];
    }
    if (m->head.ops->stack_prefix)
        pre = m->head.ops->stack_prefix;
    for (int l = L - 1; l >= 0; l--) {
        int bucket = 1 + (L - 1 - l);
        int D = l == 0 ? (E > 0 ? E : V) : dirs * H;
        m->bucket_offset[bucket] = m->n_params;
        for (int d = 0; d < dirs; d++) {
            const char *sfx = d ? "_reverse" : "";
            snprintf(name, sizeof name, "%sweight_ih_l%d%s", pre, l, sfx);
            off[l][d][0] = add_tensor(m, name, GH, D, l == 0 && E == 0, 0, bucket);
            snprintf(name, sizeof name, "%sweight_hh_l%d%s", pre, l, sfx);
            off[l][d][1] = add_tensor(m, name, GH, H, 0, 0, bucket);
            snprintf(name, sizeof name, "%sbias_ih_l%d%s", pre, l, sfx);
            off[l][d][2] = add_tensor(m, name, GH, 0, 0, 1, bucket);
            snprintf(name, sizeof name, "%sbias_hh_l%d%s", pre, l, sfx);
            off[l][d][3] = add_tensor(m, name, GH, 0, 0, 1, bucket);
        }
        if (l == 0 && E > 0)
            off_emb = add_tensor(m, m->head.ops->embed_name ? m->head.ops->embed_name
                                                            : "embedding.weight",
                                 V, E, 0, 0, bucket);
        if (l == 0)
            cond_declare(m, bucket);
        m->bucket_size[bucket] = m->n_params - m->bucket_offset[bucket];
    }

    m->params = slab_alloc(m->n_params);
    m->grads = slab_alloc(m->n_params);
    for (int i = 0; i < m->head.n_tensors; i++) {
        const model_tensor *t = &m->tensor[m->head.tensor[i]];
        m->head.p[i] = m->params + t->offset;
        m->head.g[i] = m->grads + t->offset;
    }
    if (E > 0) {
        m->embed = m->params + off_emb;
        m->gembed = m->grads + off_emb;
    }
    cond_bind(m);
    if (L == 0)
        mlp_bind(m);
    for (int l = 0; l < L; l++) {
        for (int d = 0; d < dirs; d++) {
            const size_t *o = off[l][d];
            model_layer p = {m->params + o[0], m->params + o[1], m->params + o[2],
                             m->params + o[3]};
            model_layer g = {m->grads + o[0], m->grads + o[1], m->grads + o[2], m->grads + o[3]};
            if (d == 0) {
                m->layer[l] = p;
                m->glayer[l] = g;
            } else {
                m->layer_rev[l] = p;
                m->glayer_rev[l] = g;
            }
        }
    }
}

void model_free(model *m)
{
    free(m->params);
    free(m->grads);
    memset(m, 0, sizeof *m);
}

void model_init_uniform(model *m, float scale, uint64_t seed, float forget_bias)
{
    cn_rng r;
    cn_rng_seed(&r, seed);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = (float)((2.0 * cn_rng_uniform(&r) - 1.0) * scale);
    if (m->cfg.cell == CELL_LSTM && !isnan(forget_bias)) {
        /* every LSTM bias by its PyTorch name: the stack's and a head's own
         * stack's (seq2seq's decoder.bias_ih_l{k}) */
        const int H = m->cfg.hidden;
        for (int i = 0; i < m->n_tensors; i++) {
            const model_tensor *t = &m->tensor[i];
            if (!strstr(t->name, "bias_ih_l") && !strstr(t->name, "bias_hh_l"))
                continue;
            for (int j = H; j < 2 * H; j++)
                m->params[t->offset + j] = 0.5f * forget_bias;
        }
    }
}

const model_tensor *model_find_tensor(const model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensor[i].name, name) == 0)
            return &m->tensor[i];
    return NULL;
}

void model_fill_decay_mask(const model *m, uint8_t *mask)
{
    for (int i = 0; i < m->n_tensors; i++)
        memset(mask + m->tensor[i].offset, m->tensor[i].is_bias ? 0 : 1, m->tensor[i].size);
}

void model_zero_grads(model *m)
{
    memset(m->grads, 0, m->n_params * sizeof(float));
}

void model_state_init(model_state *s, const model_config *cfg, int B)
{
    s->layers = cfg->layers * model_directions(cfg);
    s->batch = B;
    s->hidden = cfg->hidden;
    size_t n = (size_t)s->layers * B * cfg->hidden;
    s->h = cn_xcalloc(n, sizeof(float));
    s->c = cfg->cell == CELL_LSTM ? cn_xcalloc(n, sizeof(float)) : NULL;
}

void model_state_reset(model_state *s)
{
    size_t n = (size_t)s->layers * s->batch * s->hidden;
    memset(s->h, 0, n * sizeof(float));
    if (s->c)
        memset(s->c, 0, n * sizeof(float));
}

void model_state_free(model_state *s)
{
    free(s->h);
    free(s->c);
    memset(s, 0, sizeof *s);
}

float *model_work_alloc(model_work *w, size_t n)
{
    CHARNN_ASSERT(w->n_owned < (int)(sizeof w->owned / sizeof w->owned[0]));
    float *p = slab_alloc(n);
    w->owned[w->n_owned].p = p;
    w->owned[w->n_owned].n = n;
    w->n_owned++;
    return p;
}

void model_work_init_stack(model_work *w, model_work *owner, const model *m, int T, int B)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, E = m->cfg.embed;
    const size_t GH = (size_t)m->gates * H, N = (size_t)T * B;
    if (w != owner)
        memset(w, 0, sizeof *w);
    w->T = T;
    w->B = B;
    for (int l = 0; l < L; l++) {
        w->gates[l] = model_work_alloc(owner, N * GH);
        w->hs[l] = model_work_alloc(owner, (N + B) * H);
        if (m->cfg.cell == CELL_LSTM)
            w->cs[l] = model_work_alloc(owner, (N + B) * H);
        if (m->cfg.cell == CELL_GRU)
            w->hn[l] = model_work_alloc(owner, N * H);
        if (m->cfg.dropout > 0.0f && l < L - 1)
            w->dropped[l] = model_work_alloc(owner, N * model_top_width(&m->cfg));
    }
    if (m->cfg.bidirectional) {
        for (int l = 0; l < L; l++) {
            w->gates_rev[l] = model_work_alloc(owner, N * GH);
            w->hs_rev[l] = model_work_alloc(owner, (N + B) * H);
            if (m->cfg.cell == CELL_LSTM)
                w->cs_rev[l] = model_work_alloc(owner, (N + B) * H);
            if (m->cfg.cell == CELL_GRU)
                w->hn_rev[l] = model_work_alloc(owner, N * H);
            w->out[l] = model_work_alloc(owner, N * 2 * H);
        }
        w->rev_pos = (int32_t *)(void *)model_work_alloc(owner, N);
        if (E == 0)
            w->x_rev = (int32_t *)(void *)model_work_alloc(owner, N);
        w->rev_in = model_work_alloc(owner, N * (size_t)(2 * H > E ? 2 * H : E));
        w->dh_dir = model_work_alloc(owner, 2 * N * H);
    }
    if (E > 0)
        w->emb = model_work_alloc(owner, N * E);
    w->hproj = model_work_alloc(owner, (size_t)B * GH);
    w->wpack_floats = cell_wpack_floats(m->cfg.cell, H);
    w->wpack = model_work_alloc(owner, w->wpack_floats);
    if (m->cfg.cell == CELL_GRU)
        w->dgh_n = model_work_alloc(owner, N * H);
    const int top = model_top_width(&m->cfg);
    size_t dw = (size_t)(H > E ? H : E);
    w->dh_a = model_work_alloc(owner, N * (size_t)(top > E ? top : E));
    if (stack_needs_second_dh(&m->cfg))
        w->dh_b = model_work_alloc(owner, N * dw);
    w->dh_next = model_work_alloc(owner, (size_t)B * H);
    w->dc_next = model_work_alloc(owner, (size_t)B * H);
}

void model_work_init(model_work *w, const model *m, int T, int B)
{
    memset(w, 0, sizeof *w);
    if (m->cfg.layers > 0)
        model_work_init_stack(w, w, m, T, B);
    else
        mlp_work_init(w, m, T, B);
    cond_work_init(w, m, B);
    w->head.K = m->head.outputs;
    m->head.ops->work_init(w, m, T, B);
}

void model_work_free(model_work *w)
{
    for (int i = 0; i < w->n_owned; i++)
        free(w->owned[i].p);
    free(w->head_ctx);
    memset(w, 0, sizeof *w);
}

void model_work_release(model_work *w)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < w->n_owned; i++) {
        /* only whole pages inside the buffer: the allocator's neighbours stay */
        uintptr_t a = ((uintptr_t)w->owned[i].p + page - 1) / page * page;
        uintptr_t e = ((uintptr_t)(w->owned[i].p + w->owned[i].n)) / page * page;
        if (e > a)
            (void)madvise((void *)a, e - a, MADV_DONTNEED); /* advice; failure costs memory only */
    }
}

double model_forward(const model *m, model_work *w, model_state *s, const int32_t *x,
                     const int32_t *y, int T, int train, uint64_t dropout_key)
{
    const float *top = m->cfg.layers > 0 ? stack_forward(m, w, s, x, T, train, dropout_key)
                                          : mlp_forward(m, w, T);
    return m->head.ops->forward(m, w, top, y, T);
}

void model_backward(model *m, model_work *w, const int32_t *x, const int32_t *y,
                    float grad_scale, model_bucket_fn on_bucket, void *ctx)
{
    const int T = w->t_used;
    const float *top = m->cfg.layers > 0 ? stack_top(m, w) : w->mlp_h;
    CHARNN_ASSERT(y != NULL);
    m->head.ops->backward(m, w, top, y, T, grad_scale, w->dh_a);
    if (on_bucket)
        on_bucket(ctx, 0);
    if (m->cfg.layers > 0)
        stack_backward(m, w, x, w->dh_a, on_bucket, ctx);
    else
        mlp_backward(m, w, w->dh_a, on_bucket, ctx);
}
