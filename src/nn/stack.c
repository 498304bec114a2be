/* The recurrent stack over one chunk. Per layer: the input projection for all
 * T steps is one GEMM (or, for one-hot input, a row gather), the recurrence
 * runs in the cell, and in backward the weight gradients are one GEMM each
 * over all T*B positions. See stack.h. */
#include "charnn/stack.h"

#include <string.h>

#include "charnn/common.h"
#include "charnn/cond.h"
#include "charnn/kernels.h"

static void fill_rows(float *y, const float *row, size_t N, int D)
{
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++)
        memcpy(y + n * D, row, (size_t)D * sizeof(float));
}

/* The input of layer l for the last forward: (T, B, D), D = E or the top width
 * of the layer below. */
static const float *layer_input(const model *m, const model_work *w, int l)
{
    if (l == 0)
        return w->emb; /* NULL with one-hot input */
    if (w->dropout_on)
        return w->dropped[l - 1];
    if (m->cfg.bidirectional)
        return w->out[l - 1];
    return w->hs[l - 1] + (size_t)w->B * m->cfg.hidden;
}

static int layer_input_width(const model *m, int l)
{
    return l == 0 ? m->cfg.embed : model_top_width(&m->cfg);
}

/* Direction d (0 forward, 1 reverse) of layer l. */
static cell_chunk layer_chunk(const model *m, model_work *w, int l, int d, int T)
{
    const model_layer *p = d ? &m->layer_rev[l] : &m->layer[l];
    /* sized for the precision at allocation: bf16 panels need half of FP32's */
    CHARNN_ASSERT(w->wpack_floats >= cell_wpack_floats(m->cfg.cell, m->cfg.hidden));
    cell_chunk c = {
        .kind = m->cfg.cell,
        .T = T,
        .B = w->B,
        .H = m->cfg.hidden,
        .w_hh = p->w_hh,
        .b_hh = p->b_hh,
        .gates = d ? w->gates_rev[l] : w->gates[l],
        .hs = d ? w->hs_rev[l] : w->hs[l],
        .cs = d ? w->cs_rev[l] : w->cs[l],
        .hn = d ? w->hn_rev[l] : w->hn[l],
        .hproj = w->hproj,
        .wpack = w->wpack,
        .len = w->len,
    };
    return c;
}

/* Direction d of layer l over input in (T, B, D) (NULL: the one-hot tokens
 * xs), both in the direction's time; starts from and updates its slice of s. */
static void direction_forward(const model *m, model_work *w, model_state *s, int l, int d, int T,
                              const float *in, int D, const int32_t *xs)
{
    const int H = m->cfg.hidden, GH = m->gates * H, B = w->B;
    const size_t N = (size_t)T * B, BH = (size_t)B * H;
    const model_layer *p = d ? &m->layer_rev[l] : &m->layer[l];
    const size_t slice = (size_t)(l * model_directions(&m->cfg) + d) * BH;
    cell_chunk c = layer_chunk(m, w, l, d, T);
    if (!in) {
        kern_gather_rows(c.gates, p->w_ih, xs, N, GH, p->b_ih);
    } else {
        fill_rows(c.gates, p->b_ih, N, GH);
        kern_gemm(0, 1, (int)N, GH, D, 1.0f, in, D, p->w_ih, D, 1.0f, c.gates, GH);
    }
    if (l == 0 && d == 0 && (w->cond_on == COND_INPUT || w->cond_on == COND_EVERY))
        cond_forward_input(m, w, c.gates, T);
    memcpy(c.hs, s->h + slice, BH * sizeof(float));
    if (m->cfg.cell == CELL_LSTM)
        memcpy(c.cs, s->c + slice, BH * sizeof(float));
    cell_forward(&c);
    memcpy(s->h + slice, c.hs + (size_t)T * BH, BH * sizeof(float));
    if (m->cfg.cell == CELL_LSTM)
        memcpy(s->c + slice, c.cs + (size_t)T * BH, BH * sizeof(float));
}

/* dst[n] = src[pos[n]] for rows of D floats. */
static void permute_rows(float *dst, const float *src, const int32_t *pos, size_t N, int D)
{
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++)
        memcpy(dst + n * D, src + (size_t)pos[n] * D, (size_t)D * sizeof(float));
}

