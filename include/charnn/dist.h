/* dist: the only door to MPI (src/sys/dist.c is the one file that includes
 * mpi.h). Everything here works for a single process started without a
 * launcher, which Open MPI runs as a one-rank job.
 *
 * Failure rule (PETSc's): an error that only one rank sees must not walk into
 * a collective call, or the other ranks wait forever. Such errors go through
 * dist_abort, which names the rank and ends the whole job.
 */
#ifndef CHARNN_DIST_H
#define CHARNN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "charnn/common.h"

/* MPI_Init_thread (funneled); 0 or -1. Safe to call twice. */
int dist_init(int *argc, char ***argv);
/* Whether this process was started by an MPI launcher (mpiexec/mpirun, srun
 * with PMIx or PMI-2, Hydra). A process started on its own is a job of one
 * rank and runs without MPI: every dist_* call works on it, and it saves
 * MPI's start-up and its ~10 MiB of memory. CHARNN_MPI=1 or 0 overrides. */
int dist_launched(void);
void dist_finalize(void);
int dist_rank(void);
int dist_size(void);
int dist_initialized(void);
/* Run the collectives on this process alone (1) or on every rank (0, the
 * default); tests use it to train a one-rank reference inside an MPI job. */
void dist_use_self(int self_only);

/* End every rank of the job: prints "charnn: rank R: <msg>" and calls
 * MPI_Abort (a plain exit when the job has one rank). */
CN_NORETURN void dist_abort(int status, const char *fmt, ...) CN_PRINTF(2, 3);

void dist_barrier(void);
/* In-place sums over all ranks. */
void dist_allreduce_sum_f32(float *x, size_t n);
void dist_allreduce_sum_f64(double *x, size_t n);
void dist_allreduce_sum_i64(int64_t *x, size_t n);
/* Sum of x over all ranks. */
int dist_allreduce_sum_int(int x);
/* Largest value of x over all ranks. */
int dist_allreduce_max_int(int x);
void dist_bcast(void *buf, size_t bytes, int root);
/* Root receives nranks * bytes in rank order. */
void dist_gather(const void *send, size_t bytes, void *recv, int root);

/* Parallel HDF5 needs the communicator, which only dist.c may see: set an
 * HDF5 file-access property list (a hid_t) to MPI-IO on the ranks of the job,
 * and a transfer list to collective I/O. 0 or -1. Without MPI (one process,
 * no launcher) both leave HDF5's defaults. */
int dist_hdf5_fapl_mpio(int64_t fapl);
int dist_hdf5_dxpl_collective(int64_t dxpl);

/* Non-blocking sums for overlapping the gradient all-reduce with backward:
 * start one per bucket, then wait for all before the optimizer step. */
void dist_iallreduce_sum_f32(float *x, size_t n);
/* Let started dist_iallreduce_sum_f32 calls progress (MPI moves non-blocking
 * collectives only inside MPI calls); cheap, call it now and then. */
void dist_progress(void);
/* Wait for every started dist_iallreduce_sum_f32; returns seconds waited. */
double dist_wait_all(void);

#endif
