/* Traces of conditional generators (kind "generate") and vector classifiers
 * (kind "features"). See trace_cond.h; the layout is in
 * docs/trace-format.md. */
#include "charnn/trace_cond.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "charnn/ckpt.h"
#include "charnn/common.h"
#include "charnn/cond.h"
#include "charnn/data.h"
#include "charnn/fsio.h"
#include "charnn/h5io.h"
#include "charnn/head.h"
#include "charnn/kernels.h"
#include "charnn/memplan.h"

enum { TC_BLOCK = 4096, TC_MAX_SETS = 2 * MODEL_MAX_LAYERS + 12 };

/* ---- growable datasets appended in blocks ---------------------------- */

typedef struct {
    char name[64];
    hid_t mem_type;
    size_t row_bytes; /* cols values of esize bytes */
    int cols;         /* 0: a vector */
    char *buf;        /* (TC_BLOCK rows) */
    int n;            /* rows buffered */
    int64_t rows;     /* rows written */
} tc_set;

typedef struct {
    const char *path; /* the file being written (a temporary name) */
    hid_t fid;
    int n_sets;
    tc_set set[TC_MAX_SETS];
} tc_writer;

/* A growable dataset of rows of cols values (0: a vector); its index, or -1. */
static int tc_add(tc_writer *w, const char *name, hid_t file_type, hid_t mem_type, size_t esize,
                  int cols)
{
    CHARNN_ASSERT(w->n_sets < TC_MAX_SETS);
    hsize_t dims[2] = {0, (hsize_t)cols}, chunk[2];
    chunk[1] = (hsize_t)(cols > 0 ? cols : 1);
    chunk[0] = (hsize_t)(65536 / chunk[1] > 0 ? 65536 / chunk[1] : 1);
    hid_t d = h5io_dataset_create(w->path, w->fid, name, file_type, cols > 0 ? 2 : 1, dims, chunk,
                                  H5IO_GROWABLE | H5IO_COMPRESS | H5IO_NO_FILL);
    if (d < 0)
        return -1;
    H5Dclose(d);
    tc_set *s = &w->set[w->n_sets];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->mem_type = mem_type;
    s->cols = cols;
    s->row_bytes = esize * (size_t)(cols > 0 ? cols : 1);
    s->buf = cn_xmalloc(TC_BLOCK * s->row_bytes);
    return w->n_sets++;
}

static int tc_flush(tc_writer *w, tc_set *s)
{
    if (s->n == 0)
        return 0;
    const int rank = s->cols > 0 ? 2 : 1;
    hid_t d = h5io_dataset_open(w->path, w->fid, s->name, H5P_DEFAULT, rank, NULL, NULL);
    if (d < 0)
        return -1;
    hsize_t start[2] = {(hsize_t)s->rows, 0}, count[2] = {(hsize_t)s->n, (hsize_t)s->cols};
    int rc = h5io_dataset_set_rows(w->path, s->name, d, (hsize_t)(s->rows + s->n));
    if (rc == 0)
        rc = h5io_dataset_write_box(w->path, s->name, d, s->mem_type, rank, start, count,
                                    H5I_INVALID_HID, H5P_DEFAULT, s->buf);
    H5Dclose(d);
    s->rows += s->n;
    s->n = 0;
    return rc;
}

/* The slot of the next row of set i; tc_push then commits it. */
static void *tc_row(tc_writer *w, int i)
{
    return w->set[i].buf + (size_t)w->set[i].n * w->set[i].row_bytes;
}

static int tc_push(tc_writer *w, int i)
{
    return ++w->set[i].n == TC_BLOCK ? tc_flush(w, &w->set[i]) : 0;
}

static int tc_put(tc_writer *w, int i, const void *row)
{
    memcpy(tc_row(w, i), row, w->set[i].row_bytes);
    return tc_push(w, i);
}

static int tc_flush_all(tc_writer *w)
{
    for (int i = 0; i < w->n_sets; i++)
        if (tc_flush(w, &w->set[i]) < 0)
            return -1;
    return 0;
}

