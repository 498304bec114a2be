/* stack: the recurrent part of the model, independent of what sits on top:
 * input (one-hot gather or embedding) -> L layers -> top hidden states.
 * An output head (head.h: the language model's, the classifier's; seq2seq later)
 * consumes the top states and hands back their gradient. A conditional model
 * (cond.h) takes its condition from model_work.cond: stack_forward sets the
 * starting state from it or adds it to layer 0's input, stack_backward adds
 * the condition tensors' gradients before layer 0's bucket is reported. */
#ifndef CHARNN_STACK_H
#define CHARNN_STACK_H

#include "charnn/model.h"

/* Run all layers over x (T, B); returns the top layer's outputs (T, B, W)
 * with W = model_top_width (H, or 2H: [forward; reverse] when bidirectional),
 * owned by w. Updates s to the state after the chunk. With w->len, row b
 * runs len[b] steps: its outputs from len[b] on repeat its last one (the
 * reverse direction's: its state after the row's first character) and s
 * gets the state at its length. The reverse direction of row b starts at
 * position len[b]-1 (T-1 without len) from its slice of s. */
const float *stack_forward(const model *m, model_work *w, model_state *s, const int32_t *x,
                           int T, int train, uint64_t dropout_key);
/* The top outputs of the last stack_forward: (T, B, model_top_width). */
const float *stack_top(const model *m, const model_work *w);
/* Backward from dtop (T, B, W) (destroyed) through all layers; adds into
 * m's gradient slab; calls on_bucket(ctx, 1 + L-1-l) after layer l is done.
 * With w->len, dtop at positions past a row's length is ignored. Starts from
 * w->dh_final (w->dc_final) when set and fills w->dh0 (w->dc0) when set. */
void stack_backward(model *m, model_work *w, const int32_t *x, float *dtop,
                    model_bucket_fn on_bucket, void *ctx);

/* Whether stack_backward needs model_work's second head-sized gradient
 * buffer (dh_b) for this model; other cells reuse per-step buffers. */
int stack_needs_second_dh(const model_config *cfg);

#endif
