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
} train_progress;

/* Train as cfg says; returns the process exit status (see TRAIN_EXIT_*). */
enum {
    TRAIN_EXIT_OK = 0,
    TRAIN_EXIT_ERROR = 1,
    TRAIN_EXIT_DIVERGED = 3, /* too many non-finite steps in a row */
    TRAIN_EXIT_STOPPED = 75  /* stopped by a signal after checkpointing (EX_TEMPFAIL) */
};
int train_run(const run_config *cfg);

#endif
