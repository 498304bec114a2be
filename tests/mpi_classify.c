/* Data parallelism of the classifier: N ranks x B examples train the same
 * model as 1 rank x N*B examples, for every cell and pooling, with class
 * weights (the loss is normalised by the weight sum of the global batch,
 * which every rank computes alike) and with an uneven --balance split. Rank
 * 0 first trains the one-rank reference on its own (dist_use_self), then all
 * N ranks train together; rank 0 compares every logged loss, the validation
 * loss and accuracy, and every parameter.
 *
 * The tolerances are those of mpi_equivalence.c and for the same reason
 * (float reassociation only: each rank sums its rows' gradients, then MPI sums
 * the ranks'); a sharding bug (a row read twice or dropped, a rank's mean
 * instead of the global sum, T taken from a rank's own rows) moves the loss
 * by 1e-2 or more within a few steps. Dropout is off: each rank draws its own
 * masks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/ckpt.h"
#include "charnn/config.h"
#include "charnn/dist.h"
#include "charnn/examples.h"
#include "charnn/runtime.h"
#include "charnn/train.h"
#include "testlib.h"

#define PARAM_TOL 2e-4
#define LOSS_TOL 1e-4
#define STEPS 24
#define BPER 4

static const char *data_path = "mpi_classify_ab.h5";

/* "more a than b" lines of 3..40 characters (rank 0 writes, all read); 0, or
 * -1 on every rank. */
static int make_data(void)
{
    int failed = 0;
    if (dist_rank() == 0) {
        FILE *f = fopen("mpi_classify_ab.tsv", "w");
        if (!f)
            dist_abort(1, "cannot write mpi_classify_ab.tsv");
        fprintf(f, "text\tlabel\n");
        cn_rng r;
        cn_rng_seed(&r, 17);
        for (int i = 0; i < 300; i++) {
            int n = 3 + (int)(cn_rng_uniform(&r) * 38), a = 0, b = 0;
            char s[64];
            for (int j = 0; j < n; j++) {
                s[j] = "aabbcd "[(int)(cn_rng_uniform(&r) * 7)];
                a += s[j] == 'a';
                b += s[j] == 'b';
            }
            if (a == b)
                s[n++] = 'a', a++;
            s[n] = '\0';
            fprintf(f, "%s\t%s\n", s, a > b ? "more_a" : "more_b");
        }
        fclose(f);
        examples_prepare_options o;
        examples_prepare_options_init(&o);
        const char *in[1] = {"mpi_classify_ab.tsv"};
        o.inputs = in;
        o.n_inputs = 1;
        o.out_path = data_path;
        o.val_frac = 0.2;
        if (examples_prepare(&o) != 0) {
            fprintf(stderr, "mpi_classify: %s\n", cn_errmsg());
            failed = 1;
        }
    }
    return dist_allreduce_sum_int(failed) ? -1 : 0;
}

typedef struct {
    cell_kind cell;
    head_pool pool;
    int class_weights;
    const char *balance;
} setup;

static void run(const setup *s, int batch, const char *out)
{
    run_config c;
    config_default(&c);
    snprintf(c.task, sizeof c.task, "classify");
    snprintf(c.data, sizeof c.data, "%s", data_path);
    snprintf(c.out, sizeof c.out, "%s", out);
    c.model.cell = s->cell;
    c.model.layers = 2;
    c.model.hidden = 16;
    c.model.head.pool = s->pool;
    c.class_weights = s->class_weights;
    c.batch = batch;
    c.steps = STEPS;
    c.sched.lr = 0.01f;
    snprintf(c.balance, sizeof c.balance, "%s", s->balance);
    c.log_every = 1;
    c.eval_every = 8;
    c.checkpoint_every = 0;
    c.progress_bar = 0;
    if (dist_rank() == 0 && testlib_system("rm -rf '%s'", out) != 0)
        CU_FAIL("cannot clean the output directory");
    dist_barrier();
    CU_ASSERT_EQUAL(train_run(&c), TRAIN_EXIT_OK);
}

