/* ckpt: HDF5 checkpoints, the only model file format charnn has. The format
 * only: the files are written through h5io (checked HDF5 calls, fletcher32 on
 * every dataset) and committed through fsio (temporary, fsync, rename, fsync
 * of the directory), so the previous file stays valid until the new one is
 * complete; rundir decides where they go and which one a resume takes.
 * Layout (docs/checkpoint-format.md has an h5dump -H excerpt):
 *
 *   /                root attributes: format "charnn-checkpoint", format_version (2),
 *                    task, head (v2: what the model does, "lm" for the language
 *                    model), charnn_version, created, step, epoch, chunk, tokens_seen,
 *                    skipped, best_val_loss, last_val_loss, last_loss, and every
 *                    field of run_config (cell, layers, hidden, embed, vocab_size,
 *                    dropout, seq, batch, nranks, optimizer, lr, schedule, ...)
 *   /vocab           uint32 (V): code points or bytes, ascending; attribute mode
 *   /model/NAME      float32, PyTorch state_dict names and shapes:
 *                    weight_ih_l{k} (G*H, D), weight_hh_l{k} (G*H, H),
 *                    bias_ih_l{k} (G*H), bias_hh_l{k} (G*H), decoder.weight (V, H),
 *                    decoder.bias (V), embedding.weight (V, E) when E > 0
 *   /optimizer       attributes kind, t; datasets state0, state1 (n_params) in slab order
 *   /ranks/rank{r}   per rank: rng uint64 (4), cursor uint64 (B) corpus offsets of each
 *                    stream's next chunk, h float32 (L, B, H), c float32 (L, B, H) (LSTM)
 *   /labels          v2, fixed-length UTF-8 strings (n_labels): the output label set of
 *                    a head whose outputs are not the vocabulary; absent for lm
 *
 * A v1 file (written before tasks and heads) reads as task "lm", head "lm",
 * no labels, and resumes exactly as it did.
 *
 * Every dataset is chunked with the fletcher32 filter, so a flipped bit fails
 * the read. Readers check format, version and shapes and say which file and
 * which field is wrong.
 */
#ifndef CHARNN_CKPT_H
#define CHARNN_CKPT_H

#include <stdint.h>

#include "charnn/common.h"
#include "charnn/config.h"
#include "charnn/model.h"
#include "charnn/optim.h"
#include "charnn/train.h"
#include "charnn/vocab.h"

#define CKPT_FORMAT_NAME "charnn-checkpoint"
#define CKPT_FORMAT_VERSION 2
/* The oldest format version this charnn reads. */
#define CKPT_FORMAT_VERSION_MIN 1
#define CKPT_NAME_MAX CONFIG_NAME_MAX
#define CKPT_TASK_LM "lm"
#define CKPT_HEAD_LM "lm"

/* What the model does (format v2). */
typedef struct {
    char task[CKPT_NAME_MAX]; /* the task that trained it: "lm", ... */
    char head[CKPT_NAME_MAX]; /* the output head: "lm", ... */
    int n_labels;             /* 0 when the output set is the vocabulary (lm) */
    char **labels;            /* (n_labels) output label names, UTF-8; owned by a read ckpt_data */
} ckpt_task;

/* task "lm", head "lm", no labels: what every v1 file holds. */
void ckpt_task_lm(ckpt_task *t);

/* One rank's part of the run state. */
typedef struct {
    cn_rng rng;
    int batch, layers, hidden;
    uint64_t *cursor; /* (batch) */
    float *h;         /* (layers, batch, hidden) */
    float *c;         /* (layers, batch, hidden) or NULL */
} ckpt_rank;

/* What a checkpoint holds. For writing, every pointer is borrowed; opt and
 * ranks may be NULL/0 (a weights-only model file). ckpt_read fills a
 * ckpt_data that owns its contents (free with ckpt_data_free). */
typedef struct {
    int format_version; /* as read: 1 or 2 */
    ckpt_task task;
    run_config cfg;
    vocab voc;
    model m;
    optim opt;
    int has_opt;
    train_progress prog;
    int nranks;
    ckpt_rank *ranks; /* (nranks) */
} ckpt_data;

/* Write a checkpoint of a language model (task and head "lm") to `path`
 * atomically (tmp + fsync + rename + fsync dir). On error the target is
 * untouched and the temporary file removed. */
int ckpt_write_atomic(const char *path, const run_config *cfg, const vocab *voc, const model *m,
                      const optim *opt, const train_progress *prog, int nranks,
                      const ckpt_rank *ranks);
/* The same for any task: task (borrowed) names the task, the head and its
 * label set. */
int ckpt_write_task_atomic(const char *path, const ckpt_task *task, const run_config *cfg,
                           const vocab *voc, const model *m, const optim *opt,
                           const train_progress *prog, int nranks, const ckpt_rank *ranks);
/* Read and verify a checkpoint (format, version, checksums, shapes); format
 * v1 and v2. */
int ckpt_read(const char *path, ckpt_data *out);
void ckpt_data_free(ckpt_data *d);
/* 0 when d (read from path) was trained for task, else -1 and a message
 * saying that `command` needs such a model. */
int ckpt_require_task(const ckpt_data *d, const char *path, const char *task,
                      const char *command);
/* Read and verify path in a child process (a damaged file never touches this
 * process's HDF5 state); 0 and *step (may be NULL), or -1 with ckpt_read's
 * message. */
int ckpt_verify(const char *path, int64_t *step);

#endif
