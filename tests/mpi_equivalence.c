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

#include "charnn/balance.h"
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

static void run_split(cell_kind cell, int batch, const char *out, const char *balance,
                      const char *resume, int64_t steps)
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
    c.steps = steps;
    snprintf(c.balance, sizeof c.balance, "%s", balance);
    c.balance_min_seconds = 0.0; /* windows of BALANCE_EVERY_MIN steps: short runs move too */
    snprintf(c.resume, sizeof c.resume, "%s", resume);
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

static void run(cell_kind cell, int batch, const char *out)
{
    run_split(cell, batch, out, "off", "", STEPS);
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

/* N ranks x B streams (split as `balance` says) against rank 0 training
 * 1 rank x N*B on its own; tag names the N-rank run's directory. */
static void check_split(cell_kind cell, const char *balance, const char *tag)
{
    const int n = dist_size();
    char ref[256], par[256];
    snprintf(ref, sizeof ref, "equiv_%s_ref_np%d", cell_name(cell), n);
    snprintf(par, sizeof par, "equiv_%s%s_np%d", cell_name(cell), tag, n);
    if (dist_rank() == 0) {
        dist_use_self(1);
        run(cell, n * BPER, ref);
        dist_use_self(0);
    }
    dist_barrier();
    run_split(cell, BPER, par, balance, "", STEPS);
    if (dist_rank() == 0)
        compare(ref, par);
    dist_barrier();
}

static void check_cell(cell_kind cell)
{
    check_split(cell, "off", "");
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

/* --balance: the same S = N*B streams split unevenly over the ranks, by fixed
 * weights or by measured speed (moves happen or not, by timing; the model
 * must match either way), train the model of 1 rank x S streams. */
/* Weights 1, 3, 1, 3, ...: with B = 4 per rank that is 2 and 6 streams. */
static const char *uneven_weights(void)
{
    static char w[256];
    w[0] = '\0';
    for (int r = 0; r < dist_size(); r++)
        snprintf(w + strlen(w), sizeof w - strlen(w), "%s%d", r ? "," : "", r % 2 ? 3 : 1);
    return w;
}

static void test_balance_weights(void)
{
    check_split(CELL_LSTM, uneven_weights(), "_weights");
}

static void test_balance_auto(void)
{
    check_split(CELL_LSTM, "auto", "_auto");
}

/* balance_move_states: every value lands on the rank that now holds its
 * stream, at that stream's row, exactly. */
static void test_move_states(void)
{
    const int R = dist_size(), r = dist_rank(), L = 2, H = 5, S = 3 * R;
    int split[3][64];
    for (int q = 0; q < R; q++) {
        split[0][q] = 3;
        split[1][q] = q % 2 ? 5 : 1; /* 1 + 5 per pair of ranks */
        split[2][q] = 1 + (q + 1) % 3;
    }
    int sum2 = 0;
    for (int q = 0; q < R; q++)
        sum2 += split[2][q];
    split[2][R - 1] += S - sum2;
    if (R % 2)
        split[1][R - 1] = 3; /* an odd rank count: the last one keeps 3 */
    model_config cfg = {.cell = CELL_LSTM, .layers = L, .hidden = H, .vocab = 4};
    model_state st;
    model_state_init(&st, &cfg, split[0][r]);
    int first = balance_first(split[0], r);
    for (int l = 0; l < L; l++)
        for (int b = 0; b < st.batch; b++)
            for (int u = 0; u < H; u++) {
                float v = 1000.0f * (float)l + 10.0f * (float)(first + b) + 0.125f * (float)u;
                st.h[((size_t)l * st.batch + b) * H + u] = v;
                st.c[((size_t)l * st.batch + b) * H + u] = -v - 0.5f;
            }
    int bad = 0;
    for (int k = 1; k < 3; k++) {
        balance_move_states(&st, R, r, split[k - 1], split[k]);
        CU_ASSERT_EQUAL(st.batch, split[k][r]);
        first = balance_first(split[k], r);
        for (int l = 0; l < L; l++)
            for (int b = 0; b < st.batch; b++)
                for (int u = 0; u < H; u++) {
                    float v = 1000.0f * (float)l + 10.0f * (float)(first + b) + 0.125f * (float)u;
                    bad += st.h[((size_t)l * st.batch + b) * H + u] != v;
                    bad += st.c[((size_t)l * st.batch + b) * H + u] != -v - 0.5f;
                }
    }
    CU_ASSERT_EQUAL(bad, 0);
    model_state_free(&st);
}

/* A checkpoint of an uneven split resumed by one rank holding all S streams:
 * the carried states are kept, stream by stream (nothing is trained: the
 * resumed run writes its model.h5 with the states it restored). */
static void test_resume_other_split(void)
{
    const int n = dist_size();
    char par[256], one[256], from[300];
    snprintf(par, sizeof par, "equiv_lstm_resplit_np%d", n);
    snprintf(one, sizeof one, "equiv_lstm_resplit_np%d_one", n);
    snprintf(from, sizeof from, "%s/model.h5", par);
    run_split(CELL_LSTM, BPER, par, uneven_weights(), "", STEPS);
    if (dist_rank() == 0) {
        dist_use_self(1);
        run_split(CELL_LSTM, n * BPER, one, "off", from, STEPS);
        dist_use_self(0);
        char to[300];
        snprintf(to, sizeof to, "%s/model.h5", one);
        ckpt_data a, b;
        CU_ASSERT_EQUAL_FATAL(ckpt_read(from, &a), 0);
        CU_ASSERT_EQUAL_FATAL(ckpt_read(to, &b), 0);
        CU_ASSERT_EQUAL_FATAL(a.nranks, n);
        CU_ASSERT_EQUAL_FATAL(b.nranks, 1);
        CU_ASSERT_EQUAL_FATAL(b.ranks[0].batch, n * BPER);
        const int L = b.ranks[0].layers, H = b.ranks[0].hidden, S = n * BPER;
        int g = 0, bad = 0, nonzero = 0;
        for (int q = 0; q < n; q++) {
            const ckpt_rank *k = &a.ranks[q];
            if (n > 1)
                CU_ASSERT_EQUAL(k->batch, q % 2 ? 6 : 2);
            for (int j = 0; j < k->batch; j++, g++) {
                bad += k->cursor[j] != b.ranks[0].cursor[g];
                for (int l = 0; l < L; l++)
                    for (int u = 0; u < H; u++) {
                        size_t ia = ((size_t)l * k->batch + j) * H + u;
                        size_t ib = ((size_t)l * S + g) * H + u;
                        bad += k->h[ia] != b.ranks[0].h[ib] || k->c[ia] != b.ranks[0].c[ib];
                        nonzero += k->h[ia] != 0.0f;
                    }
            }
        }
        CU_ASSERT_EQUAL(g, S);
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT(nonzero > 0);
        ckpt_data_free(&a);
        ckpt_data_free(&b);
    }
    dist_barrier();
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
    testlib_add(s, "balance: carried states move between ranks exactly", test_move_states);
    testlib_add(s, "lstm: N ranks split 1:3 by --balance weights == 1 rank x N*B",
                test_balance_weights);
    testlib_add(s, "lstm: N ranks with --balance auto == 1 rank x N*B", test_balance_auto);
    testlib_add(s, "resume an uneven split with 1 rank x N*B: states kept by stream",
                test_resume_other_split);
    int failures = testlib_run_mpi();
    dist_finalize();
    return failures ? 1 : 0;
}
