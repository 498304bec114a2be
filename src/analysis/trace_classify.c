/* Traces of a classifier (kind "classify"): every example of a split from a
 * zero state, with after each character the hidden states of every layer and
 * the class probabilities the head gives the prefix read so far, so that one
 * sees where the decision forms; and, per unit, the correlation of the state
 * an example ends in with each class (the "sentiment unit" question). The
 * layout is in docs/trace-format.md. See trace.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "charnn/ckpt.h"
#include "charnn/common.h"
#include "charnn/fsio.h"
#include "charnn/h5io.h"
#include "charnn/head.h"
#include "charnn/memplan.h"
#include "charnn/trace.h"

enum { CT_BLOCK = 4096 }; /* positions buffered per append */

typedef struct {
    const char *path;   /* the file being written (a temporary name) */
    hid_t fid;
    int L, H, C, lstm;
    int64_t rows;       /* positions written */
    int n;              /* positions buffered */
    int32_t *tok;       /* (CT_BLOCK) */
    float *prob;        /* (CT_BLOCK, C) */
    float *h[MODEL_MAX_LAYERS], *c[MODEL_MAX_LAYERS]; /* (CT_BLOCK, H) */
} ct_writer;

/* A growable dataset of rows of `cols` values (0: a vector); 0 or -1. */
static int ct_create(ct_writer *t, const char *name, hid_t type, int cols)
{
    hsize_t dims[2] = {0, (hsize_t)cols}, chunk[2];
    chunk[1] = (hsize_t)(cols > 0 ? cols : 1);
    chunk[0] = (hsize_t)(65536 / chunk[1] > 0 ? 65536 / chunk[1] : 1);
    hid_t d = h5io_dataset_create(t->path, t->fid, name, type, cols > 0 ? 2 : 1, dims, chunk,
                                  H5IO_GROWABLE | H5IO_COMPRESS | H5IO_NO_FILL);
    if (d < 0)
        return -1;
    H5Dclose(d);
    return 0;
}

/* Append `n` buffered rows of each (cols 0: a vector) to dataset name. */
static int ct_append(ct_writer *t, const char *name, hid_t mem_type, int cols, const void *buf)
{
    hid_t d = h5io_dataset_open(t->path, t->fid, name, H5P_DEFAULT, cols > 0 ? 2 : 1, NULL, NULL);
    if (d < 0)
        return -1;
    hsize_t start[2] = {(hsize_t)t->rows, 0}, count[2] = {(hsize_t)t->n, (hsize_t)cols};
    int rc = h5io_dataset_set_rows(t->path, name, d, (hsize_t)(t->rows + t->n));
    if (rc == 0)
        rc = h5io_dataset_write_box(t->path, name, d, mem_type, cols > 0 ? 2 : 1, start, count,
                                    H5I_INVALID_HID, H5P_DEFAULT, buf);
    H5Dclose(d);
    return rc;
}

static int ct_flush(ct_writer *t)
{
    if (t->n == 0)
        return 0;
    char name[64];
    if (ct_append(t, "/tokens", H5T_NATIVE_INT32, 0, t->tok) < 0 ||
        ct_append(t, "/prob", H5T_NATIVE_FLOAT, t->C, t->prob) < 0)
        return -1;
    for (int l = 0; l < t->L; l++) {
        snprintf(name, sizeof name, "/layer%d/h", l);
        if (ct_append(t, name, H5T_NATIVE_FLOAT, t->H, t->h[l]) < 0)
            return -1;
        snprintf(name, sizeof name, "/layer%d/c", l);
        if (t->lstm && ct_append(t, name, H5T_NATIVE_FLOAT, t->H, t->c[l]) < 0)
            return -1;
    }
    t->rows += t->n;
    t->n = 0;
    return 0;
}

