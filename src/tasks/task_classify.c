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
#include "task_examples.h"

typedef struct {
    task_examples shared; /* first: the order's checkpoint record and resume */
    run_config cfg;
    examples_file ex;
    int ex_open;
    const vocab *voc;     /* the run's (the trainer's, outlives the task) */
    int raw;              /* --data was a raw input, prepared into a temporary file */
    int C;
    int *split;           /* (R) rows per rank of a training batch */
    int first, rows;      /* this rank's rows of a training batch */
    int G;                /* rows of a training batch over all ranks */
    int Bv;               /* rows per rank of an evaluation batch */
    exorder order;        /* the training split */
    task_eval_order eval_order; /* the split evaluate reads */
    float *class_w;       /* (C) loss weight of each class */
    size_t n_truncated;   /* training examples longer than --max-len */
    size_t *idx;          /* (rows_cap) */
    int32_t *x, *len, *y; /* (T, rows_cap), (rows_cap), (rows_cap) */
    float *mask;          /* (rows_cap) */
    model_state st;       /* (L, rows, H) zeroed for every batch */
    model_state val_st;   /* (L, Bv, H) */
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
    const examples_file *ex = &k->ex;
    const size_t b = ex->split_begin[SPLIT_TRAIN], n = ex->split_end[SPLIT_TRAIN] - b;
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
            w[i] = 1.0 / (double)count[ex->labels[b + i]];
        rc = exorder_set_weights(&k->order, w);
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
    if (examples_open_input(&k->ex, cfg->data, voc, cfg->vocab_mode, cfg->val_frac,
                            cfg->test_frac, cfg->seed, rank, &k->raw) != 0)
        return -1;
    k->ex_open = 1;
    k->voc = voc;
    cfg->vocab_mode = voc->mode;
    const examples_file *ex = &k->ex;
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

    const int R = nranks;
    if (split_rows(k, cfg, R) != 0)
        return -1;
    k->G = R * cfg->batch;
    exorder_shard(k->G, R, k->split, rank, &k->first, &k->rows);
    uint32_t *len = examples_lengths(ex, SPLIT_TRAIN);
    int rc = exorder_init(&k->order, n_train, len, k->G, cfg->bucket_batches, 1, cfg->seed);
    if (rc == 0)
        for (size_t i = 0; i < n_train; i++)
            k->n_truncated += cfg->max_len > 0 && len[i] > (uint32_t)cfg->max_len;
    free(len);
    if (rc != 0 || set_weights(k) != 0)
        return -1;
    task_examples_init(&k->shared, &k->order, k->G, TASK_RECORD_GLOBAL_BATCH, &cfg->model);

    k->Bv = cfg->batch;
    t->has_val = ex->split_end[SPLIT_VAL] > ex->split_begin[SPLIT_VAL];
    t->eval_split = SPLIT_VAL;
    t->T = (int)ex->max_len;
    if (cfg->max_len > 0 && cfg->max_len < t->T)
        t->T = cfg->max_len;
    if (t->T < 1)
        t->T = 1;
    t->rows_cap = k->rows > k->Bv ? k->rows : k->Bv;
    const size_t cap = (size_t)t->rows_cap;
    k->idx = cn_xmalloc(cap * sizeof *k->idx);
    k->x = cn_xmalloc((size_t)t->T * cap * sizeof *k->x);
    k->len = cn_xmalloc(cap * sizeof *k->len);
    k->y = cn_xmalloc(cap * sizeof *k->y);
    k->mask = cn_xmalloc(cap * sizeof *k->mask);
    model_state_init(&k->st, &cfg->model, k->rows);
    model_state_init(&k->val_st, &cfg->model, k->Bv);
    return 0;
}

static void cls_close(task *t)
{
    cls_task *k = cls(t);
    if (!k)
        return;
    if (k->ex_open)
        examples_close(&k->ex);
    exorder_free(&k->order);
    task_examples_eval_order_free(&k->eval_order);
    free(k->split);
    free(k->class_w);
    free(k->idx);
    free(k->x);
    free(k->len);
    free(k->y);
    free(k->mask);
    model_state_free(&k->st);
    model_state_free(&k->val_st);
    task_examples_free(t);
}

/* Rows [first, first + n) of a global batch (indices into the split starting
 * at base) into x, len, y and mask, T steps. class_w (C) weighs each row's
 * loss (NULL: 1); a row that tops up a batch gets length 0 and weight 0. */
static int fill_rows(cls_task *k, const size_t *rows, int first, int n, size_t base, int T,
                     const float *class_w)
{
    for (int b = 0; b < n; b++) {
        const size_t r = rows[first + b];
        k->idx[b] = base + (r == EXORDER_NONE ? rows[0] : r); /* row 0 is always real */
    }
    if (examples_fill_batch(&k->ex, k->idx, n, T, 0, k->x, k->len, k->y, NULL) != 0)
        return -1;
    for (int b = 0; b < n; b++) {
        if (rows[first + b] == EXORDER_NONE) {
            k->len[b] = 0;
            k->mask[b] = 0.0f;
        } else {
            k->mask[b] = class_w ? class_w[k->y[b]] : 1.0f;
        }
    }
    return 0;
}

