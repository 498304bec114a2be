/* mlp: the model without a recurrent stack (model_config.layers == 0), for
 * one-to-one classification of a vector (`train --task classify --features
 * --layers 0`). The row's condition c (B, D) (cond.h, mode input; with
 * cond.standardize first (c - features.mean) / features.std) goes through one
 * hidden layer,
 *
 *     h = act(c W^T + b)         W: mlp.weight (H, D), b: mlp.bias (H)
 *
 * with act tanh (the default) or relu (model_config.mlp_act, --activation)
 * and h (B, H) is the "top state" the classifier head reads (pool last over a
 * single step). In PyTorch: nn.Sequential(nn.Linear(D, H), nn.Tanh() (or
 * nn.ReLU()), nn.Linear(H, C)) with the classifier's classifier.weight / classifier.bias
 * as the second Linear (docs/pytorch.md).
 *
 * Slab: the head's bucket 0, then bucket 1 with mlp.weight, mlp.bias and the
 * features' mean and std. model.c calls these in place of the stack; each
 * fast path (GEMMs) has a naive loop reference that tests compare with. */
#ifndef CHARNN_MLP_H
#define CHARNN_MLP_H

#include "charnn/model.h"

/* "tanh", "relu" -> MLP_*, or -1; and back. */
int mlp_act_parse(const char *name);
const char *mlp_act_name(mlp_activation act);

/* model_build: append mlp.weight and mlp.bias to the table in bucket, and
 * (after the slab exists) point m->mlp / m->gmlp at them. */
void mlp_declare(model *m, int bucket);
void mlp_bind(model *m);
/* model_work_init: the MLP's buffers for B rows (T must be 1). */
void mlp_work_init(model_work *w, const model *m, int T, int B);
/* h (B, H) from w->cond (which must be set) into w->mlp_h; returns it, the
 * top states (1, B, H). */
const float *mlp_forward(const model *m, model_work *w, int T);
/* From dtop (B, H) (destroyed: it becomes dL/d(pre-activation)), add the
 * gradients of mlp.weight and mlp.bias; calls on_bucket(ctx, 1) when done. */
void mlp_backward(model *m, model_work *w, float *dtop, model_bucket_fn on_bucket, void *ctx);

/* Naive references on the same shapes: h (B, H) = act(c (B, D) W^T + b);
 * and from dh (B, H) and h: dW (H, D) += dpre^T c, db (H) += sum_b dpre,
 * with dpre = dh * (1 - h^2) for tanh, dh * [h > 0] for relu. */
void mlp_forward_naive(float *h, const float *c, const float *W, const float *b, int B, int H,
                       int D, mlp_activation act);
void mlp_backward_naive(float *dW, float *db, const float *dh, const float *h, const float *c,
                        int B, int H, int D, mlp_activation act);

#endif
