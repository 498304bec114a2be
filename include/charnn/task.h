/* task: what is learned from what data. A task opens the data for this rank,
 * produces the batches (batch.h), says how a step's summed loss is
 * normalised, what the log reports besides the loss, how validation runs, and
 * owns its part of every checkpoint (data cursors, carried states). The
 * training loop (train.c) knows none of this: it asks the task for a batch,
 * runs the model, and hands the task's numbers to the log.
 *
 * task_lm (src/tasks/task_lm.c) is the character language model: S streams
 * over the training split read chunk by chunk, with the hidden state carried
 * from chunk to chunk (an epoch is one pass of every stream), loss normalised
 * by T * S, reported as bits per character and characters per second.
 *
 * task_classify (src/tasks/task_classify.c) is many-to-one classification:
 * labelled examples (examples.h) in the order of exorder.h, padded batches
 * with per-row lengths and loss weights, loss normalised by the weight sum of
 * the global batch, validation loss and accuracy (eval_result.correct); its
 * checkpoint state is the global cursor (prog epoch and chunk) only.
 *
 * Adding a task: write src/tasks/task_<name>.c defining a `const task_ops`,
 * declare it below and add it to the table in src/tasks/tasks.c; `train
 * --task <name>` then runs it. A task picks its head by setting
 * cfg->model.head in open (e.g. the classes it found; when resuming, the
 * checkpoint's head is already there and must be kept), and names the head's
 * outputs in task.labels when they are not the vocabulary: checkpoints store
 * the task's name, the head's and those labels (ckpt.h). A task over
 * independent examples (exorder.h) takes its checkpoint record, its resume
 * and the start of open and end of close from src/tasks/task_examples.h.
 *
 * Collectives: open must not call any (a rank that fails there must not
 * leave the others waiting); next_batch, loss_norm, evaluate, resume_agree and
 * rebalance may, and every rank calls them at the same points.
 */
#ifndef CHARNN_TASK_H
#define CHARNN_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "charnn/batch.h"
#include "charnn/ckpt.h"
#include "charnn/config.h"
#include "charnn/evaluate.h"
#include "charnn/model.h"
#include "charnn/train.h"
#include "charnn/vocab.h"

typedef struct task task;

/* What the log reports for the training loss of an interval. */
typedef struct {
    double bits;          /* mean loss in bits per target (lm: bits per character) */
    double rate;          /* targets per second over the interval */
    const char *unit;     /* what a target is, plural: "chars" */
    char extra[192];      /* more members for the metrics.jsonl line, each starting with a
                             comma (",\"padding\":0.1"), or "" */
} task_metrics;

typedef struct {
    const char *name; /* "lm": the --task name and the checkpoint's */
    /* Open cfg->data for this rank: the vocabulary (given in voc when
     * resuming, else built into it), the splits and this rank's share. Sets
     * cfg->model.vocab and cfg->model.head. No collectives; 0 or -1. */
    int (*open)(task *t, run_config *cfg, vocab *voc, int rank, int nranks);
    void (*close)(task *t);
    /* Training batches per epoch on every rank. */
    uint64_t (*batches_per_epoch)(const task *t);
    /* The batch for the step at prog (starting a new epoch when the current
     * one is done); advances prog->epoch / prog->chunk past it. 0 or -1. */
    int (*next_batch)(task *t, train_progress *prog, batch *out);
    /* The divisor of the step's loss summed over all ranks (lm: T * S
     * positions): gradients are scaled by its inverse. */
    double (*loss_norm)(task *t, const batch *b);
    void (*metrics)(const task *t, double mean_loss, double seconds, int64_t steps,
                    task_metrics *out);
    /* Summed loss and targets of the validation split over all ranks, at most
     * max_batches batches per rank (0: all); w holds t->rows_cap rows.
     * Collective. 0, or -1 with a message. */
    int (*evaluate)(task *t, const model *m, model_work *w, int64_t max_batches,
                    eval_result *out);
    /* Checkpoint records. Each rank packs its part into state_bytes bytes;
     * rank 0 views every rank's record as a ckpt_rank (pointers into rec). */
    size_t (*state_bytes)(const task *t);
    void (*state_pack)(const task *t, const train_progress *prog, void *rec);
    void (*state_view)(const task *t, void *rec, ckpt_rank *out);
    /* Resume: take over what the checkpoint d holds for this rank (no
     * collectives), then, once every rank has, agree on it (collective; may
     * move prog's cursor when the checkpoint's layout does not match). */
    void (*state_load)(task *t, const ckpt_data *d, const train_progress *prog,
                       const char *path);
    void (*resume_agree)(task *t, train_progress *prog);
    /* --balance auto (may be NULL): called after every step with this rank's
     * compute seconds of it; at the end of a measuring window (balance.h)
     * moves rows between ranks when that makes the step shorter. Returns -1
     * when it did not judge (no auto balance, or the window goes on), 0 when
     * it kept the split, 1 when it moved rows, with the new rows per rank and
     * the estimated rows per second (nranks each) in rows and speed.
     * Collective at the windows' ends, which every rank sees at the same step. */
    int (*rebalance)(task *t, double step_seconds, int *rows, double *speed);
    /* --trace-every (may be NULL): open the traces (rank 0) and record one
     * step while w still holds its forward. 0 or -1. */
    int (*trace_open)(task *t, const model *m, const vocab *voc, const char *dir, int64_t step);
    int (*trace_step)(task *t, const model *m, const model_work *w, const char *dir,
                      int64_t step);
    /* A fresh run (may be NULL): set what the model takes from the data after
     * its random init (the feature standardisation of classify --features). */
    void (*model_init)(const task *t, model *m);
    /* Rank 0: the header line about the data and the batches. */
    void (*print_header)(const task *t, int64_t total_steps);
} task_ops;

