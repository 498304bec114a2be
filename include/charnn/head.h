/* head: what sits on top of the recurrent stack and turns its top states into
 * an output distribution and a loss. A head owns its tensors (declared into
 * the model's slab and tensor table, in bucket 0, the first all-reduced), its
 * buffers in the chunk workspace (model_work.head), its forward, its backward
 * and the output distribution callers read (head_output, head_target_prob).
 *
 * The model (model.c) is "stack + head": model_forward runs the stack, then
 * m->head.ops->forward; model_backward runs the head's backward, which hands
 * dL/dtop (T, B, H) to the stack.
 *
 * The tagging head (src/heads/head_tag.c) is the per-step counterpart of the
 * classifier: a linear layer to K tag logits at every position, softmax
 * cross-entropy against one tag per position, nothing past a row's length.
 *
 * Targets and masks. A per-step head (lm, tag) has one target per position:
 * y (T, B) and the optional loss mask w->mask (T, B). A per-row head
 * (classify) has one target per row: y (B) and w->mask (B). The mask weighs
 * each target's loss in forward and backward: 0 gives no loss and no
 * gradient (padding), 1 the plain loss; a masked target must still be a valid
 * id (tasks write 0). Rows stop at w->len[b] steps when len is set.
 *
 * Adding a head: write src/heads/head_<name>.c defining a `const head_ops`,
 * declare it below and add it to the table in src/heads/heads.c. Nothing in
 * the training loop changes.
 */
#ifndef CHARNN_HEAD_H
#define CHARNN_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "charnn/model.h"

struct head_ops {
    const char *name; /* "lm", "classify": the checkpoint's and the CLI's name */
    /* Names of the stack's tensors (may be NULL: "weight_ih_l0", ...,
     * "embedding.weight"): seq2seq's encoder is "encoder." and "src_embed.weight". */
    const char *stack_prefix;
    const char *embed_name;
    /* Outputs K for cfg (lm: the vocabulary; classify: the classes); 0 or -1
     * with a message naming the bad setting. */
    int (*check)(const model_config *cfg);
    int (*outputs)(const model_config *cfg);
    /* Append the head's tensors with model_head_add_tensor, in slab order. */
    void (*declare)(model *m);
    /* Allocate the head's buffers in w->head for (T, B) with model_work_alloc:
     * at least prob (targets, K) and loss (targets). */
    void (*work_init)(model_work *w, const model *m, int T, int B);
    /* Output distribution of top (T, B, H) into w->head.prob and the masked
     * loss of each target into w->head.loss; returns the summed loss in nats
     * (0 with y == NULL). */
    double (*forward)(const model *m, model_work *w, const float *top, const int32_t *y, int T);
    /* Gradient of scale * (summed masked loss) of the last forward: adds the
     * head's parameter gradients into m->grads and writes dL/dtop (T, B, H)
     * into dtop. Consumes w->head.prob. */
    void (*backward)(model *m, model_work *w, const float *top, const int32_t *y, int T,
                     float scale, float *dtop);
};

/* The heads charnn knows, by kind. */
extern const head_ops head_lm_ops;
extern const head_ops head_classify_ops;
extern const head_ops head_seq2seq_ops; /* src/nn/seq2seq.c, see seq2seq.h */
extern const head_ops head_tag_ops;
const head_ops *head_for(head_kind kind);
/* "lm", "classify" -> HEAD_*, or -1; and back. */
int head_parse(const char *name);
const char *head_name(head_kind kind);
/* "last", "mean", "max" -> HEAD_POOL_*, or -1; and back. */
int head_pool_parse(const char *name);
const char *head_pool_name(head_pool pool);

/* After a forward: the output distribution (K) of target n (a position
 * t * B + b for per-step heads, a row b for per-row heads), the probability
 * it gives to target y, and the number of targets. */
const float *head_output(const model_work *w, size_t n);
float head_target_prob(const model_work *w, size_t n, int32_t y);

/* Helpers for heads: apply w->mask (if any) to the per-target losses and
 * return their sum; scale the rows of dlogits (n, K) by the mask. */
double head_mask_loss(const model_work *w, size_t n);
void head_mask_rows(const model_work *w, float *dlogits, size_t n, int K);

#endif
