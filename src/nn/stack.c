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

/* The input of layer l for the last forward: (T, B, D). */
static const float *layer_input(const model *m, const model_work *w, int l)
{
    if (l == 0)
        return w->emb; /* NULL with one-hot input */
    if (w->dropout_on)
        return w->dropped[l - 1];
    return w->hs[l - 1] + (size_t)w->B * m->cfg.hidden;
}

static cell_chunk layer_chunk(const model *m, model_work *w, int l, int T)
{
    cell_chunk c = {
        .kind = m->cfg.cell,
        .T = T,
        .B = w->B,
        .H = m->cfg.hidden,
        .w_hh = m->layer[l].w_hh,
        .b_hh = m->layer[l].b_hh,
        .gates = w->gates[l],
        .hs = w->hs[l],
        .cs = w->cs[l],
        .hn = w->hn[l],
        .hproj = w->hproj,
        .wpack = w->wpack,
        .len = w->len,
    };
    return c;
}

const float *stack_forward(const model *m, model_work *w, model_state *s, const int32_t *x,
                           int T, int train, uint64_t dropout_key)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, E = m->cfg.embed, GH = m->gates * H;
    const int B = w->B;
    const size_t N = (size_t)T * B, BH = (size_t)B * H;
    CHARNN_ASSERT(T >= 1 && T <= w->T && s->batch == B);
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
    for (int l = 0; l < L; l++) {
        const model_layer *p = &m->layer[l];
        if (l == 0 && E == 0) {
            kern_gather_rows(w->gates[0], p->w_ih, x, N, GH, p->b_ih);
        } else {
            int D = l == 0 ? E : H;
            fill_rows(w->gates[l], p->b_ih, N, GH);
            kern_gemm(0, 1, (int)N, GH, D, 1.0f, layer_input(m, w, l), D, p->w_ih, D, 1.0f,
                      w->gates[l], GH);
        }
        if (l == 0 && (w->cond_on == COND_INPUT || w->cond_on == COND_EVERY))
            cond_forward_input(m, w, w->gates[0], T);
        memcpy(w->hs[l], s->h + l * BH, BH * sizeof(float));
        if (m->cfg.cell == CELL_LSTM)
            memcpy(w->cs[l], s->c + l * BH, BH * sizeof(float));
        cell_chunk c = layer_chunk(m, w, l, T);
        cell_forward(&c);
        memcpy(s->h + l * BH, w->hs[l] + (size_t)T * BH, BH * sizeof(float));
        if (m->cfg.cell == CELL_LSTM)
            memcpy(s->c + l * BH, w->cs[l] + (size_t)T * BH, BH * sizeof(float));
        if (w->dropout_on && l < L - 1) {
            w->dropout_key[l] = cn_hash64(dropout_key, (uint64_t)l);
            memcpy(w->dropped[l], w->hs[l] + BH, N * H * sizeof(float));
            kern_dropout(w->dropped[l], N * H, m->cfg.dropout, w->dropout_key[l]);
        }
    }
    return w->hs[L - 1] + BH;
}

int stack_needs_second_dh(const model_config *cfg)
{
    /* mirrors spare_buffer: the RNN keeps no per-step buffer besides h and its
     * gates, so its gradients ping-pong; a wide embedding (E > H) under a
     * single layer has nowhere else to go */
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

void stack_backward(model *m, model_work *w, const int32_t *x, float *dtop,
                    model_bucket_fn on_bucket, void *ctx)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, E = m->cfg.embed, GH = m->gates * H;
    const int B = w->B, T = w->t_used, gru = m->cfg.cell == CELL_GRU;
    const size_t N = (size_t)T * B, BH = (size_t)B * H;
    float *dh = dtop;
    float *bsum = w->hproj; /* (GH) column sums of the gate gradients */
    /* cond init replaced the starting state: its gradient goes to the maps */
    const int cond_init = w->cond_on == COND_INIT;
    float *dh0 = cond_init ? w->cond_dh0 : w->dh0, *dc0 = cond_init ? w->cond_dc0 : w->dc0;
    if (cond_init && w->dh0)
        memset(w->dh0, 0, (size_t)L * BH * sizeof(float));
    if (cond_init && w->dc0 && m->cfg.cell == CELL_LSTM)
        memset(w->dc0, 0, (size_t)L * BH * sizeof(float));
    for (int l = L - 1; l >= 0; l--) {
        const model_layer *p = &m->layer[l];
        model_layer *gp = &m->glayer[l];
        cell_chunk c = layer_chunk(m, w, l, T);
        cell_grads g = {
            .dh = dh,
            .dgh_n = gru ? w->dgh_n : NULL,
            .dh_next = w->dh_next,
            .dc_next = w->dc_next,
            .dh_record = w->dh_record[l],
            .dc_record = w->dc_record[l],
            .dh_final = w->dh_final ? w->dh_final + l * BH : NULL,
            .dc_final = w->dc_final && m->cfg.cell == CELL_LSTM ? w->dc_final + l * BH : NULL,
            .dh0 = dh0 ? dh0 + l * BH : NULL,
            .dc0 = dc0 && m->cfg.cell == CELL_LSTM ? dc0 + l * BH : NULL,
            .progress = w->progress,
            .progress_ctx = w->progress_ctx,
        };
        cell_backward(&c, &g);
        /* dgx (N, GH): the gradient of both projections, except the GRU's n part
         * of the h-projection, which is dgh_n (N, H) */
        const float *dgx = w->gates[l];
        const float *in = layer_input(m, w, l);
        int D = l == 0 ? E : H;
        if (l == 0 && E == 0)
            kern_scatter_add_rows(gp->w_ih, dgx, x, N, GH);
        else
            kern_gemm(1, 0, GH, D, (int)N, 1.0f, dgx, GH, in, D, 1.0f, gp->w_ih, D);
        memset(bsum, 0, (size_t)GH * sizeof(float));
        kern_sum_rows(bsum, dgx, N, GH);
        for (int k = 0; k < GH; k++)
            gp->b_ih[k] += bsum[k];
        if (gru) {
            kern_gemm(1, 0, 2 * H, H, (int)N, 1.0f, dgx, GH, w->hs[l], H, 1.0f, gp->w_hh, H);
            kern_gemm(1, 0, H, H, (int)N, 1.0f, w->dgh_n, H, w->hs[l], H, 1.0f,
                      gp->w_hh + (size_t)2 * H * H, H);
            for (int k = 0; k < 2 * H; k++)
                gp->b_hh[k] += bsum[k];
            kern_sum_rows(gp->b_hh + 2 * H, w->dgh_n, N, H);
        } else {
            kern_gemm(1, 0, GH, H, (int)N, 1.0f, dgx, GH, w->hs[l], H, 1.0f, gp->w_hh, H);
            for (int k = 0; k < GH; k++)
                gp->b_hh[k] += bsum[k];
        }
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