static void tc_free(tc_writer *w)
{
    for (int i = 0; i < w->n_sets; i++)
        free(w->set[i].buf);
    if (w->fid >= 0)
        H5Fclose(w->fid);
    w->fid = H5I_INVALID_HID;
    w->n_sets = 0;
}

/* Close the temporary file and rename it over path; 0 or -1. */
static int tc_commit(tc_writer *w, const char *path)
{
    hid_t fid = w->fid;
    w->fid = H5I_INVALID_HID;
    if (h5io_file_close(w->path, fid) < 0)
        return -1;
    return fsio_commit(w->path, path, 1);
}

/* ---- Pearson correlation of every unit with K targets ---------------- */

/* Over samples (steps or examples): units x (S, H) per layer, targets y (K).
 * A target that is constant within a group of samples (an example's
 * condition over its steps) is added once per group: corr_group_end. */
typedef struct {
    int S, H, K;
    double *sx, *sxx;  /* (S, H) */
    double *gx;        /* (S, H) the sums of the current group */
    double *sy, *syy;  /* (K) */
    double *sxy;       /* (S, K, H) */
    int64_t n, gn;
} corr_acc;

static void corr_init(corr_acc *a, int S, int H, int K)
{
    a->S = S;
    a->H = H;
    a->K = K;
    a->sx = cn_xcalloc((size_t)S * H, sizeof(double));
    a->sxx = cn_xcalloc((size_t)S * H, sizeof(double));
    a->gx = cn_xcalloc((size_t)S * H, sizeof(double));
    a->sy = cn_xcalloc((size_t)K, sizeof(double));
    a->syy = cn_xcalloc((size_t)K, sizeof(double));
    a->sxy = cn_xcalloc((size_t)S * K * H, sizeof(double));
    a->n = a->gn = 0;
}

static void corr_free(corr_acc *a)
{
    free(a->sx);
    free(a->sxx);
    free(a->gx);
    free(a->sy);
    free(a->syy);
    free(a->sxy);
}

/* One sample: the units of layer l are x[l] (H). */
static void corr_add(corr_acc *a, const float *const *x)
{
    for (int l = 0; l < a->S; l++)
        for (int j = 0; j < a->H; j++) {
            const double v = x[l][j];
            a->sx[(size_t)l * a->H + j] += v;
            a->sxx[(size_t)l * a->H + j] += v * v;
            a->gx[(size_t)l * a->H + j] += v;
        }
    a->gn++;
}

/* The group's samples all had targets y (K). */
static void corr_group_end(corr_acc *a, const float *y)
{
    for (int k = 0; k < a->K; k++) {
        if (y[k] == 0.0f)
            continue;
        a->sy[k] += (double)a->gn * y[k];
        a->syy[k] += (double)a->gn * y[k] * y[k];
        for (int l = 0; l < a->S; l++) {
            double *row = a->sxy + ((size_t)l * a->K + k) * a->H;
            const double *g = a->gx + (size_t)l * a->H;
            for (int j = 0; j < a->H; j++)
                row[j] += y[k] * g[j];
        }
    }
    memset(a->gx, 0, (size_t)a->S * a->H * sizeof(double));
    a->n += a->gn;
    a->gn = 0;
}