/* softmax(W p + b) into out (C). */
static void classify_prefix(const float *W, const float *bias, const float *p, int C, int H,
                            float *out)
{
    double mx = -INFINITY;
    for (int c = 0; c < C; c++) {
        double z = bias[c];
        for (int j = 0; j < H; j++)
            z += (double)W[(size_t)c * H + j] * p[j];
        out[c] = (float)z;
        if (z > mx)
            mx = z;
    }
    double sum = 0.0;
    for (int c = 0; c < C; c++)
        sum += exp((double)out[c] - mx);
    for (int c = 0; c < C; c++)
        out[c] = (float)(exp((double)out[c] - mx) / sum);
}

static int write_root(const trace_classify_options *o, const ct_writer *t, const model *m,
                      const vocab *v, int64_t n_steps, int64_t n_examples)
{
    hid_t fid = t->fid;
    const char *path = t->path;
    if (h5io_attr_write_str(path, fid, "format", TRACE_FORMAT) < 0 ||
        h5io_attr_write_i64(path, fid, "format_version", TRACE_FORMAT_VERSION) < 0 ||
        h5io_attr_write_str(path, fid, "kind", "classify") < 0 ||
        h5io_attr_write_str(path, fid, "model", o->model_name) < 0 ||
        h5io_attr_write_i64(path, fid, "model_step", o->step) < 0 ||
        h5io_attr_write_str(path, fid, "cell", cell_name(m->cfg.cell)) < 0 ||
        h5io_attr_write_i64(path, fid, "layers", m->cfg.layers) < 0 ||
        h5io_attr_write_i64(path, fid, "hidden", m->cfg.hidden) < 0 ||
        h5io_attr_write_i64(path, fid, "vocab_size", m->cfg.vocab) < 0 ||
        h5io_attr_write_str(path, fid, "vocab_mode",
                            v->mode == VOCAB_BYTES ? "bytes" : "codepoints") < 0 ||
        h5io_attr_write_str(path, fid, "source", o->source) < 0 ||
        h5io_attr_write_str(path, fid, "split", data_split_name(o->split)) < 0 ||
        h5io_attr_write_i64(path, fid, "n_steps", n_steps) < 0 ||
        h5io_attr_write_i64(path, fid, "n_examples", n_examples) < 0 ||
        h5io_attr_write_i64(path, fid, "n_classes", m->cfg.head.classes) < 0 ||
        h5io_attr_write_str(path, fid, "pool", head_pool_name(m->cfg.head.pool)) < 0 ||
        h5io_attr_write_i64(path, fid, "max_len", o->max_len) < 0)
        return -1;
    hsize_t dv[1] = {(hsize_t)v->size};
    return h5io_dataset_write(path, fid, "/vocab", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, dv,
                              v->symbols);
}

/* Pearson correlation over examples of each unit's final state with each
 * class's indicator, (L, C, H). */
typedef struct {
    double *sx, *sxx; /* (L, H) */
    double *sxy;      /* (L, C, H) */
    int64_t *nc;      /* (C) */
    int64_t n;
} corr_acc;

static void corr_add(corr_acc *a, const model_work *w, int t_last, int L, int H, int C, int y)
{
    for (int l = 0; l < L; l++) {
        const float *h = w->hs[l] + (size_t)(t_last + 1) * H;
        for (int j = 0; j < H; j++) {
            a->sx[(size_t)l * H + j] += h[j];
            a->sxx[(size_t)l * H + j] += (double)h[j] * h[j];
            a->sxy[((size_t)l * C + y) * H + j] += h[j];
        }
    }
    a->nc[y]++;
    a->n++;
}

static float corr_value(const corr_acc *a, int l, int c, int j, int H, int C)
{
    const double n = (double)a->n, mx = a->sx[(size_t)l * H + j] / n,
                 vx = a->sxx[(size_t)l * H + j] / n - mx * mx, my = (double)a->nc[c] / n,
                 vy = my * (1.0 - my), cov = a->sxy[((size_t)l * C + c) * H + j] / n - mx * my;
    return vx > 1e-12 && vy > 0.0 ? (float)(cov / sqrt(vx * vy)) : 0.0f;
}

