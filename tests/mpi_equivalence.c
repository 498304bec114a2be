/* The central test of data parallelism: N ranks x B streams train the same
 * model as 1 rank x N*B streams. Rank 0 first trains the one-rank reference
 * on its own (dist_use_self), then all N ranks train together; rank 0
 * compares the loss at every step, the validation loss and every parameter.
 *
 * Why a tolerance and which: both runs add the same numbers in a different
 * order (each rank sums its own T*B positions in its GEMMs, then MPI sums the
 * N partial gradients), so they differ by float32 rounding, ~1e-7 relative
 * per operation. Over 20 Adam steps the parameters were measured to differ by
 * at most 1e-6 absolute here (weights are ~0.1) for N = 2 and 4, and the
 * logged losses (6 decimals) not at all. The bounds, 2e-4 on parameters and 1e-4 relative on losses, are
 * 100x that; a real sharding bug (a stream read twice, a missing rank's
 * gradient, a mean of means) moves the loss by 1e-2 or more from the first
 * step. Dropout is off: each rank draws its own masks, so it cannot match. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "charnn/ckpt.h"
#include "charnn/config.h"
#include "charnn/dist.h"
#include "charnn/runtime.h"
#include "charnn/train.h"
#include "testlib.h"

#define PARAM_TOL 2e-4
#define LOSS_TOL 1e-4
#define STEPS 20
#define BPER 4

static char data_path[4096];

static void make_data(void)
{
    snprintf(data_path, sizeof data_path, "%s/tinyshakespeare.txt", CHARNN_SHARED_DATA);
    if (access(data_path, R_OK) == 0)
        return;
    /* a generated text when the shared data is absent (rank 0 writes, all read) */
    snprintf(data_path, sizeof data_path, "mpi_equivalence_corpus.txt");
    if (dist_rank() == 0) {
        FILE *f = fopen(data_path, "w");
        uint64_t s = 7;
        for (int i = 0; i < 400000; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            fputc("abcdefgh ,.\n"[(s >> 33) % 12], f);
        }
        fclose(f);
    }
    dist_barrier();
}

static void run(cell_kind cell, int batch, const char *out)
{
    run_config c;
    config_default(&c);
    memcpy(c.data, data_path, strlen(data_path) + 1);
    snprintf(c.out, sizeof c.out, "%s", out);
    c.model.cell = cell;
    c.model.layers = 2;
    c.model.hidden = 32;
    c.seq = 16;
    c.batch = batch;
    c.steps = STEPS;
    c.log_every = 1;
    c.eval_every = 10;
    c.eval_chunks = 4;
    c.checkpoint_every = 0;
    c.progress_bar = 0;
    if (dist_rank() == 0 && testlib_system("rm -rf '%s'", out) != 0)
        CU_FAIL("cannot clean the output directory");
    dist_barrier();
    CU_ASSERT_EQUAL(train_run(&c), TRAIN_EXIT_OK);
}

/* The "loss" (type train) and "val_loss" values of a metrics.jsonl, in order. */
static int read_losses(const char *dir, double *out, int max)
{
    char path[4200], line[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        const char *k = strstr(line, "\"val_loss\":");
        if (k)
            out[n++] = atof(k + 11);
        else if ((k = strstr(line, "\"loss\":")))
            out[n++] = atof(k + 7);
    }
    fclose(f);
    return n;
}

