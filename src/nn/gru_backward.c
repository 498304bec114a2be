/* GRU backward over one chunk, last step first. With dh = dL/dh_t from above
 * + dh_next:
 *   dn = dh (1 - z), dz = dh (h_{t-1} - n), dn_pre = dn (1 - n^2)
 *   dr_pre = dn_pre * hp_n * r (1 - r),  dz_pre = dz z (1 - z)
 * The input side sees [dr_pre, dz_pre, dn_pre] (written over the gates); the
 * hidden side sees [dr_pre, dz_pre, dn_pre * r], of which only the last part
 * differs and is kept (g->dgh_n, (T, B, H)); the step's whole row is built in
 * the (B, 3H) scratch c->hproj for
 *   dh_next = dh * z + dgh_t W_hh.
 * dh_next starts at the gradient of the final state (or zero) and ends as
 * dL/dh0. A row past its length (c->len) gets zero gradients in all three
 * buffers, so the product adds nothing to its dh_next, which passes through. */
#include <string.h>

#include "charnn/cells.h"
#include "charnn/kernels.h"

void gru_backward(const cell_chunk *c, const cell_grads *gr)
{
    const int B = c->B, H = c->H, GH = 3 * H;
    const int32_t *len = c->len;
    const size_t BH = (size_t)B * H;
    if (gr->dh_final)
        memcpy(gr->dh_next, gr->dh_final, BH * sizeof(float));
    else
        memset(gr->dh_next, 0, BH * sizeof(float));
    kern_packed whh; /* B = W_hh (3H, H), packed once for all T steps */
    kern_pack(&whh, c->w_hh, H, GH, 0, c->wpack);
    for (int t = c->T - 1; t >= 0; t--) {
        const float *hprev = c->hs + (size_t)t * B * H;
        const float *dh_above = gr->dh + (size_t)t * B * H;
        const float *hn = c->hn + (size_t)t * B * H;
        float *g = c->gates + (size_t)t * B * GH;
        float *dgh = c->hproj; /* (B, GH) this step's h-side gradient */
        float *dgn = gr->dgh_n + (size_t)t * B * H;
        float *rec_h = gr->dh_record ? gr->dh_record + (size_t)t * B * H : NULL;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *gb = g + (size_t)b * GH, *db = dgh + (size_t)b * GH, *dn = dgn + (size_t)b * H;
            const float *hp = hprev + (size_t)b * H, *hnb = hn + (size_t)b * H;
            const float *da = dh_above + (size_t)b * H;
            float *dhn = gr->dh_next + (size_t)b * H;
            if (len && t >= len[b]) {
                memset(gb, 0, (size_t)GH * sizeof(float));
                memset(db, 0, (size_t)GH * sizeof(float));
                memset(dn, 0, (size_t)H * sizeof(float));
                if (rec_h)
                    memcpy(rec_h + (size_t)b * H, dhn, (size_t)H * sizeof(float));
                continue;
            }
#pragma omp simd
            for (int j = 0; j < H; j++) {
                float r = gb[j], z = gb[H + j], n = gb[2 * H + j];
                float dh = da[j] + dhn[j];
                if (rec_h)
                    rec_h[(size_t)b * H + j] = dh;
                float dn_pre = dh * (1.0f - z) * (1.0f - n * n);
                float dz_pre = dh * (hp[j] - n) * z * (1.0f - z);
                float dr_pre = dn_pre * hnb[j] * r * (1.0f - r);
                dhn[j] = dh * z;
                gb[j] = dr_pre;
                gb[H + j] = dz_pre;
                gb[2 * H + j] = dn_pre;
                db[j] = dr_pre;
                db[H + j] = dz_pre;
                db[2 * H + j] = dn_pre * r;
                dn[j] = dn_pre * r;
            }
        }
        if (t > 0 || gr->dh0)
            kern_gemm_packed(B, dgh, GH, &whh, 1.0f, gr->dh_next, H);
        if (gr->progress && t % CELL_PROGRESS_EVERY == 0)
            gr->progress(gr->progress_ctx);
    }
    if (gr->dh0)
        memcpy(gr->dh0, gr->dh_next, BH * sizeof(float));
}