/* Each position's place in reversed time: row b's t < len[b] <-> len[b]-1-t. */
static void fill_rev_pos(model_work *w, int T)
{
    const int B = w->B;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            const int n = w->len ? w->len[b] : T;
            w->rev_pos[(size_t)t * B + b] = (int32_t)((size_t)(t < n ? n - 1 - t : t) * B + b);
        }
}

const float *stack_forward(const model *m, model_work *w, model_state *s, const int32_t *x,
                           int T, int train, uint64_t dropout_key)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, E = m->cfg.embed, bi = m->cfg.bidirectional;
    const int B = w->B, W = model_top_width(&m->cfg);
    const size_t N = (size_t)T * B, BH = (size_t)B * H;
    CHARNN_ASSERT(T >= 1 && T <= w->T && s->batch == B && s->layers == L * (bi ? 2 : 1));
    if (w->len)
        for (int b = 0; b < B; b++)
            CHARNN_ASSERT(w->len[b] >= 0 && w->len[b] <= T);
    w->t_used = T;
    w->dropout_on = train && m->cfg.dropout > 0.0f && L > 1;
    w->cond_on = cond_active(m, w);
    if (w->cond_on == COND_INIT)
        cond_forward_state(m, w, s);
    if (E > 0)
        kern_gather_rows(w->emb, m->embed, x, N, E, NULL);
    if (bi) {
        fill_rev_pos(w, T);
        if (E == 0)
            for (size_t n = 0; n < N; n++)
                w->x_rev[n] = x[w->rev_pos[n]];
    }
    for (int l = 0; l < L; l++) {
        const float *in = layer_input(m, w, l);
        const int D = layer_input_width(m, l);
        direction_forward(m, w, s, l, 0, T, in, D, x);
        const float *out = w->hs[l] + BH;
        if (bi) {
            if (in)
                permute_rows(w->rev_in, in, w->rev_pos, N, D);
            direction_forward(m, w, s, l, 1, T, in ? w->rev_in : NULL, D, w->x_rev);
            const float *fwd = w->hs[l] + BH, *rev = w->hs_rev[l] + BH;
            float *cat = w->out[l];
#pragma omp parallel for schedule(static)
            for (size_t n = 0; n < N; n++) {
                memcpy(cat + n * 2 * H, fwd + n * H, (size_t)H * sizeof(float));
                memcpy(cat + n * 2 * H + H, rev + (size_t)w->rev_pos[n] * H,
                       (size_t)H * sizeof(float));
            }
            out = cat;
        }
        if (w->dropout_on && l < L - 1) {
            w->dropout_key[l] = cn_hash64(dropout_key, (uint64_t)l);
            memcpy(w->dropped[l], out, N * W * sizeof(float));
            kern_dropout(w->dropped[l], N * W, m->cfg.dropout, w->dropout_key[l]);
        }
    }
    return stack_top(m, w);
}

const float *stack_top(const model *m, const model_work *w)
{
    const int L = m->cfg.layers;
    if (m->cfg.bidirectional)
        return w->out[L - 1];
    return w->hs[L - 1] + (size_t)w->B * m->cfg.hidden;
}

int stack_needs_second_dh(const model_config *cfg)
{
    /* mirrors spare_buffer: the RNN keeps no per-step buffer besides h and its
     * gates, so its gradients ping-pong; a wide embedding (E > H) under a
     * single layer has nowhere else to go */
    if (cfg->bidirectional)
        return 0; /* its layers write the gradient below into dh_a */
    return (cfg->cell == CELL_RNN && (cfg->layers > 1 || cfg->embed > 0)) ||
           (cfg->embed > cfg->hidden && cfg->layers == 1);
}

/* A (T*B, cols) buffer that is free once layer l's cell backward has run and
 * differs from dh (the gradient flowing into layer l): the LSTM's cell states
 * or the GRU's kept W_hn h, else whichever head-sized buffer dh is not. The
 * hidden states stay intact (the streams trace reads them after a step). */
static float *spare_buffer(const model *m, model_work *w, int l, const float *dh, int cols)
{
    if (cols <= m->cfg.hidden) {
        if (m->cfg.cell == CELL_LSTM)
            return w->cs[l];
        if (m->cfg.cell == CELL_GRU)
            return w->hn[l];
    }
    float *other = dh == w->dh_a ? w->dh_b : w->dh_a;
    CHARNN_ASSERT(other != NULL);
    return other;
}

