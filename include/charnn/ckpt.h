/* ckpt: HDF5 checkpoints, the only model file format charnn has.
 *
 * One file per checkpoint, written under a temporary name in the same
 * directory, closed, fsynced, renamed over the target and the directory
 * fsynced, so the previous file stays valid until the new one is complete.
 * Layout (docs/checkpoint-format.md has an h5dump -H excerpt):
 *
 *   /                root attributes: format "charnn-checkpoint", format_version,
 *                    charnn_version, created, step, epoch, chunk, tokens_seen,
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
#define CKPT_FORMAT_VERSION 1

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
    run_config cfg;
    vocab voc;
    model m;
    optim opt;
    int has_opt;
    train_progress prog;
    int nranks;
    ckpt_rank *ranks; /* (nranks) */
} ckpt_data;

/* Write `d` to `path` atomically (tmp + fsync + rename + fsync dir). On error
 * the target is untouched and the temporary file removed. */
int ckpt_write_atomic(const char *path, const run_config *cfg, const vocab *voc, const model *m,
                      const optim *opt, const train_progress *prog, int nranks,
                      const ckpt_rank *ranks);
/* Read and verify a checkpoint (format, version, checksums, shapes). */
int ckpt_read(const char *path, ckpt_data *out);
void ckpt_data_free(ckpt_data *d);
/* Read and verify path in a child process (a damaged file never touches this
 * process's HDF5 state); 0 and *step (may be NULL), or -1 with ckpt_read's
 * message. */
int ckpt_verify(const char *path, int64_t *step);

/* Run-directory helpers. Checkpoints are DIR/ckpt-<step, 8 digits>.h5; DIR/latest
 * is a one-line text file naming the newest complete checkpoint (written
 * atomically after the checkpoint itself); DIR/best.h5 is the best by validation
 * loss; DIR/model.h5 the final model. */
void ckpt_step_path(char *out, size_t n, const char *dir, int64_t step);
int ckpt_update_latest(const char *dir, const char *ckpt_path);
/* Delete the oldest ckpt-*.h5 beyond the newest keep_last (never best.h5/model.h5). */
int ckpt_prune(const char *dir, int keep_last);
/* The checkpoint with the highest step in dir that reads and verifies (among
 * the one DIR/latest names, ckpt-*.h5 and model.h5), so a damaged newest file
 * falls back to an older one, saying so on stderr; out is "" when there is none. */
int ckpt_find_resumable(const char *dir, char *out, size_t n);
/* Delete "*.h5.tmp.<pid>" files in dir whose writing process no longer
 * exists on this host (a checkpoint write killed halfway). */
int ckpt_remove_stale_tmp(const char *dir);

#endif
