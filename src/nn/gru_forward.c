/* GRU forward over one chunk (PyTorch's formulation, gate order r, z, n):
 *   hp = h_{t-1} W_hh^T + b_hh                     one GEMM per step
 *   r = sigmoid(x_r + hp_r), z = sigmoid(x_z + hp_z)
 *   n = tanh(x_n + r * hp_n),  h_t = (1 - z) * n + z * h_{t-1}
 * hp_n is kept (c->hn) because dL/dr needs it. A row past its length (c->len)
 * copies its state on; the step's product still covers every row. */
#include <math.h>
#include <string.h>

#include "cellmath.h"
#include "charnn/cells.h"
#include "charnn/kernels.h"

void gru_forward(const cell_chunk *c)
{
    const int B = c->B, H = c->H, GH = 3 * H;
    const float *b_hh = c->b_hh;
    const int32_t *len = c->len;
    kern_packed whh; /* B = W_hh^T (H, 3H), packed once for all T steps */
    kern_pack(&whh, c->w_hh, GH, H, 1, c->wpack);
    for (int t = 0; t < c->T; t++) {
        const float *hprev = c->hs + (size_t)t * B * H;
        float *hout = c->hs + (size_t)(t + 1) * B * H;
        float *g = c->gates + (size_t)t * B * GH;
        float *hn = c->hn + (size_t)t * B * H;
        kern_gemm_packed(B, hprev, H, &whh, 0.0f, c->hproj, GH);
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *gb = g + (size_t)b * GH;
            const float *hp = c->hproj + (size_t)b * GH;
            const float *hpb = hprev + (size_t)b * H;
            float *hnb = hn + (size_t)b * H, *ho = hout + (size_t)b * H;
            if (len && t >= len[b]) {
                memcpy(ho, hpb, (size_t)H * sizeof(float));
                continue;
            }
#pragma omp simd
            for (int j = 0; j < H; j++) {
                float r = cn_sigmoidf(gb[j] + hp[j] + b_hh[j]);
                float z = cn_sigmoidf(gb[H + j] + hp[H + j] + b_hh[H + j]);
                float hnj = hp[2 * H + j] + b_hh[2 * H + j];
                float n = cn_tanhf(gb[2 * H + j] + r * hnj);
                hnb[j] = hnj;
                ho[j] = (1.0f - z) * n + z * hpb[j];
                gb[j] = r;
                gb[H + j] = z;
                gb[2 * H + j] = n;
            }
        }
    }
}
