/* batch: what a task hands the training loop for one step on this rank.
 *
 * Time-major: position (t, b) is element t * B + b. Per-step tasks (lm, tag)
 * give one target per position, y (T, B); per-row tasks (classify) one per
 * row, y (B). The mask has y's shape and weighs each target's loss in forward
 * and backward (0: padding, no loss and no gradient); a masked target is
 * still a valid id. Rows shorter than T stop at len[b] steps.
 *
 * Ownership: the task owns every buffer and the carried state; a batch is a
 * view that stays valid until the task's next next_batch.
 */
#ifndef CHARNN_BATCH_H
#define CHARNN_BATCH_H

#include <stdint.h>

#include "charnn/model.h"

typedef struct {
    int T, B;            /* steps (<= the task's T) and rows of this batch */
    const int32_t *x;    /* (T, B) input ids */
    const int32_t *y;    /* (T, B) per-step targets, or (B) one per row */
    const float *mask;   /* (T, B) or (B), y's shape; NULL: every target counts fully */
    const int32_t *len;  /* (B) steps row b runs, 0..T; NULL: every row runs T steps */
    const float *cond;   /* (B, D) condition vectors, NULL without a condition */
    int cond_dim;        /* D */
    model_state *carry;  /* the state rows start from and leave their end state in: the
                            task's carried state (lm: truncated BPTT across batches) or a
                            state the task zeroed (independent examples) */
    int first_row;       /* global index of this rank's row 0 ... */
    int rows_global;     /* ... among the rows of all ranks */
} batch;

#endif