struct task {
    const task_ops *ops;
    int rank, nranks;
    int T;        /* steps per batch at most */
    int rows_cap; /* rows of any batch (training or evaluation) on this rank */
    int has_val;  /* whether evaluate has a validation split to read */
    int eval_split; /* SPLIT_* evaluate reads: SPLIT_VAL in training (set by open); `charnn
                       eval` may set another before calling evaluate (tasks that can) */
    int n_labels; /* names of the head's outputs (set by open), 0 when they are */
    char **labels;/* (n_labels) the vocabulary; owned by the task */
    void *impl;
};

extern const task_ops task_lm_ops;
/* One-to-one: classify --features, a vector per example (task_features.c). */
extern const task_ops task_features_ops;
extern const task_ops task_classify_ops;
extern const task_ops task_seq2seq_ops; /* src/tasks/task_seq2seq.c */
/* Conditional generation (src/tasks/task_generate.c, generate.h). */
extern const task_ops task_generate_ops;
/* A generator's loss over a split (SPLIT_*) of its examples, all ranks: out,
 * and per class (class_loss and class_targets hold the file's classes; NULL:
 * not wanted). Collective. 0 or -1. */
int task_generate_evaluate(task *t, const model *m, model_work *w, int split,
                           int64_t max_batches, eval_result *out, double *class_loss,
                           int64_t *class_targets);
/* The classes of the generator's examples file (its labels, whether or not
 * they are the condition) and their names. */
int task_generate_classes(const task *t);
const char *const *task_generate_class_names(const task *t);
/* For traces (trace_cond.h): the condition's width (*vector: 1 for
 * --cond-vectors, 0 for one-hot classes); examples [*begin, *end) of a split
 * (SPLIT_*, indices into the examples file); example i as the model reads it,
 * x and y (t->T) the row BOS c1..cn and c1..cn EOS, cond (D) its condition,
 * *label its class in the file: returns its steps n + 1, or -1. */
int task_generate_cond_width(const task *t, int *vector);
void task_generate_split(const task *t, int split, size_t *begin, size_t *end);
int task_generate_example(task *t, size_t i, int32_t *x, int32_t *y, float *cond, int32_t *label);
/* The vector classifier's: positions [*begin, *end) of a split (SPLIT_*, no
 * test: -1 with a message); the vector width D; the example at a position,
 * its raw vector (D) and class, returning its row in the file. */
int task_features_split(const task *t, int split, size_t *begin, size_t *end);
int task_features_dim(const task *t);
size_t task_features_example(const task *t, size_t pos, float *x, int32_t *label);
extern const task_ops task_tag_ops;
/* "lm" -> its ops, or NULL. */
const task_ops *task_find(const char *name);
/* The task names, "lm | ...", for usage text and errors. */
const char *task_names(void);
/* printf on rank 0 only (the task's header and notes), flushed. */
void task_say(const task *t, const char *fmt, ...) CN_PRINTF(2, 3);

#endif
