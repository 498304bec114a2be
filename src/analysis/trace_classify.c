/* Traces of a classifier (kind "classify"): every example of a split from a
 * zero state, with after each character the hidden states of every layer and
 * direction and the class probabilities the model gives the prefix read so
 * far, so that one sees where the decision forms; and, per unit of each
 * layer and direction, the correlation of the state an example ends in with
 * each class (the "sentiment unit" question). A unidirectional model's prefix
 * probabilities come from pooling its states so far; a bidirectional one's
 * reverse direction reads from the example's end, so each prefix is run as an
 * example of its own. The layout is in docs/trace-format.md. See trace.h. */
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
#include "trace_rows.h"

enum {
    CT_BLOCK = 4096, /* positions buffered per append */
    CT_PREFIX_ROWS = 32, /* bidirectional: prefixes run side by side in one forward */
};

typedef struct {
    const char *path;   /* the file being written (a temporary name) */
    hid_t fid;
    int L, H, C, D, lstm; /* D: directions, 1 or 2 */
    int64_t rows;       /* positions written */
    int n;              /* positions buffered */
    int32_t *tok;       /* (CT_BLOCK) */
    float *prob;        /* (CT_BLOCK, C) */
    float *h[MODEL_MAX_LAYERS][2], *c[MODEL_MAX_LAYERS][2]; /* (CT_BLOCK, H) per direction */
} ct_writer;

static int ct_create_all(ct_writer *t)
{
    if (trace_rows_create(t->path, t->fid, "/tokens", H5T_STD_I32LE, 0) < 0 ||
        trace_rows_create(t->path, t->fid, "/prob", H5T_IEEE_F32LE, t->C) < 0)
        return -1;
    char name[64];
    for (int l = 0; l < t->L; l++)
        for (int d = 0; d < t->D; d++) {
            trace_state_name(name, sizeof name, l, d, 'h');
            if (trace_rows_create(t->path, t->fid, name, H5T_IEEE_F32LE, t->H) < 0)
                return -1;
            trace_state_name(name, sizeof name, l, d, 'c');
            if (t->lstm && trace_rows_create(t->path, t->fid, name, H5T_IEEE_F32LE, t->H) < 0)
                return -1;
        }
    return 0;
}

static int ct_flush(ct_writer *t)
{
    if (t->n == 0)
        return 0;
    if (trace_rows_append(t->path, t->fid, "/tokens", H5T_NATIVE_INT32, 0, t->rows, t->n,
                          t->tok) < 0 ||
        trace_rows_append(t->path, t->fid, "/prob", H5T_NATIVE_FLOAT, t->C, t->rows, t->n,
                          t->prob) < 0)
        return -1;
    char name[64];
    for (int l = 0; l < t->L; l++)
        for (int d = 0; d < t->D; d++) {
            trace_state_name(name, sizeof name, l, d, 'h');
            if (trace_rows_append(t->path, t->fid, name, H5T_NATIVE_FLOAT, t->H, t->rows, t->n,
                                  t->h[l][d]) < 0)
                return -1;
            trace_state_name(name, sizeof name, l, d, 'c');
            if (t->lstm && trace_rows_append(t->path, t->fid, name, H5T_NATIVE_FLOAT, t->H,
                                             t->rows, t->n, t->c[l][d]) < 0)
                return -1;
        }
    t->rows += t->n;
    t->n = 0;
    return 0;
}

/* softmax(W p + b) into out (C); W (C, H). */
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

/* Unidirectional: the class probabilities of every prefix of the example
 * just run (w, one row of len steps) from its pooled states so far, into
 * prob (len, C): the same states the model would pool had the example ended
 * there. */
static void prefix_prob_pooled(const model *m, const model_work *w, size_t len, float *pool,
                               float *mean, float *prob)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, C = m->cfg.head.classes;
    const model_tensor *wt = model_find_tensor(m, "classifier.weight");
    const model_tensor *bt = model_find_tensor(m, "classifier.bias");
    CHARNN_ASSERT(wt && bt && model_top_width(&m->cfg) == H);
    const float *W = m->params + wt->offset, *bias = m->params + bt->offset;
    const float *top = w->hs[L - 1] + H;
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
        if (m->cfg.head.pool == HEAD_POOL_MEAN) {
            for (int j = 0; j < H; j++)
                mean[j] = pool[j] / (float)(k + 1);
            classify_prefix(W, bias, mean, C, H, prob + k * C);
        } else {
            classify_prefix(W, bias, pool, C, H, prob + k * C);
        }
    }
}

/* Bidirectional: the reverse direction reads the example from its end, so a
 * prefix's decision is not in the states of the whole example; run the model
 * on every proper prefix ids[0..k], k < len - 1, as an example of its own
 * (CT_PREFIX_ROWS prefixes per forward in pw, rows of lengths k + 1), into
 * prob (len - 1, C). Costs len (len - 1) / 2 positions through the stack. */
