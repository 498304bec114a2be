/* Per-character tagging as a task (many-to-many while reading): a tag file
 * (examples.h, `charnn prepare --task tag`), one tag per character, read in
 * the order of exorder.h like the classifier's examples (a seeded shuffle per
 * epoch, length buckets, each global batch of R x B examples split across the
 * ranks contiguously). A batch is x (T, B) padded to the longest example of
 * the global batch (at most --max-len), len (B), y (T, B) the tags and mask
 * (T, B): 1 at each tagged character, 0 past a row's length and on the rows
 * that top up an epoch's last batch. The step's loss is normalised by the
 * number of tagged characters of the whole global batch, which every rank
 * knows from the lengths, so R ranks x B train exactly as 1 rank x R*B.
 * Every row starts from a zero state; a checkpoint holds only the cursor and
 * resumes exactly (as task_classify).
 *
 * A unidirectional model tags online: the tag of character t sees characters
 * 0..t only. --bidirectional reads each example in both directions. Validation
 * reports per-character accuracy and, for a spacing tagger (tags "BI",
 * `prepare --derive spacing`), the precision, recall and F1 of the predicted
 * spaces (B). --trace-every writes a tagger trace (trace.h) of the start of
 * the validation split. See task.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    int K;
    int spacing;          /* the tags are B, I: report the spaces' precision and recall */
    int first, rows, G;   /* this rank's rows of a training batch; rows over all ranks */
    int Bv;               /* rows per rank of an evaluation batch */
    exorder order;
    task_eval_order eval_order;
    size_t n_truncated;
    size_t *idx;          /* (rows_cap) */
    int32_t *x, *len, *y; /* (T, cap), (cap), (T, cap) */
    float *mask;          /* (T, cap) */
    model_state st, val_st;
    double norm;          /* tagged characters of the current global batch */
    struct {
        double positions, tagged;
        int64_t truncated;
    } iv;
} tag_task;
_Static_assert(offsetof(tag_task, shared) == 0, "task_examples.h takes t->impl as its own");

static tag_task *tg(const task *t)
{
    return (tag_task *)t->impl;
}

static int tag_open(task *t, run_config *cfg, vocab *voc, int rank, int nranks)
{
    tag_task *k = task_examples_alloc(t, sizeof *k, rank, nranks);
    if (cfg->batch < 1)
        return cn_err("--batch must be at least 1");
    if (!examples_is_examples_file(cfg->data))
        return cn_err("'%s' is not a tag file: prepare one with charnn prepare --task tag",
                      cfg->data);
    if (examples_open(&k->ex, cfg->data, voc) != 0)
        return -1;
    k->ex_open = 1;
    k->voc = voc;
    const examples_file *ex = &k->ex;
    if (!ex->tagged)
        return cn_err("'%s' holds examples for classification, not tags: prepare one with "
                      "charnn prepare --task tag", cfg->data);
    cfg->vocab_mode = voc->mode;
    k->K = ex->n_classes;
    k->spacing = k->K == 2 && strcmp(ex->class_names[0], "B") == 0 &&
                 strcmp(ex->class_names[1], "I") == 0;
    cfg->model.vocab = voc->size;
    if (cfg->model.head.kind == HEAD_TAG) { /* resuming: the checkpoint's head */
        if (cfg->model.head.classes != k->K)
            return cn_err("the checkpoint tags with %d tags, '%s' has %d",
                          cfg->model.head.classes, cfg->data, k->K);
    } else {
        cfg->model.head = (head_config){.kind = HEAD_TAG, .classes = k->K};
    }
    if (model_config_check(&cfg->model) != 0)
        return -1;
    const size_t n_train = ex->split_end[SPLIT_TRAIN] - ex->split_begin[SPLIT_TRAIN];
    if (n_train == 0)
        return cn_err("'%s' has no training examples", cfg->data);
    if (cfg->balance[0] && strcmp(cfg->balance, "off") != 0)
        return cn_err("--balance is not supported by --task tag");
    k->cfg = *cfg;
    task_examples_copy_labels(t, k->K, ex->class_names);

    k->G = nranks * cfg->batch;
    exorder_shard(k->G, nranks, NULL, rank, &k->first, &k->rows);
    uint32_t *len = examples_lengths(ex, SPLIT_TRAIN);
    int rc = exorder_init(&k->order, n_train, len, k->G, cfg->bucket_batches, 1, cfg->seed);
    for (size_t i = 0; rc == 0 && i < n_train; i++)
        k->n_truncated += cfg->max_len > 0 && len[i] > (uint32_t)cfg->max_len;
    free(len);
    if (rc != 0)
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
    const size_t cap = (size_t)t->rows_cap, TC = (size_t)t->T * cap;
    k->idx = cn_xmalloc(cap * sizeof *k->idx);
    k->x = cn_xmalloc(TC * sizeof *k->x);
    k->len = cn_xmalloc(cap * sizeof *k->len);
    k->y = cn_xmalloc(TC * sizeof *k->y);
    k->mask = cn_xmalloc(TC * sizeof *k->mask);
    model_state_init(&k->st, &cfg->model, k->rows);
    model_state_init(&k->val_st, &cfg->model, k->Bv);
    return 0;
}

