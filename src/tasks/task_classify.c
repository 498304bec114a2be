/* Many-to-one classification as a task: labelled examples (examples.h), one
 * class per example, read in the order of exorder.h (a seeded shuffle per
 * epoch, length buckets, each global batch of R x B examples split across the
 * ranks contiguously). A batch is x (T, B) padded to the longest example of
 * the global batch (at most --max-len), len (B), y (B) and mask (B): the
 * loss weight of each row (1, or its class's weight under --class-weights
 * balanced; 0 for the rows that top up an epoch's last batch). The step's loss
 * is normalised by the sum of the weights of the whole global batch, which
 * every rank knows, so R ranks x B train exactly as 1 rank x R*B. Every row
 * starts from a zero state; there is no carried state, so a checkpoint holds
 * only the cursor (train_progress epoch and chunk = the batch of the epoch)
 * and resumes exactly, on any number of ranks with the same R x B.
 *
 * --data is an examples file from `charnn prepare --task classify`, or, for
 * small sets, one of prepare's raw inputs (a TSV/CSV with columns "text" and
 * "label", JSON lines, a folder of one file per class): each rank then
 * prepares it (split by --val-frac/--test-frac with --seed, duplicates kept)
 * into a temporary examples file under $TMPDIR (default /tmp) that is removed
 * as soon as it is open. See task.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/balance.h"
#include "charnn/dist.h"
#include "charnn/examples.h"
#include "charnn/exorder.h"
#include "charnn/head.h"
#include "charnn/kernels.h"
#include "charnn/runtime.h"
#include "charnn/task.h"
#include "charnn/trace.h"
#include "task_batches.h"
#include "task_examples.h"

typedef struct {
    task_examples shared; /* first: the order's checkpoint record and resume */
    task_batches b;       /* the file, its orders, a batch's buffers: y and mask (rows_cap) */
    run_config cfg;
    const vocab *voc;     /* the run's (the trainer's, outlives the task) */
    int raw;              /* --data was a raw input, prepared into a temporary file */
    int C;
    int *split;           /* (R) rows per rank of a training batch */
    float *class_w;       /* (C) loss weight of each class */
    double norm;          /* loss weights of the current global batch */
    struct {
        double positions, padded;
        int64_t examples, truncated;
    } iv;                 /* since the last log line */
} cls_task;
_Static_assert(offsetof(cls_task, shared) == 0, "task_examples.h takes t->impl as its own");

static cls_task *cls(const task *t)
{
    return (cls_task *)t->impl;
}

/* Rows per rank of a training batch: B each, or R*B split by --balance weights. */
static int split_rows(cls_task *k, const run_config *cfg, int R)
{
    balance_mode mode;
    double *weights = NULL;
    if (balance_parse(cfg->balance, R, &mode, &weights) != 0)
        return -1;
    k->split = cn_xmalloc((size_t)R * sizeof *k->split);
    if (mode == BALANCE_AUTO) {
        free(weights);
        return cn_err("--balance auto is not supported by --task classify (give fixed weights "
                      "w0,w1,...)");
    }
    if (mode == BALANCE_WEIGHTS && R > 1)
        balance_split(R, R * cfg->batch, weights, 1, R * cfg->batch - (R - 1), k->split);
    else
        for (int r = 0; r < R; r++)
            k->split[r] = cfg->batch;
    free(weights);
    return 0;
}

