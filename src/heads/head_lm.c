/* The language-model head: decoder GEMM over all T*B positions at once, then
 * softmax cross-entropy. See head_lm.h. */
#include "charnn/head_lm.h"

#include <string.h>

#include "charnn/kernels.h"

double head_lm_forward(const model *m, model_work *w, const float *top, const int32_t *y, int T)
{
    const int V = m->cfg.vocab, H = m->cfg.hidden;
    const size_t N = (size_t)T * w->B;
    for (size_t n = 0; n < N; n++)
        memcpy(w->logits + n * V, m->dec_b, (size_t)V * sizeof(float));
    kern_gemm(0, 1, (int)N, V, H, 1.0f, top, H, m->dec_w, H, 1.0f, w->logits, V);
    return kern_softmax_xent(w->logits, y, N, V, w->row_loss);
}

void head_lm_backward(model *m, model_work *w, const float *top, const int32_t *y, int T,
                      float scale, float *dtop)
{
    const int V = m->cfg.vocab, H = m->cfg.hidden;
    const size_t N = (size_t)T * w->B;
    float *dlogits = w->logits; /* (N, V) */
    kern_softmax_xent_backward(dlogits, y, N, V, scale);
    if (w->row_weight) {
        for (size_t n = 0; n < N; n++) {
            float rw = w->row_weight[n];
            for (int v = 0; v < V; v++)
                dlogits[n * V + v] *= rw;
        }
    }
    kern_gemm(1, 0, V, H, (int)N, 1.0f, dlogits, V, top, H, 1.0f, m->gdec_w, H);
    kern_sum_rows(m->gdec_b, dlogits, N, V);
    kern_gemm(0, 0, (int)N, H, V, 1.0f, dlogits, V, m->dec_w, H, 0.0f, dtop, H);
}
