/* Conditional generation as a task (one-to-many): each example of an
 * examples file is a row BOS c1..cn -> c1..cn EOS (generate.h), conditioned
 * on its class (one-hot) or on its feature vector (--cond-vectors) through
 * the model's condition (cond.h, --cond-mode init | input | every; init when
 * not given). Every row starts from a zero state; the loss is the next
 * character's over the row's characters and its EOS, masked past its length
 * and normalised by the count of target characters of the whole global batch,
 * so N ranks x B rows give the same step as 1 rank x N*B rows.
 *
 * Order: exorder.h (h/classify's): a seeded permutation per epoch, length
 * buckets of --bucket global batches (padding stays small), global batches of
 * R*B rows of which rank r takes rows [r*B, r*B+B). The cursor is (epoch,
 * batch) in train_progress, so a resumed run continues the same order
 * exactly; with another R*B the position is re-derived from the rows seen.
 * Validation reads the split in index order. See task.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/cond.h"
#include "charnn/dist.h"
#include "charnn/examples.h"
#include "charnn/exorder.h"
#include "charnn/generate.h"
#include "charnn/runtime.h"
#include "charnn/task.h"
#include "charnn/trace_cond.h"
#include "task_examples.h"

typedef struct {
    task_examples shared; /* first: the order's checkpoint record and resume */
    run_config cfg;
    examples_file ex;
    int ex_open;
    vocab exvoc;        /* the examples' vocabulary */
    int32_t *remap;     /* (exV) examples id -> model id */
    int32_t boundary;   /* model id of BOS/EOS */
    int D;              /* condition width */
    float *features;    /* (N, D) vector conditions, NULL: one-hot classes */
    size_t n_train;
    exorder order;      /* the training split's, indices from its first example */
    int B;              /* rows per rank */
    size_t *idx;        /* (B) this rank's examples of a batch */
    int32_t *ids;       /* (B * max_len) their tokens */
    int32_t *x, *y;     /* (T, B) */
    float *mask;        /* (T, B) */
    int32_t *len;       /* (B) */
    float *cond;        /* (B, D) */
    model_state st;     /* zeroed before every batch */
    int64_t targets;    /* target characters of all ranks, since open */
    int64_t targets_reported;
    int64_t last_targets; /* of the last training batch, all ranks */
} gen_task;
_Static_assert(offsetof(gen_task, shared) == 0, "task_examples.h takes t->impl as its own");

static gen_task *gen(const task *t)
{
    return (gen_task *)t->impl;
}

/* The model's vocabulary (examples' + boundary) into voc, or a resumed one
 * checked against it; the id map from the examples' ids. */
static int open_vocab(gen_task *k, vocab *voc)
{
    vocab built = {0};
    if (gen_vocab(&k->exvoc, &built) != 0)
        return cn_err_context("'%s'", k->cfg.data);
    if (voc->size > 0) {
        int same = vocab_equal(voc, &built);
        vocab_free(&built);
        if (!same)
            return cn_err("'%s' has another vocabulary than the checkpoint's model",
                          k->cfg.data);
    } else {
        *voc = built;
    }
    k->remap = cn_xmalloc((size_t)k->exvoc.size * sizeof *k->remap);
    for (int i = 0; i < k->exvoc.size; i++)
        k->remap[i] = vocab_id(voc, k->exvoc.symbols[i]);
    k->boundary = vocab_id(voc, GEN_BOUNDARY);
    return 0;
}

/* The condition: its width and, for classes, the label names the checkpoint
 * keeps. A resumed run must find the same. */
static int open_condition(task *t, gen_task *k, run_config *cfg)
{
    if (cfg->cond_vectors[0]) {
        if (gen_features_read(cfg->cond_vectors, k->ex.n_examples, cfg->data, &k->D,
                              &k->features) != 0)
            return -1;
    } else {
        k->D = k->ex.n_classes;
        task_examples_copy_labels(t, k->D, k->ex.class_names);
    }
    cond_config *c = &cfg->model.cond;
    if (c->mode == COND_NONE)
        c->mode = COND_INIT;
    if (c->dim != 0 && c->dim != k->D)
        return cn_err("the checkpoint's model has a condition of width %d, %s gives %d",
                      c->dim, cfg->cond_vectors[0] ? cfg->cond_vectors : cfg->data, k->D);
    c->dim = k->D;
    return 0;
}