/* Backward of direction d of layer l from dh (T, B, H) (destroyed), both in
 * the direction's time, with the layer's input in (NULL: the one-hot tokens
 * xs) as in direction_forward: adds the direction's parameter gradients and
 * leaves dL/d(x-projection) in its gates (GRU: and dgh_n). */
static void direction_backward(model *m, model_work *w, int l, int d, int T, float *dh,
                               const float *in, int D, const int32_t *xs)
{
    const int H = m->cfg.hidden, GH = m->gates * H, B = w->B, gru = m->cfg.cell == CELL_GRU;
    const int lstm = m->cfg.cell == CELL_LSTM;
    const size_t N = (size_t)T * B, BH = (size_t)B * H;
    const size_t slice = (size_t)(l * model_directions(&m->cfg) + d) * BH;
    model_layer *gp = d ? &m->glayer_rev[l] : &m->glayer[l];
    float *bsum = w->hproj; /* (GH) column sums of the gate gradients */
    /* cond init replaced the starting state: its gradient goes to the maps */
    const int cond_init = w->cond_on == COND_INIT;
    float *dh0 = cond_init ? w->cond_dh0 : w->dh0, *dc0 = cond_init ? w->cond_dc0 : w->dc0;
    cell_chunk c = layer_chunk(m, w, l, d, T);
    cell_grads g = {
        .dh = dh,
        .dgh_n = gru ? w->dgh_n : NULL,
        .dh_next = w->dh_next,
        .dc_next = w->dc_next,
        .dh_record = d ? NULL : w->dh_record[l],
        .dc_record = d ? NULL : w->dc_record[l],
        .dh_final = w->dh_final ? w->dh_final + slice : NULL,
        .dc_final = w->dc_final && lstm ? w->dc_final + slice : NULL,
        .dh0 = dh0 ? dh0 + slice : NULL,
        .dc0 = dc0 && lstm ? dc0 + slice : NULL,
        .progress = w->progress,
        .progress_ctx = w->progress_ctx,
    };
    cell_backward(&c, &g);
    /* dgx (N, GH): the gradient of both projections, except the GRU's n part
     * of the h-projection, which is dgh_n (N, H) */
    const float *dgx = c.gates;
    if (!in)
        kern_scatter_add_rows(gp->w_ih, dgx, xs, N, GH);
    else
        kern_gemm(1, 0, GH, D, (int)N, 1.0f, dgx, GH, in, D, 1.0f, gp->w_ih, D);
    memset(bsum, 0, (size_t)GH * sizeof(float));
    kern_sum_rows(bsum, dgx, N, GH);
    for (int k = 0; k < GH; k++)
        gp->b_ih[k] += bsum[k];
    if (gru) {
        kern_gemm(1, 0, 2 * H, H, (int)N, 1.0f, dgx, GH, c.hs, H, 1.0f, gp->w_hh, H);
        kern_gemm(1, 0, H, H, (int)N, 1.0f, w->dgh_n, H, c.hs, H, 1.0f,
                  gp->w_hh + (size_t)2 * H * H, H);
        for (int k = 0; k < 2 * H; k++)
            gp->b_hh[k] += bsum[k];
        kern_sum_rows(gp->b_hh + 2 * H, w->dgh_n, N, H);
    } else {
        kern_gemm(1, 0, GH, H, (int)N, 1.0f, dgx, GH, c.hs, H, 1.0f, gp->w_hh, H);
        for (int k = 0; k < GH; k++)
            gp->b_hh[k] += bsum[k];
    }
}

