/* Thread configuration and version. See runtime.h. */
#include "charnn/runtime.h"

#include <cblas.h>
#include <hdf5.h>
#include <omp.h>
#include <stdlib.h>

#ifndef CHARNN_VERSION
#define CHARNN_VERSION "unknown"
#endif

static int runtime_nthreads = 1;

void runtime_init(void)
{
    /* HDF5 shuts itself down at exit and, when a damaged file could not be
     * closed, prints "infinite loop closing library" under our one-line
     * error. Every file charnn writes is closed explicitly before exit, so
     * the shutdown has nothing to save: skip it. */
    H5dont_atexit();
}

void runtime_set_threads(int threads)
{
    if (threads <= 0) {
        const char *env = getenv("OMP_NUM_THREADS");
        threads = env && atoi(env) > 0 ? atoi(env) : omp_get_num_procs();
    }
    runtime_nthreads = threads;
    omp_set_num_threads(threads);
    /* OpenBLAS's OpenMP build runs its GEMMs on our OpenMP pool, so it may use
     * every thread. The pthreads build keeps a pool of its own whose spinning
     * threads slow our OpenMP loops down (2 threads ran 2-4x slower than 1):
     * with it, BLAS runs single-threaded and the parallelism is ours. */
    openblas_set_num_threads(openblas_get_parallel() == 2 ? threads : 1);
}

int runtime_threads(void)
{
    return runtime_nthreads;
}

const char *runtime_blas(void)
{
    switch (openblas_get_parallel()) {
    case 0:
        return "OpenBLAS (sequential)";
    case 1:
        return "OpenBLAS (pthreads, used single-threaded)";
    case 2:
        return "OpenBLAS (OpenMP)";
    }
    return "OpenBLAS";
}

const char *runtime_version(void)
{
    return CHARNN_VERSION;
}