/* The class weights and sampling weights of the training split. */
static int set_weights(cls_task *k)
{
    const examples_file *ex = &k->b.ex;
    const size_t b0 = ex->split_begin[SPLIT_TRAIN], n = ex->split_end[SPLIT_TRAIN] - b0;
    size_t *count = cn_xcalloc((size_t)k->C, sizeof *count);
    examples_class_counts(ex, SPLIT_TRAIN, count);
    int present = 0;
    for (int c = 0; c < k->C; c++)
        present += count[c] > 0;
    k->class_w = cn_xmalloc((size_t)k->C * sizeof *k->class_w);
    for (int c = 0; c < k->C; c++)
        /* inverse frequency, normalised so that the mean weight of an example is 1 */
        k->class_w[c] = k->cfg.class_weights == CONFIG_CLASS_WEIGHTS_BALANCED
                            ? (count[c] ? (float)((double)n / ((double)present * count[c])) : 0.0f)
                            : 1.0f;
    int rc = 0;
    if (k->cfg.balanced_sampling) {
        double *w = cn_xmalloc(n * sizeof *w);
        for (size_t i = 0; i < n; i++)
            w[i] = 1.0 / (double)count[ex->labels[b0 + i]];
        rc = exorder_set_weights(&k->b.order, w);
        free(w);
    }
    free(count);
    return rc;
}

static int cls_open(task *t, run_config *cfg, vocab *voc, int rank, int nranks)
{
    cls_task *k = task_examples_alloc(t, sizeof *k, rank, nranks);
    if (cfg->batch < 1)
        return cn_err("--batch must be at least 1");
    if (examples_open_input(&k->b.ex, cfg->data, voc, cfg->vocab_mode, cfg->val_frac,
                            cfg->test_frac, cfg->seed, rank, &k->raw) != 0)
        return -1;
    k->b.ex_open = 1;
    k->voc = voc;
    cfg->vocab_mode = voc->mode;
    const examples_file *ex = &k->b.ex;
    k->C = ex->n_classes;
    cfg->model.vocab = voc->size;
    if (cfg->model.head.kind == HEAD_CLASSIFY) { /* resuming: the checkpoint's head */
        if (cfg->model.head.classes != k->C)
            return cn_err("the checkpoint classifies into %d classes, '%s' has %d",
                          cfg->model.head.classes, cfg->data, k->C);
    } else {
        cfg->model.head =
            (head_config){.kind = HEAD_CLASSIFY, .classes = k->C, .pool = cfg->model.head.pool};
    }
    if (model_config_check(&cfg->model) != 0)
        return -1;
    const size_t n_train = ex->split_end[SPLIT_TRAIN] - ex->split_begin[SPLIT_TRAIN];
    if (n_train == 0)
        return cn_err("'%s' has no training examples", cfg->data);
    k->cfg = *cfg;
    task_examples_copy_labels(t, k->C, ex->class_names);

    if (split_rows(k, cfg, nranks) != 0 || task_batches_init(t, &k->b, cfg, k->split, 0) != 0 ||
        set_weights(k) != 0)
        return -1;
    task_examples_init(&k->shared, &k->b.order, k->b.G, TASK_RECORD_GLOBAL_BATCH, &cfg->model);
    return 0;
}

static void cls_close(task *t)
{
    cls_task *k = cls(t);
    if (!k)
        return;
    task_batches_free(&k->b);
    free(k->split);
    free(k->class_w);
    task_examples_free(t);
}

/* Rows [first, first + n) of a global batch (indices into the split starting
 * at base) into x, len, y and mask, T steps. class_w (C) weighs each row's
 * loss (NULL: 1); a row that tops up a batch gets length 0 and weight 0. */
static int fill_rows(cls_task *k, const size_t *rows, int first, int n, size_t base, int T,
                     const float *class_w)
{
    task_batches_index(&k->b, rows, first, n, base);
    if (examples_fill_batch(&k->b.ex, k->b.idx, n, T, 0, k->b.x, k->b.len, k->b.y, NULL) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        if (rows[first + i] == EXORDER_NONE) {
            k->b.len[i] = 0;
            k->b.mask[i] = 0.0f;
        } else {
            k->b.mask[i] = class_w ? class_w[k->b.y[i]] : 1.0f;
        }
    }
    return 0;
}

