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
#include "task_batches.h"
#include "task_examples.h"

typedef struct {
    task_examples shared; /* first: the order's checkpoint record and resume */
    task_batches b;       /* the file, its orders, a batch's buffers: y and mask (T, rows_cap) */
    run_config cfg;
    const vocab *voc;     /* the run's (the trainer's, outlives the task) */
    int K;
    int spacing;          /* the tags are B, I: report the spaces' precision and recall */
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
    if (examples_open(&k->b.ex, cfg->data, voc) != 0)
        return -1;
    k->b.ex_open = 1;
    k->voc = voc;
    const examples_file *ex = &k->b.ex;
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

    if (task_batches_init(t, &k->b, cfg, NULL, 1) != 0)
        return -1;
    task_examples_init(&k->shared, &k->b.order, k->b.G, TASK_RECORD_GLOBAL_BATCH, &cfg->model);
    return 0;
}

static void tag_close(task *t)
{
    tag_task *k = tg(t);
    if (!k)
        return;
    task_batches_free(&k->b);
    task_examples_free(t);
}

/* Rows [first, first + n) of a global batch into x, len, y, mask (T steps). */
static int fill_rows(tag_task *k, const size_t *rows, int first, int n, size_t base, int T)
{
    task_batches_index(&k->b, rows, first, n, base);
    if (examples_fill_tags(&k->b.ex, k->b.idx, n, T, 0, 0, k->b.x, k->b.len, k->b.y, NULL) != 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (rows[first + i] == EXORDER_NONE)
            k->b.len[i] = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++)
            k->b.mask[(size_t)t * n + i] = t < k->b.len[i] ? 1.0f : 0.0f;
    return 0;
}

static int tag_next_batch(task *t, train_progress *prog, batch *out)
{
    tag_task *k = tg(t);
    const size_t *rows = task_examples_next(t, prog);
    const int T = task_batches_steps(&k->b.order, rows, k->cfg.max_len);
    if (fill_rows(k, rows, k->b.first, k->b.rows, k->b.ex.split_begin[SPLIT_TRAIN], T) != 0)
        return -1;
    double tagged = 0.0;
    for (int i = 0; i < k->b.G; i++) {
        if (rows[i] == EXORDER_NONE)
            continue;
        const uint32_t n = k->b.order.lengths[rows[i]];
        tagged += n < (uint32_t)T ? n : (uint32_t)T;
        k->iv.truncated += n > (uint32_t)T;
    }
    k->norm = tagged > 0.0 ? tagged : 1.0;
    k->iv.positions += (double)T * k->b.G;
    k->iv.tagged += tagged;
    *out = task_batches_train(&k->b, T);
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

static int eval_fill(void *ctx, const size_t *rows, int first, int n, size_t base, int T)
{
    return fill_rows(ctx, rows, first, n, base, T);
}

/* local: correct, tagged, spaces (tag 0): true positives, predicted, gold */
static void eval_score(void *ctx, const model_work *w, int T, double *local)
{
    const tag_task *k = ctx;
    for (size_t n = 0; n < (size_t)T * k->b.Bv; n++) {
        if (k->b.mask[n] == 0.0f)
            continue;
        const int pred = kern_argmax(head_output(w, n), k->K), gold = k->b.y[n];
        local[0] += pred == gold;
        local[1] += 1.0;
        local[2] += pred == 0 && gold == 0;
        local[3] += pred == 0;
        local[4] += gold == 0;
    }
}

static int tag_evaluate(task *t, const model *m, model_work *w, int64_t max_batches,
                        eval_result *out)
{
    tag_task *k = tg(t);
    double local[6]; /* loss, then eval_score's */
    if (task_batches_evaluate(t, &k->b, m, w, max_batches, k->cfg.max_len, k->cfg.data,
                              eval_fill, eval_score, k, local, 6) != 0)
        return -1;
    out->loss_sum = local[0];
    out->correct = (int64_t)local[1];
    out->tokens = (int64_t)local[2];
    if (k->spacing) {
        const double p = local[4] > 0 ? local[3] / local[4] : 0.0;
        const double r = local[5] > 0 ? local[3] / local[5] : 0.0;
        task_say(t, "%s spaces: precision %.4f recall %.4f F1 %.4f (%.0f predicted, %.0f true)\n",
            data_split_name(t->eval_split), p, r, p + r > 0 ? 2 * p * r / (p + r) : 0.0, local[4],
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
        (unsigned long long)k->b.order.batches_per_epoch);
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
    return trace_tag_write(&o, m, k->voc, (const char *const *)t->labels, &k->b.ex, &s);
}

static void tag_print_header(const task *t, int64_t total_steps)
{
    if (t->rank != 0)
        return;
    tag_task *k = tg(t);
    const run_config *c = &k->cfg;
    const examples_file *ex = &k->b.ex;
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
        t->nranks, t->nranks == 1 ? "" : "s", c->batch, k->b.G,
        (unsigned long long)k->b.order.batches_per_epoch, (long long)total_steps,
        runtime_threads(), runtime_threads() == 1 ? "" : "s",
        100.0 * exorder_epoch_padding(&k->b.order, 0, c->max_len));
    if (c->max_len > 0)
        task_say(t, "--max-len %d truncates %zu training examples\n", c->max_len, k->b.n_truncated);
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
