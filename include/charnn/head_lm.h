/* head_lm: the language-model head: a linear decoder (V, H) to next-symbol
 * logits and the softmax cross-entropy loss. Its parameters are the model's
 * decoder.weight / decoder.bias (bucket 0 of the slab). */
#ifndef CHARNN_HEAD_LM_H
#define CHARNN_HEAD_LM_H

#include "charnn/model.h"

/* Logits for top (T, B, H) into w->logits, then probabilities; per-position
 * losses into w->row_loss. Returns the summed loss (0 with y == NULL). */
double head_lm_forward(const model *m, model_work *w, const float *top, const int32_t *y, int T);
/* Gradient of scale * summed loss: adds decoder gradients into m, writes
 * dL/dtop (T, B, H) into dtop. Consumes the probabilities in w->logits. */
void head_lm_backward(model *m, model_work *w, const float *top, const int32_t *y, int T,
                      float scale, float *dtop);

#endif