static int write_corr(const ct_writer *t, const corr_acc *a, trace_classify_summary *sum)
{
    const int L = t->L, H = t->H, C = t->C;
    float *r = cn_xmalloc((size_t)C * H * sizeof *r);
    int rc = 0;
    sum->best_r = 0.0f;
    for (int l = 0; l < L && rc == 0; l++) {
        for (int c = 0; c < C; c++)
            for (int j = 0; j < H; j++) {
                r[(size_t)c * H + j] = corr_value(a, l, c, j, H, C);
                if (fabsf(r[(size_t)c * H + j]) > fabsf(sum->best_r)) {
                    sum->best_r = r[(size_t)c * H + j];
                    sum->best_layer = l;
                    sum->best_unit = j;
                    sum->best_class = c;
                }
            }
        char name[64];
        snprintf(name, sizeof name, "/layer%d/label_corr", l);
        hsize_t d[2] = {(hsize_t)C, (hsize_t)H};
        rc = h5io_dataset_write(t->path, t->fid, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d, r);
    }
    free(r);
    return rc;
}

int trace_classify_write(const trace_classify_options *o, const model *m, const vocab *v,
                         const char *const *labels, examples_file *ex,
                         trace_classify_summary *sum)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, C = m->cfg.head.classes;
    const size_t begin = ex->split_begin[o->split], end = ex->split_end[o->split];
    if (end == begin)
        return cn_err("split '%s' of '%s' has no examples: nothing to trace",
                      data_split_name(o->split), o->source);
    /* whole examples up to max_chars positions (at least one example) */
    size_t n_ex = 0, T = 1, longest = 1;
    int64_t n_steps = 0;
    for (size_t i = begin; i < end; i++) {
        size_t len = examples_length(ex, i);
        if (len > longest)
            longest = len;
        if (o->max_len > 0 && len > (size_t)o->max_len)
            len = (size_t)o->max_len;
        if (n_ex > 0 && o->max_chars > 0 && n_steps + (int64_t)len > o->max_chars)
            break;
        n_ex++;
        n_steps += (int64_t)len;
        if (len > T)
            T = len;
    }
    if (memplan_check_infer(&m->cfg, (int)T, 1, 4.0 * CT_BLOCK * (2.0 * L * H + C), "trace") !=
        0)
        return -1;
    const model_tensor *wt = model_find_tensor(m, "classifier.weight");
    const model_tensor *bt = model_find_tensor(m, "classifier.bias");
    CHARNN_ASSERT(wt && bt);
    const float *W = m->params + wt->offset, *bias = m->params + bt->offset;

    char tmp[4200];
    if (fsio_tmp_path(tmp, sizeof tmp, o->path) != 0)
        return -1;
    ct_writer t = {.path = tmp, .fid = H5I_INVALID_HID, .L = L, .H = H, .C = C,
                   .lstm = m->cfg.cell == CELL_LSTM};
    t.tok = cn_xmalloc(CT_BLOCK * sizeof *t.tok);
    t.prob = cn_xmalloc((size_t)CT_BLOCK * C * sizeof *t.prob);
    for (int l = 0; l < L; l++) {
        t.h[l] = cn_xmalloc((size_t)CT_BLOCK * H * sizeof(float));
        t.c[l] = t.lstm ? cn_xmalloc((size_t)CT_BLOCK * H * sizeof(float)) : NULL;
    }
    corr_acc acc = {cn_xcalloc((size_t)L * H, sizeof(double)),
                    cn_xcalloc((size_t)L * H, sizeof(double)),
                    cn_xcalloc((size_t)L * C * H, sizeof(double)),
                    cn_xcalloc((size_t)C, sizeof(int64_t)), 0};
    int64_t *offsets = cn_xmalloc((n_ex + 1) * sizeof *offsets);
    int32_t *ylab = cn_xmalloc((n_ex ? n_ex : 1) * sizeof *ylab);
    int32_t *pred = cn_xmalloc((n_ex ? n_ex : 1) * sizeof *pred);
    int64_t *index = cn_xmalloc((n_ex ? n_ex : 1) * sizeof *index);
    int32_t *ids = cn_xmalloc(longest * sizeof *ids);
    float *pool = cn_xmalloc((size_t)H * sizeof *pool), *mean = cn_xmalloc((size_t)H * sizeof *mean);
    model_work w;
    model_state s;
    model_work_init(&w, m, (int)T, 1);
    model_state_init(&s, &m->cfg, 1);
    int rc = -1;
    char name[64];
    memset(sum, 0, sizeof *sum);
    if ((t.fid = h5io_file_create(tmp, H5P_DEFAULT)) < 0)
        goto done;
    if (write_root(o, &t, m, v, n_steps, (int64_t)n_ex) < 0 ||
        ct_create(&t, "/tokens", H5T_STD_I32LE, 0) < 0 ||
        ct_create(&t, "/prob", H5T_IEEE_F32LE, C) < 0)
        goto done;
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "/layer%d/h", l);
        if (ct_create(&t, name, H5T_IEEE_F32LE, H) < 0)
            goto done;
        snprintf(name, sizeof name, "/layer%d/c", l);
        if (t.lstm && ct_create(&t, name, H5T_IEEE_F32LE, H) < 0)
            goto done;
    }
    offsets[0] = 0;
    for (size_t e = 0; e < n_ex; e++) {
        const size_t i = begin + e;
        size_t len = examples_length(ex, i); /* read whole, run up to max_len */
        if (o->max_len > 0 && len > (size_t)o->max_len)
            len = (size_t)o->max_len;
        if (examples_read_tokens(ex, i, ids) != 0)
            goto done;
        model_state_reset(&s);
        w.len = NULL;
        w.mask = NULL;
        model_forward(m, &w, &s, ids, NULL, (int)len, 0, 0);
        const float *top = w.hs[L - 1] + H;
        for (size_t k = 0; k < len; k++) {
            const float *h = top + k * H;
            for (int j = 0; j < H; j++) {
                if (m->cfg.head.pool == HEAD_POOL_LAST)
                    pool[j] = h[j];
                else if (m->cfg.head.pool == HEAD_POOL_MEAN)
                    pool[j] = k == 0 ? h[j] : pool[j] + h[j];
                else
                    pool[j] = k == 0 || h[j] > pool[j] ? h[j] : pool[j];
            }
            float *p = t.prob + (size_t)t.n * C;
            if (m->cfg.head.pool == HEAD_POOL_MEAN) {
                for (int j = 0; j < H; j++)
                    mean[j] = pool[j] / (float)(k + 1);
                classify_prefix(W, bias, mean, C, H, p);
            } else {
                classify_prefix(W, bias, pool, C, H, p);
            }
            t.tok[t.n] = ids[k];
            for (int l = 0; l < L; l++) {
                memcpy(t.h[l] + (size_t)t.n * H, w.hs[l] + (k + 1) * H, (size_t)H * sizeof(float));
                if (t.lstm)
                    memcpy(t.c[l] + (size_t)t.n * H, w.cs[l] + (k + 1) * H,
                           (size_t)H * sizeof(float));
            }
            if (k + 1 == len) {
                int best = 0;
                for (int c = 1; c < C; c++)
                    if (p[c] > p[best])
                        best = c;
                pred[e] = best;
            }
            if (++t.n == CT_BLOCK && ct_flush(&t) < 0)
                goto done;
        }
        ylab[e] = ex->labels[i];
        index[e] = (int64_t)i;
        offsets[e + 1] = offsets[e] + (int64_t)len;
        corr_add(&acc, &w, (int)len - 1, L, H, C, ylab[e]);
        sum->correct += pred[e] == ylab[e];
    }
    if (ct_flush(&t) < 0)
        goto done;
    hsize_t de[1] = {(hsize_t)n_ex}, dof[1] = {(hsize_t)n_ex + 1};
    if (h5io_dataset_write(tmp, t.fid, "/offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, dof,
                           offsets) < 0 ||
        h5io_dataset_write(tmp, t.fid, "/labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, de, ylab) <
            0 ||
        h5io_dataset_write(tmp, t.fid, "/pred", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, de, pred) <
            0 ||
        h5io_dataset_write(tmp, t.fid, "/example_index", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, de,
                           index) < 0 ||
        h5io_dataset_write_strings(tmp, t.fid, "/label_names", labels, (size_t)C) < 0 ||
        write_corr(&t, &acc, sum) < 0)
        goto done;
    if (h5io_file_close(tmp, t.fid) < 0) {
        t.fid = H5I_INVALID_HID;
        goto done;
    }
    t.fid = H5I_INVALID_HID;
    if (fsio_commit(tmp, o->path, 1) != 0)
        goto done;
    sum->n_examples = (int64_t)n_ex;
    sum->n_steps = n_steps;
    rc = 0;
done:
    if (t.fid >= 0)
        H5Fclose(t.fid);
    if (rc != 0)
        unlink(tmp);
    model_work_free(&w);
    model_state_free(&s);
    free(pool);
    free(mean);
    free(ids);
    free(index);
    free(pred);
    free(ylab);
    free(offsets);
    free(acc.sx);
    free(acc.sxx);
    free(acc.sxy);
    free(acc.nc);
    for (int l = 0; l < L; l++) {
        free(t.h[l]);
        free(t.c[l]);
    }
    free(t.prob);
    free(t.tok);
    return rc;
}

