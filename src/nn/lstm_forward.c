/* LSTM forward over one chunk: per step one GEMM h_{t-1} W_hh^T added onto the
 * precomputed input projection, then the gate math (PyTorch order i, f, g, o):
 *   c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
 * The activated gates stay in c->gates for the backward pass. A row past its
 * length (c->len) copies h and c on; the step's product still covers every row. */
#include <string.h>

#include "cellmath.h"
#include "charnn/cells.h"
#include "charnn/kernels.h"

/* One stream's gates: g (4H) in pre-activation, out activated. Separate
 * restrict-qualified rows so the compiler vectorizes the loop. */
static void lstm_gates_row(float *restrict gi, float *restrict gf, float *restrict gg,
                           float *restrict go, const float *restrict b_hh,
                           const float *restrict cprev, float *restrict cout,
                           float *restrict hout, int H)
{
    const float *restrict bi = b_hh, *restrict bf = b_hh + H, *restrict bg = b_hh + 2 * H,
                          *restrict bo = b_hh + 3 * H;
#pragma omp simd
    for (int j = 0; j < H; j++) {
        float i = cn_sigmoidf(gi[j] + bi[j]);
        float f = cn_sigmoidf(gf[j] + bf[j]);
        float g = cn_tanhf(gg[j] + bg[j]);
        float o = cn_sigmoidf(go[j] + bo[j]);
        float c = f * cprev[j] + i * g;
        cout[j] = c;
        hout[j] = o * cn_tanhf(c);
        gi[j] = i;
        gf[j] = f;
        gg[j] = g;
        go[j] = o;
    }
}

void lstm_forward(const cell_chunk *c)
{
    const int B = c->B, H = c->H, GH = 4 * H;
    const float *b_hh = c->b_hh;
    const int32_t *len = c->len;
    kern_packed whh; /* B = W_hh^T (H, 4H), packed once for all T steps */
    kern_pack(&whh, c->w_hh, GH, H, 1, c->wpack);
    for (int t = 0; t < c->T; t++) {
        const float *hprev = c->hs + (size_t)t * B * H;
        const float *cprev = c->cs + (size_t)t * B * H;
        float *hout = c->hs + (size_t)(t + 1) * B * H;
        float *cout = c->cs + (size_t)(t + 1) * B * H;
        float *g = c->gates + (size_t)t * B * GH; /* (B, 4H) */
        kern_gemm_packed(B, hprev, H, &whh, 1.0f, g, GH);
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *gb = g + (size_t)b * GH;
            if (len && t >= len[b]) {
                memcpy(hout + (size_t)b * H, hprev + (size_t)b * H, (size_t)H * sizeof(float));
                memcpy(cout + (size_t)b * H, cprev + (size_t)b * H, (size_t)H * sizeof(float));
                continue;
            }
            lstm_gates_row(gb, gb + H, gb + 2 * H, gb + 3 * H, b_hh, cprev + (size_t)b * H,
                           cout + (size_t)b * H, hout + (size_t)b * H, H);
        }
    }
}
