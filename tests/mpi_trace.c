/* The streams trace of `train --trace-every` written collectively by every
 * rank into one file with parallel HDF5: each rank's hidden states land in
 * its own stream slots. After training, rank 0 reads trace_streams.h5 and
 * compares the last time step of each rank's slots in the last entry with
 * the state that rank carried into model.h5 (/ranks/rank{r}/h): the same
 * bits, rank by rank. The probe trace (rank 0 alone) is there too. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/ckpt.h"
#include "charnn/config.h"
#include "charnn/dist.h"
#include "charnn/runtime.h"
#include "charnn/train.h"
#include "testlib.h"

#define OUT "mpi_trace_run"
#define DATA "mpi_trace_corpus.txt"
#define LAYERS 2
#define HIDDEN 8
#define SEQ 8
#define BATCH 3
#define STEPS 10
#define EVERY 5

static void make_data(void)
{
    if (dist_rank() == 0) {
        FILE *f = fopen(DATA, "w");
        uint64_t s = 11;
        for (int i = 0; i < 60000; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            fputc("abcdefgh ,.\n"[(s >> 33) % 12], f);
        }
        fclose(f);
        if (testlib_system("rm -rf '%s'", OUT) != 0)
            CU_FAIL("cannot clean the output directory");
    }
    dist_barrier();
}


static void test_streams(void)
{
    run_config c;
    config_default(&c);
    snprintf(c.data, sizeof c.data, "%s", DATA);
    snprintf(c.out, sizeof c.out, "%s", OUT);
    c.model.cell = CELL_LSTM;
    c.model.layers = LAYERS;
    c.model.hidden = HIDDEN;
    c.seq = SEQ;
    c.batch = BATCH;
    c.steps = STEPS;
    c.log_every = 5;
    c.eval_every = 0;
    c.checkpoint_every = 0;
    c.progress_bar = 0;
    c.trace_every = EVERY;
    c.trace_probe_chars = 40;
    CU_ASSERT_EQUAL_FATAL(train_run(&c), TRAIN_EXIT_OK);
    dist_barrier();
    if (dist_rank() != 0)
        return;

    const int R = dist_size(), S = STEPS / EVERY;
    const char *path = OUT "/trace_streams.h5";
    int rank;
    hsize_t dims[8];
    int64_t *steps = testlib_read_dset(path, "/steps", H5T_NATIVE_INT64, &rank, dims);
    CU_ASSERT_FATAL(steps != NULL);
    CU_ASSERT(rank == 1 && dims[0] == (hsize_t)S);
    for (int s = 0; s < S; s++)
        CU_ASSERT_EQUAL(steps[s], (int64_t)(s + 1) * EVERY);
    free(steps);

    ckpt_data d;
    CU_ASSERT_EQUAL_FATAL(ckpt_read(OUT "/model.h5", &d), 0);
    CU_ASSERT_EQUAL_FATAL(d.nranks, R);
    for (int l = 0; l < LAYERS; l++) {
        char name[32];
        snprintf(name, sizeof name, "/layer%d/h", l);
        float *h = testlib_read_dset(path, name, H5T_NATIVE_FLOAT, &rank, dims);
        CU_ASSERT_FATAL(h != NULL);
        CU_ASSERT_FATAL(rank == 4 && dims[0] == (hsize_t)S && dims[1] == SEQ &&
                        dims[2] == (hsize_t)R * BATCH && dims[3] == HIDDEN);
        /* h[S-1, T-1, r*B + b, :] == rank r's carried h[l, b, :] */
        const float *last = h + ((size_t)(S - 1) * SEQ + (SEQ - 1)) * R * BATCH * HIDDEN;
        for (int r = 0; r < R; r++) {
            const float *mine = last + (size_t)r * BATCH * HIDDEN;
            const float *carried = d.ranks[r].h + (size_t)l * BATCH * HIDDEN;
            CU_ASSERT(memcmp(mine, carried, (size_t)BATCH * HIDDEN * sizeof(float)) == 0);
            /* and not some other rank's: the ranks read different text */
            if (r > 0)
                CU_ASSERT(memcmp(mine, last, (size_t)BATCH * HIDDEN * sizeof(float)) != 0);
        }
        free(h);
    }
    ckpt_data_free(&d);

    steps = testlib_read_dset(OUT "/trace_probe.h5", "/steps", H5T_NATIVE_INT64, &rank, dims);
    CU_ASSERT_FATAL(steps != NULL);
    CU_ASSERT(dims[0] == (hsize_t)S && steps[S - 1] == STEPS);
    free(steps);
}

int main(int argc, char **argv)
{
    if (dist_init(&argc, &argv) != 0)
        return 2;
    runtime_set_threads(1);
    make_data();
    CU_pSuite s = testlib_suite("mpi trace");
    testlib_add(s, "every rank's streams in its own slots of trace_streams.h5", test_streams);
    int failures = testlib_run_mpi();
    dist_finalize();
    return failures ? 1 : 0;
}