static int cls_next_batch(task *t, train_progress *prog, batch *out)
{
    cls_task *k = cls(t);
    const size_t *rows = task_examples_next(t, prog);
    const int T = task_batches_steps(&k->b.order, rows, k->cfg.max_len);
    const size_t base = k->b.ex.split_begin[SPLIT_TRAIN];
    if (fill_rows(k, rows, k->b.first, k->b.rows, base, T, k->class_w) != 0)
        return -1;
    /* what the whole global batch weighs and pads: every rank knows it */
    double norm = 0.0, used = 0.0;
    for (int i = 0; i < k->b.G; i++) {
        if (rows[i] == EXORDER_NONE)
            continue;
        const uint32_t n = k->b.order.lengths[rows[i]];
        norm += k->class_w[k->b.ex.labels[base + rows[i]]];
        used += n < (uint32_t)T ? n : (uint32_t)T;
        k->iv.truncated += n > (uint32_t)T;
        k->iv.examples++;
    }
    k->norm = norm;
    k->iv.positions += (double)T * k->b.G;
    k->iv.padded += (double)T * k->b.G - used;
    *out = task_batches_train(&k->b, T);
    return 0;
}

static double cls_loss_norm(task *t, const batch *b)
{
    (void)b;
    return cls(t)->norm;
}

static void cls_metrics(const task *t, double mean_loss, double seconds, int64_t steps,
                        task_metrics *out)
{
    (void)steps;
    cls_task *k = cls(t);
    out->bits = mean_loss / log(2.0);
    out->rate = seconds > 0.0 ? (double)k->iv.examples / seconds : 0.0;
    out->unit = "examples";
    snprintf(out->extra, sizeof out->extra, ",\"padding\":%.4f,\"truncated\":%lld",
             k->iv.positions > 0.0 ? k->iv.padded / k->iv.positions : 0.0,
             (long long)k->iv.truncated);
    memset(&k->iv, 0, sizeof k->iv);
}

/* evaluate's batches: weight 1 for every real row */
static int eval_fill(void *ctx, const size_t *rows, int first, int n, size_t base, int T)
{
    return fill_rows(ctx, rows, first, n, base, T, NULL);
}

/* local: correct, examples */
static void eval_score(void *ctx, const model_work *w, int T, double *local)
{
    (void)T;
    const cls_task *k = ctx;
    for (int i = 0; i < k->b.Bv; i++)
        if (k->b.mask[i] > 0.0f) {
            local[0] += kern_argmax(head_output(w, (size_t)i), k->C) == k->b.y[i];
            local[1] += 1.0;
        }
}

static int cls_evaluate(task *t, const model *m, model_work *w, int64_t max_batches,
                        eval_result *out)
{
    cls_task *k = cls(t);
    double local[3]; /* loss, correct, examples */
    if (task_batches_evaluate(t, &k->b, m, w, max_batches, k->cfg.max_len, k->cfg.data,
                              eval_fill, eval_score, k, local, 3) != 0)
        return -1;
    out->loss_sum = local[0];
    out->correct = (int64_t)local[1];
    out->tokens = (int64_t)local[2];
    return 0;
}

/* Same global batch: the order continues exactly. Another one: the position
 * within the epoch is kept by examples seen. */
static void cls_resume_agree(task *t, train_progress *prog)
{
    cls_task *k = cls(t);
    int64_t old_G;
    const char *path = task_examples_resume(t, prog, &old_G);
    if (!path)
        return;
    if (!task_examples_labels_match(t))
        dist_abort(1, "checkpoint '%s' has other classes than '%s' (same count, other names or "
                      "order): it was trained on other data",
                   path, k->cfg.data);
    if (old_G == k->b.G || old_G <= 0) {
        task_say(t, "resumed from '%s' at step %lld (epoch %lld, batch %llu of %llu)\n", path,
            (long long)prog->step, (long long)prog->epoch, (unsigned long long)prog->chunk,
            (unsigned long long)k->b.order.batches_per_epoch);
    } else {
        task_say(t, "resumed from '%s' at step %lld: its global batch was %lld examples, this run's "
               "is %d: the order is re-derived from the examples seen (batch %llu of epoch "
               "%lld)\n",
            path, (long long)prog->step, (long long)old_G, k->b.G,
            (unsigned long long)prog->chunk, (long long)prog->epoch);
    }
}