static void stack_backward_bidir(model *m, model_work *w, const int32_t *x, float *dtop,
                                 model_bucket_fn on_bucket, void *ctx)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, E = m->cfg.embed, GH = m->gates * H;
    const int B = w->B, T = w->t_used;
    const size_t N = (size_t)T * B;
    float *dh = dtop;               /* (N, 2H) dL/d(output of layer l) */
    float *dfwd = w->dh_dir;        /* (N, H) forward time */
    float *drev = w->dh_dir + N * H; /* (N, H) reversed time */
    for (int l = L - 1; l >= 0; l--) {
#pragma omp parallel for schedule(static)
        for (size_t n = 0; n < N; n++) {
            memcpy(dfwd + n * H, dh + n * 2 * H, (size_t)H * sizeof(float));
            memcpy(drev + (size_t)w->rev_pos[n] * H, dh + n * 2 * H + H, (size_t)H * sizeof(float));
        }
        const float *in = layer_input(m, w, l);
        const int D = layer_input_width(m, l);
        /* the gradient below goes to dh_a (wide enough for 2H and E), free
         * once dh is split */
        float *dlow = w->dh_a;
        direction_backward(m, w, l, 0, T, dfwd, in, D, x);
        if (in)
            kern_gemm(0, 0, (int)N, D, GH, 1.0f, w->gates[l], GH, m->layer[l].w_ih, D, 0.0f, dlow,
                      D);
        if (in)
            permute_rows(w->rev_in, in, w->rev_pos, N, D);
        direction_backward(m, w, l, 1, T, drev, in ? w->rev_in : NULL, D, w->x_rev);
        if (in) {
            float *r = w->rev_in; /* (N, D) the reverse's input gradient, reversed time */
            kern_gemm(0, 0, (int)N, D, GH, 1.0f, w->gates_rev[l], GH, m->layer_rev[l].w_ih, D,
                      0.0f, r, D);
#pragma omp parallel for schedule(static)
            for (size_t n = 0; n < N; n++) {
                const float *src = r + (size_t)w->rev_pos[n] * D;
                float *dst = dlow + n * D;
                for (int j = 0; j < D; j++)
                    dst[j] += src[j];
            }
        }
        if (l > 0) {
            if (w->dropout_on)
                kern_dropout_backward(dlow, N * D, m->cfg.dropout, w->dropout_key[l - 1]);
            dh = dlow;
        } else if (E > 0) {
            kern_scatter_add_rows(m->gembed, dlow, x, N, E);
        }
        if (on_bucket)
            on_bucket(ctx, 1 + (L - 1 - l));
        if (w->progress)
            w->progress(w->progress_ctx);
    }
}

void stack_backward(model *m, model_work *w, const int32_t *x, float *dtop,
                    model_bucket_fn on_bucket, void *ctx)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, E = m->cfg.embed, GH = m->gates * H;
    const int B = w->B, T = w->t_used;
    const size_t N = (size_t)T * B;
    float *dh = dtop;
    if (m->cfg.bidirectional) {
        stack_backward_bidir(m, w, x, dtop, on_bucket, ctx);
        return;
    }
    /* cond init replaced the starting state: its gradient goes to the maps
     * (direction_backward), the state's own is zero */
    const size_t BH = (size_t)B * H;
    if (w->cond_on == COND_INIT && w->dh0)
        memset(w->dh0, 0, (size_t)L * BH * sizeof(float));
    if (w->cond_on == COND_INIT && w->dc0 && m->cfg.cell == CELL_LSTM)
        memset(w->dc0, 0, (size_t)L * BH * sizeof(float));
    for (int l = L - 1; l >= 0; l--) {
        const model_layer *p = &m->layer[l];
        int D = l == 0 ? E : H;
        direction_backward(m, w, l, 0, T, dh, layer_input(m, w, l), D, x);
        const float *dgx = w->gates[l];
        if (l > 0) {
            float *dlow = spare_buffer(m, w, l, dh, H);
            kern_gemm(0, 0, (int)N, H, GH, 1.0f, dgx, GH, p->w_ih, H, 0.0f, dlow, H);
            if (w->dropout_on)
                kern_dropout_backward(dlow, N * H, m->cfg.dropout, w->dropout_key[l - 1]);
            dh = dlow;
        } else if (E > 0) {
            float *demb = spare_buffer(m, w, l, dh, E);
            kern_gemm(0, 0, (int)N, E, GH, 1.0f, dgx, GH, p->w_ih, E, 0.0f, demb, E);
            kern_scatter_add_rows(m->gembed, demb, x, N, E);
        }
        if (l == 0 && w->cond_on != COND_NONE)
            cond_backward(m, w, dgx, T);
        if (on_bucket)
            on_bucket(ctx, 1 + (L - 1 - l));
        if (w->progress)
            w->progress(w->progress_ctx);
    }
}
