/* Vanilla RNN backward over one chunk, last step first:
 *   dpre = (dL/dh_t from above + dh_next) * (1 - h_t^2),   dh_next = dpre W_hh
 * dpre overwrites the gate buffer (which held h_t). dh_next starts at the
 * gradient of the final state (or zero) and ends as dL/dh0.
 * With lengths, a row past its length gets dpre = 0 and keeps its dh_next:
 * the step's product then accumulates onto dh_next, which the gate loop
 * zeroes for the rows that ran the step. */
#include <string.h>

#include "charnn/cells.h"
#include "charnn/kernels.h"

void rnn_backward(const cell_chunk *c, const cell_grads *gr)
{
    const int B = c->B, H = c->H;
    const int32_t *len = c->len;
    const size_t BH = (size_t)B * H;
    const float beta = len ? 1.0f : 0.0f;
    if (gr->dh_final)
        memcpy(gr->dh_next, gr->dh_final, BH * sizeof(float));
    else
        memset(gr->dh_next, 0, BH * sizeof(float));
    kern_packed whh; /* B = W_hh (H, H), packed once for all T steps */
    kern_pack(&whh, c->w_hh, H, H, 0, c->wpack);
    for (int t = c->T - 1; t >= 0; t--) {
        const float *dh_above = gr->dh + (size_t)t * BH;
        float *g = c->gates + (size_t)t * BH;
        float *rec_h = gr->dh_record ? gr->dh_record + (size_t)t * BH : NULL;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *gb = g + (size_t)b * H;
            const float *da = dh_above + (size_t)b * H;
            float *dhn = gr->dh_next + (size_t)b * H;
            if (len && t >= len[b]) {
                memset(gb, 0, (size_t)H * sizeof(float));
                if (rec_h)
                    memcpy(rec_h + (size_t)b * H, dhn, (size_t)H * sizeof(float));
                continue;
            }
#pragma omp simd
            for (int j = 0; j < H; j++) {
                float h = gb[j], dh = da[j] + dhn[j];
                if (rec_h)
                    rec_h[(size_t)b * H + j] = dh;
                gb[j] = dh * (1.0f - h * h);
            }
            if (len)
                memset(dhn, 0, (size_t)H * sizeof(float));
        }
        if (t > 0 || gr->dh0)
            kern_gemm_packed(B, g, H, &whh, beta, gr->dh_next, H);
        if (gr->progress && t % CELL_PROGRESS_EVERY == 0)
            gr->progress(gr->progress_ctx);
    }
    if (gr->dh0)
        memcpy(gr->dh0, gr->dh_next, BH * sizeof(float));
}
