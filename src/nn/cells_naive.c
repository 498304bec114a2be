/* Naive references for the cells: the same contract as the fast kernels in
 * {rnn,lstm,gru}_{forward,backward}.c, written as plain loops (products
 * accumulated in double, no BLAS, no threads) so the tests can compare. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/cells.h"
#include "charnn/common.h"

static double sigm(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

/* out[k] = sum_j h[j] * W[k][j] for one stream; W is (GH, H). */
static void matvec_t(const float *W, const float *h, int GH, int H, double *out)
{
    for (int k = 0; k < GH; k++) {
        double acc = 0.0;
        for (int j = 0; j < H; j++)
            acc += (double)W[(size_t)k * H + j] * h[j];
        out[k] = acc;
    }
}

void cell_forward_naive(const cell_chunk *c)
{
    const int B = c->B, H = c->H, G = cell_gates(c->kind), GH = G * H;
    double *hp = cn_xmalloc((size_t)GH * sizeof *hp);
    for (int t = 0; t < c->T; t++) {
        for (int b = 0; b < B; b++) {
            const float *hprev = c->hs + ((size_t)t * B + b) * H;
            float *hout = c->hs + ((size_t)(t + 1) * B + b) * H;
            float *g = c->gates + ((size_t)t * B + b) * GH;
            if (c->len && t >= c->len[b]) { /* past the row's length: hold the state */
                memcpy(hout, hprev, (size_t)H * sizeof(float));
                if (c->kind == CELL_LSTM)
                    memcpy(c->cs + ((size_t)(t + 1) * B + b) * H,
                           c->cs + ((size_t)t * B + b) * H, (size_t)H * sizeof(float));
                continue;
            }
            matvec_t(c->w_hh, hprev, GH, H, hp);
            for (int k = 0; k < GH; k++)
                hp[k] += c->b_hh[k];
            for (int j = 0; j < H; j++) {
                if (c->kind == CELL_RNN) {
                    double h = tanh(g[j] + hp[j]);
                    g[j] = (float)h;
                    hout[j] = (float)h;
                } else if (c->kind == CELL_LSTM) {
                    const float *cprev = c->cs + ((size_t)t * B + b) * H;
                    float *cout = c->cs + ((size_t)(t + 1) * B + b) * H;
                    double i = sigm(g[j] + hp[j]), f = sigm(g[H + j] + hp[H + j]);
                    double gg = tanh(g[2 * H + j] + hp[2 * H + j]);
                    double o = sigm(g[3 * H + j] + hp[3 * H + j]);
                    double cc = f * cprev[j] + i * gg;
                    cout[j] = (float)cc;
                    hout[j] = (float)(o * tanh(cc));
                    g[j] = (float)i;
                    g[H + j] = (float)f;
                    g[2 * H + j] = (float)gg;
                    g[3 * H + j] = (float)o;
                } else {
                    float *hn = c->hn + ((size_t)t * B + b) * H;
                    double r = sigm(g[j] + hp[j]), z = sigm(g[H + j] + hp[H + j]);
                    double n = tanh(g[2 * H + j] + r * hp[2 * H + j]);
                    hn[j] = (float)hp[2 * H + j];
                    hout[j] = (float)((1.0 - z) * n + z * hprev[j]);
                    g[j] = (float)r;
                    g[H + j] = (float)z;
                    g[2 * H + j] = (float)n;
                }
            }
        }
    }
    free(hp);
}

