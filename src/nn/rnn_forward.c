/* Vanilla RNN forward over one chunk: h_t = tanh(x-projection + h_{t-1} W_hh^T + b_hh).
 * The gate buffer keeps h_t itself, which is all the backward pass needs.
 * A row past its length (c->len) copies its state on; the step's product
 * still covers every row, so the packed kernel keeps its blocks of 8. */
#include <math.h>
#include <string.h>

#include "cellmath.h"
#include "charnn/cells.h"
#include "charnn/kernels.h"

void rnn_forward(const cell_chunk *c)
{
    const int B = c->B, H = c->H;
    const int32_t *len = c->len;
    kern_packed whh; /* B = W_hh^T (H, H), packed once for all T steps */
    kern_pack(&whh, c->w_hh, H, H, 1, c->wpack);
    for (int t = 0; t < c->T; t++) {
        const float *hprev = c->hs + (size_t)t * B * H;
        float *hout = c->hs + (size_t)(t + 1) * B * H;
        float *g = c->gates + (size_t)t * B * H; /* (B, H) */
        kern_gemm_packed(B, hprev, H, &whh, 1.0f, g, H);
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *gb = g + (size_t)b * H, *hb = hout + (size_t)b * H;
            if (len && t >= len[b]) {
                memcpy(hb, hprev + (size_t)b * H, (size_t)H * sizeof(float));
                continue;
            }
#pragma omp simd
            for (int j = 0; j < H; j++) {
                float h = cn_tanhf(gb[j] + c->b_hh[j]);
                gb[j] = h;
                hb[j] = h;
            }
        }
    }
}
