/* trainer: the state of one training run, shared by the loop (train.c) and
 * the policy beside it: set-up and resume (train_setup.c), logging, timing
 * and validation (train_log.c), checkpoints and signals (train_ckpt.c).
 * Private to src/train/. */
#ifndef CHARNN_TRAINER_H
#define CHARNN_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "charnn/common.h"
#include "charnn/config.h"
#include "charnn/model.h"
#include "charnn/optim.h"
#include "charnn/rundir.h"
#include "charnn/task.h"
#include "charnn/train.h"
#include "charnn/vocab.h"

/* Where the time of the steps goes. */
typedef struct {
    double mark;             /* the last lap's end */
    double compute, comm;    /* this log interval's seconds */
    double bal_compute;      /* compute seconds since the last balance decision ... */
    int bal_steps;           /* ... over this many steps */
} train_clock;

/* The log of the run: rank 0's metrics.jsonl, the console and the interval sums. */
typedef struct {
    FILE *metrics;
    int bar;                 /* a progress bar between log lines */
    double t_start, t_log;   /* run start, last log line */
    int64_t start_step, steps_at_log;
    double loss_acc;         /* training losses since the last log line */
    int loss_n;
    double val_acc;          /* the latest validation's accuracy, NaN when not measured */
} train_log;

typedef struct {
    run_config cfg;
    int rank, nranks;
    vocab voc;
    task task;
    model m;
    optim opt;
    uint8_t *decay_mask;
    model_work w;        /* sized for the task's rows_cap rows of T steps */
    train_progress prog;
    cn_rng rng;          /* this rank's dropout keys */
    int64_t total_steps;
    int bad_streak;      /* non-finite steps in a row */
    train_clock clock;
    train_log log;
    rundir_lock lock;    /* rank 0: one run per --out, held from start to free */
} trainer;

/* train_setup.c: set up (fresh or resumed, the run directory, the header) or
 * return the exit status; free. */
int train_start(trainer *t, const run_config *cfg);
void train_free(trainer *t);

/* train_log.c: logging, timing, validation, rebalancing, traces */
void train_say(const trainer *t, const char *fmt, ...) CN_PRINTF(2, 3);
void train_metrics_write(trainer *t, const char *fmt, ...) CN_PRINTF(2, 3);
void train_log_open(trainer *t);
/* Time since the last lap into `what`: START only marks the start of a step. */
enum { TRAIN_CLOCK_START, TRAIN_CLOCK_COMPUTE, TRAIN_CLOCK_COMM };
void train_clock_lap(trainer *t, int what);
/* After a step: the skip message (TRAIN_EXIT_DIVERGED after too many), the
 * validation when due, the log line or the progress bar. */
int train_log_step(trainer *t, double loss, double gnorm, float lr);
/* Validation loss (NaN without a validation split), logged; *improved when it
 * is the best so far (prog.best_val updated). */
double train_validate(trainer *t, int *improved);
/* --balance auto every BALANCE_EVERY steps, and --trace-every, after a step. */
void train_rebalance(trainer *t);
void train_trace_step(trainer *t);

/* train_ckpt.c */
void train_install_signals(void);
void train_verify_same_parameters(const trainer *t, const char *when);
void train_save(trainer *t, const char *path);
void train_save_best(trainer *t);
/* After a step: the scheduled checkpoint, and the stop on a signal
 * (checkpoint, TRAIN_EXIT_STOPPED). */
int train_checkpoint_step(trainer *t);
/* The end of a run: validation, model.h5 (then latest), then best.h5. */
void train_save_final(trainer *t);

#endif
