/* MPI wrappers; the one file that includes mpi.h. See dist.h. */
#include "charnn/dist.h"

#include <hdf5.h>
#include <limits.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIST_MAX_PENDING 256
/* MPI counts are int: large buffers go in pieces. */
#define DIST_PIECE (1 << 30)

static int dist_rank_id = 0, dist_nranks = 1, dist_up = 0;
static MPI_Comm dist_comm = MPI_COMM_WORLD;
static MPI_Request dist_pending[DIST_MAX_PENDING];
static int dist_npending = 0;

int dist_init(int *argc, char ***argv)
{
    int already = 0, provided = 0;
    MPI_Initialized(&already);
    if (!already && MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return cn_err("cannot initialise MPI");
    MPI_Comm_rank(MPI_COMM_WORLD, &dist_rank_id);
    MPI_Comm_size(MPI_COMM_WORLD, &dist_nranks);
    dist_up = 1;
    return 0;
}

int dist_launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                       "PMI_SIZE", "PMI_FD", "MPI_LOCALNRANKS"};
    const char *force = getenv("CHARNN_MPI");
    if (force && *force)
        return strcmp(force, "0") != 0;
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

void dist_finalize(void)
{
    int fin = 0;
    if (!dist_up)
        return;
    MPI_Finalized(&fin);
    if (!fin)
        MPI_Finalize();
    dist_up = 0;
}

void dist_use_self(int self_only)
{
    dist_comm = self_only ? MPI_COMM_SELF : MPI_COMM_WORLD;
    MPI_Comm_rank(dist_comm, &dist_rank_id);
    MPI_Comm_size(dist_comm, &dist_nranks);
}

int dist_rank(void)
{
    return dist_rank_id;
}

int dist_size(void)
{
    return dist_nranks;
}

int dist_initialized(void)
{
    return dist_up;
}

void dist_abort(int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (dist_nranks > 1)
        fprintf(stderr, "charnn: rank %d: %s\n", dist_rank_id, msg);
    else
        fprintf(stderr, "charnn: %s\n", msg);
    fflush(stderr);
    if (dist_up && dist_nranks > 1)
        MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
    dist_finalize();
    exit(status ? status : 1);
}

void dist_barrier(void)
{
    if (dist_nranks > 1)
        MPI_Barrier(dist_comm);
}

static void allreduce_pieces(void *x, size_t n, MPI_Datatype type, size_t elem)
{
    if (dist_nranks == 1)
        return;
    char *p = x;
    while (n > 0) {
        int count = n > DIST_PIECE ? DIST_PIECE : (int)n;
        MPI_Allreduce(MPI_IN_PLACE, p, count, type, MPI_SUM, dist_comm);
        p += (size_t)count * elem;
        n -= (size_t)count;
    }
}

void dist_allreduce_sum_f32(float *x, size_t n)
{
    allreduce_pieces(x, n, MPI_FLOAT, sizeof *x);
}

void dist_allreduce_sum_f64(double *x, size_t n)
{
    allreduce_pieces(x, n, MPI_DOUBLE, sizeof *x);
}

void dist_allreduce_sum_i64(int64_t *x, size_t n)
{
    allreduce_pieces(x, n, MPI_INT64_T, sizeof *x);
}

int dist_allreduce_sum_int(int x)
{
    int out = x;
    if (dist_nranks > 1)
        MPI_Allreduce(&x, &out, 1, MPI_INT, MPI_SUM, dist_comm);
    return out;
}

int dist_allreduce_max_int(int x)
{
    int out = x;
    if (dist_nranks > 1)
        MPI_Allreduce(&x, &out, 1, MPI_INT, MPI_MAX, dist_comm);
    return out;
}

void dist_bcast(void *buf, size_t bytes, int root)
{
    if (dist_nranks == 1)
        return;
    char *p = buf;
    while (bytes > 0) {
        int count = bytes > DIST_PIECE ? DIST_PIECE : (int)bytes;
        MPI_Bcast(p, count, MPI_BYTE, root, dist_comm);
        p += count;
        bytes -= (size_t)count;
    }
}

void dist_gather(const void *send, size_t bytes, void *recv, int root)
{
    CHARNN_ASSERT(bytes <= INT_MAX);
    if (dist_nranks == 1) {
        if (recv != send)
            for (size_t i = 0; i < bytes; i++)
                ((char *)recv)[i] = ((const char *)send)[i];
        return;
    }
    MPI_Gather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, root, dist_comm);
}

void dist_iallreduce_sum_f32(float *x, size_t n)
{
    if (dist_nranks == 1)
        return;
    while (n > 0) {
        int count = n > DIST_PIECE ? DIST_PIECE : (int)n;
        CHARNN_ASSERT(dist_npending < DIST_MAX_PENDING);
        MPI_Iallreduce(MPI_IN_PLACE, x, count, MPI_FLOAT, MPI_SUM, dist_comm,
                       &dist_pending[dist_npending++]);
        x += count;
        n -= (size_t)count;
    }
}

void dist_progress(void)
{
    if (dist_npending == 0)
        return;
    int done = 0;
    MPI_Testall(dist_npending, dist_pending, &done, MPI_STATUSES_IGNORE);
    if (done)
        dist_npending = 0; /* all complete (and freed) */
}

double dist_wait_all(void)
{
    if (dist_npending == 0)
        return 0.0;
    double t0 = MPI_Wtime();
    MPI_Waitall(dist_npending, dist_pending, MPI_STATUSES_IGNORE);
    dist_npending = 0;
    return MPI_Wtime() - t0;
}

int dist_hdf5_fapl_mpio(int64_t fapl)
{
    if (!dist_up)
        return 0; /* one process without MPI: HDF5's default driver */
    return H5Pset_fapl_mpio((hid_t)fapl, dist_comm, MPI_INFO_NULL) < 0 ? -1 : 0;
}

int dist_hdf5_dxpl_collective(int64_t dxpl)
{
    if (!dist_up)
        return 0;
    return H5Pset_dxpl_mpio((hid_t)dxpl, H5FD_MPIO_COLLECTIVE) < 0 ? -1 : 0;
}