static int gen_open(task *t, run_config *cfg, vocab *voc, int rank, int nranks)
{
    gen_task *k = task_examples_alloc(t, sizeof *k, rank, nranks);
    k->cfg = *cfg;
    if (examples_open(&k->ex, cfg->data, &k->exvoc) != 0)
        return -1;
    k->ex_open = 1;
    if (open_vocab(k, voc) != 0 || open_condition(t, k, cfg) != 0)
        return -1;
    cfg->vocab_mode = voc->mode;
    cfg->model.vocab = voc->size;
    cfg->model.head = (head_config){.kind = HEAD_LM};
    if (model_config_check(&cfg->model) != 0)
        return -1;
    if (cfg->batch < 1)
        return cn_err("--batch must be at least 1");
    if (cfg->balance[0] && strcmp(cfg->balance, "off") != 0)
        return cn_err("--balance is not available for --task generate: its rows are split evenly");
    k->cfg = *cfg;
    k->n_train = k->ex.split_end[SPLIT_TRAIN] - k->ex.split_begin[SPLIT_TRAIN];
    if (k->n_train == 0)
        return cn_err("'%s' has no training examples", cfg->data);
    k->B = cfg->batch;
    const size_t first = k->ex.split_begin[SPLIT_TRAIN];
    uint32_t *lengths = cn_xmalloc(k->n_train * sizeof *lengths);
    for (size_t i = 0; i < k->n_train; i++)
        lengths[i] = (uint32_t)examples_length(&k->ex, first + i) + 1;
    int rc = exorder_init(&k->order, k->n_train, lengths, nranks * k->B, cfg->bucket_batches, 1,
                          cfg->seed);
    free(lengths);
    if (rc != 0)
        return -1;
    task_examples_init(&k->shared, &k->order, nranks * k->B, TASK_RECORD_NEXT_BATCH, &cfg->model);
    t->has_val = k->ex.split_end[SPLIT_VAL] > k->ex.split_begin[SPLIT_VAL];
    t->eval_split = SPLIT_VAL;
    if (!t->has_val)
        task_say(t, "warning: '%s' has no validation split; no validation loss\n", cfg->data);
    t->T = (int)k->ex.max_len + 1;
    t->rows_cap = k->B;
    const size_t TB = (size_t)t->T * k->B;
    k->idx = cn_xmalloc((size_t)k->B * sizeof *k->idx);
    k->ids = cn_xmalloc(((size_t)k->B * k->ex.max_len + 1) * sizeof *k->ids);
    k->x = cn_xmalloc(TB * sizeof *k->x);
    k->y = cn_xmalloc(TB * sizeof *k->y);
    k->mask = cn_xmalloc(TB * sizeof *k->mask);
    k->len = cn_xmalloc((size_t)k->B * sizeof *k->len);
    k->cond = cn_xmalloc((size_t)k->B * k->D * sizeof *k->cond);
    model_state_init(&k->st, &cfg->model, k->B);
    return 0;
}

static void gen_close(task *t)
{
    gen_task *k = gen(t);
    if (!k)
        return;
    model_state_free(&k->st);
    exorder_free(&k->order);
    free(k->idx);
    free(k->ids);
    free(k->x);
    free(k->y);
    free(k->mask);
    free(k->len);
    free(k->cond);
    free(k->features);
    free(k->remap);
    if (k->ex_open)
        examples_close(&k->ex);
    vocab_free(&k->exvoc);
    task_examples_free(t);
}

/* Rows idx[0..nb) (B - nb empty rows after them) into the batch buffers with
 * T steps: BOS + text as x, text + EOS as y, the mask over each row's length
 * + 1, the condition rows. */
