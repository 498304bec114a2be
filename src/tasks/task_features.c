/* One-to-one as a task (`train --task classify --features FILE`): a numeric
 * vector per example and its class, no sequence. The recurrent stack runs a
 * single step whose only input is the vector, standardised by the model's
 * features.mean and features.std (the training split's, set once at a fresh
 * start) and entering layer 0 through the condition's map (cond.h, mode
 * input; the one input symbol is a constant, so its weights act as a bias);
 * the classifier head (pool last) maps the top state to the classes. With
 * --layers 0 there is no stack: the standardised vector goes through one
 * tanh layer (mlp.h) into the same head.
 *
 * Data: an HDF5 file with /features (N, D) float32 and /labels (N) integers
 * (class names from /label_names (C) strings when present, else the label
 * values), or a CSV with a header whose column "label" is the class and every
 * other column a number. The split: a seeded shuffle (--seed), the first
 * --val-frac of it validation. Order and cursor: exorder.h, as classify. The
 * loss is normalised by the real rows of the global batch. See task.h. */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/data.h"
#include "charnn/dist.h"
#include "charnn/exorder.h"
#include "charnn/h5io.h"
#include "charnn/head.h"
#include "charnn/kernels.h"
#include "charnn/runtime.h"
#include "charnn/task.h"
#include "charnn/trace_cond.h"
#include "task_examples.h"

typedef struct {
    task_examples shared; /* first: the order's checkpoint record and resume */
    run_config cfg;
    size_t n;           /* examples */
    int D, C;
    float *x;           /* (n, D) */
    int32_t *label;     /* (n) class ids */
    size_t *perm;       /* (n) the split: [0, n_val) validation, then training */
    size_t n_val, n_train;
    float *mean, *std;  /* (D) of the training split */
    exorder order;
    int B;
    int32_t *xin, *y, *len; /* (B) */
    float *mask;        /* (B) */
    float *cond;        /* (B, D) */
    model_state st;
    int64_t rows_seen, rows_reported, last_rows;
} feat_task;
_Static_assert(offsetof(feat_task, shared) == 0, "task_examples.h takes t->impl as its own");

