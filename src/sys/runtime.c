/* Thread configuration and version. See runtime.h. */
#include "charnn/runtime.h"

#include <cblas.h>
#include <hdf5.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#ifndef CHARNN_VERSION
#define CHARNN_VERSION "unknown"
#endif

static int runtime_nthreads = 1;

void runtime_exec_passive_wait(char **argv)
{
    /* An OpenMP thread that reaches a barrier first spins (libgomp: 300,000
     * rounds) before it sleeps. On a busy machine the thread it waits for is
     * often not running, and a short eval spent 88 s instead of 0.04 s spinning
     * against another process. Training keeps spinning: its threads stay busy
     * between barriers, and a rank that shares its cores is already slow. Every
     * other command waits passively. libgomp reads OMP_WAIT_POLICY once, when
     * it is loaded (before main), so set it and run this program again: once,
     * since the new image finds it set, and never over a policy or spin count
     * the user chose. */
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0)
        return;
    fflush(NULL);
    execv("/proc/self/exe", argv);
    /* no /proc: keep running with the default policy */
    unsetenv("OMP_WAIT_POLICY");
}

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

/* OpenBLAS's kernel families that use 512-bit vectors (0.3.21's names). */
static int runtime_core_is_avx512(const char *core)
{
    static const char *const wide[] = {"skylakex", "cooperlake", "sapphirerapids"};
    for (size_t i = 0; i < sizeof wide / sizeof *wide; i++)
        if (strcasecmp(core, wide[i]) == 0)
            return 1;
    return 0;
}

const char *runtime_blas(void)
{
    static char desc[160];
    const char *build = "OpenBLAS";
    switch (openblas_get_parallel()) {
    case 0:
        build = "sequential";
        break;
    case 1:
        build = "pthreads build, used single-threaded";
        break;
    case 2:
        build = "OpenMP build";
        break;
    }
    snprintf(desc, sizeof desc, "OpenBLAS (%s, %s kernels)", build, openblas_get_corename());
    return desc;
}

const char *runtime_blas_note(void)
{
    static char note[320];
    const char *forced = getenv("OPENBLAS_CORETYPE");
    const char *core = openblas_get_corename();
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    int cpu_wide = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    int cpu_wide = 0;
#endif
    if (!forced || !*forced || !cpu_wide || runtime_core_is_avx512(core))
        return NULL;
    snprintf(note, sizeof note,
             "note: OPENBLAS_CORETYPE=%s keeps OpenBLAS on its %s kernels although this CPU has "
             "AVX-512; unset it (or set SkylakeX) for faster matrix products",
             forced, core);
    return note;
}

const char *runtime_version(void)
{
    return CHARNN_VERSION;
}
