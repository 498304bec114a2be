/* runtime: process-wide settings: the number of OpenMP threads, the BLAS
 * library's own threads, and the version string. */
#ifndef CHARNN_RUNTIME_H
#define CHARNN_RUNTIME_H

/* Process start-up, before any other charnn call. */
void runtime_init(void);

/* For commands other than train: make OpenMP threads sleep instead of
 * spinning while they wait (OMP_WAIT_POLICY=passive), by starting the
 * program again with it set (argv as main got it) unless the environment
 * already has OMP_WAIT_POLICY or GOMP_SPINCOUNT. Returns when nothing was
 * done or the exec failed. */
void runtime_exec_passive_wait(char **argv);

/* Use `threads` OpenMP threads (0: OMP_NUM_THREADS if set, else every core)
 * and configure BLAS so that its threads do not compete with them. */
void runtime_set_threads(int threads);
/* OpenMP threads in use. */
int runtime_threads(void);
const char *runtime_version(void);
/* Which BLAS build is loaded, how it is used and which kernels it runs. */
const char *runtime_blas(void);
/* A one-line note when OPENBLAS_CORETYPE holds OpenBLAS to narrower kernels
 * than this CPU runs (AVX2 on an AVX-512 machine); NULL otherwise. */
const char *runtime_blas_note(void);

#endif
