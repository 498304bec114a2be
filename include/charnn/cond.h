/* cond: conditioning the recurrent stack on a vector c (B, D) per row, for
 * generation from a class (c is the one-hot of its label) or from a feature
 * vector (c is given). Three modes (model_config.cond.mode):
 *
 *   init  : a learned linear map per layer sets the starting state,
 *           h0_l = c W_h_l^T + b_h_l, and for the LSTM also c0_l = c W_c_l^T +
 *           b_c_l (what PyTorch users pass as (h0, c0) to nn.LSTM). The
 *           gradient reaches the maps through dL/dh0 (dL/dc0) of each layer.
 *   input : c W^T (no bias: layer 0's b_ih is there already) is added to layer
 *           0's input pre-activation at the first step only, and nothing at
 *           the steps after: the lecture's captioning shape, "at the other
 *           input steps it is given zero tensors". The character inputs go on
 *           as usual at every step (step 0 gets both the condition and its
 *           character, BOS for generation): with W_ih's columns extended by W,
 *           this is exactly an input of [x_t ; c] at t = 0 and [x_t ; 0] after.
 *   every : the same map added at every step: the input [x_t ; c] at every t.
 *
 * Tensors (PyTorch names, in layer 0's all-reduce bucket, after the
 * embedding): init: cond.weight_h_l{k} (H, D), cond.bias_h_l{k} (H), and for
 * the LSTM cond.weight_c_l{k} (H, D), cond.bias_c_l{k} (H); input and every:
 * cond.weight_ih (G*H, D). docs/pytorch.md shows a torch module using them.
 * With cond.standardize the maps read (c - mean) / std instead of c, with
 * features.mean and features.std (D) in the slab, set by the task from its
 * training data and never trained (their gradient is zero; no decay).
 *
 * Per chunk the caller sets model_work.cond (B, D) and cond_first: 1 when the
 * chunk starts the rows' sequences (init replaces the carried state, input
 * adds c at step 0), 0 when it continues them (only every adds c again).
 * Without model_work.cond a conditional model runs unconditioned (c = 0 for
 * input and every; the carried state stays for init). An unconditioned model
 * (mode none, the default) has none of the tensors and runs the exact same
 * float operations as before conditioning existed.
 *
 * stack.c calls the hooks below; each fast path (GEMMs) has a naive loop
 * reference (cond_*_naive) that tests compare with.
 */
#ifndef CHARNN_COND_H
#define CHARNN_COND_H

#include "charnn/model.h"

/* "none", "init", "input", "every" -> COND_*, or -1; and back. */
int cond_mode_parse(const char *name);
const char *cond_mode_name(cond_mode mode);
/* 0, or -1 with a message naming the bad setting. */
int cond_config_check(const model_config *cfg);

/* model_build: append the condition's tensors to the table in bucket, and
 * (after the slab exists) point m->cond / m->gcond at them. */
void cond_declare(model *m, int bucket);
void cond_bind(model *m);
/* model_work_init: the condition's buffers for B rows. */
void cond_work_init(model_work *w, const model *m, int B);

/* The condition the maps read, (B, D): w->cond, or with cond.standardize
 * its standardised copy (written into w->cond_std). */
const float *cond_features(const model *m, model_work *w);
/* The mode the next forward applies with w's condition (COND_NONE: nothing). */
cond_mode cond_active(const model *m, const model_work *w);
/* init: s->h (s->c) of every layer from w->cond. */
void cond_forward_state(const model *m, model_work *w, model_state *s);
/* input / every: add c W^T to layer 0's pre-activations gates0 (T, B, G*H),
 * at step 0 (input) or every step (every). */
void cond_forward_input(const model *m, model_work *w, float *gates0, int T);
/* After layer 0's cell backward (its gate gradients in gates0 (T, B, G*H)):
 * add the condition tensors' gradients into m's slab. init reads the
 * gradients of the starting states from w->cond_dh0 (w->cond_dc0). */
void cond_backward(model *m, model_work *w, const float *gates0, int T);

/* Naive references: y (B, R) = c (B, D) W^T (R, D) + bias (R) (bias may be
 * NULL); and dW (R, D) += sum_b dy[b] c[b]^T, dbias (R) += sum_b dy[b]. */
void cond_project_naive(float *y, const float *c, const float *W, const float *bias, int B,
                        int R, int D);
void cond_project_backward_naive(float *dW, float *dbias, const float *dy, const float *c, int B,
                                 int R, int D);

#endif
