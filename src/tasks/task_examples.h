/* task_examples: what the example tasks share (classify, classify
 * --features, tag, seq2seq, generate): the tasks that read independent
 * examples in the order of exorder.h, start every row from a zero state and
 * so keep their place in the data by the run's cursor alone (train_progress
 * epoch and chunk = the next batch of the epoch). Private to src/tasks/.
 *
 * It owns their checkpoint record and the mechanics of a resume; the task
 * keeps its data, its order (exorder) and what it says on a resume:
 *
 *   typedef struct {
 *       task_examples shared;  // first: the functions below take t->impl as one
 *       ...
 *   } my_task;
 *   open:   k = task_examples_alloc(t, sizeof *k, rank, nranks);
 *           ... exorder_init(&k->order, ...); task_examples_init(&k->shared, &k->order,
 *                                                               G, TASK_RECORD_..., &cfg->model);
 *   ops:    .batches_per_epoch = task_examples_batches_per_epoch,
 *           .state_bytes = task_examples_state_bytes (and _pack, _view, _load)
 *   next_batch:   rows = task_examples_next(t, prog);
 *   resume_agree: path = task_examples_resume(t, prog, &old_G); if path, say so
 *   close:  free what the task owns, then task_examples_free(t)
 *
 * The record each rank writes under /ranks/rank{r} (docs/checkpoint-format.md)
 * has one of three layouts, kept as the tasks first wrote them so that every
 * checkpoint resumes: no row (cursor (0), h and c (L, 0, H)), or one row of
 * zero state (h and c (L, 1, H)) whose cursor (1) holds either the global
 * batch G of the order or the next batch of the epoch (the same as the run's
 * chunk). A resume needs the checkpoint's G: the record's when it holds it,
 * else nranks x batch of its config (the same number in every file charnn
 * writes). With the same G the order continues exactly, on any number of
 * ranks; with another one the position within the epoch is kept by the rows
 * seen (batch k of G rows becomes batch k * G_old / G_new).
 */
#ifndef CHARNN_TASK_EXAMPLES_H
#define CHARNN_TASK_EXAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "charnn/ckpt.h"
#include "charnn/config.h"
#include "charnn/exorder.h"
#include "charnn/model.h"
#include "charnn/task.h"
#include "charnn/train.h"

/* What a rank's record holds (see above). */
typedef enum {
    TASK_RECORD_EMPTY,        /* no row (seq2seq) */
    TASK_RECORD_GLOBAL_BATCH, /* one zero row, cursor: G (classify, tag) */
    TASK_RECORD_NEXT_BATCH,   /* one zero row, cursor: the next batch (generate, features) */
} task_record;

typedef struct {
    exorder *order;     /* the training order, the task's */
    int G;              /* rows of a training batch over all ranks */
    task_record record;
    int layers, hidden; /* the zero row's (L, 1, H): the model's layers and width */
    int lstm;           /* whether the record has c */
    struct {
        int active;     /* state_load ran and resume has not yet */
        int labels_ok;  /* the checkpoint's labels are this task's, names and order */
        int64_t old_G;  /* the checkpoint's global batch */
        char path[CONFIG_PATH_MAX + 64];
    } resume;
} task_examples;

/* A zeroed impl of size bytes (a struct whose first member is a
 * task_examples) into t->impl, and t's rank and nranks: the start of open. */
void *task_examples_alloc(task *t, size_t size, int rank, int nranks);
/* The order (borrowed, the task's training order over G rows a step) and
 * the record's layout and shape, once open has checked cfg's model. */
void task_examples_init(task_examples *s, exorder *order, int G, task_record record,
                        const model_config *cfg);
/* The end of close: the labels and the impl (NULL: nothing). */
void task_examples_free(task *t);
/* n labels copied (names borrowed) into t->labels and t->n_labels. */
void task_examples_copy_labels(task *t, int n, char *const *names);

uint64_t task_examples_batches_per_epoch(const task *t);
/* The G example indices of the batch at prog's cursor (an epoch's end rolls
 * over to the next), then the cursor moves past it. */
const size_t *task_examples_next(task *t, train_progress *prog);

/* The task_ops checkpoint records (task.h). */
size_t task_examples_state_bytes(const task *t);
void task_examples_state_pack(const task *t, const train_progress *prog, void *rec);
void task_examples_state_view(const task *t, void *rec, ckpt_rank *out);
void task_examples_state_load(task *t, const ckpt_data *d, const train_progress *prog,
                              const char *path);
/* The collective half of a resume, every rank alike: NULL when the run does
 * not resume; else the checkpoint's path, its global batch in *old_G (may be
 * NULL), and prog's cursor re-derived when that differs from this run's G.
 * The task then says how it resumed (task_say). */
const char *task_examples_resume(task *t, train_progress *prog, int64_t *old_G);
/* After state_load: whether the checkpoint's labels are t's (names, order). */
int task_examples_labels_match(const task *t);

#endif
