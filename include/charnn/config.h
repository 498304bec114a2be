/* config: every setting of a run in one struct, filled by the CLI from flags
 * (with char-rnn's defaults), stored in checkpoints as root attributes and
 * read back on resume. */
#ifndef CHARNN_CONFIG_H
#define CHARNN_CONFIG_H

#include <stdint.h>

#include "charnn/model.h"
#include "charnn/optim.h"
#include "charnn/vocab.h"

#define CONFIG_PATH_MAX 1024
#define CONFIG_NAME_MAX 32 /* a task name, as ckpt.h's CKPT_NAME_MAX */

typedef struct {
    char task[CONFIG_NAME_MAX]; /* what is learned (task.h): "lm" (default), ... */
    /* data */
    char data[CONFIG_PATH_MAX]; /* text file or prepared corpus (corpus.h) */
    char out[CONFIG_PATH_MAX];  /* run directory: model.h5, checkpoints, metrics.jsonl */
    vocab_mode vocab_mode;
    double val_frac, test_frac;
    char cond_vectors[CONFIG_PATH_MAX]; /* generate: HDF5 file of /features (N, D), the
                                           condition of each example; "": its class */
    char features[CONFIG_PATH_MAX];     /* classify --features: HDF5 /features + /labels, or a
                                           CSV of numeric columns and a label column */
    /* model */
    model_config model; /* model.vocab is filled from the data */
    float init_scale;   /* uniform init range, default 0.08 */
    float forget_bias;  /* LSTM forget-gate bias, NaN = leave the uniform init */
    /* training */
    int seq;            /* T */
    int batch;          /* B streams per rank */
    int64_t steps;      /* total optimizer steps; 0 = from epochs */
    double epochs;      /* used when steps == 0 */
    uint64_t seed;
    int threads;        /* 0 = OMP_NUM_THREADS or all cores */
    optim_config optim;
    sched_config sched; /* sched.lr is the base learning rate */
    float clip;         /* global gradient-norm clip, 0 = off */
    int64_t eval_every; /* steps between validations, 0 = only at the end */
    int64_t eval_chunks;/* chunks of the validation split per validation, 0 = all */
    int64_t log_every;
    int64_t checkpoint_every; /* 0 = only at the end */
    int keep_last;            /* checkpoints kept besides best and the final model */
    int64_t trace_every;      /* steps between hidden-state traces (trace_probe.h5,
                                 trace_streams.h5 in out), 0 = off */
    int trace_probe_chars;    /* length of the probe text those traces run over */
    int max_bad_steps;        /* consecutive non-finite steps before giving up */
    int patience;             /* validations without a better loss before stopping, or
                                 before multiplying the rate by lr_on_plateau; 0 = off */
    double lr_on_plateau;     /* factor in (0, 1) applied on a plateau down to sched.min_lr,
                                 0 = off (then --patience stops the run) */
    int precision;            /* kern_precision (kernels.h) of the matrix products:
                                 KERN_F32 (0, the default) or KERN_BF16 */
    int nranks;               /* ranks of the run that wrote a checkpoint */
    /* fine-tuning: read at step 0 of a fresh run only; stored as a record */
    char init_from[CONFIG_PATH_MAX]; /* --init-from: the model a fresh run's parameters start
                                        from (cell, layers, hidden, embed and the vocabulary are
                                        its), "" = uniform init */
    int extend_vocab;         /* --extend-vocab: add the data's characters the model lacks */
    int64_t freeze_stack;     /* --freeze-stack N: the first N updates train the head only */
    /* tasks of independent examples (classify; exorder.h) */
    int max_len;              /* --max-len: steps an example is cut to, 0 = none */
    int bucket_batches;       /* --bucket: global batches per length-sorted window, 0 = off */
    int class_weights;        /* --class-weights: CONFIG_CLASS_WEIGHTS_* */
    int balanced_sampling;    /* --balanced-sampling: draw every class equally often */
    /* this invocation only (not stored in checkpoints) */
    char resume[CONFIG_PATH_MAX]; /* checkpoint path, "auto", or "" */
    int progress_bar;             /* -1 auto (a terminal), 0 off, 1 on */
    int allreduce_blocking;       /* 1: one blocking all-reduce after backward */
    int timing;                   /* 1: print per-rank compute/communication/idle times */
    char balance[CONFIG_PATH_MAX];/* --balance: "off" (or ""), "auto", or weights "w0,w1,..." */
    double balance_min_seconds;   /* auto: compute seconds a measuring window lasts after
                                     the first (BALANCE_WINDOW_SECONDS; tests lower it) */
    double stop_by;               /* cn_now() time by which the run must have stopped with a
                                     checkpoint (--time-limit or Slurm's end), 0 = none */
    double time_margin;           /* fixed part of the margin kept before stop_by, seconds */
    unsigned given;               /* CONFIG_GIVEN_* bits: flags set on the command line */
} run_config;

/* Shape flags a resumed run must agree on with its checkpoint when given. */
enum {
    CONFIG_GIVEN_CELL = 1u << 0,
    CONFIG_GIVEN_LAYERS = 1u << 1,
    CONFIG_GIVEN_HIDDEN = 1u << 2,
    CONFIG_GIVEN_EMBED = 1u << 3,
    CONFIG_GIVEN_SEQ = 1u << 4,
    CONFIG_GIVEN_BATCH = 1u << 5,
    CONFIG_GIVEN_OPTIM = 1u << 6,
    CONFIG_GIVEN_BYTES = 1u << 7,
    CONFIG_GIVEN_TASK = 1u << 8,
    CONFIG_GIVEN_POOL = 1u << 9,
    /* the order of independent examples (exorder.h): a resumed run keeps the
       checkpoint's unless given */
    CONFIG_GIVEN_MAX_LEN = 1u << 10,
    CONFIG_GIVEN_BUCKET = 1u << 11,
    CONFIG_GIVEN_CLASS_WEIGHTS = 1u << 12,
    CONFIG_GIVEN_BALANCED_SAMPLING = 1u << 13,
    CONFIG_GIVEN_FREEZE = 1u << 14,
    CONFIG_GIVEN_PRECISION = 1u << 15,
    CONFIG_GIVEN_BIDIR = 1u << 16,
    CONFIG_GIVEN_ACTIVATION = 1u << 17
    /* the CLI keeps bits 24 and up for its own */
};

enum { CONFIG_CLASS_WEIGHTS_NONE = 0, CONFIG_CLASS_WEIGHTS_BALANCED = 1 };

/* Fill with the defaults (char-rnn's where it has one). */
void config_default(run_config *c);

#endif