static void prefix_prob_rerun(const model *m, model_work *pw, const int32_t *ids, size_t len,
                              int32_t *x, int32_t *lens, float *prob)
{
    const int C = m->cfg.head.classes;
    for (size_t k0 = 0; k0 + 1 < len; k0 += CT_PREFIX_ROWS) {
        const int B = (int)(len - 1 - k0 < CT_PREFIX_ROWS ? len - 1 - k0 : CT_PREFIX_ROWS);
        const int T = (int)k0 + B; /* the longest prefix of the group */
        for (int b = 0; b < B; b++)
            lens[b] = (int32_t)k0 + b + 1;
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++)
                x[(size_t)t * B + b] = ids[t]; /* valid past a row's length, as forward needs */
        model_state s;
        model_state_init(&s, &m->cfg, B);
        pw->B = B;
        pw->len = lens;
        pw->mask = NULL;
        model_forward(m, pw, &s, x, NULL, T, 0, 0);
        for (int b = 0; b < B; b++)
            memcpy(prob + (k0 + (size_t)b) * C, head_output(pw, (size_t)b),
                   (size_t)C * sizeof(float));
        model_state_free(&s);
    }
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
        h5io_attr_write_i64(path, fid, "directions", t->D) < 0 ||
        h5io_attr_write_i64(path, fid, "vocab_size", m->cfg.vocab) < 0 ||
        h5io_attr_write_str(path, fid, "vocab_mode",
                            v->mode == VOCAB_BYTES ? "bytes" : "codepoints") < 0 ||
        h5io_attr_write_str(path, fid, "source", o->source) < 0 ||
        h5io_attr_write_str(path, fid, "split", data_split_name(o->split)) < 0 ||
        h5io_attr_write_i64(path, fid, "n_steps", n_steps) < 0 ||
        h5io_attr_write_i64(path, fid, "n_examples", n_examples) < 0 ||
        h5io_attr_write_i64(path, fid, "n_classes", m->cfg.head.classes) < 0 ||
        h5io_attr_write_str(path, fid, "pool", head_pool_name(m->cfg.head.pool)) < 0 ||
        h5io_attr_write_str(path, fid, "prefix_prob", t->D == 2 ? "rerun" : "pooled") < 0 ||
        h5io_attr_write_i64(path, fid, "max_len", o->max_len) < 0)
        return -1;
    hsize_t dv[1] = {(hsize_t)v->size};
    return h5io_dataset_write(path, fid, "/vocab", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, dv,
                              v->symbols);
}

int trace_classify_write(const trace_classify_options *o, const model *m, const vocab *v,
                         const char *const *labels, examples_file *ex,
                         trace_classify_summary *sum)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, C = m->cfg.head.classes;
    const int D = model_directions(&m->cfg);
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
    const int PB = D == 2 ? (T < CT_PREFIX_ROWS ? (int)T : CT_PREFIX_ROWS) : 0;
    if (memplan_check_infer(&m->cfg, (int)T, 1 + PB,
                            4.0 * CT_BLOCK * (2.0 * L * D * H + C) + 4.0 * T * C, "trace") != 0)
        return -1;

    char tmp[4200];
    if (fsio_tmp_path(tmp, sizeof tmp, o->path) != 0)
        return -1;
    ct_writer t = {.path = tmp, .fid = H5I_INVALID_HID, .L = L, .H = H, .C = C, .D = D,
                   .lstm = m->cfg.cell == CELL_LSTM};
    t.tok = cn_xmalloc(CT_BLOCK * sizeof *t.tok);
    t.prob = cn_xmalloc((size_t)CT_BLOCK * C * sizeof *t.prob);
    for (int l = 0; l < L; l++)
        for (int d = 0; d < D; d++) {
            t.h[l][d] = cn_xmalloc((size_t)CT_BLOCK * H * sizeof(float));
            t.c[l][d] = t.lstm ? cn_xmalloc((size_t)CT_BLOCK * H * sizeof(float)) : NULL;
        }
    trace_corr acc;
    trace_corr_init(&acc, L, D, H, C);
    trace_corr_best best;
    int64_t *offsets = cn_xmalloc((n_ex + 1) * sizeof *offsets);
    int32_t *ylab = cn_xmalloc((n_ex ? n_ex : 1) * sizeof *ylab);
    int32_t *pred = cn_xmalloc((n_ex ? n_ex : 1) * sizeof *pred);
    int64_t *index = cn_xmalloc((n_ex ? n_ex : 1) * sizeof *index);
    int32_t *ids = cn_xmalloc(longest * sizeof *ids);
    float *prob = cn_xmalloc(T * C * sizeof *prob); /* (T, C) one example's prefixes */
    float *pool = cn_xmalloc((size_t)H * sizeof *pool);
    float *mean = cn_xmalloc((size_t)H * sizeof *mean);
    int32_t *px = PB ? cn_xmalloc(T * PB * sizeof *px) : NULL;  /* (T, PB) */
    int32_t *plens = PB ? cn_xmalloc((size_t)PB * sizeof *plens) : NULL;
    model_work w, pw;
    model_state s;
    model_work_init(&w, m, (int)T, 1);
    if (PB)
        model_work_init(&pw, m, (int)T, PB);
    model_state_init(&s, &m->cfg, 1);
    int rc = -1;
    memset(sum, 0, sizeof *sum);
    if ((t.fid = h5io_file_create(tmp, H5P_DEFAULT)) < 0)
        goto done;
    if (write_root(o, &t, m, v, n_steps, (int64_t)n_ex) < 0 || ct_create_all(&t) < 0)
        goto done;
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
        if (D == 2)
            prefix_prob_rerun(m, &pw, ids, len, px, plens, prob);
        else
            prefix_prob_pooled(m, &w, len, pool, mean, prob);
        /* the whole example's decision, as predict and eval compute it */
        memcpy(prob + (len - 1) * C, head_output(&w, 0), (size_t)C * sizeof(float));
        for (size_t k = 0; k < len; k++) {
            memcpy(t.prob + (size_t)t.n * C, prob + k * C, (size_t)C * sizeof(float));
            t.tok[t.n] = ids[k];
            for (int l = 0; l < L; l++)
                for (int d = 0; d < D; d++) {
                    /* forward: after reading 0..k; reverse: after reading len-1 down to k,
                       step len-1-k of its reversed time */
                    const size_t at = d ? len - k : k + 1;
                    memcpy(t.h[l][d] + (size_t)t.n * H, (d ? w.hs_rev[l] : w.hs[l]) + at * H,
                           (size_t)H * sizeof(float));
                    if (t.lstm)
                        memcpy(t.c[l][d] + (size_t)t.n * H, (d ? w.cs_rev[l] : w.cs[l]) + at * H,
                               (size_t)H * sizeof(float));
                }
            if (++t.n == CT_BLOCK && ct_flush(&t) < 0)
                goto done;
        }
        const float *p = prob + (len - 1) * C;
        int top = 0;
        for (int c = 1; c < C; c++)
            if (p[c] > p[top])
                top = c;
        pred[e] = top;
        ylab[e] = ex->labels[i];
        index[e] = (int64_t)i;
        offsets[e + 1] = offsets[e] + (int64_t)len;
        /* the final states: forward after the last character, reverse after the first */
        for (int l = 0; l < L; l++)
            for (int d = 0; d < D; d++)
                trace_corr_add_units(&acc, l, d, (d ? w.hs_rev[l] : w.hs[l]) + len * H, ylab[e]);
        trace_corr_count(&acc, ylab[e]);
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
        trace_corr_write(&acc, tmp, t.fid, "label_corr", &best) < 0)
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
    sum->best_r = best.r;
    sum->best_layer = best.layer;
    sum->best_dir = best.dir;
    sum->best_unit = best.unit;
    sum->best_class = best.cls;
    rc = 0;
