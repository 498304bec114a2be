/* allreduce_cost: how long MPI_Allreduce (sum, float) of n values takes on R
 * ranks, for the scaling model (bench/scaling_model.py). For each n it runs
 * a few untimed calls, then `reps` timed ones, each after a barrier, and
 * prints R, n and the median over calls of the slowest rank's time.
 *
 * Build: mpicc -O2 -o /tmp/allreduce_cost bench/allreduce_cost.c
 * Run:   for R in 2 3 4 6 8; do mpiexec --oversubscribe -np $R /tmp/allreduce_cost; done
 * A standalone program (like fma_peak.c): charnn's own code reaches MPI only
 * through src/sys/dist.c. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, R;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &R);
    /* 1 value up to LSTM 2x512 on 65 characters (3.3 M parameters) */
    static const int sizes[] = {1, 1024, 16384, 131072, 1048576, 3343425};
    float *x = calloc(3343425, sizeof *x);
    double t[41];
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        const int n = sizes[i], reps = n > 100000 ? 15 : 41;
        for (int k = -3; k < reps; k++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double dt = MPI_Wtime() - t0, slowest;
            MPI_Reduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
            if (k >= 0)
                t[k] = slowest;
        }
        if (rank == 0) {
            qsort(t, (size_t)reps, sizeof *t, cmp);
            printf("%d %d %.6g\n", R, n, t[reps / 2]);
            fflush(stdout);
        }
    }
    free(x);
    MPI_Finalize();
    return 0;
}