static feat_task *feat(const task *t)
{
    return (feat_task *)t->impl;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Class ids from label strings (n); the sorted distinct names into t. */
static void classes_from_names(task *t, feat_task *k, char **names)
{
    char **sorted = cn_xmalloc(k->n * sizeof *sorted);
    memcpy(sorted, names, k->n * sizeof *sorted);
    qsort(sorted, k->n, sizeof *sorted, cmp_str);
    t->labels = cn_xmalloc(k->n * sizeof *t->labels);
    int C = 0;
    for (size_t i = 0; i < k->n; i++)
        if (C == 0 || strcmp(t->labels[C - 1], sorted[i]) != 0)
            t->labels[C++] = cn_xstrdup(sorted[i]);
    t->n_labels = k->C = C;
    for (size_t i = 0; i < k->n; i++) {
        char **hit = bsearch(&names[i], t->labels, (size_t)C, sizeof *t->labels, cmp_str);
        k->label[i] = (int32_t)(hit - t->labels);
    }
    free(sorted);
}

static int read_hdf5(task *t, feat_task *k, const char *path)
{
    hid_t fid = H5I_INVALID_HID;
    hsize_t dims[H5IO_MAX_RANK], ldims[H5IO_MAX_RANK];
    int rank = 0, lrank = 0, rc = -1;
    char **names = NULL, **given = NULL;
    size_t n_given = 0;
    if ((fid = h5io_file_open(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        return -1;
    if (h5io_dataset_shape(path, fid, "/features", &rank, dims) < 0 ||
        h5io_dataset_shape(path, fid, "/labels", &lrank, ldims) < 0)
        goto error;
    if (rank != 2 || lrank != 1 || ldims[0] != dims[0] || dims[0] < 2 || dims[1] < 1 ||
        dims[1] > 65536) {
        cn_err("'%s': /features must be (N, D) and /labels (N) with N >= 2, 1 <= D <= 65536",
               path);
        goto error;
    }
    k->n = (size_t)dims[0];
    k->D = (int)dims[1];
    k->x = cn_xmalloc(k->n * (size_t)k->D * sizeof *k->x);
    k->label = cn_xmalloc(k->n * sizeof *k->label);
    if (h5io_dataset_read(path, fid, "/features", H5T_NATIVE_FLOAT, H5T_FLOAT, 2, dims, k->x) < 0 ||
        h5io_dataset_read(path, fid, "/labels", H5T_NATIVE_INT32, H5T_INTEGER, 1, ldims,
                          k->label) < 0)
        goto error;
    int e = h5io_exists(path, fid, "/label_names");
    if (e < 0 || (e > 0 && h5io_dataset_read_strings(path, fid, "/label_names", &given,
                                                     &n_given) < 0))
        goto error;
    names = cn_xcalloc(k->n, sizeof *names);
    for (size_t i = 0; i < k->n; i++) {
        char buf[32];
        if (given && (k->label[i] < 0 || (size_t)k->label[i] >= n_given)) {
            cn_err("'%s': /labels[%zu] is %d, /label_names has %zu names", path, i,
                   (int)k->label[i], n_given);
            goto error;
        }
        snprintf(buf, sizeof buf, "%d", (int)k->label[i]);
        names[i] = cn_xstrdup(given ? given[k->label[i]] : buf);
    }
    classes_from_names(t, k, names);
    rc = 0;
error:
    for (size_t i = 0; names && i < k->n; i++)
        free(names[i]);
    free(names);
    h5io_strings_free(given, n_given);
    if (h5io_file_close(path, fid) < 0)
        rc = -1;
    return rc;
}

/* Split a CSV line in place at commas; returns the fields. */
static int split_fields(char *line, char **f, int max)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *p = line;; p++) {
        if (n == max)
            return -1;
        f[n++] = p;
        p += strcspn(p, ",");
        if (!*p)
            return n;
        *p = '\0';
    }
}

static int read_csv(task *t, feat_task *k, const char *path)
{
    enum { MAXF = 4096 };
    FILE *f = fopen(path, "r");
    if (!f)
        return cn_err("cannot open '%s': %s", path, strerror(errno));
    char *line = NULL, **field = cn_xmalloc(MAXF * sizeof *field), **names = NULL;
    size_t cap = 0, n = 0, ncap = 0;
    int rc = -1, lab = -1, nf = 0;
    if (getline(&line, &cap, f) < 0 || (nf = split_fields(line, field, MAXF)) < 0) {
        cn_err("'%s' line 1: no header (or more than %d columns)", path, MAXF);
        goto error;
    }
    for (int i = 0; i < nf; i++)
        if (strcmp(field[i], "label") == 0)
            lab = i;
    if (lab < 0 || nf < 2) {
        cn_err("'%s' line 1: the header needs a column 'label' and at least one feature column",
               path);
        goto error;
    }
    k->D = nf - 1;
    for (long ln = 2; getline(&line, &cap, f) >= 0; ln++) {
        if (line[strspn(line, " \r\n")] == '\0')
            continue;
        if (split_fields(line, field, MAXF) != nf) {
            cn_err("'%s' line %ld: expected %d fields", path, ln, nf);
            goto error;
        }
        if (n == ncap) {
            ncap = ncap ? 2 * ncap : 1024;
            k->x = cn_xrealloc(k->x, ncap * (size_t)k->D * sizeof *k->x);
            names = cn_xrealloc(names, ncap * sizeof *names);
        }
        for (int i = 0, d = 0; i < nf; i++) {
            if (i == lab)
                continue;
            char *end = NULL;
            errno = 0;
            float v = strtof(field[i], &end);
            if (end == field[i] || *end || errno || !isfinite(v)) {
                cn_err("'%s' line %ld column %d: '%s' is not a finite number", path, ln, i + 1,
                       field[i]);
                for (size_t j = 0; j < n; j++)
                    free(names[j]);
                goto error;
            }
            k->x[n * (size_t)k->D + d++] = v;
        }
        names[n++] = cn_xstrdup(field[lab]);
    }
    k->n = n;
    if (n < 2) {
        cn_err("'%s' has %zu examples, at least 2 needed", path, n);
    } else {
        k->label = cn_xmalloc(n * sizeof *k->label);
        classes_from_names(t, k, names);
        rc = 0;
    }
    for (size_t j = 0; j < n; j++)
        free(names[j]);
error:
    free(names);
    free(field);
    free(line);
    fclose(f);
    return rc;
}

static int feat_open(task *t, run_config *cfg, vocab *voc, int rank, int nranks)
{
    feat_task *k = task_examples_alloc(t, sizeof *k, rank, nranks);
    const char *path = cfg->features;
    size_t plen = strlen(path);
    int csv = plen > 4 && strcmp(path + plen - 4, ".csv") == 0;
    if ((csv ? read_csv(t, k, path) : read_hdf5(t, k, path)) != 0)
        return -1;
    if (k->C < 2)
        return cn_err("'%s' has one class only", path);
    /* the one input symbol: a constant whose weights act as a bias */
    const uint32_t sym = 0x25A1u;
    if (voc->size == 0 && vocab_from_symbols(voc, VOCAB_CODEPOINTS, &sym, 1) != 0)
        return -1;
    cfg->model.vocab = voc->size;
    if (cfg->model.head.kind == HEAD_CLASSIFY && cfg->model.head.classes != k->C)
        return cn_err("the checkpoint's model has %d classes, '%s' has %d",
                      cfg->model.head.classes, path, k->C);
    if (cfg->model.cond.dim != 0 && cfg->model.cond.dim != k->D)
        return cn_err("the checkpoint's model reads %d features, '%s' has %d",
                      cfg->model.cond.dim, path, k->D);
    cfg->model.head.kind = HEAD_CLASSIFY;
    cfg->model.head.classes = k->C;
    cfg->model.head.pool = HEAD_POOL_LAST;
    cfg->model.cond = (cond_config){COND_INPUT, k->D, 1};
    cfg->model.embed = 0;
    if (model_config_check(&cfg->model) != 0)
        return -1;
    k->cfg = *cfg;
    /* the split */
    k->perm = cn_xmalloc(k->n * sizeof *k->perm);
    for (size_t i = 0; i < k->n; i++)
        k->perm[i] = i;
    cn_rng r;
    cn_rng_seed(&r, cn_hash64(cfg->seed, 0x66656174u));
    for (size_t i = k->n - 1; i > 0; i--) {
        size_t j = (size_t)(cn_rng_next(&r) % (uint64_t)(i + 1)), tmp = k->perm[i];
        k->perm[i] = k->perm[j];
        k->perm[j] = tmp;
    }
    k->n_val = (size_t)llround(cfg->val_frac * (double)k->n);
    if (k->n_val >= k->n)
        k->n_val = k->n - 1;
    k->n_train = k->n - k->n_val;
    t->has_val = k->n_val > 0;
    /* standardisation of the training split */
    k->mean = cn_xcalloc((size_t)k->D, sizeof *k->mean);
    k->std = cn_xcalloc((size_t)k->D, sizeof *k->std);
    for (int d = 0; d < k->D; d++) {
        double s = 0.0, ss = 0.0;
        for (size_t i = k->n_val; i < k->n; i++)
            s += k->x[k->perm[i] * (size_t)k->D + d];
        const double mu = s / (double)k->n_train;
        for (size_t i = k->n_val; i < k->n; i++) {
            double v = k->x[k->perm[i] * (size_t)k->D + d] - mu;
            ss += v * v;
        }
        const double sd = sqrt(ss / (double)k->n_train);
        k->mean[d] = (float)mu;
        k->std[d] = sd > 1e-12 ? (float)sd : 1.0f; /* a constant column stays as it is */
    }
    if (cfg->batch < 1)
        return cn_err("--batch must be at least 1");
    if (cfg->balance[0] && strcmp(cfg->balance, "off") != 0)
        return cn_err("--balance is not available for --task classify --features: its rows are split evenly");
    k->B = cfg->batch;
    uint32_t *ones = cn_xmalloc(k->n_train * sizeof *ones);
    for (size_t i = 0; i < k->n_train; i++)
        ones[i] = 1;
    int rc = exorder_init(&k->order, k->n_train, ones, nranks * k->B, 0, 1, cfg->seed);
    free(ones);
    if (rc != 0)
        return -1;
    task_examples_init(&k->shared, &k->order, nranks * k->B, TASK_RECORD_NEXT_BATCH, &cfg->model);
    t->T = 1;
    t->rows_cap = k->B;
    t->eval_split = SPLIT_VAL;
    k->xin = cn_xcalloc((size_t)k->B, sizeof *k->xin);
    k->y = cn_xcalloc((size_t)k->B, sizeof *k->y);
    k->len = cn_xcalloc((size_t)k->B, sizeof *k->len);
    k->mask = cn_xcalloc((size_t)k->B, sizeof *k->mask);
    k->cond = cn_xcalloc((size_t)k->B * k->D, sizeof *k->cond);
    model_state_init(&k->st, &cfg->model, k->B);
    return 0;
}

static void feat_close(task *t)
{
    feat_task *k = feat(t);
    if (!k)
        return;
    model_state_free(&k->st);
    exorder_free(&k->order);
    free(k->x);
    free(k->label);
    free(k->perm);
    free(k->mean);
    free(k->std);
    free(k->xin);
    free(k->y);
    free(k->len);
    free(k->mask);
    free(k->cond);
    task_examples_free(t);
}

/* This rank's rows of a global batch list[0..G) (positions into perm from
 * base; EXORDER_NONE: padding); returns the real rows of the whole batch. */
static int64_t fill_rows(const task *t, feat_task *k, const size_t *list, int G, size_t base,
                         batch *out)
{
    const int D = k->D;
    int64_t real = 0;
    for (int g = 0; g < G; g++)
        real += list[g] != EXORDER_NONE;
    memset(k->cond, 0, (size_t)k->B * D * sizeof *k->cond);
    for (int b = 0; b < k->B; b++) {
        const int g = t->rank * k->B + b;
        const int has = g < G && list[g] != EXORDER_NONE;
        const size_t i = has ? k->perm[base + list[g]] : 0;
        k->xin[b] = 0;
        k->len[b] = 1;
        k->y[b] = has ? k->label[i] : 0;
        k->mask[b] = has ? 1.0f : 0.0f;
        if (has)
            memcpy(k->cond + (size_t)b * D, k->x + i * (size_t)D, (size_t)D * sizeof(float));
    }
    model_state_reset(&k->st);
    *out = (batch){.T = 1, .B = k->B, .x = k->xin, .y = k->y, .mask = k->mask, .len = k->len,
                   .cond = k->cond, .cond_dim = D, .carry = &k->st,
                   .first_row = t->rank * k->B, .rows_global = G};
    return real;
}

static int feat_next_batch(task *t, train_progress *prog, batch *out)
{
    feat_task *k = feat(t);
    const size_t *rows = task_examples_next(t, prog);
    k->last_rows = fill_rows(t, k, rows, t->nranks * k->B, k->n_val, out);
    k->rows_seen += k->last_rows;
    return 0;
}

static double feat_loss_norm(task *t, const batch *b)
{
    (void)b;
    return (double)feat(t)->last_rows;
}

static void feat_metrics(const task *t, double mean_loss, double seconds, int64_t steps,
                         task_metrics *out)
{
    feat_task *k = feat(t);
    (void)steps;
    out->bits = mean_loss / log(2.0);
    out->rate = (double)(k->rows_seen - k->rows_reported) / seconds;
    k->rows_reported = k->rows_seen;
    out->unit = "examples";
}

/* Positions [*begin, *end) of perm holding split's examples: val first,
 * then train; there is no test split. 0, or -1 with a message. */
static int feat_split_range(const task *t, int split, size_t *begin, size_t *end)
{
    const feat_task *k = feat(t);
    *begin = split == SPLIT_TRAIN ? k->n_val : 0;
    *end = split == SPLIT_VAL ? k->n_val : k->n;
    if (split == SPLIT_TEST || *end == *begin)
        return cn_err("'%s' has no %s examples (its split is %zu train, %zu val, no test)",
                      k->cfg.features, data_split_name(split), k->n_train, k->n_val);
    return 0;
}

/* Loss and accuracy over t->eval_split (training: the validation split). */
static int feat_evaluate(task *t, const model *m, model_work *w, int64_t max_batches,
                         eval_result *out)
{
    feat_task *k = feat(t);
    size_t first, last;
    /* the split is a property of the data, the same on every rank */
    if (feat_split_range(t, t->eval_split, &first, &last) != 0)
        return -1;
    const size_t n = last - first;
    const int G = t->nranks * k->B;
    size_t *list = cn_xmalloc((size_t)G * sizeof *list);
    double sum[3] = {0.0, 0.0, 0.0};
    uint64_t batches = (n + (size_t)G - 1) / (size_t)G;
    if (max_batches > 0 && (uint64_t)max_batches < batches)
        batches = (uint64_t)max_batches;
    const int keep_B = w->B;
    for (uint64_t c = 0; c < batches; c++) {
        for (int g = 0; g < G; g++)
            list[g] = c * (size_t)G + (size_t)g < n ? c * (size_t)G + (size_t)g : EXORDER_NONE;
        batch b;
        fill_rows(t, k, list, G, first, &b);
        w->B = b.B;
        w->mask = b.mask;
        w->len = b.len;
        w->cond = b.cond;
        w->cond_first = 1;
        model_forward(m, w, b.carry, b.x, b.y, 1, 0, 0);
        for (int r = 0; r < b.B; r++) {
            if (b.mask[r] == 0.0f)
                continue;
            const float *p = head_output(w, (size_t)r);
            const int best = kern_argmax(p, k->C);
            sum[0] += w->head.loss[r];
            sum[1] += 1.0;
            sum[2] += best == b.y[r];
        }
    }
    w->B = keep_B;
    w->mask = NULL;
    w->len = NULL;
    w->cond = NULL;
    free(list);
    dist_allreduce_sum_f64(sum, 3);
    out->loss_sum = sum[0];
    out->tokens = (int64_t)sum[1];
    out->correct = (int64_t)sum[2];
    return 0;
}

static void feat_resume_agree(task *t, train_progress *prog)
{
    const char *path = task_examples_resume(t, prog, NULL);
    if (path)
        task_say(t, "resumed from '%s' at step %lld (epoch %lld, batch %llu)\n", path,
            (long long)prog->step, (long long)prog->epoch, (unsigned long long)prog->chunk);
}

static void feat_model_init(const task *t, model *m)
{
    const feat_task *k = feat(t);
    memcpy(m->cond.mean, k->mean, (size_t)k->D * sizeof(float));
    memcpy(m->cond.std, k->std, (size_t)k->D * sizeof(float));
}

/* ---- traces (trace_cond.c) --------------------------------------------- */

int task_features_split(const task *t, int split, size_t *begin, size_t *end)
{
    return feat_split_range(t, split, begin, end);
}

int task_features_dim(const task *t)
{
    return feat(t)->D;
}

size_t task_features_example(const task *t, size_t pos, float *x, int32_t *label)
{
    const feat_task *k = feat(t);
    const size_t i = k->perm[pos];
    memcpy(x, k->x + i * (size_t)k->D, (size_t)k->D * sizeof(float));
    *label = k->label[i];
    return i;
}

/* --trace-every: rank 0 writes DIR/trace_features-<step>.h5 (trace_cond.h)
 * of the validation split (the training split without one), at most
 * --trace-probe-chars examples. */
static int feat_trace_step(task *t, const model *m, const model_work *w, const char *dir,
                           int64_t step)
{
    (void)w;
    if (t->rank != 0)
        return 0;
    feat_task *k = feat(t);
    char path[CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/trace_features-%08lld.h5", dir, (long long)step);
    trace_cond_options o = {path, dir, k->cfg.features, t->has_val ? SPLIT_VAL : SPLIT_TRAIN,
                            k->cfg.trace_probe_chars, step};
    trace_cond_summary s;
    return trace_features_write(&o, t, m, &s);
}

static void feat_print_header(const task *t, int64_t total_steps)
{
    const feat_task *k = feat(t);
    task_say(t, "features '%s': %zu examples (train %zu, val %zu), %d features, %d classes, "
           "standardised; %d rank%s x %d rows, %s per example, %lld steps, %d thread%s "
           "per rank\n",
        k->cfg.features, k->n, k->n_train, k->n_val, k->D, k->C, t->nranks,
        t->nranks == 1 ? "" : "s", k->B, k->cfg.model.layers ? "one step" : "an MLP",
        (long long)total_steps, runtime_threads(),
        runtime_threads() == 1 ? "" : "s");
}

const task_ops task_features_ops = {
    .name = "classify_features",
    .open = feat_open,
    .close = feat_close,
    .batches_per_epoch = task_examples_batches_per_epoch,
    .next_batch = feat_next_batch,
    .loss_norm = feat_loss_norm,
    .metrics = feat_metrics,
    .evaluate = feat_evaluate,
    .state_bytes = task_examples_state_bytes,
    .state_pack = task_examples_state_pack,
    .state_view = task_examples_state_view,
    .state_load = task_examples_state_load,
    .resume_agree = feat_resume_agree,
    .trace_step = feat_trace_step,
    .model_init = feat_model_init,
    .print_header = feat_print_header,
};