/* --trace-every: rank 0 writes DIR/trace_classify-<step>.h5, a classifier
 * trace (trace.h) of the first --trace-probe-chars characters (whole
 * examples) of the validation split, or of the training split without one. */
static int cls_trace_step(task *t, const model *m, const model_work *w, const char *dir,
                          int64_t step)
{
    (void)w;
    if (t->rank != 0)
        return 0;
    cls_task *k = cls(t);
    char path[CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/trace_classify-%08lld.h5", dir, (long long)step);
    trace_classify_options o = {path, dir, k->cfg.data, t->has_val ? SPLIT_VAL : SPLIT_TRAIN,
                                k->cfg.trace_probe_chars, k->cfg.max_len, step};
    trace_classify_summary s;
    return trace_classify_write(&o, m, k->voc, (const char *const *)t->labels, &k->b.ex, &s);
}

static void cls_print_header(const task *t, int64_t total_steps)
{
    if (t->rank != 0)
        return;
    cls_task *k = cls(t);
    const run_config *c = &k->cfg;
    const examples_file *ex = &k->b.ex;
    exorder plain;
    double pad = exorder_epoch_padding(&k->b.order, 0, c->max_len), plain_pad = NAN;
    if (exorder_init(&plain, k->b.order.n, k->b.order.lengths, k->b.G, 0, 1, c->seed) == 0) {
        plain_pad = exorder_epoch_padding(&plain, 0, c->max_len);
        exorder_free(&plain);
    }
    task_say(t, "task classify: %d classes, pool %s; data '%s'%s: examples train %zu, val %zu, test "
           "%zu, longest %zu\n",
        k->C, head_pool_name(c->model.head.pool), c->data,
        k->raw ? " (raw input, prepared in a temporary file)" : "",
        ex->split_end[SPLIT_TRAIN] - ex->split_begin[SPLIT_TRAIN],
        ex->split_end[SPLIT_VAL] - ex->split_begin[SPLIT_VAL],
        ex->split_end[SPLIT_TEST] - ex->split_begin[SPLIT_TEST], ex->max_len);
    task_say(t, "%d rank%s x %d examples (%d per step), %llu steps per epoch, %lld steps, %d thread%s "
           "per rank; padding %.1f%% (%.1f%% without length buckets), ",
        t->nranks, t->nranks == 1 ? "" : "s", c->batch, k->b.G,
        (unsigned long long)k->b.order.batches_per_epoch, (long long)total_steps,
        runtime_threads(), runtime_threads() == 1 ? "" : "s", 100.0 * pad, 100.0 * plain_pad);
    if (c->max_len > 0)
        task_say(t, "--max-len %d truncates %zu training examples\n", c->max_len, k->b.n_truncated);
    else
        task_say(t, "no truncation\n");
    if (!t->has_val)
        task_say(t, "warning: '%s' has no validation examples; no validation loss\n", c->data);
    if (c->class_weights == CONFIG_CLASS_WEIGHTS_BALANCED || c->balanced_sampling)
        task_say(t, "skewed classes:%s%s\n",
            c->class_weights == CONFIG_CLASS_WEIGHTS_BALANCED
                ? " loss weighted by inverse class frequency"
                : "",
            c->balanced_sampling ? " classes drawn equally often" : "");
}

const task_ops task_classify_ops = {
    .name = "classify",
    .open = cls_open,
    .close = cls_close,
    .batches_per_epoch = task_examples_batches_per_epoch,
    .next_batch = cls_next_batch,
    .loss_norm = cls_loss_norm,
    .metrics = cls_metrics,
    .evaluate = cls_evaluate,
    .state_bytes = task_examples_state_bytes,
    .state_pack = task_examples_state_pack,
    .state_view = task_examples_state_view,
    .state_load = task_examples_state_load,
    .resume_agree = cls_resume_agree,
    .rebalance = NULL,
    .trace_open = NULL,
    .trace_step = cls_trace_step,
    .print_header = cls_print_header,
};
