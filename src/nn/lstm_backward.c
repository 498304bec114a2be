/* LSTM backward over one chunk (truncated BPTT: no gradient enters from the
 * next chunk, so dh_next and dc_next start at zero). For each step, last first:
 *   dh  = dL/dh_t from above + dh_next
 *   dc  = dc_next + dh * o * (1 - tanh(c_t)^2)
 *   do = dh * tanh(c_t), di = dc * g, dg = dc * i, df = dc * c_{t-1}
 *   dc_next = dc * f,  dh_next = dG W_hh   (one GEMM per step)
 * The pre-activation gradients dG overwrite the activated gates in place; the
 * weight gradients are then whole-chunk GEMMs done by the caller. */
#include <string.h>

#include "cellmath.h"
#include "charnn/cells.h"
#include "charnn/kernels.h"


void lstm_backward(const cell_chunk *c, const cell_grads *gr)
{
    const int B = c->B, H = c->H, GH = 4 * H;
    memset(gr->dh_next, 0, (size_t)B * H * sizeof(float));
    memset(gr->dc_next, 0, (size_t)B * H * sizeof(float));
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
        }
        if (t > 0)
            kern_gemm_packed(B, g, GH, &whh, 0.0f, gr->dh_next, H);
        if (gr->progress && t % CELL_PROGRESS_EVERY == 0)
            gr->progress(gr->progress_ctx);
    }
}