static void compare(const char *ref, const char *par)
{
    double a[256], b[256];
    int na = read_losses(ref, a, 256), nb = read_losses(par, b, 256);
    CU_ASSERT_EQUAL(na, nb);
    CU_ASSERT(na >= STEPS);
    double worst_loss = 0.0;
    for (int i = 0; i < na && i < nb; i++) {
        double rel = fabs(a[i] - b[i]) / fabs(a[i]);
        if (rel > worst_loss)
            worst_loss = rel;
    }
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/model.h5", ref);
    snprintf(pb, sizeof pb, "%s/model.h5", par);
    ckpt_data da, db;
    CU_ASSERT_EQUAL_FATAL(ckpt_read(pa, &da), 0);
    CU_ASSERT_EQUAL_FATAL(ckpt_read(pb, &db), 0);
    CU_ASSERT_EQUAL_FATAL(da.m.n_params, db.m.n_params);
    double worst_param = 0.0;
    for (size_t i = 0; i < da.m.n_params; i++) {
        double d = fabs((double)da.m.params[i] - (double)db.m.params[i]);
        if (!(d <= worst_param))
            worst_param = isnan(d) ? INFINITY : d;
    }
    CU_ASSERT_EQUAL(da.prog.tokens_seen, db.prog.tokens_seen);
    printf("  %s vs %s: %d losses, worst relative loss difference %.2e, worst parameter "
           "difference %.2e\n",
           ref, par, na, worst_loss, worst_param);
    CU_ASSERT(worst_loss < LOSS_TOL);
    CU_ASSERT(worst_param < PARAM_TOL);
    ckpt_data_free(&da);
    ckpt_data_free(&db);
}

static void check_cell(cell_kind cell)
{
    const int n = dist_size();
    char ref[256], par[256];
    snprintf(ref, sizeof ref, "equiv_%s_ref_np%d", cell_name(cell), n);
    snprintf(par, sizeof par, "equiv_%s_np%d", cell_name(cell), n);
    if (dist_rank() == 0) {
        dist_use_self(1);
        run(cell, n * BPER, ref);
        dist_use_self(0);
    }
    dist_barrier();
    run(cell, BPER, par);
    if (dist_rank() == 0)
        compare(ref, par);
    dist_barrier();
}

static void test_rnn(void)
{
    check_cell(CELL_RNN);
}

static void test_lstm(void)
{
    check_cell(CELL_LSTM);
}

static void test_gru(void)
{
    check_cell(CELL_GRU);
}

/* The all-reduce wrappers: sums of known values over the ranks. */
static void test_allreduce(void)
{
    const int n = dist_size(), r = dist_rank();
    float f[5];
    double d[3];
    for (int i = 0; i < 5; i++)
        f[i] = (float)(r + 1) * (float)(i + 1);
    for (int i = 0; i < 3; i++)
        d[i] = 0.5 * (r + 1) + i;
    dist_allreduce_sum_f32(f, 5);
    dist_allreduce_sum_f64(d, 3);
    double ranks_sum = n * (n + 1) / 2.0;
    for (int i = 0; i < 5; i++)
        CU_ASSERT_DOUBLE_EQUAL(f[i], ranks_sum * (i + 1), 1e-4);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_DOUBLE_EQUAL(d[i], 0.5 * ranks_sum + n * i, 1e-12);
    float g[7];
    for (int i = 0; i < 7; i++)
        g[i] = (float)r;
    dist_iallreduce_sum_f32(g, 3);
    dist_iallreduce_sum_f32(g + 3, 4);
    dist_wait_all();
    for (int i = 0; i < 7; i++)
        CU_ASSERT_DOUBLE_EQUAL(g[i], (n - 1) * n / 2.0, 1e-6);
    CU_ASSERT_EQUAL(dist_allreduce_max_int(r), n - 1);
    CU_ASSERT_EQUAL(dist_allreduce_sum_int(1), n);
}

int main(int argc, char **argv)
{
    if (dist_init(&argc, &argv) != 0)
        return 2;
    runtime_set_threads(1);
    make_data();
    CU_pSuite s = testlib_suite("mpi equivalence");
    testlib_add(s, "allreduce wrappers", test_allreduce);
    testlib_add(s, "rnn: N ranks x B == 1 rank x N*B", test_rnn);
    testlib_add(s, "lstm: N ranks x B == 1 rank x N*B", test_lstm);
    testlib_add(s, "gru: N ranks x B == 1 rank x N*B", test_gru);
    int failures = testlib_run_mpi();
    dist_finalize();
    return failures ? 1 : 0;
}
