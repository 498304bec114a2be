/* LSTM forward over one chunk: per step one GEMM h_{t-1} W_hh^T added onto the
 * precomputed input projection, then the gate math (PyTorch order i, f, g, o):
 *   c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
 * The activated gates stay in c->gates for the backward pass. */
#include "cellmath.h"
#include "charnn/cells.h"
#include "charnn/kernels.h"

void lstm_forward(const cell_chunk *c)
{
    const int B = c->B, H = c->H, GH = 4 * H;
    const float *b_hh = c->b_hh;
    for (int t = 0; t < c->T; t++) {
        const float *hprev = c->hs + (size_t)t * B * H;
        const float *cprev = c->cs + (size_t)t * B * H;
        float *hout = c->hs + (size_t)(t + 1) * B * H;
        float *cout = c->cs + (size_t)(t + 1) * B * H;
        float *g = c->gates + (size_t)t * B * GH; /* (B, 4H) */
        kern_gemm(0, 1, B, GH, H, 1.0f, hprev, H, c->w_hh, H, 1.0f, g, GH);
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *gb = g + (size_t)b * GH;
            const float *cp = cprev + (size_t)b * H;
            float *cn = cout + (size_t)b * H, *hn = hout + (size_t)b * H;
#pragma omp simd
            for (int j = 0; j < H; j++) {
                float i = cn_sigmoidf(gb[j] + b_hh[j]);
                float f = cn_sigmoidf(gb[H + j] + b_hh[H + j]);
                float gg = cn_tanhf(gb[2 * H + j] + b_hh[2 * H + j]);
                float o = cn_sigmoidf(gb[3 * H + j] + b_hh[3 * H + j]);
                float cc = f * cp[j] + i * gg;
                cn[j] = cc;
                hn[j] = o * cn_tanhf(cc);
                gb[j] = i;
                gb[H + j] = f;
                gb[2 * H + j] = gg;
                gb[3 * H + j] = o;
            }
        }
    }
}
