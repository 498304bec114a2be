/* train: the training loop. A task (task.h) gives the batches and their loss
 * normalisation, the model (stack + head) their loss and gradients; the loop
 * all-reduces the gradients, clips and steps the optimizer; around it
 * (src/train/train_*.c) come set-up and resume, logging, validation,
 * rebalancing, checkpoints and signals. */
#ifndef CHARNN_TRAIN_H
#define CHARNN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "charnn/common.h"
#include "charnn/config.h"

/* Where the run stands; saved in every checkpoint. */
typedef struct {
    int64_t step;        /* optimizer steps done (skipped non-finite steps included) */
    int64_t epoch;       /* current epoch, from 0 */
    uint64_t chunk;      /* next chunk of the current epoch */
    int64_t tokens_seen; /* training tokens consumed, all ranks */
    int64_t skipped;     /* steps skipped for a non-finite loss or gradient */
    double best_val;     /* best validation loss (nats/char), INFINITY before the first */
    double last_val;     /* latest validation loss, NaN before the first */
    double last_loss;    /* latest training loss, NaN before the first */
    /* --patience and --lr-on-plateau (absent from older checkpoints: 0, 0, 1) */
    int64_t best_step;        /* the step of best_val */
    int64_t evals_since_best; /* validations since the last improvement of best_val */
    double lr_factor;         /* --lr-on-plateau's multiplier on the scheduled rate, 1 at first
                                 (a zeroed struct's 0 is stored as 1) */
} train_progress;

/* Train as cfg says; returns the process exit status (see TRAIN_EXIT_*).
 * An early stop (--patience) is TRAIN_EXIT_OK, with model.h5 written as at
 * the end; a stop before --time-limit is TRAIN_EXIT_STOPPED, as for a signal. */
enum {
    TRAIN_EXIT_OK = 0,
    TRAIN_EXIT_ERROR = 1,
    TRAIN_EXIT_DIVERGED = 3, /* too many non-finite steps in a row */
    TRAIN_EXIT_STOPPED = 75  /* stopped by a signal or the time limit after checkpointing
                                (EX_TEMPFAIL) */
};
int train_run(const run_config *cfg);

/* The time limit (run_config.stop_by): after every step rank 0 stops the run
 * with a checkpoint once
 *     now + 2 x (longest step so far) + 2 x (last checkpoint write) + time_margin
 * reaches stop_by, so that the next step and the checkpoint fit twice over.
 * A step is measured from one step's end to the next, validation and
 * scheduled checkpoints included. Before the first checkpoint its write time
 * is estimated at TRAIN_CKPT_BYTES_PER_S for the parameters and the optimizer
 * state. time_margin defaults to TRAIN_TIME_MARGIN seconds (--time-margin). */
#define TRAIN_TIME_MARGIN 10.0
#define TRAIN_CKPT_BYTES_PER_S 50e6

#endif