static int fill_rows(gen_task *k, int nb, int T, batch *out)
{
    const int B = k->B, D = k->D;
    if (nb > 0 && examples_read_many(&k->ex, k->idx, (size_t)nb, k->ids) != 0)
        return -1;
    memset(k->x, 0, (size_t)T * B * sizeof *k->x);
    memset(k->y, 0, (size_t)T * B * sizeof *k->y);
    memset(k->mask, 0, (size_t)T * B * sizeof *k->mask);
    memset(k->cond, 0, (size_t)B * D * sizeof *k->cond);
    const int32_t *p = k->ids;
    for (int b = 0; b < B; b++) {
        if (b >= nb) {
            k->len[b] = 0;
            continue;
        }
        const int n = (int)examples_length(&k->ex, k->idx[b]);
        CHARNN_ASSERT(n + 1 <= T);
        k->x[b] = k->boundary;
        for (int i = 0; i < n; i++) {
            k->x[(size_t)(i + 1) * B + b] = k->remap[p[i]];
            k->y[(size_t)i * B + b] = k->remap[p[i]];
        }
        k->y[(size_t)n * B + b] = k->boundary;
        for (int i = 0; i <= n; i++)
            k->mask[(size_t)i * B + b] = 1.0f;
        k->len[b] = n + 1;
        if (k->features)
            memcpy(k->cond + (size_t)b * D, k->features + k->idx[b] * (size_t)D,
                   (size_t)D * sizeof(float));
        else
            k->cond[(size_t)b * D + k->ex.labels[k->idx[b]]] = 1.0f;
        p += n;
    }
    model_state_reset(&k->st);
    *out = (batch){
        .T = T,
        .B = B,
        .x = k->x,
        .y = k->y,
        .mask = k->mask,
        .len = k->len,
        .cond = k->cond,
        .cond_dim = D,
        .carry = &k->st,
    };
    return 0;
}

/* Global rows list[0..G) (EXORDER_NONE: padding) of examples base + list[i]:
 * T (the longest + 1) and the target count of all of them, and this rank's
 * share into k->idx; returns its count. */
static int take_rows(const task *t, gen_task *k, const size_t *list, int G, size_t base, int *T,
                     int64_t *targets)
{
    size_t longest = 0;
    *targets = 0;
    for (int g = 0; g < G; g++) {
        if (list[g] == EXORDER_NONE)
            continue;
        size_t n = examples_length(&k->ex, base + list[g]);
        longest = n > longest ? n : longest;
        *targets += (int64_t)n + 1;
    }
    *T = (int)longest + 1;
    int nb = 0;
    for (int g = t->rank * k->B; g < (t->rank + 1) * k->B && g < G; g++)
        if (list[g] != EXORDER_NONE)
            k->idx[nb++] = base + list[g];
    return nb;
}

static int gen_next_batch(task *t, train_progress *prog, batch *out)
{
    gen_task *k = gen(t);
    const size_t *rows = task_examples_next(t, prog);
    int T;
    int64_t targets;
    const int G = t->nranks * k->B;
    int nb = take_rows(t, k, rows, G, k->ex.split_begin[SPLIT_TRAIN], &T, &targets);
    if (fill_rows(k, nb, T, out) != 0)
        return -1;
    out->first_row = t->rank * k->B;
    out->rows_global = G;
    k->targets += targets;
    k->last_targets = targets;
    return 0;
}

static double gen_loss_norm(task *t, const batch *b)
{
    (void)b;
    return (double)gen(t)->last_targets;
}

static void gen_metrics(const task *t, double mean_loss, double seconds, int64_t steps,
                        task_metrics *out)
{
    gen_task *k = gen(t);
    (void)steps;
    out->bits = mean_loss / log(2.0);
    out->rate = (double)(k->targets - k->targets_reported) / seconds;
    k->targets_reported = k->targets;
    out->unit = "chars";
}