int trace_classify_run(const trace_options *o)
{
    ckpt_data d;
    if (ckpt_read(o->model, &d) != 0)
        return -1;
    if (strcmp(d.task.task, "classify") != 0) {
        ckpt_data_free(&d);
        return 1;
    }
    examples_file ex;
    vocab voc;
    memset(&ex, 0, sizeof ex);
    memset(&voc, 0, sizeof voc);
    int rc = -1, have_ex = 0, raw = 0;
    const char *source = o->data[0] ? o->data : d.cfg.data;
    if (o->grads || o->lstmvis) {
        cn_err("--grads and --lstmvis trace language models; '%s' is a classifier", o->model);
        goto done;
    }
    if (!source[0]) {
        cn_err("checkpoint '%s' names no training data: give --data", o->model);
        goto done;
    }
    if (vocab_from_symbols(&voc, d.voc.mode, d.voc.symbols, d.voc.size) != 0 ||
        examples_open_input(&ex, source, &voc, d.voc.mode, d.cfg.val_frac, d.cfg.test_frac,
                            d.cfg.seed, 0, &raw) != 0)
        goto done;
    have_ex = 1;
    int same = ex.n_classes == d.task.n_labels;
    for (int c = 0; same && c < ex.n_classes; c++)
        same = strcmp(ex.class_names[c], d.task.labels[c]) == 0;
    if (!same) {
        cn_err("'%s' has other classes than the model '%s' was trained on", source, o->model);
        goto done;
    }
    trace_classify_options to = {o->out, o->model, source, o->split, o->max_chars,
                                 d.cfg.max_len, d.prog.step};
    trace_classify_summary s;
    if (trace_classify_write(&to, &d.m, &voc, (const char *const *)d.task.labels, &ex, &s) != 0)
        goto done;
    printf("trace of %lld examples (%lld characters, %s split of '%s') by '%s' written to '%s': "
           "accuracy %.4f at their last character; unit %d of layer %d follows class '%s' most "
           "(r = %.3f)\n",
           (long long)s.n_examples, (long long)s.n_steps, data_split_name(o->split), source,
           o->model, o->out, s.n_examples ? (double)s.correct / (double)s.n_examples : 0.0,
           s.best_unit, s.best_layer, d.task.labels[s.best_class], (double)s.best_r);
    fflush(stdout);
    rc = 0;
done:
    if (have_ex)
        examples_close(&ex);
    vocab_free(&voc);
    ckpt_data_free(&d);
    return rc;
}
