/* task_batches: the batches of a labelled examples file (examples.h) that
 * classify and tag read alike. Private to src/tasks/.
 *
 * Training reads the training split in the order of exorder.h (a seeded
 * shuffle per epoch, length buckets), G rows a step over all ranks, of which
 * this rank takes the contiguous rows [first, first + rows). Evaluation reads
 * every example of a split once, sorted by length within each batch of
 * R x Bv rows, no shuffle. A batch is x (T, B) padded to its longest example
 * (at most --max-len), len (B), and y and mask: one value per row (classify)
 * or per step and row (tag), which the task fills (task_batches_index gives
 * the rows' examples).
 *
 *   typedef struct { task_examples shared; task_batches b; ... } my_task;
 *   open:  examples_open(&k->b.ex, ...); k->b.ex_open = 1; ... check the model;
 *          task_batches_init(t, &k->b, cfg, split, per_step);
 *          task_examples_init(&k->shared, &k->b.order, k->b.G, ...);
 *   next_batch: rows = task_examples_next(t, prog);
 *          T = task_batches_steps(&k->b.order, rows, max_len); fill rows
 *          [b.first, b.first + b.rows) (task_batches_index); *out = task_batches_train(&k->b, T);
 *   evaluate: task_batches_evaluate(t, &k->b, m, w, max_batches, fill, score, k, ...)
 *   close: task_batches_free(&k->b);
 */
#ifndef CHARNN_TASK_BATCHES_H
#define CHARNN_TASK_BATCHES_H

#include <stddef.h>
#include <stdint.h>

#include "charnn/config.h"
#include "charnn/examples.h"
#include "charnn/exorder.h"
#include "charnn/model.h"
#include "charnn/task.h"

typedef struct {
    examples_file ex;
    int ex_open;
    int first, rows;      /* this rank's rows of a training batch */
    int G;                /* rows of a training batch over all ranks */
    int Bv;               /* rows per rank of an evaluation batch */
    exorder order;        /* the training split */
    exorder eval_order;   /* the split eval_split names, once built */
    int eval_built, eval_split;
    size_t n_truncated;   /* training examples longer than --max-len */
    size_t *idx;          /* (rows_cap) the rows' examples, indices into the file */
    int32_t *x, *len, *y; /* (T, cap), (cap), y (cap) or (T, cap) */
    float *mask;          /* as y */
    model_state st;       /* (L, rows, H) zeroed for every batch */
    model_state val_st;   /* (L, Bv, H) */
} task_batches;

/* Once open has b->ex open and cfg's model checked: G, the sum of split (rows
 * per rank; NULL: cfg->batch each), and this rank's share; the training order
 * (cfg's length buckets and seed) and the examples --max-len truncates; t->T
 * (the longest example, at most --max-len), t->rows_cap, t->has_val and
 * t->eval_split; the buffers, y and mask (T, cap) when per_step, else (cap).
 * 0, or -1 with a message. */
int task_batches_init(task *t, task_batches *b, const run_config *cfg, const int *split,
                      int per_step);
/* Everything b holds, the file included (a zeroed b: nothing). */
void task_batches_free(task_batches *b);

/* Steps of the batch rows (G indices of o): its longest example, at most
 * max_len (0: no limit), at least 1. */
int task_batches_steps(const exorder *o, const size_t *rows, int max_len);
/* rows[first .. first + n) of a batch into b->idx, as indices into the file
 * (base: the split's first example). A row that tops up an epoch's last batch
 * (EXORDER_NONE) reads row 0's example, which is always real; the task gives
 * it length 0 and weight 0. */
void task_batches_index(task_batches *b, const size_t *rows, int first, int n, size_t base);

/* The training batch of T steps filled into b's buffers: this rank's rows,
 * each from a zero state. */
batch task_batches_train(task_batches *b, int T);

/* evaluate's loop over the split t->eval_split, at most max_batches batches
 * (0: all): per batch, fill(ctx, rows, first, n, base, T) loads this rank's n
 * rows into b's buffers, the model runs forward with b's mask and len, and
 * score(ctx, w, T, local + 1) adds the task's counts. local[0] sums the loss;
 * all n_local values are summed over the ranks. A read error is this rank's
 * alone, so it ends the job (dist_abort) rather than leave the others waiting.
 * 0, or -1 with a message when the split is empty. */
typedef int (*task_batches_fill_fn)(void *ctx, const size_t *rows, int first, int n,
                                    size_t base, int T);
typedef void (*task_batches_score_fn)(void *ctx, const model_work *w, int T, double *local);
int task_batches_evaluate(task *t, task_batches *b, const model *m, model_work *w,
                          int64_t max_batches, int max_len, const char *data,
                          task_batches_fill_fn fill, task_batches_score_fn score, void *ctx,
                          double *local, int n_local);

#endif