int task_generate_evaluate(task *t, const model *m, model_work *w, int split,
                           int64_t max_batches, eval_result *out, double *class_loss,
                           int64_t *class_targets)
{
    gen_task *k = gen(t);
    const size_t first = k->ex.split_begin[split], n = k->ex.split_end[split] - first;
    const int G = t->nranks * k->B;
    const int C = k->ex.n_classes;
    size_t *list = cn_xmalloc((size_t)G * sizeof *list);
    /* sums of this rank, then of all: loss, targets, then per class */
    const size_t nsum = 2 + (class_loss ? 2 * (size_t)C : 0);
    double *sum = cn_xcalloc(nsum, sizeof *sum);
    const int keep_B = w->B;
    int rc = 0;
    uint64_t batches = (n + (size_t)G - 1) / (size_t)G;
    if (max_batches > 0 && (uint64_t)max_batches < batches)
        batches = (uint64_t)max_batches;
    for (uint64_t c = 0; c < batches && rc == 0; c++) {
        for (int g = 0; g < G; g++)
            list[g] = c * (size_t)G + (size_t)g < n ? c * (size_t)G + (size_t)g : EXORDER_NONE;
        int T;
        int64_t targets;
        batch b;
        int nb = take_rows(t, k, list, G, first, &T, &targets);
        if (fill_rows(k, nb, T, &b) != 0) {
            rc = -1;
            break;
        }
        w->B = b.B;
        w->mask = b.mask;
        w->len = b.len;
        w->cond = b.cond;
        w->cond_first = 1;
        model_forward(m, w, b.carry, b.x, b.y, b.T, 0, 0);
        for (int r = 0; r < nb; r++) {
            double row = 0.0;
            for (int s = 0; s < b.len[r]; s++)
                row += w->head.loss[(size_t)s * b.B + r];
            sum[0] += row;
            sum[1] += b.len[r];
            if (class_loss) {
                int cls = k->ex.labels[k->idx[r]];
                sum[2 + cls] += row;
                sum[2 + C + cls] += b.len[r];
            }
        }
    }
    w->B = keep_B;
    w->mask = NULL;
    w->len = NULL;
    w->cond = NULL;
    /* every rank runs the same batches: an error on one is an error on all */
    if (dist_allreduce_sum_int(rc != 0) != 0) {
        free(list);
        free(sum);
        return rc != 0 ? -1 : cn_err("validation failed on another rank");
    }
    dist_allreduce_sum_f64(sum, nsum);
    out->loss_sum = sum[0];
    out->tokens = (int64_t)sum[1];
    out->correct = -1;
    for (int c = 0; class_loss && c < C; c++) {
        class_loss[c] = sum[2 + c];
        class_targets[c] = (int64_t)sum[2 + C + c];
    }
    free(list);
    free(sum);
    return 0;
}

int task_generate_classes(const task *t)
{
    return gen(t)->ex.n_classes;
}

const char *const *task_generate_class_names(const task *t)
{
    return (const char *const *)gen(t)->ex.class_names;
}

static int gen_evaluate(task *t, const model *m, model_work *w, int64_t max_batches,
                        eval_result *out)
{
    return task_generate_evaluate(t, m, w, t->eval_split, max_batches, out, NULL, NULL);
}

/* The order depends on the seed and the epoch only; the cursor counts
 * batches of R*B rows, so another R*B re-derives it from the rows seen. */
static void gen_resume_agree(task *t, train_progress *prog)
{
    gen_task *k = gen(t);
    int64_t old_rows;
    const char *path = task_examples_resume(t, prog, &old_rows);
    if (!path)
        return;
    const int64_t rows = (int64_t)t->nranks * k->B;
    if (old_rows == rows)
        task_say(t, "resumed from '%s' at step %lld (epoch %lld)\n", path, (long long)prog->step,
            (long long)prog->epoch);
    else
        task_say(t, "resumed from '%s' at step %lld with %lld rows per step (was %lld): batch %llu "
               "of epoch %lld re-derived from the rows seen\n",
            path, (long long)prog->step, (long long)rows, (long long)old_rows,
            (unsigned long long)prog->chunk, (long long)prog->epoch);
}