void cell_backward_naive(const cell_chunk *c, const cell_grads *gr)
{
    const int B = c->B, H = c->H, G = cell_gates(c->kind), GH = G * H;
    const size_t BH = (size_t)B * H;
    float *dh_next = gr->dh_next, *dc_next = gr->dc_next;
    for (size_t i = 0; i < BH; i++) {
        dh_next[i] = gr->dh_final ? gr->dh_final[i] : 0.0f;
        if (c->kind == CELL_LSTM)
            dc_next[i] = gr->dc_final ? gr->dc_final[i] : 0.0f;
    }
    for (int t = c->T - 1; t >= 0; t--) {
        for (int b = 0; b < B; b++) {
            float *g = c->gates + ((size_t)t * B + b) * GH;
            float *dgn = c->kind == CELL_GRU ? gr->dgh_n + ((size_t)t * B + b) * H : NULL;
            const float *da = gr->dh + ((size_t)t * B + b) * H;
            float *dhn = dh_next + (size_t)b * H;
            float *rec_h = gr->dh_record ? gr->dh_record + ((size_t)t * B + b) * H : NULL;
            float *rec_c = gr->dc_record ? gr->dc_record + ((size_t)t * B + b) * H : NULL;
            if (c->len && t >= c->len[b]) {
                /* past the row's length: the carried gradients pass through and
                 * the step contributes nothing */
                for (int k = 0; k < GH; k++)
                    g[k] = 0.0f;
                for (int j = 0; j < H; j++) {
                    if (dgn)
                        dgn[j] = 0.0f;
                    if (rec_h)
                        rec_h[j] = dhn[j];
                    if (rec_c)
                        rec_c[j] = dc_next[(size_t)b * H + j];
                }
                continue;
            }
            for (int j = 0; j < H; j++) {
                double dh = (double)da[j] + dhn[j];
                if (rec_h)
                    rec_h[j] = (float)dh;
                if (c->kind == CELL_RNN) {
                    double h = g[j];
                    g[j] = (float)(dh * (1.0 - h * h));
                } else if (c->kind == CELL_LSTM) {
                    const float *cprev = c->cs + ((size_t)t * B + b) * H;
                    const float *ccur = c->cs + ((size_t)(t + 1) * B + b) * H;
                    float *dcn = dc_next + (size_t)b * H;
                    double i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j];
                    double tc = tanh(ccur[j]);
                    double dc = dcn[j] + dh * o * (1.0 - tc * tc);
                    if (rec_c)
                        rec_c[j] = (float)dc;
                    dcn[j] = (float)(dc * f);
                    g[j] = (float)(dc * gg * i * (1.0 - i));
                    g[H + j] = (float)(dc * cprev[j] * f * (1.0 - f));
                    g[2 * H + j] = (float)(dc * i * (1.0 - gg * gg));
                    g[3 * H + j] = (float)(dh * tc * o * (1.0 - o));
                } else {
                    const float *hprev = c->hs + ((size_t)t * B + b) * H;
                    const float *hn = c->hn + ((size_t)t * B + b) * H;
                    double r = g[j], z = g[H + j], n = g[2 * H + j];
                    double dn_pre = dh * (1.0 - z) * (1.0 - n * n);
                    double dz_pre = dh * (hprev[j] - n) * z * (1.0 - z);
                    double dr_pre = dn_pre * hn[j] * r * (1.0 - r);
                    dhn[j] = (float)(dh * z); /* direct path; W_hh path added below */
                    g[j] = (float)dr_pre;
                    g[H + j] = (float)dz_pre;
                    g[2 * H + j] = (float)dn_pre;
                    dgn[j] = (float)(dn_pre * r);
                }
            }
        }
        /* dh_next (B, H) = dgh_t (B, GH) W_hh (GH, H), plus the GRU's direct path;
         * dgh_t is the gates' gradient except the GRU's n part. After t = 0,
         * dh_next is dL/dh0. */
        for (int b = 0; b < B; b++) {
            if (c->len && t >= c->len[b])
                continue;
            const float *dgh = c->gates + ((size_t)t * B + b) * GH;
            const float *dgn = c->kind == CELL_GRU ? gr->dgh_n + ((size_t)t * B + b) * H : NULL;
            float *dhn = dh_next + (size_t)b * H;
            for (int j = 0; j < H; j++) {
                double acc = c->kind == CELL_GRU ? dhn[j] : 0.0;
                for (int k = 0; k < GH; k++) {
                    double d = dgn && k >= 2 * H ? dgn[k - 2 * H] : dgh[k];
                    acc += d * c->w_hh[(size_t)k * H + j];
                }
                dhn[j] = (float)acc;
            }
        }
    }
    if (gr->dh0)
        memcpy(gr->dh0, dh_next, BH * sizeof(float));
    if (gr->dc0)
        memcpy(gr->dc0, dc_next, BH * sizeof(float));
}
