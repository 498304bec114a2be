/* memplan: the memory a command needs for a model configuration, computed
 * before anything is allocated, and the check against what this process may
 * use (physical memory, a cgroup memory limit, ulimit -v), so that a model that
 * cannot fit fails at once with one line that says how much it needs instead of
 * dying of SIGABRT or the OOM killer half-way through set-up.
 *
 * The estimate mirrors model_build and model_work_init (tests/test_memplan.c
 * checks that it does, and compares it with the measured peak RSS of real
 * runs). Allocations that fail anyway end in cn_xmalloc's one-line message
 * with exit status 1. Nothing here allocates or owns anything. */
#ifndef CHARNN_MEMPLAN_H
#define CHARNN_MEMPLAN_H

#include <stddef.h>

#include "charnn/model.h"

/* Floats in the parameter slab of cfg (model.n_params after model_build). */
size_t memplan_params(const model_config *cfg);
/* Floats model_work_init(w, m, T, B) allocates for a model of cfg. */
size_t memplan_work_floats(const model_config *cfg, int T, int B);

/* Bytes training adds on one rank: parameters, gradients, `optim_states`
 * optimizer copies and the weight-decay mask, carried states, the activations
 * of (T, B) chunks and, at a checkpoint (which releases the activations
 * first), the in-memory file image. */
double memplan_train_bytes(const model_config *cfg, int optim_states, int T, int B);
/* Bytes a forward pass over (T, B) chunks adds to a loaded model (eval,
 * trace, sample): the activations and carried state, plus `extra` bytes of the
 * command's own buffers. */
double memplan_infer_bytes(const model_config *cfg, int T, int B, double extra);

/* What this process may use, in bytes, and a short description of where that
 * limit comes from ("this machine has", "the cgroup memory limit is", ...). */
double memplan_limit_bytes(const char **source);

/* 0 when `need` more resident bytes fit next to what the process already
 * holds (times the ranks on this node) and `address_space` more bytes fit
 * under ulimit -v, else -1 with a message:
 * "<what> needs 1392.8 GiB of memory; this machine has 23.5 GiB". */
int memplan_check(double need, double address_space, const char *what);
/* The one-line checks the commands call before they allocate. */
int memplan_check_train(const model_config *cfg, int optim_states, int T, int B);
int memplan_check_infer(const model_config *cfg, int T, int B, double extra, const char *what);

#endif