/* ---- traces (trace_cond.c) --------------------------------------------- */

int task_generate_cond_width(const task *t, int *vector)
{
    *vector = gen(t)->features != NULL;
    return gen(t)->D;
}

void task_generate_split(const task *t, int split, size_t *begin, size_t *end)
{
    *begin = gen(t)->ex.split_begin[split];
    *end = gen(t)->ex.split_end[split];
}

int task_generate_example(task *t, size_t i, int32_t *x, int32_t *y, float *cond, int32_t *label)
{
    gen_task *k = gen(t);
    const int n = (int)examples_length(&k->ex, i);
    /* the text's ids land in y first, then move one on as the model's */
    if (examples_read_tokens(&k->ex, i, y) != 0)
        return -1;
    x[0] = k->boundary;
    for (int j = 0; j < n; j++) {
        y[j] = k->remap[y[j]];
        x[j + 1] = y[j];
    }
    y[n] = k->boundary;
    *label = k->ex.labels[i];
    if (k->features)
        memcpy(cond, k->features + i * (size_t)k->D, (size_t)k->D * sizeof(float));
    else
        for (int c = 0; c < k->D; c++)
            cond[c] = c == *label ? 1.0f : 0.0f;
    return n + 1;
}

/* --trace-every: rank 0 writes DIR/trace_generate-<step>.h5 (trace_cond.h)
 * of the first --trace-probe-chars characters (whole examples) of the
 * validation split, or of the training split without one. */
static int gen_trace_step(task *t, const model *m, const model_work *w, const char *dir,
                          int64_t step)
{
    (void)w;
    if (t->rank != 0)
        return 0;
    gen_task *k = gen(t);
    vocab voc = {0};
    if (gen_vocab(&k->exvoc, &voc) != 0)
        return -1;
    char path[CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/trace_generate-%08lld.h5", dir, (long long)step);
    trace_cond_options o = {path, dir, k->cfg.data, t->has_val ? SPLIT_VAL : SPLIT_TRAIN,
                            k->cfg.trace_probe_chars, step};
    trace_cond_summary s;
    int rc = trace_generate_write(&o, t, m, &voc, &s);
    vocab_free(&voc);
    return rc;
}

static void gen_print_header(const task *t, int64_t total_steps)
{
    const gen_task *k = gen(t);
    const run_config *c = &k->cfg;
    char what[CONFIG_PATH_MAX + 64];
    if (k->features)
        snprintf(what, sizeof what, "vectors of width %d from '%s'", k->D, c->cond_vectors);
    else
        snprintf(what, sizeof what, "%d classes", k->D);
    task_say(t, "data '%s': %zu examples (train %zu, val %zu), condition: %s, mode %s; %d rank%s x "
           "%d rows, %llu batches per epoch, %lld steps, %d thread%s per rank\n",
        c->data, k->ex.n_examples, k->n_train,
        k->ex.split_end[SPLIT_VAL] - k->ex.split_begin[SPLIT_VAL], what,
        cond_mode_name(c->model.cond.mode), t->nranks, t->nranks == 1 ? "" : "s", k->B,
        (unsigned long long)k->order.batches_per_epoch, (long long)total_steps, runtime_threads(),
        runtime_threads() == 1 ? "" : "s");
}

const task_ops task_generate_ops = {
    .name = "generate",
    .open = gen_open,
    .close = gen_close,
    .batches_per_epoch = task_examples_batches_per_epoch,
    .next_batch = gen_next_batch,
    .loss_norm = gen_loss_norm,
    .metrics = gen_metrics,
    .evaluate = gen_evaluate,
    .state_bytes = task_examples_state_bytes,
    .state_pack = task_examples_state_pack,
    .state_view = task_examples_state_view,
    .state_load = task_examples_state_load,
    .resume_agree = gen_resume_agree,
    .trace_step = gen_trace_step,
    .print_header = gen_print_header,
};
