/* Vanilla RNN backward over one chunk, last step first:
 *   dpre = (dL/dh_t from above + dh_next) * (1 - h_t^2),   dh_next = dpre W_hh
 * dpre overwrites the gate buffer (which held h_t). */
#include <string.h>

#include "charnn/cells.h"
#include "charnn/kernels.h"

void rnn_backward(const cell_chunk *c, const cell_grads *gr)
{
    const int B = c->B, H = c->H;
    memset(gr->dh_next, 0, (size_t)B * H * sizeof(float));
    kern_packed whh; /* B = W_hh (H, H), packed once for all T steps */
    kern_pack(&whh, c->w_hh, H, H, 0, c->wpack);
    for (int t = c->T - 1; t >= 0; t--) {
        const float *dh_above = gr->dh + (size_t)t * B * H;
        float *g = c->gates + (size_t)t * B * H;
        float *rec_h = gr->dh_record ? gr->dh_record + (size_t)t * B * H : NULL;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *gb = g + (size_t)b * H;
            const float *da = dh_above + (size_t)b * H;
            const float *dhn = gr->dh_next + (size_t)b * H;
#pragma omp simd
            for (int j = 0; j < H; j++) {
                float h = gb[j], dh = da[j] + dhn[j];
                if (rec_h)
                    rec_h[(size_t)b * H + j] = dh;
                gb[j] = dh * (1.0f - h * h);
            }
        }
        if (t > 0)
            kern_gemm_packed(B, g, H, &whh, 0.0f, gr->dh_next, H);
        if (gr->progress && t % CELL_PROGRESS_EVERY == 0)
            gr->progress(gr->progress_ctx);
    }
}