/* /layer{l}/<name> (K, H) for every layer; the largest |r| into sum. */
static int corr_write(const corr_acc *a, tc_writer *w, const char *name, trace_cond_summary *sum)
{
    const int H = a->H, K = a->K;
    float *r = cn_xmalloc((size_t)K * H * sizeof *r);
    const double n = (double)a->n;
    int rc = 0;
    sum->best_r = 0.0f;
    for (int l = 0; l < a->S && rc == 0; l++) {
        for (int k = 0; k < K; k++) {
            const double my = a->sy[k] / n, vy = a->syy[k] / n - my * my;
            for (int j = 0; j < H; j++) {
                const size_t u = (size_t)l * H + j;
                const double mx = a->sx[u] / n, vx = a->sxx[u] / n - mx * mx,
                             cov = a->sxy[((size_t)l * K + k) * H + j] / n - mx * my;
                float v = n > 0 && vx > 1e-12 && vy > 1e-12 ? (float)(cov / sqrt(vx * vy)) : 0.0f;
                r[(size_t)k * H + j] = v;
                if (fabsf(v) > fabsf(sum->best_r)) {
                    sum->best_r = v;
                    sum->best_layer = l;
                    sum->best_unit = j;
                    sum->best_target = k;
                }
            }
        }
        char path[64];
        snprintf(path, sizeof path, "/layer%d/%s", l, name);
        hsize_t d[2] = {(hsize_t)K, (hsize_t)H};
        rc = h5io_dataset_write(w->path, w->fid, path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d, r);
    }
    free(r);
    return rc;
}

/* ---- root attributes -------------------------------------------------- */

static int write_root(const trace_cond_options *o, const tc_writer *w, const model *m,
                      const char *kind, int64_t n_steps, int64_t n_examples, int n_classes)
{
    const char *path = w->path;
    const hid_t fid = w->fid;
    return h5io_attr_write_str(path, fid, "format", TRACE_FORMAT) < 0 ||
                   h5io_attr_write_i64(path, fid, "format_version", TRACE_FORMAT_VERSION) < 0 ||
                   h5io_attr_write_str(path, fid, "kind", kind) < 0 ||
                   h5io_attr_write_str(path, fid, "model", o->model_name) < 0 ||
                   h5io_attr_write_i64(path, fid, "model_step", o->step) < 0 ||
                   h5io_attr_write_str(path, fid, "cell", cell_name(m->cfg.cell)) < 0 ||
                   h5io_attr_write_i64(path, fid, "layers", m->cfg.layers) < 0 ||
                   h5io_attr_write_i64(path, fid, "hidden", m->cfg.hidden) < 0 ||
                   h5io_attr_write_i64(path, fid, "vocab_size", m->cfg.vocab) < 0 ||
                   h5io_attr_write_str(path, fid, "source", o->source) < 0 ||
                   h5io_attr_write_str(path, fid, "split", data_split_name(o->split)) < 0 ||
                   h5io_attr_write_i64(path, fid, "n_steps", n_steps) < 0 ||
                   h5io_attr_write_i64(path, fid, "n_examples", n_examples) < 0 ||
                   h5io_attr_write_i64(path, fid, "n_classes", n_classes) < 0 ||
                   h5io_attr_write_str(path, fid, "cond_mode",
                                       cond_mode_name(m->cfg.cond.mode)) < 0 ||
                   h5io_attr_write_i64(path, fid, "cond_dim", m->cfg.cond.dim) < 0
               ? -1
               : 0;
}

/* The datasets of the states of every layer: /layer{l}/h (and c) of width H;
 * their set indices into hs, cs (-1: none). */
static int add_state_sets(tc_writer *w, const model *m, int S, int *hs, int *cs)
{
    const int H = m->cfg.hidden, lstm = m->cfg.layers > 0 && m->cfg.cell == CELL_LSTM;
    char name[64];
    for (int l = 0; l < S; l++) {
        snprintf(name, sizeof name, "/layer%d/h", l);
        if ((hs[l] = tc_add(w, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, sizeof(float), H)) < 0)
            return -1;
        cs[l] = -1;
        snprintf(name, sizeof name, "/layer%d/c", l);
        if (lstm &&
            (cs[l] = tc_add(w, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, sizeof(float), H)) < 0)
            return -1;
    }
    return 0;
}

/* ---- generate ---------------------------------------------------------- */