static int cls_next_batch(task *t, train_progress *prog, batch *out)
{
    cls_task *k = cls(t);
    const size_t *rows = task_examples_next(t, prog);
    int T = exorder_batch_max_len(&k->order, rows, k->cfg.max_len);
    if (T < 1)
        T = 1;
    const size_t base = k->ex.split_begin[SPLIT_TRAIN];
    if (fill_rows(k, rows, k->first, k->rows, base, T, k->class_w) != 0)
        return -1;
    /* what the whole global batch weighs and pads: every rank knows it */
    double norm = 0.0, used = 0.0;
    for (int b = 0; b < k->G; b++) {
        if (rows[b] == EXORDER_NONE)
            continue;
        const uint32_t n = k->order.lengths[rows[b]];
        norm += k->class_w[k->ex.labels[base + rows[b]]];
        used += n < (uint32_t)T ? n : (uint32_t)T;
        k->iv.truncated += n > (uint32_t)T;
        k->iv.examples++;
    }
    k->norm = norm;
    k->iv.positions += (double)T * k->G;
    k->iv.padded += (double)T * k->G - used;
    model_state_reset(&k->st);
    *out = (batch){
        .T = T,
        .B = k->rows,
        .x = k->x,
        .y = k->y,
        .mask = k->mask,
        .len = k->len,
        .carry = &k->st,
        .first_row = k->first,
        .rows_global = k->G,
    };
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

static int cls_evaluate(task *t, const model *m, model_work *w, int64_t max_batches,
                        eval_result *out)
{
    cls_task *k = cls(t);
    const int split = t->eval_split;
    if (task_examples_eval_order(&k->eval_order, &k->ex, split, t->nranks * k->Bv,
                                 k->cfg.data) != 0)
        return -1;
    exorder *order = &k->eval_order.order;
    uint64_t nb = order->batches_per_epoch;
    if (max_batches > 0 && (uint64_t)max_batches < nb)
        nb = (uint64_t)max_batches;
    const int keep_B = w->B;
    const float *keep_mask = w->mask;
    const int32_t *keep_len = w->len;
    const size_t base = k->ex.split_begin[split];
    double local[3] = {0.0, 0.0, 0.0}; /* loss, correct, examples */
    int rc = 0;
    for (uint64_t i = 0; i < nb && rc == 0; i++) {
        const size_t *rows = exorder_batch(order, 0, i);
        int T = exorder_batch_max_len(order, rows, k->cfg.max_len);
        if (T < 1)
            T = 1;
        rc = fill_rows(k, rows, t->rank * k->Bv, k->Bv, base, T, NULL);
        if (rc != 0)
            break;
        model_state_reset(&k->val_st);
        w->B = k->Bv;
        w->mask = k->mask;
        w->len = k->len;
        local[0] += model_forward(m, w, &k->val_st, k->x, k->y, T, 0, 0);
        for (int b = 0; b < k->Bv; b++)
            if (k->mask[b] > 0.0f) {
                local[1] += kern_argmax(head_output(w, (size_t)b), k->C) == k->y[b];
                local[2] += 1.0;
            }
    }
    w->B = keep_B;
    w->mask = keep_mask;
    w->len = keep_len;
    /* a read error is this rank's alone: end the job rather than leave the others waiting */
    if (rc != 0)
        dist_abort(1, "%s", cn_errmsg());
    dist_allreduce_sum_f64(local, 3);
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
    if (old_G == k->G || old_G <= 0) {
        task_say(t, "resumed from '%s' at step %lld (epoch %lld, batch %llu of %llu)\n", path,
            (long long)prog->step, (long long)prog->epoch, (unsigned long long)prog->chunk,
            (unsigned long long)k->order.batches_per_epoch);
    } else {
        task_say(t, "resumed from '%s' at step %lld: its global batch was %lld examples, this run's "
               "is %d: the order is re-derived from the examples seen (batch %llu of epoch "
               "%lld)\n",
            path, (long long)prog->step, (long long)old_G, k->G,
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
    return trace_classify_write(&o, m, k->voc, (const char *const *)t->labels, &k->ex, &s);
}

static void cls_print_header(const task *t, int64_t total_steps)
{
    if (t->rank != 0)
        return;
    cls_task *k = cls(t);
    const run_config *c = &k->cfg;
    const examples_file *ex = &k->ex;
    exorder plain;
    double pad = exorder_epoch_padding(&k->order, 0, c->max_len), plain_pad = NAN;
    if (exorder_init(&plain, k->order.n, k->order.lengths, k->G, 0, 1, c->seed) == 0) {
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
        t->nranks, t->nranks == 1 ? "" : "s", c->batch, k->G,
        (unsigned long long)k->order.batches_per_epoch, (long long)total_steps,
        runtime_threads(), runtime_threads() == 1 ? "" : "s", 100.0 * pad, 100.0 * plain_pad);
    if (c->max_len > 0)
        task_say(t, "--max-len %d truncates %zu training examples\n", c->max_len, k->n_truncated);
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