static void tag_close(task *t)
{
    tag_task *k = tg(t);
    if (!k)
        return;
    if (k->ex_open)
        examples_close(&k->ex);
    exorder_free(&k->order);
    task_examples_eval_order_free(&k->eval_order);
    free(k->idx);
    free(k->x);
    free(k->len);
    free(k->y);
    free(k->mask);
    model_state_free(&k->st);
    model_state_free(&k->val_st);
    task_examples_free(t);
}

/* Rows [first, first + n) of a global batch into x, len, y, mask (T steps). */
static int fill_rows(tag_task *k, const size_t *rows, int first, int n, size_t base, int T)
{
    for (int b = 0; b < n; b++) {
        const size_t r = rows[first + b];
        k->idx[b] = base + (r == EXORDER_NONE ? rows[0] : r); /* row 0 is always real */
    }
    if (examples_fill_tags(&k->ex, k->idx, n, T, 0, 0, k->x, k->len, k->y, NULL) != 0)
        return -1;
    for (int b = 0; b < n; b++)
        if (rows[first + b] == EXORDER_NONE)
            k->len[b] = 0;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < n; b++)
            k->mask[(size_t)t * n + b] = t < k->len[b] ? 1.0f : 0.0f;
    return 0;
}

static int tag_next_batch(task *t, train_progress *prog, batch *out)
{
    tag_task *k = tg(t);
    const size_t *rows = task_examples_next(t, prog);
    int T = exorder_batch_max_len(&k->order, rows, k->cfg.max_len);
    if (T < 1)
        T = 1;
    if (fill_rows(k, rows, k->first, k->rows, k->ex.split_begin[SPLIT_TRAIN], T) != 0)
        return -1;
    double tagged = 0.0;
    for (int b = 0; b < k->G; b++) {
        if (rows[b] == EXORDER_NONE)
            continue;
        const uint32_t n = k->order.lengths[rows[b]];
        tagged += n < (uint32_t)T ? n : (uint32_t)T;
        k->iv.truncated += n > (uint32_t)T;
    }
    k->norm = tagged > 0.0 ? tagged : 1.0;
    k->iv.positions += (double)T * k->G;
    k->iv.tagged += tagged;
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

static double tag_loss_norm(task *t, const batch *b)
{
    (void)b;
    return tg(t)->norm;
}

static void tag_metrics(const task *t, double mean_loss, double seconds, int64_t steps,
                        task_metrics *out)
{
    (void)steps;
    tag_task *k = tg(t);
    out->bits = mean_loss / log(2.0);
    out->rate = seconds > 0.0 ? k->iv.tagged / seconds : 0.0;
    out->unit = "chars";
    snprintf(out->extra, sizeof out->extra, ",\"padding\":%.4f,\"truncated\":%lld",
             k->iv.positions > 0.0 ? 1.0 - k->iv.tagged / k->iv.positions : 0.0,
             (long long)k->iv.truncated);
    memset(&k->iv, 0, sizeof k->iv);
}

static int tag_evaluate(task *t, const model *m, model_work *w, int64_t max_batches,
                        eval_result *out)
{
    tag_task *k = tg(t);
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
    /* loss, correct, tagged, spaces: true positives, predicted, gold */
    double local[6] = {0};
    int rc = 0;
    for (uint64_t i = 0; i < nb && rc == 0; i++) {
        const size_t *rows = exorder_batch(order, 0, i);
        int T = exorder_batch_max_len(order, rows, k->cfg.max_len);
        if (T < 1)
            T = 1;
        rc = fill_rows(k, rows, t->rank * k->Bv, k->Bv, base, T);
        if (rc != 0)
            break;
        model_state_reset(&k->val_st);
        w->B = k->Bv;
        w->mask = k->mask;
        w->len = k->len;
        local[0] += model_forward(m, w, &k->val_st, k->x, k->y, T, 0, 0);
        for (size_t n = 0; n < (size_t)T * k->Bv; n++) {
            if (k->mask[n] == 0.0f)
                continue;
            const int pred = kern_argmax(head_output(w, n), k->K);
            local[1] += pred == k->y[n];
            local[2] += 1.0;
            local[3] += pred == 0 && k->y[n] == 0;
            local[4] += pred == 0;
            local[5] += k->y[n] == 0;
        }
    }
    w->B = keep_B;
    w->mask = keep_mask;
    w->len = keep_len;
    if (rc != 0)
        dist_abort(1, "%s", cn_errmsg());
    dist_allreduce_sum_f64(local, 6);
    out->loss_sum = local[0];
    out->correct = (int64_t)local[1];
    out->tokens = (int64_t)local[2];
    if (k->spacing) {
        const double p = local[4] > 0 ? local[3] / local[4] : 0.0;
        const double r = local[5] > 0 ? local[3] / local[5] : 0.0;
        task_say(t, "%s spaces: precision %.4f recall %.4f F1 %.4f (%.0f predicted, %.0f true)\n",
            data_split_name(split), p, r, p + r > 0 ? 2 * p * r / (p + r) : 0.0, local[4],
            local[5]);
    }
    return 0;
}

static void tag_resume_agree(task *t, train_progress *prog)
{
    tag_task *k = tg(t);
    const char *path = task_examples_resume(t, prog, NULL);
    if (!path)
        return;
    if (!task_examples_labels_match(t))
        dist_abort(1, "checkpoint '%s' has other tags than '%s': it was trained on other data",
                   path, k->cfg.data);
    task_say(t, "resumed from '%s' at step %lld (epoch %lld, batch %llu of %llu)\n", path,
        (long long)prog->step, (long long)prog->epoch, (unsigned long long)prog->chunk,
        (unsigned long long)k->order.batches_per_epoch);
}

/* --trace-every: rank 0 writes DIR/trace_tag-<step>.h5, a tagger trace
 * (trace.h) of the first --trace-probe-chars characters (whole examples) of
 * the validation split, or of the training split without one. */
static int tag_trace_step(task *t, const model *m, const model_work *w, const char *dir,
                          int64_t step)
{
    (void)w;
    if (t->rank != 0)
        return 0;
    tag_task *k = tg(t);
    char path[CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/trace_tag-%08lld.h5", dir, (long long)step);
    trace_tag_options o = {path, dir, k->cfg.data, t->has_val ? SPLIT_VAL : SPLIT_TRAIN,
                           k->cfg.trace_probe_chars, k->cfg.max_len, step};
    trace_tag_summary s;
    return trace_tag_write(&o, m, k->voc, (const char *const *)t->labels, &k->ex, &s);
}

static void tag_print_header(const task *t, int64_t total_steps)
{
    if (t->rank != 0)
        return;
    tag_task *k = tg(t);
    const run_config *c = &k->cfg;
    const examples_file *ex = &k->ex;
    task_say(t, "task tag: %d tags (", k->K);
    for (int i = 0; i < k->K; i++)
        task_say(t, "%s%s", i ? " " : "", ex->class_names[i]);
    task_say(t, "), %s; data '%s': examples train %zu, val %zu, test %zu, longest %zu\n",
        c->model.bidirectional ? "bidirectional (offline)" : "unidirectional (online)", c->data,
        ex->split_end[SPLIT_TRAIN] - ex->split_begin[SPLIT_TRAIN],
        ex->split_end[SPLIT_VAL] - ex->split_begin[SPLIT_VAL],
        ex->split_end[SPLIT_TEST] - ex->split_begin[SPLIT_TEST], ex->max_len);
    task_say(t, "%d rank%s x %d examples (%d per step), %llu steps per epoch, %lld steps, %d thread%s "
           "per rank; padding %.1f%%, ",
        t->nranks, t->nranks == 1 ? "" : "s", c->batch, k->G,
        (unsigned long long)k->order.batches_per_epoch, (long long)total_steps,
        runtime_threads(), runtime_threads() == 1 ? "" : "s",
        100.0 * exorder_epoch_padding(&k->order, 0, c->max_len));
    if (c->max_len > 0)
        task_say(t, "--max-len %d truncates %zu training examples\n", c->max_len, k->n_truncated);
    else
        task_say(t, "no truncation\n");
    if (!t->has_val)
        task_say(t, "warning: '%s' has no validation examples; no validation loss\n", c->data);
}

const task_ops task_tag_ops = {
    .name = "tag",
    .open = tag_open,
    .close = tag_close,
    .batches_per_epoch = task_examples_batches_per_epoch,
    .next_batch = tag_next_batch,
    .loss_norm = tag_loss_norm,
    .metrics = tag_metrics,
    .evaluate = tag_evaluate,
    .state_bytes = task_examples_state_bytes,
    .state_pack = task_examples_state_pack,
    .state_view = task_examples_state_view,
    .state_load = task_examples_state_load,
    .resume_agree = tag_resume_agree,
    .rebalance = NULL,
    .trace_open = NULL,
    .trace_step = tag_trace_step,
    .print_header = tag_print_header,
};