done:
    if (t.fid >= 0)
        H5Fclose(t.fid);
    if (rc != 0)
        unlink(tmp);
    model_work_free(&w);
    if (PB)
        model_work_free(&pw);
    model_state_free(&s);
    free(plens);
    free(px);
    free(pool);
    free(mean);
    free(prob);
    free(ids);
    free(index);
    free(pred);
    free(ylab);
    free(offsets);
    trace_corr_free(&acc);
    for (int l = 0; l < L; l++)
        for (int d = 0; d < D; d++) {
            free(t.h[l][d]);
            free(t.c[l][d]);
        }
    free(t.prob);
    free(t.tok);
    return rc;
}

int trace_classify_run(const trace_options *o)
{
    ckpt_data d;
    vocab voc;
    const char *source;
    int rc = trace_run_open(o, "classify", "a classifier", &d, &voc, &source);
    if (rc != 0)
        return rc;
    examples_file ex;
    memset(&ex, 0, sizeof ex);
    int have_ex = 0, raw = 0;
    rc = -1;
    if (examples_open_input(&ex, source, &voc, d.voc.mode, d.cfg.val_frac, d.cfg.test_frac,
                            d.cfg.seed, 0, &raw) != 0)
        goto done;
    have_ex = 1;
    if (!trace_labels_match(&ex, &d)) {
        cn_err("'%s' has other classes than the model '%s' was trained on", source, o->model);
        goto done;
    }
    trace_classify_options to = {o->out, o->model, source, o->split, o->max_chars,
                                 d.cfg.max_len, d.prog.step};
    trace_classify_summary s;
    if (trace_classify_write(&to, &d.m, &voc, (const char *const *)d.task.labels, &ex, &s) != 0)
        goto done;
    printf("trace of %lld examples (%lld characters, %s split of '%s') by '%s' written to '%s': "
           "accuracy %.4f at their last character; unit %d of layer %d%s follows class '%s' most "
           "(r = %.3f)\n",
           (long long)s.n_examples, (long long)s.n_steps, data_split_name(o->split), source,
           o->model, o->out, s.n_examples ? (double)s.correct / (double)s.n_examples : 0.0,
           s.best_unit, s.best_layer, s.best_dir ? " (reverse)" : "", d.task.labels[s.best_class],
           (double)s.best_r);
    fflush(stdout);
    rc = 0;
done:
    if (have_ex)
        examples_close(&ex);
    vocab_free(&voc);
    ckpt_data_free(&d);
    return rc;
}
