/* LSTM backward over one chunk (truncated BPTT: no gradient enters from the
 * next chunk, so dh_next and dc_next start at zero). For each step, last first:
 *   dh  = dL/dh_t from above + dh_next
 *   dc  = dc_next + dh * o * (1 - tanh(c_t)^2)
 *   do = dh * tanh(c_t), di = dc * g, dg = dc * i, df = dc * c_{t-1}
 *   dc_next = dc * f,  dh_next = dG W_hh   (one GEMM per step)
 * The pre-activation gradients dG overwrite the activated gates in place; the
 * weight gradients are then whole-chunk GEMMs done by the caller. dh_next and
 * dc_next start at the gradient of the final state (or zero) and end as dL/dh0
 * and dL/dc0. With lengths, a row past its length gets dG = 0 and keeps both
 * carried gradients: the step's product then accumulates onto dh_next, which
 * the gate loop zeroes for the rows that ran the step. */
#include <string.h>

#include "cellmath.h"
#include "charnn/cells.h"
#include "charnn/kernels.h"

void lstm_backward(const cell_chunk *c, const cell_grads *gr)
{
    const int B = c->B, H = c->H, GH = 4 * H;
    const int32_t *len = c->len;
    const size_t BH = (size_t)B * H;
    const float beta = len ? 1.0f : 0.0f;
    if (gr->dh_final)
        memcpy(gr->dh_next, gr->dh_final, BH * sizeof(float));
    else
        memset(gr->dh_next, 0, BH * sizeof(float));
    if (gr->dc_final)
        memcpy(gr->dc_next, gr->dc_final, BH * sizeof(float));
    else
        memset(gr->dc_next, 0, BH * sizeof(float));
    kern_packed whh; /* B = W_hh (4H, H), packed once for all T steps */
    kern_pack(&whh, c->w_hh, H, GH, 0, c->wpack);
    for (int t = c->T - 1; t >= 0; t--) {
        const float *cprev = c->cs + (size_t)t * B * H;
        const float *ccur = c->cs + (size_t)(t + 1) * B * H;
        const float *dh_above = gr->dh + (size_t)t * B * H;
        float *g = c->gates + (size_t)t * B * GH;
        float *rec_h = gr->dh_record ? gr->dh_record + (size_t)t * B * H : NULL;
        float *rec_c = gr->dc_record ? gr->dc_record + (size_t)t * B * H : NULL;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *gb = g + (size_t)b * GH;
            const float *cp = cprev + (size_t)b * H, *cc = ccur + (size_t)b * H;
            const float *da = dh_above + (size_t)b * H;
            float *dhn = gr->dh_next + (size_t)b * H, *dcn = gr->dc_next + (size_t)b * H;
            if (len && t >= len[b]) {
                memset(gb, 0, (size_t)GH * sizeof(float));
                if (rec_h) {
                    memcpy(rec_h + (size_t)b * H, dhn, (size_t)H * sizeof(float));
                    memcpy(rec_c + (size_t)b * H, dcn, (size_t)H * sizeof(float));
                }
                continue;
            }
#pragma omp simd
            for (int j = 0; j < H; j++) {
                float i = gb[j], f = gb[H + j], gg = gb[2 * H + j], o = gb[3 * H + j];
                float dh = da[j] + dhn[j];
                float tc = cn_tanhf(cc[j]);
                float dc = dcn[j] + dh * o * (1.0f - tc * tc);
                if (rec_h) {
                    rec_h[(size_t)b * H + j] = dh;
                    rec_c[(size_t)b * H + j] = dc;
                }
                float d_o = dh * tc;
                float di = dc * gg, dg = dc * i, df = dc * cp[j];
                dcn[j] = dc * f;
                gb[j] = di * i * (1.0f - i);
                gb[H + j] = df * f * (1.0f - f);
                gb[2 * H + j] = dg * (1.0f - gg * gg);
                gb[3 * H + j] = d_o * o * (1.0f - o);
            }
            if (len)
                memset(dhn, 0, (size_t)H * sizeof(float));
        }
        if (t > 0 || gr->dh0)
            kern_gemm_packed(B, g, GH, &whh, beta, gr->dh_next, H);
        if (gr->progress && t % CELL_PROGRESS_EVERY == 0)
            gr->progress(gr->progress_ctx);
    }
    if (gr->dh0)
        memcpy(gr->dh0, gr->dh_next, BH * sizeof(float));
    if (gr->dc0)
        memcpy(gr->dc0, gr->dc_next, BH * sizeof(float));
}