int trace_generate_write(const trace_cond_options *o, task *t, const model *m, const vocab *v,
                         trace_cond_summary *sum)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, T = t->T;
    int vector = 0;
    const int D = task_generate_cond_width(t, &vector), C = task_generate_classes(t);
    const int K = vector ? D : C;
    size_t begin, end;
    task_generate_split(t, o->split, &begin, &end);
    if (end == begin)
        return cn_err("split '%s' of '%s' has no examples: nothing to trace",
                      data_split_name(o->split), o->source);
    if (memplan_check_infer(&m->cfg, T, 1, 4.0 * TC_BLOCK * (2.0 * L * H + 4.0), "trace") != 0)
        return -1;
    char tmp[4200];
    if (fsio_tmp_path(tmp, sizeof tmp, o->path) != 0)
        return -1;
    tc_writer w = {.path = tmp, .fid = H5I_INVALID_HID};
    int32_t *x = cn_xmalloc((size_t)T * sizeof *x), *y = cn_xmalloc((size_t)T * sizeof *y);
    float *cond = cn_xmalloc((size_t)D * sizeof *cond), *target = cn_xmalloc((size_t)K * sizeof(float));
    int64_t *offsets = cn_xmalloc((end - begin + 1) * sizeof *offsets);
    int64_t *index = cn_xmalloc((end - begin) * sizeof *index);
    int32_t *labels = cn_xmalloc((end - begin) * sizeof *labels);
    corr_acc acc;
    corr_init(&acc, L, H, K);
    model_work wk;
    model_state s;
    model_work_init(&wk, m, T, 1);
    model_state_init(&s, &m->cfg, 1);
    int hs[MODEL_MAX_LAYERS], cs[MODEL_MAX_LAYERS], rc = -1;
    int s_tok, s_tgt, s_loss, s_prob, s_cond = -1;
    size_t n_ex = 0;
    int64_t n_steps = 0;
    double loss_sum = 0.0;
    memset(sum, 0, sizeof *sum);
    if ((w.fid = h5io_file_create(tmp, H5P_DEFAULT)) < 0)
        goto done;
    if ((s_tok = tc_add(&w, "/tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, 4, 0)) < 0 ||
        (s_tgt = tc_add(&w, "/targets", H5T_STD_I32LE, H5T_NATIVE_INT32, 4, 0)) < 0 ||
        (s_loss = tc_add(&w, "/loss", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, 0)) < 0 ||
        (s_prob = tc_add(&w, "/prob", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, 0)) < 0 ||
        (vector && (s_cond = tc_add(&w, "/cond", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, D)) < 0) ||
        add_state_sets(&w, m, L, hs, cs) < 0)
        goto done;
    offsets[0] = 0;
    for (size_t i = begin; i < end; i++) {
        int32_t label;
        const int n = task_generate_example(t, i, x, y, cond, &label);
        if (n < 0)
            goto done;
        if (n_ex > 0 && o->max_steps > 0 && n_steps + n > o->max_steps)
            break;
        model_state_reset(&s);
        wk.len = NULL;
        wk.mask = NULL;
        wk.cond = cond;
        wk.cond_first = 1;
        model_forward(m, &wk, &s, x, y, n, 0, 0);
        for (int k = 0; k < n; k++) {
            const float loss = wk.head.loss[k], p = head_target_prob(&wk, (size_t)k, y[k]);
            const float *units[MODEL_MAX_LAYERS];
            loss_sum += loss;
            if (tc_put(&w, s_tok, &x[k]) < 0 || tc_put(&w, s_tgt, &y[k]) < 0 ||
                tc_put(&w, s_loss, &loss) < 0 || tc_put(&w, s_prob, &p) < 0)
                goto done;
            for (int l = 0; l < L; l++) {
                units[l] = wk.hs[l] + (size_t)(k + 1) * H;
                if (tc_put(&w, hs[l], units[l]) < 0 ||
                    (cs[l] >= 0 && tc_put(&w, cs[l], wk.cs[l] + (size_t)(k + 1) * H) < 0))
                    goto done;
            }
            corr_add(&acc, units);
        }
        for (int k = 0; k < K; k++)
            target[k] = vector ? cond[k] : (float)(k == label);
        corr_group_end(&acc, target);
        if (vector && tc_put(&w, s_cond, cond) < 0)
            goto done;
        labels[n_ex] = label;
        index[n_ex] = (int64_t)i;
        offsets[n_ex + 1] = offsets[n_ex] + n;
        n_ex++;
        n_steps += n;
    }
    hsize_t de[1] = {(hsize_t)n_ex}, dof[1] = {(hsize_t)n_ex + 1}, dv[1] = {(hsize_t)v->size};
    if (tc_flush_all(&w) < 0 ||
        write_root(o, &w, m, "generate", n_steps, (int64_t)n_ex, C) < 0 ||
        h5io_attr_write_str(tmp, w.fid, "cond", vector ? "vector" : "class") < 0 ||
        h5io_attr_write_str(tmp, w.fid, "vocab_mode",
                            v->mode == VOCAB_BYTES ? "bytes" : "codepoints") < 0 ||
        h5io_dataset_write(tmp, w.fid, "/vocab", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, dv,
                           v->symbols) < 0 ||
        h5io_dataset_write(tmp, w.fid, "/offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, dof,
                           offsets) < 0 ||
        h5io_dataset_write(tmp, w.fid, "/labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, de,
                           labels) < 0 ||
        h5io_dataset_write(tmp, w.fid, "/example_index", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, de,
                           index) < 0 ||
        h5io_dataset_write_strings(tmp, w.fid, "/label_names", task_generate_class_names(t),
                                   (size_t)C) < 0 ||
        corr_write(&acc, &w, vector ? "cond_corr" : "label_corr", sum) < 0 ||
        tc_commit(&w, o->path) < 0)
        goto done;
    sum->n_examples = (int64_t)n_ex;
    sum->n_steps = n_steps;
    sum->loss = loss_sum / (double)n_steps;
    rc = 0;
done:
    tc_free(&w);
    if (rc != 0)
        unlink(tmp);
    model_work_free(&wk);
    model_state_free(&s);
    corr_free(&acc);
    free(x);
    free(y);
    free(cond);
    free(target);
    free(offsets);
    free(index);
    free(labels);
    return rc;
}

/* ---- features ---------------------------------------------------------- */

enum { TF_ROWS = 64 }; /* examples per forward */

int trace_features_write(const trace_cond_options *o, task *t, const model *m,
                         trace_cond_summary *sum)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, C = m->cfg.head.classes;
    const int S = L > 0 ? L : 1; /* layers of states: the MLP's hidden layer is layer 0 */
    const int D = task_features_dim(t), B = TF_ROWS;
    size_t begin, end;
    if (task_features_split(t, o->split, &begin, &end) != 0)
        return -1;
    if (o->max_steps > 0 && (size_t)o->max_steps < end - begin)
        end = begin + (size_t)o->max_steps;
    char tmp[4200];
    if (fsio_tmp_path(tmp, sizeof tmp, o->path) != 0)
        return -1;
    tc_writer w = {.path = tmp, .fid = H5I_INVALID_HID};
    int32_t *xin = cn_xcalloc(B, sizeof *xin), *y = cn_xcalloc(B, sizeof *y);
    int32_t *len = cn_xcalloc(B, sizeof *len);
    float *mask = cn_xcalloc(B, sizeof *mask), *cond = cn_xcalloc((size_t)B * D, sizeof *cond);
    float *target = cn_xcalloc((size_t)C, sizeof *target);
    int64_t *index = cn_xcalloc(B, sizeof *index);
    corr_acc acc;
    corr_init(&acc, S, H, C);
    model_work wk;
    model_state s;
    model_work_init(&wk, m, 1, B);
    model_state_init(&s, &m->cfg, B);
    int hs[MODEL_MAX_LAYERS], cs[MODEL_MAX_LAYERS], rc = -1;
    int s_x, s_lab, s_pred, s_loss, s_prob, s_idx;
    double loss_sum = 0.0;
    memset(sum, 0, sizeof *sum);
    if ((w.fid = h5io_file_create(tmp, H5P_DEFAULT)) < 0)
        goto done;
    if ((s_x = tc_add(&w, "/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, D)) < 0 ||
        (s_lab = tc_add(&w, "/labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 4, 0)) < 0 ||
        (s_pred = tc_add(&w, "/pred", H5T_STD_I32LE, H5T_NATIVE_INT32, 4, 0)) < 0 ||
        (s_loss = tc_add(&w, "/loss", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, 0)) < 0 ||
        (s_prob = tc_add(&w, "/prob", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, C)) < 0 ||
        (s_idx = tc_add(&w, "/example_index", H5T_STD_I64LE, H5T_NATIVE_INT64, 8, 0)) < 0 ||
        add_state_sets(&w, m, S, hs, cs) < 0)
        goto done;
    for (size_t first = begin; first < end; first += B) {
        const int nb = end - first < (size_t)B ? (int)(end - first) : B;
        memset(cond, 0, (size_t)B * D * sizeof *cond);
        for (int r = 0; r < B; r++) {
            len[r] = 1;
            mask[r] = r < nb ? 1.0f : 0.0f;
            y[r] = 0;
            if (r < nb)
                index[r] = (int64_t)task_features_example(t, first + r, cond + (size_t)r * D, &y[r]);
        }
        model_state_reset(&s);
        wk.len = len;
        wk.mask = mask;
        wk.cond = cond;
        wk.cond_first = 1;
        model_forward(m, &wk, &s, xin, y, 1, 0, 0);
        for (int r = 0; r < nb; r++) {
            const float *p = head_output(&wk, (size_t)r), loss = wk.head.loss[r];
            int32_t best = kern_argmax(p, C);
            const float *units[MODEL_MAX_LAYERS];
            for (int l = 0; l < S; l++)
                units[l] = L > 0 ? wk.hs[l] + (size_t)(B + r) * H : wk.mlp_h + (size_t)r * H;
            if (tc_put(&w, s_x, cond + (size_t)r * D) < 0 || tc_put(&w, s_lab, &y[r]) < 0 ||
                tc_put(&w, s_pred, &best) < 0 || tc_put(&w, s_loss, &loss) < 0 ||
                tc_put(&w, s_prob, p) < 0 || tc_put(&w, s_idx, &index[r]) < 0)
                goto done;
            for (int l = 0; l < S; l++)
                if (tc_put(&w, hs[l], units[l]) < 0 ||
                    (cs[l] >= 0 && tc_put(&w, cs[l], wk.cs[l] + (size_t)(B + r) * H) < 0))
                    goto done;
            corr_add(&acc, units);
            for (int c = 0; c < C; c++)
                target[c] = (float)(c == y[r]);
            corr_group_end(&acc, target);
            loss_sum += loss;
            sum->correct += best == y[r];
        }
    }
    const int64_t n_ex = (int64_t)(end - begin);
    if (tc_flush_all(&w) < 0 || write_root(o, &w, m, "features", n_ex, n_ex, C) < 0 ||
        h5io_attr_write_i64(tmp, w.fid, "n_features", D) < 0 ||
        h5io_dataset_write_strings(tmp, w.fid, "/label_names", (const char *const *)t->labels,
                                   (size_t)C) < 0 ||
        corr_write(&acc, &w, "label_corr", sum) < 0 || tc_commit(&w, o->path) < 0)
        goto done;
    sum->n_examples = sum->n_steps = n_ex;
    sum->loss = loss_sum / (double)n_ex;
    rc = 0;
done:
    tc_free(&w);
    if (rc != 0)
        unlink(tmp);
    model_work_free(&wk);
    model_state_free(&s);
    corr_free(&acc);
    free(xin);
    free(y);
    free(len);
    free(mask);
    free(cond);
    free(target);
    free(index);
    return rc;
}

/* ---- charnn trace ------------------------------------------------------ */

int trace_cond_run(const trace_options *o)
{
    ckpt_data d;
    if (ckpt_read(o->model, &d) != 0)
        return -1;
    const int is_gen = strcmp(d.task.task, task_generate_ops.name) == 0;
    const int is_feat = strcmp(d.task.task, task_features_ops.name) == 0;
    if (!is_gen && !is_feat) {
        ckpt_data_free(&d);
        return 1;
    }
    const task_ops *ops = is_gen ? &task_generate_ops : &task_features_ops;
    const char *what = is_gen ? "generator" : "vector classifier";
    vocab voc;
    memset(&voc, 0, sizeof voc);
    task t;
    memset(&t, 0, sizeof t);
    t.ops = ops;
    int rc = -1;
    const char *source = o->data[0] ? o->data : d.cfg.data;
    if (o->grads || o->lstmvis) {
        cn_err("--grads and --lstmvis trace language models; '%s' is a %s", o->model, what);
        goto done;
    }
    if (!source[0]) {
        cn_err("checkpoint '%s' names no training data: give --data", o->model);
        goto done;
    }
    if (is_gen && d.task.n_labels == 0 && !o->cond_vectors[0]) {
        cn_err("'%s' is conditioned on vectors: give --cond-vectors FILE with /features for "
               "'%s'", o->model, source);
        goto done;
    }
    if (!is_gen && o->cond_vectors[0]) {
        cn_err("--cond-vectors is for generators; '%s' is a %s", o->model, what);
        goto done;
    }
    run_config cfg = d.cfg;
    snprintf(cfg.data, sizeof cfg.data, "%s", source);
    if (is_feat)
        snprintf(cfg.features, sizeof cfg.features, "%s", source);
    snprintf(cfg.cond_vectors, sizeof cfg.cond_vectors, "%s", o->cond_vectors);
    cfg.balance[0] = '\0';
    cfg.trace_every = 0;
    cfg.model = d.m.cfg;
    if (vocab_from_symbols(&voc, d.voc.mode, d.voc.symbols, d.voc.size) != 0 ||
        ops->open(&t, &cfg, &voc, 0, 1) != 0)
        goto done;
    int same = t.n_labels == d.task.n_labels;
    for (int c = 0; same && c < t.n_labels; c++)
        same = strcmp(t.labels[c], d.task.labels[c]) == 0;
    if (!same) {
        cn_err("'%s' has other classes than the model '%s' was trained on", source, o->model);
        goto done;
    }
    trace_cond_options to = {o->out, o->model, source, o->split, o->max_chars, d.prog.step};
    trace_cond_summary s;
    if ((is_gen ? trace_generate_write(&to, &t, &d.m, &voc, &s)
                : trace_features_write(&to, &t, &d.m, &s)) != 0)
        goto done;
    int vector = 0;
    char target[160];
    if (is_gen)
        task_generate_cond_width(&t, &vector);
    if (vector)
        snprintf(target, sizeof target, "condition dimension %d", s.best_target);
    else
        snprintf(target, sizeof target, "class '%s'",
                 is_gen ? task_generate_class_names(&t)[s.best_target] : t.labels[s.best_target]);
    printf("trace of %lld examples (%lld %s, %s split of '%s') by '%s' written to '%s': loss "
           "%.4f nats per %s",
           (long long)s.n_examples, (long long)s.n_steps, is_gen ? "characters" : "vectors",
           data_split_name(o->split), source, o->model, o->out, s.loss,
           is_gen ? "character" : "example");
    if (is_feat)
        printf(", accuracy %.4f", (double)s.correct / (double)s.n_examples);
    printf("; unit %d of layer %d follows %s most (r = %.3f)\n", s.best_unit, s.best_layer,
           target, (double)s.best_r);
    fflush(stdout);
    rc = 0;
done:
    if (t.impl)
        ops->close(&t);
    vocab_free(&voc);
    ckpt_data_free(&d);
    return rc;
}