/* Every "loss", "val_loss" and "val_acc" value of a metrics.jsonl, in order. */
static int read_values(const char *dir, double *out, int max)
{
    char path[4200], line[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0;
    while (n + 1 < max && fgets(line, sizeof line, f)) {
        const char *k = strstr(line, "\"val_loss\":");
        if (k) {
            out[n++] = atof(k + 11);
            if ((k = strstr(line, "\"val_acc\":")))
                out[n++] = atof(k + 10);
        } else if ((k = strstr(line, "\"loss\":"))) {
            out[n++] = atof(k + 7);
        }
    }
    fclose(f);
    return n;
}

static void compare(const char *ref, const char *par)
{
    double a[256], b[256];
    int na = read_values(ref, a, 256), nb = read_values(par, b, 256);
    CU_ASSERT_EQUAL(na, nb);
    CU_ASSERT(na >= STEPS + 6); /* 24 steps, validations at 8, 16 and the end */
    double worst_loss = 0.0;
    for (int i = 0; i < na && i < nb; i++) {
        double rel = fabs(a[i] - b[i]) / fabs(a[i]);
        if (!(rel <= worst_loss))
            worst_loss = isnan(rel) ? INFINITY : rel;
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
    CU_ASSERT_EQUAL(da.prog.chunk, db.prog.chunk);
    CU_ASSERT_STRING_EQUAL(db.task.task, "classify");
    printf("  %s vs %s: %d values, worst relative loss difference %.2e, worst parameter "
           "difference %.2e\n",
           ref, par, na, worst_loss, worst_param);
    CU_ASSERT(worst_loss < LOSS_TOL);
    CU_ASSERT(worst_param < PARAM_TOL);
    ckpt_data_free(&da);
    ckpt_data_free(&db);
}

static void check(const setup *s, const char *tag)
{
    const int n = dist_size();
    char ref[256], par[256];
    snprintf(ref, sizeof ref, "classify_%s_ref_np%d", tag, n);
    snprintf(par, sizeof par, "classify_%s_np%d", tag, n);
    if (dist_rank() == 0) {
        dist_use_self(1);
        setup one = *s;
        one.balance = "off";
        run(&one, n * BPER, ref);
        dist_use_self(0);
    }
    dist_barrier();
    run(s, BPER, par);
    if (dist_rank() == 0)
        compare(ref, par);
    dist_barrier();
}

static void test_rnn_last(void)
{
    check(&(setup){CELL_RNN, HEAD_POOL_LAST, CONFIG_CLASS_WEIGHTS_NONE, "off"}, "rnn_last");
}

static void test_lstm_mean(void)
{
    check(&(setup){CELL_LSTM, HEAD_POOL_MEAN, CONFIG_CLASS_WEIGHTS_NONE, "off"}, "lstm_mean");
}

static void test_gru_max_weighted(void)
{
    check(&(setup){CELL_GRU, HEAD_POOL_MAX, CONFIG_CLASS_WEIGHTS_BALANCED, "off"},
          "gru_max_weighted");
}

/* Weights 1, 3, 1, 3, ...: with B = 4 per rank that is 2 and 6 examples. */
static void test_balance_weights(void)
{
    static char w[256];
    w[0] = '\0';
    for (int r = 0; r < dist_size(); r++)
        snprintf(w + strlen(w), sizeof w - strlen(w), "%s%d", r ? "," : "", r % 2 ? 3 : 1);
    check(&(setup){CELL_LSTM, HEAD_POOL_LAST, CONFIG_CLASS_WEIGHTS_NONE, w}, "lstm_uneven");
}

int main(int argc, char **argv)
{
    if (dist_init(&argc, &argv) != 0)
        return 2;
    runtime_set_threads(1);
    if (make_data() != 0) {
        dist_finalize();
        return 1;
    }
    CU_pSuite s = testlib_suite("mpi classify");
    testlib_add(s, "rnn, pool last: N ranks x B == 1 rank x N*B", test_rnn_last);
    testlib_add(s, "lstm, pool mean: N ranks x B == 1 rank x N*B", test_lstm_mean);
    testlib_add(s, "gru, pool max, class weights: N ranks x B == 1 rank x N*B",
                test_gru_max_weighted);
    testlib_add(s, "lstm: N ranks split 1:3 by --balance weights == 1 rank x N*B",
                test_balance_weights);
    int failures = testlib_run_mpi();
    dist_finalize();
    return failures ? 1 : 0;
}
