/* Trace analysis: reading a trace in blocks of steps, the report, the table
 * and JSON outputs, and the CLI. See analyze.h and docs/trace-format.md.
 *
 * Traces are read through h5io, so HDF5 never prints its error stack: a bad
 * file becomes one line through cn_err naming the file and the object ("'T'
 * is damaged: checksum mismatch in /layer0/h"). Ids start at H5I_INVALID_HID,
 * every call is checked, and each function closes what it opened at one label.
 */
#include "charnn/analyze.h"

#include <errno.h>
#include <hdf5.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/config.h"
#include "charnn/flags.h"
#include "charnn/h5io.h"
#include "charnn/trace.h"

/* Steps read per block: about 1 Mi floats of one dataset, within these bounds. */
#define BLOCK_MIN_ROWS 64
#define BLOCK_MAX_ROWS 4096

/* ---- HDF5 reading: h5io's checked helpers ------------------------------------ */

static int missing(const char *path, const char *what)
{
    return cn_err("'%s' is not a complete trace: missing %s", path, what);
}

/* Root attribute as a string. 1 read, 0 absent, -1 error. */
static int attr_str(const char *path, hid_t fid, const char *name, char *buf, size_t n)
{
    return h5io_attr_read_str(path, fid, "", name, buf, n);
}

/* Integer attribute of loc (named obj in messages). 1 read, 0 absent, -1 error. */
static int attr_i64(const char *path, hid_t loc, const char *obj, const char *name, int64_t *out)
{
    return h5io_attr_read_num(path, loc, obj, name, H5T_NATIVE_INT64, 1, out);
}

/* Open dataset `name` and check its rank and the dims given (-1: any); a
 * missing one makes the trace incomplete rather than damaged. */
static hid_t open_dataset(const char *path, hid_t fid, const char *name, int rank,
                          const int64_t *want, int64_t *dims_out)
{
    int e = h5io_exists(path, fid, name);
    if (e <= 0) {
        if (e == 0)
            missing(path, name);
        return H5I_INVALID_HID;
    }
    return h5io_dataset_open(path, fid, name, H5P_DEFAULT, rank, want, dims_out);
}

/* Read the box at `start` of size `count` (rank dims) of dset into buf. */
static int read_box(const char *path, const char *name, hid_t dset, hid_t mem_type, int rank,
                    const hsize_t *start, const hsize_t *count, void *buf)
{
    return h5io_dataset_read_box(path, name, dset, mem_type, rank, start, count, H5P_DEFAULT,
                                 buf);
}

/* ---- an open trace -------------------------------------------------------------- */

typedef struct {
    const char *path;
    hid_t fid;
    char kind[16], cell[16], gates[32], vocab_mode[16], model[1024], source[1024];
    int64_t model_step;
    int layers, hidden, vocab_size, bytes_mode;
    int64_t n;       /* text positions */
    int64_t entries; /* probe: entries on the step axis; 0 for a text trace */
    uint32_t *symbols;
    int64_t *steps;  /* probe: (entries) */
    int n_series;
    char series[ANALYZE_MAX_SERIES][4];
    int is_gate[ANALYZE_MAX_SERIES];
    double lo[ANALYZE_MAX_SERIES], hi[ANALYZE_MAX_SERIES];
    hid_t tokens;
    hid_t dset[ANALYZE_MAX_LAYERS][ANALYZE_MAX_SERIES];
    char dname[ANALYZE_MAX_LAYERS][ANALYZE_MAX_SERIES][32];
} trace_file;

static void trace_close(trace_file *tf)
{
    for (int k = 0; k < ANALYZE_MAX_LAYERS; k++)
        for (int s = 0; s < ANALYZE_MAX_SERIES; s++)
            H5Dclose(tf->dset[k][s]);
    H5Dclose(tf->tokens);
    H5Fclose(tf->fid);
    free(tf->symbols);
    free(tf->steps);
    tf->symbols = NULL;
    tf->steps = NULL;
    tf->fid = tf->tokens = H5I_INVALID_HID;
    for (int k = 0; k < ANALYZE_MAX_LAYERS; k++)
        for (int s = 0; s < ANALYZE_MAX_SERIES; s++)
            tf->dset[k][s] = H5I_INVALID_HID;
}

static int attr_int_required(trace_file *tf, const char *name, int lo, int hi, int *out)
{
    int64_t v;
    int rc = attr_i64(tf->path, tf->fid, "", name, &v);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return missing(tf->path, name[0] ? name : "?");
    if (v < lo || v > hi)
        return cn_err("'%s': attribute %s is %lld, outside [%d, %d]", tf->path, name,
                      (long long)v, lo, hi);
    *out = (int)v;
    return 0;
}

/* The series of each layer: h, c (LSTM) and, in a text trace, the gates. */
static int trace_series(trace_file *tf)
{
    int lstm = strcmp(tf->cell, "lstm") == 0, gru = strcmp(tf->cell, "gru") == 0;
    tf->n_series = 0;
    snprintf(tf->series[tf->n_series++], 4, "h");
    if (lstm)
        snprintf(tf->series[tf->n_series++], 4, "c");
    if (tf->entries)
        return 0;
    const char *p = tf->gates;
    while (*p) {
        const char *q = strchr(p, ',');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len == 0 || len > 3 || tf->n_series == ANALYZE_MAX_SERIES)
            return cn_err("'%s': attribute gates '%s' is not a list like \"i,f,g,o\"", tf->path,
                          tf->gates);
        int s = tf->n_series++;
        memcpy(tf->series[s], p, len);
        tf->series[s][len] = '\0';
        tf->is_gate[s] = 1;
        /* the candidate gates (tanh) range over [-1, 1], the others over [0, 1] */
        int is_tanh = (lstm && strcmp(tf->series[s], "g") == 0) ||
                      (gru && strcmp(tf->series[s], "n") == 0);
        tf->lo[s] = is_tanh ? -0.8 : 0.1;
        tf->hi[s] = is_tanh ? 0.8 : 0.9;
        p = q ? q + 1 : p + len;
    }
    return 0;
}

static int trace_open(trace_file *tf, const char *path)
{
    memset(tf, 0, sizeof *tf);
    tf->path = path;
    tf->fid = tf->tokens = H5I_INVALID_HID;
    for (int k = 0; k < ANALYZE_MAX_LAYERS; k++)
        for (int s = 0; s < ANALYZE_MAX_SERIES; s++)
            tf->dset[k][s] = H5I_INVALID_HID;
    if ((tf->fid = h5io_file_open(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        return -1;

    char format[64] = "";
    int rc = attr_str(path, tf->fid, "format", format, sizeof format);
    if (rc < 0)
        goto error;
    if (rc == 0 || strcmp(format, TRACE_FORMAT) != 0) {
        cn_err("'%s' is not a charnn trace (attribute format is %s%s%s, expected '%s')", path,
               rc ? "'" : "absent", rc ? format : "", rc ? "'" : "", TRACE_FORMAT);
        goto error;
    }
    int64_t version = 0;
    if ((rc = attr_i64(path, tf->fid, "", "format_version", &version)) < 0)
        goto error;
    if (rc == 0) {
        missing(path, "attribute format_version");
        goto error;
    }
    if (version != TRACE_FORMAT_VERSION) {
        cn_err("'%s' has trace format version %lld; this charnn reads version %d", path,
               (long long)version, TRACE_FORMAT_VERSION);
        goto error;
    }
    if ((rc = attr_str(path, tf->fid, "kind", tf->kind, sizeof tf->kind)) < 0)
        goto error;
    if (rc == 0) {
        missing(path, "attribute kind");
        goto error;
    }
    if (strcmp(tf->kind, "text") != 0 && strcmp(tf->kind, "probe") != 0) {
        cn_err("'%s' is a trace of kind '%s'; analyze reads kinds 'text' and 'probe'", path,
               tf->kind);
        goto error;
    }
    if ((rc = attr_str(path, tf->fid, "cell", tf->cell, sizeof tf->cell)) < 0)
        goto error;
    if (rc == 0) {
        missing(path, "attribute cell");
        goto error;
    }
    if (attr_int_required(tf, "layers", 1, ANALYZE_MAX_LAYERS, &tf->layers) != 0 ||
        attr_int_required(tf, "hidden", 1, 1 << 20, &tf->hidden) != 0 ||
        attr_int_required(tf, "vocab_size", 1, 0x110000, &tf->vocab_size) != 0)
        goto error;
    if (attr_i64(path, tf->fid, "", "model_step", &tf->model_step) < 0 ||
        attr_str(path, tf->fid, "model", tf->model, sizeof tf->model) < 0 ||
        attr_str(path, tf->fid, "source", tf->source, sizeof tf->source) < 0 ||
        attr_str(path, tf->fid, "vocab_mode", tf->vocab_mode, sizeof tf->vocab_mode) < 0)
        goto error;
    tf->bytes_mode = strcmp(tf->vocab_mode, "bytes") == 0;
    if ((rc = attr_str(path, tf->fid, "gates", tf->gates, sizeof tf->gates)) < 0)
        goto error;
    if (rc == 0)
        snprintf(tf->gates, sizeof tf->gates, "%s",
                 strcmp(tf->cell, "lstm") == 0  ? "i,f,g,o"
                 : strcmp(tf->cell, "gru") == 0 ? "r,z,n"
                                                : "");

    /* the vocabulary and the text */
    hid_t vocab_dset = H5I_INVALID_HID;
    int64_t vdim = tf->vocab_size;
    if ((vocab_dset = open_dataset(path, tf->fid, "/vocab", 1, &vdim, NULL)) < 0)
        goto error;
    tf->symbols = cn_xmalloc((size_t)tf->vocab_size * sizeof *tf->symbols);
    hsize_t v0 = 0, vn = (hsize_t)tf->vocab_size;
    rc = read_box(path, "/vocab", vocab_dset, H5T_NATIVE_UINT32, 1, &v0, &vn, tf->symbols);
    H5Dclose(vocab_dset);
    if (rc != 0)
        goto error;
    if ((tf->tokens = open_dataset(path, tf->fid, "/tokens", 1, NULL, &tf->n)) < 0)
        goto error;
    if (strcmp(tf->kind, "probe") == 0) {
        hid_t steps = H5I_INVALID_HID;
        if ((steps = open_dataset(path, tf->fid, "/steps", 1, NULL, &tf->entries)) < 0)
            goto error;
        tf->steps = cn_xmalloc((size_t)(tf->entries ? tf->entries : 1) * sizeof *tf->steps);
        hsize_t s0 = 0, sn = (hsize_t)tf->entries;
        rc = read_box(path, "/steps", steps, H5T_NATIVE_INT64, 1, &s0, &sn, tf->steps);
        H5Dclose(steps);
        if (rc != 0)
            goto error;
        if (tf->entries == 0) {
            cn_err("'%s' is a probe trace with no entries yet (/steps is empty)", path);
            goto error;
        }
    }
    if (tf->n == 0) {
        cn_err("'%s' holds no text (/tokens is empty)", path);
        goto error;
    }
    if (trace_series(tf) != 0)
        goto error;
    for (int k = 0; k < tf->layers; k++) {
        for (int s = 0; s < tf->n_series; s++) {
            char *name = tf->dname[k][s];
            if (tf->is_gate[s])
                snprintf(name, 32, "/layer%d/gates/%s", k, tf->series[s]);
            else
                snprintf(name, 32, "/layer%d/%s", k, tf->series[s]);
            int64_t want3[3] = {tf->entries, tf->n, tf->hidden}, want2[2] = {tf->n, tf->hidden};
            tf->dset[k][s] = tf->entries ? open_dataset(path, tf->fid, name, 3, want3, NULL)
                                         : open_dataset(path, tf->fid, name, 2, want2, NULL);
            if (tf->dset[k][s] < 0)
                goto error;
        }
    }
    return 0;
error:
    trace_close(tf);
    return -1;
}

static int read_tokens(void *ctx, int64_t start, int64_t count, int32_t *out)
{
    trace_file *tf = ctx;
    hsize_t s = (hsize_t)start, c = (hsize_t)count;
    if (read_box(tf->path, "/tokens", tf->tokens, H5T_NATIVE_INT32, 1, &s, &c, out) != 0)
        return -1;
    return 0;
}

/* Rows [start, start + rows) of series s of layer k (entry e of a probe
 * trace), all units, or the single unit `unit` when unit >= 0. */
static int read_rows(trace_file *tf, int k, int s, int64_t e, int64_t start, int64_t rows,
                     int unit, float *out)
{
    hsize_t st[3], ct[3];
    int rank = 0;
    if (tf->entries) {
        st[rank] = (hsize_t)e;
        ct[rank++] = 1;
    }
    st[rank] = (hsize_t)start;
    ct[rank++] = (hsize_t)rows;
    st[rank] = unit >= 0 ? (hsize_t)unit : 0;
    ct[rank++] = unit >= 0 ? 1 : (hsize_t)tf->hidden;
    return read_box(tf->path, tf->dname[k][s], tf->dset[k][s], H5T_NATIVE_FLOAT, rank, st, ct,
                    out);
}

/* ---- one pass over the text ------------------------------------------------ */

typedef struct {
    int n_features;
    char feature[ANALYZE_MAX_FEATURES][ANALYZE_NAME_MAX];
    analyze_stats st[ANALYZE_MAX_LAYERS][ANALYZE_MAX_SERIES];
} pass_stats;

static void pass_free(pass_stats *p, int layers, int n_series)
{
    for (int k = 0; k < layers; k++)
        for (int s = 0; s < n_series; s++)
            analyze_stats_free(&p->st[k][s]);
}

static int block_rows(int hidden)
{
    int rows = (1 << 20) / hidden;
    return rows < BLOCK_MIN_ROWS ? BLOCK_MIN_ROWS : rows > BLOCK_MAX_ROWS ? BLOCK_MAX_ROWS : rows;
}

/* Stream entry e (text traces: ignored) through the accumulators: the states
 * h and c correlated with the features, the gates counted for saturation. */
static int pass_run(trace_file *tf, int64_t e, const analyze_options *o, pass_stats *p)
{
    analyze_features *feat = NULL;
    float *x = NULL;
    double *fv = NULL;
    int rc = -1;
    memset(p, 0, sizeof *p);
    if (analyze_features_open(&feat, tf->symbols, tf->vocab_size, tf->bytes_mode, tf->n,
                              read_tokens, tf, o->user, o->n_user) != 0) {
        cn_err_context("'%s'", tf->path);
        return -1;
    }
    int F = analyze_features_count(feat);
    p->n_features = F;
    for (int j = 0; j < F; j++)
        snprintf(p->feature[j], ANALYZE_NAME_MAX, "%s", analyze_features_name(feat, j));
    for (int k = 0; k < tf->layers; k++)
        for (int s = 0; s < tf->n_series; s++)
            analyze_stats_init(&p->st[k][s], tf->hidden, tf->is_gate[s] ? 0 : F,
                               tf->is_gate[s] ? tf->lo[s] : 1.0,
                               tf->is_gate[s] ? tf->hi[s] : -1.0);
    int B = block_rows(tf->hidden);
    x = cn_xmalloc((size_t)B * (size_t)tf->hidden * sizeof *x);
    fv = cn_xmalloc((size_t)B * (size_t)F * sizeof *fv);
    for (int64_t start = 0; start < tf->n; start += B) {
        int rows = (int)(tf->n - start < B ? tf->n - start : B);
        if (analyze_features_next(feat, start, rows, fv) != 0) {
            cn_err_context("'%s'", tf->path);
            goto error;
        }
        for (int k = 0; k < tf->layers; k++) {
            for (int s = 0; s < tf->n_series; s++) {
                if (read_rows(tf, k, s, e, start, rows, -1, x) != 0)
                    goto error;
                analyze_stats_add(&p->st[k][s], x, tf->is_gate[s] ? NULL : fv, rows);
            }
        }
    }
    rc = 0;
error:
    if (rc != 0)
        pass_free(p, tf->layers, tf->n_series);
    free(fv);
    free(x);
    analyze_features_free(feat);
    return rc;
}

/* ---- picking units ---------------------------------------------------------- */

static int pick_cmp(const void *a, const void *b)
{
    const analyze_pick *x = a, *y = b;
    double ax = fabs(x->r), ay = fabs(y->r);
    if (ax != ay)
        return ax > ay ? -1 : 1;
    if (x->layer != y->layer)
        return x->layer - y->layer;
    if (x->series != y->series)
        return x->series - y->series;
    return x->unit - y->unit;
}

/* The k units of h and c with the largest |r| with feature j: of every layer
 * and state, or of one (layer >= 0, series >= 0). */
static analyze_pick *pick_top(const trace_file *tf, const pass_stats *p, int j, int k_top,
                              int layer, int series, int *n_out)
{
    int n_state = strcmp(tf->cell, "lstm") == 0 ? 2 : 1;
    size_t cap = (size_t)tf->layers * (size_t)n_state * (size_t)tf->hidden, n = 0;
    analyze_pick *all = cn_xmalloc(cap * sizeof *all);
    for (int k = 0; k < tf->layers; k++)
        for (int s = 0; s < n_state; s++) {
            if ((layer >= 0 && k != layer) || (series >= 0 && s != series))
                continue;
            for (int u = 0; u < tf->hidden; u++) {
                double r = analyze_stats_r(&p->st[k][s], j, u);
                if (isfinite(r))
                    all[n++] = (analyze_pick){k, s, u, r};
            }
        }
    qsort(all, n, sizeof *all, pick_cmp);
    if (n > (size_t)k_top)
        n = (size_t)k_top;
    *n_out = (int)n;
    return all;
}

/* ---- gradient flow ---------------------------------------------------------- */

static int decay_read(const char *path, hid_t fid, const char *name, int chunk_len,
                      int64_t *chunks, analyze_decay *out)
{
    int64_t want[2] = {-1, chunk_len}, dims[2];
    hid_t dset = open_dataset(path, fid, name, 2, want, dims);
    if (dset < 0)
        return -1;
    int rc = -1;
    int rows = block_rows(chunk_len);
    float *buf = cn_xmalloc((size_t)rows * (size_t)chunk_len * sizeof *buf);
    double *sum = cn_xcalloc((size_t)chunk_len, sizeof *sum);
    for (int64_t c0 = 0; c0 < dims[0]; c0 += rows) {
        int64_t n = dims[0] - c0 < rows ? dims[0] - c0 : rows;
        hsize_t st[2] = {(hsize_t)c0, 0}, ct[2] = {(hsize_t)n, (hsize_t)chunk_len};
        if (read_box(path, name, dset, H5T_NATIVE_FLOAT, 2, st, ct, buf) != 0)
            goto error;
        for (int64_t i = 0; i < n; i++)
            for (int t = 0; t < chunk_len; t++)
                sum[t] += buf[i * chunk_len + t];
    }
    *chunks = dims[0];
    out->norm = cn_xmalloc((size_t)chunk_len * sizeof *out->norm);
    /* the row read backwards is the norm against distance from the differentiated step */
    for (int d = 0; d < chunk_len; d++)
        out->norm[d] = dims[0] ? sum[chunk_len - 1 - d] / (double)dims[0] : NAN;
    out->n_fit = analyze_fit_decay(out->norm, chunk_len, &out->rate, &out->log_a);
    out->half_life = !isfinite(out->rate) ? NAN : out->rate > 0 ? log(2.0) / out->rate : INFINITY;
    rc = 0;
error:
    free(sum);
    free(buf);
    H5Dclose(dset);
    return rc;
}

static int grads_read(trace_file *tf, analyze_report *r)
{
    int e = h5io_exists(tf->path, tf->fid, "/grads");
    if (e <= 0)
        return e;
    hid_t g = H5I_INVALID_HID;
    int64_t len = 0;
    if ((g = H5Gopen2(tf->fid, "/grads", H5P_DEFAULT)) < 0)
        return h5io_read_fail(tf->path, "/grads");
    int rc = attr_i64(tf->path, g, "/grads", "chunk_len", &len);
    H5Gclose(g);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return missing(tf->path, "/grads attribute chunk_len");
    if (len < 1 || len > 1 << 24)
        return cn_err("'%s': /grads attribute chunk_len is %lld", tf->path, (long long)len);
    r->chunk_len = (int)len;
    r->has_dc = strcmp(tf->cell, "lstm") == 0;
    for (int k = 0; k < tf->layers; k++) {
        char name[64];
        snprintf(name, sizeof name, "/grads/layer%d/dh", k);
        if (decay_read(tf->path, tf->fid, name, r->chunk_len, &r->n_chunks, &r->dh[k]) != 0)
            return -1;
        if (r->has_dc) {
            snprintf(name, sizeof name, "/grads/layer%d/dc", k);
            if (decay_read(tf->path, tf->fid, name, r->chunk_len, &r->n_chunks, &r->dc[k]) != 0)
                return -1;
        }
    }
    r->has_grads = 1;
    return 0;
}

/* ---- the run ---------------------------------------------------------------- */

static int check_unit(const analyze_options *o, const trace_file *tf)
{
    if (o->unit_layer < 0)
        return 0;
    if (o->unit_layer >= tf->layers || o->unit_index >= tf->hidden) {
        cn_err("--unit %d:%d is outside '%s', which has %d layer%s of %d units (0:0 to %d:%d)",
               o->unit_layer, o->unit_index, tf->path, tf->layers, tf->layers == 1 ? "" : "s",
               tf->hidden, tf->layers - 1, tf->hidden - 1);
        return ANALYZE_BAD_UNIT;
    }
    if (o->unit_state == 1 && strcmp(tf->cell, "lstm") != 0) {
        cn_err("--unit %d:%d:c: '%s' is a %s trace, which has no cell state", o->unit_layer,
               o->unit_index, tf->path, tf->cell);
        return ANALYZE_BAD_UNIT;
    }
    return 0;
}

/* The report's per-series and per-feature results from a pass. */
static void report_fill(analyze_report *r, const trace_file *tf, const pass_stats *p,
                        const analyze_options *o)
{
    int F = p->n_features, H = tf->hidden;
    r->n_features = F;
    for (int j = 0; j < F; j++) {
        analyze_feature_result *fr = &r->feature[j];
        snprintf(fr->name, sizeof fr->name, "%s", p->feature[j]);
        fr->regex = j >= ANALYZE_N_BUILTIN ? cn_xstrdup(o->user[j - ANALYZE_N_BUILTIN].regex)
                                           : NULL;
        fr->mean = analyze_stats_feature_mean(&p->st[0][0], j);
        fr->std = analyze_stats_feature_std(&p->st[0][0], j);
        fr->top = pick_top(tf, p, j, o->top_k, -1, -1, &fr->n_top);
        for (int k = 0; k < tf->layers; k++)
            for (int s = 0; s < (strcmp(tf->cell, "lstm") == 0 ? 2 : 1); s++)
                fr->top_by[k][s] = pick_top(tf, p, j, o->top_k, k, s, &fr->n_top_by[k][s]);
    }
    r->n_series = tf->n_series;
    for (int k = 0; k < tf->layers; k++) {
        for (int s = 0; s < tf->n_series; s++) {
            const analyze_stats *st = &p->st[k][s];
            analyze_series *se = &r->series[k][s];
            snprintf(se->name, sizeof se->name, "%s", tf->series[s]);
            se->is_gate = tf->is_gate[s];
            se->lo = tf->lo[s];
            se->hi = tf->hi[s];
            se->mean = cn_xmalloc((size_t)H * sizeof *se->mean);
            se->std = cn_xmalloc((size_t)H * sizeof *se->std);
            for (int u = 0; u < H; u++) {
                se->mean[u] = analyze_stats_mean(st, u);
                se->std[u] = analyze_stats_std(st, u);
            }
            if (se->is_gate) {
                se->left = cn_xmalloc((size_t)H * sizeof *se->left);
                se->right = cn_xmalloc((size_t)H * sizeof *se->right);
                for (int u = 0; u < H; u++) {
                    se->left[u] = analyze_stats_left(st, u);
                    se->right[u] = analyze_stats_right(st, u);
                }
            } else {
                se->r = cn_xmalloc((size_t)F * (size_t)H * sizeof *se->r);
                for (int j = 0; j < F; j++)
                    for (int u = 0; u < H; u++)
                        se->r[(size_t)j * (size_t)H + (size_t)u] = analyze_stats_r(st, j, u);
            }
        }
    }
}

/* The first n_excerpt symbols and the activations of the shown units. */
static int excerpt_read(analyze_report *r, trace_file *tf, int64_t e, int excerpt)
{
    int64_t n = tf->n < excerpt ? tf->n : excerpt;
    r->n_excerpt = n;
    r->bytes_mode = tf->bytes_mode;
    r->excerpt = cn_xmalloc((size_t)(n ? n : 1) * sizeof *r->excerpt);
    r->excerpt_unit = cn_xmalloc((size_t)(n ? n : 1) * sizeof *r->excerpt_unit);
    r->excerpt_top = cn_xmalloc((size_t)(n ? n : 1) * (size_t)r->n_features *
                                sizeof *r->excerpt_top);
    int32_t *ids = cn_xmalloc((size_t)(n ? n : 1) * sizeof *ids);
    int rc = -1;
    if (read_tokens(tf, 0, n, ids) != 0)
        goto error;
    for (int64_t t = 0; t < n; t++) {
        if (ids[t] < 0 || ids[t] >= tf->vocab_size) {
            cn_err("'%s': token %lld is id %d, outside the vocabulary of %d symbols", tf->path,
                   (long long)t, (int)ids[t], tf->vocab_size);
            goto error;
        }
        r->excerpt[t] = tf->symbols[ids[t]];
    }
    for (int64_t t = 0; t < n; t++)
        r->excerpt_unit[t] = NAN;
    if (r->has_unit &&
        read_rows(tf, r->unit.layer, r->unit.series, e, 0, n, r->unit.unit, r->excerpt_unit) != 0)
        goto error;
    for (int j = 0; j < r->n_features; j++) {
        float *row = r->excerpt_top + (size_t)j * (size_t)n;
        const analyze_feature_result *fr = &r->feature[j];
        if (fr->n_top == 0) {
            for (int64_t t = 0; t < n; t++)
                row[t] = NAN;
            continue;
        }
        if (read_rows(tf, fr->top[0].layer, fr->top[0].series, e, 0, n, fr->top[0].unit, row) !=
            0)
            goto error;
    }
    rc = 0;
error:
    free(ids);
    return rc;
}

/* The correlation over training of each feature's unit, in the probe trace pf. */
static int probe_run(analyze_report *r, trace_file *pf, const analyze_options *o,
                     const pass_stats *last)
{
    int F = last->n_features, S = (int)pf->entries;
    snprintf(r->probe, sizeof r->probe, "%s", pf->path);
    r->n_probe_steps = S;
    r->probe_steps = cn_xmalloc((size_t)S * sizeof *r->probe_steps);
    memcpy(r->probe_steps, pf->steps, (size_t)S * sizeof *r->probe_steps);
    r->probe_r = cn_xmalloc((size_t)F * (size_t)S * sizeof *r->probe_r);
    for (int j = 0; j < F; j++) {
        analyze_pick *pk = &r->probe_unit[j];
        if (o->unit_layer >= 0) {
            *pk = (analyze_pick){o->unit_layer, o->unit_state, o->unit_index, NAN};
        } else {
            int n;
            analyze_pick *top = pick_top(pf, last, j, 1, -1, -1, &n);
            *pk = n ? top[0] : (analyze_pick){-1, 0, 0, NAN};
            free(top);
        }
    }
    for (int e = 0; e < S; e++) {
        pass_stats p;
        const pass_stats *use = last;
        if (e != S - 1) {
            if (pass_run(pf, e, o, &p) != 0)
                return -1;
            use = &p;
        }
        for (int j = 0; j < F; j++) {
            const analyze_pick *pk = &r->probe_unit[j];
            r->probe_r[(size_t)j * (size_t)S + (size_t)e] =
                pk->layer < 0 ? NAN : analyze_stats_r(&use->st[pk->layer][pk->series], j, pk->unit);
        }
        if (e != S - 1)
            pass_free(&p, pf->layers, pf->n_series);
    }
    for (int j = 0; j < F; j++)
        r->probe_unit[j].r = r->probe_r[(size_t)j * (size_t)S + (size_t)(S - 1)];
    r->has_probe = 1;
    return 0;
}

static int run_inner(const analyze_options *o, analyze_report *r)
{
    trace_file tf, pf;
    pass_stats p;
    int have_p = 0, have_pf = 0, rc = -1;
    if (trace_open(&tf, o->trace) != 0)
        return -1;
    int is_probe = tf.entries > 0;
    if ((rc = check_unit(o, &tf)) != 0)
        goto error;
    rc = -1;
    if (is_probe && o->probe) {
        cn_err("'%s' is a probe trace already; give --probe with a text trace", o->trace);
        goto error;
    }
    snprintf(r->trace, sizeof r->trace, "%s", o->trace);
    snprintf(r->kind, sizeof r->kind, "%s", tf.kind);
    snprintf(r->cell, sizeof r->cell, "%s", tf.cell);
    snprintf(r->model, sizeof r->model, "%s", tf.model);
    snprintf(r->source, sizeof r->source, "%s", tf.source);
    snprintf(r->vocab_mode, sizeof r->vocab_mode, "%s", tf.vocab_mode);
    r->model_step = tf.model_step;
    r->layers = tf.layers;
    r->hidden = tf.hidden;
    r->vocab_size = tf.vocab_size;
    r->n_steps = tf.n;
    int64_t e = is_probe ? tf.entries - 1 : 0;
    r->probe_step = is_probe ? tf.steps[e] : -1;
    if (pass_run(&tf, e, o, &p) != 0)
        goto error;
    have_p = 1;
    report_fill(r, &tf, &p, o);
    if (o->unit_layer >= 0) {
        r->unit = (analyze_pick){o->unit_layer, o->unit_state, o->unit_index, NAN};
        r->has_unit = 1;
    } else {
        for (int j = 0; j < r->n_features && !r->has_unit; j++)
            if (r->feature[j].n_top) {
                r->unit = r->feature[j].top[0];
                r->has_unit = 1;
            }
    }
    if (excerpt_read(r, &tf, e, o->excerpt) != 0)
        goto error;
    if (!is_probe && grads_read(&tf, r) != 0)
        goto error;
    if (is_probe) {
        if (probe_run(r, &tf, o, &p) != 0)
            goto error;
    } else if (o->probe) {
        if (trace_open(&pf, o->probe) != 0)
            goto error;
        have_pf = 1;
        if (pf.entries == 0) {
            cn_err("--probe '%s' is a trace of kind '%s', not 'probe'", o->probe, pf.kind);
            goto error;
        }
        if ((rc = check_unit(o, &pf)) != 0)
            goto error;
        rc = -1;
        pass_stats last;
        if (pass_run(&pf, pf.entries - 1, o, &last) != 0)
            goto error;
        int prc = probe_run(r, &pf, o, &last);
        pass_free(&last, pf.layers, pf.n_series);
        if (prc != 0)
            goto error;
    }
    rc = 0;
error:
    if (have_p)
        pass_free(&p, tf.layers, tf.n_series);
    if (have_pf)
        trace_close(&pf);
    trace_close(&tf);
    return rc;
}

int analyze_run(const analyze_options *o, analyze_report *r)
{
    int rc;
    memset(r, 0, sizeof *r);
    H5E_BEGIN_TRY
    {
        rc = run_inner(o, r);
    }
    H5E_END_TRY;
    if (rc != 0)
        analyze_report_free(r);
    return rc;
}

void analyze_report_free(analyze_report *r)
{
    for (int j = 0; j < ANALYZE_MAX_FEATURES; j++) {
        free(r->feature[j].regex);
        free(r->feature[j].top);
        for (int k = 0; k < ANALYZE_MAX_LAYERS; k++)
            for (int s = 0; s < 2; s++)
                free(r->feature[j].top_by[k][s]);
    }
    for (int k = 0; k < ANALYZE_MAX_LAYERS; k++) {
        for (int s = 0; s < ANALYZE_MAX_SERIES; s++) {
            analyze_series *se = &r->series[k][s];
            free(se->mean);
            free(se->std);
            free(se->left);
            free(se->right);
            free(se->r);
        }
        free(r->dh[k].norm);
        free(r->dc[k].norm);
    }
    free(r->excerpt);
    free(r->excerpt_unit);
    free(r->excerpt_top);
    free(r->probe_steps);
    free(r->probe_r);
    memset(r, 0, sizeof *r);
}

/* ---- table ------------------------------------------------------------------- */

static const char *state_name(const analyze_report *r, int series)
{
    return r->series[0][series].name[0] ? r->series[0][series].name : series ? "c" : "h";
}

static void unit_label(char *buf, size_t n, const analyze_report *r, const analyze_pick *pk)
{
    snprintf(buf, n, "%d:%d:%s", pk->layer, pk->unit, state_name(r, pk->series));
}

static double mean_of(const double *x, int n)
{
    double s = 0;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i])) {
            s += x[i];
            m++;
        }
    return m ? s / m : NAN;
}

static void print_num(FILE *out, const char *fmt, double v, int width)
{
    if (isfinite(v))
        fprintf(out, fmt, v);
    else
        fprintf(out, "%*s", width, isinf(v) ? (v > 0 ? "inf" : "-inf") : "n/a");
}

void analyze_write_table(FILE *out, const analyze_report *r)
{
    int H = r->hidden, F = r->n_features;
    fprintf(out, "trace '%s': %s, %s %d x %d, %lld steps", r->trace, r->kind, r->cell, r->layers,
            H, (long long)r->n_steps);
    if (r->model[0])
        fprintf(out, ", model '%s' at step %lld", r->model, (long long)r->model_step);
    if (r->probe_step >= 0)
        fprintf(out, ", probe entry of training step %lld", (long long)r->probe_step);
    fprintf(out, "\n");

    fprintf(out, "\nper-unit statistics (averaged over units)\n");
    fprintf(out, "  %-5s %-6s %9s %9s %9s %9s\n", "layer", "series", "mean", "std", "min std",
            "max std");
    for (int k = 0; k < r->layers; k++)
        for (int s = 0; s < r->n_series; s++) {
            const analyze_series *se = &r->series[k][s];
            double lo = INFINITY, hi = -INFINITY;
            for (int u = 0; u < H; u++) {
                lo = se->std[u] < lo ? se->std[u] : lo;
                hi = se->std[u] > hi ? se->std[u] : hi;
            }
            fprintf(out, "  %-5d %-6s %9.4f %9.4f %9.4f %9.4f\n", k, se->name, mean_of(se->mean, H),
                    mean_of(se->std, H), lo, hi);
        }

    int any_gate = 0;
    for (int s = 0; s < r->n_series; s++)
        any_gate |= r->series[0][s].is_gate;
    if (any_gate) {
        fprintf(out, "\ngate saturation: fraction of steps left- / right-saturated (below 0.1 / "
                     "above 0.9 of the gate's range)\n");
        fprintf(out, "  %-5s %-4s %8s %8s %14s %15s\n", "layer", "gate", "left", "right",
                "units left>.5", "units right>.5");
        for (int k = 0; k < r->layers; k++)
            for (int s = 0; s < r->n_series; s++) {
                const analyze_series *se = &r->series[k][s];
                if (!se->is_gate)
                    continue;
                int nl = 0, nr = 0;
                for (int u = 0; u < H; u++) {
                    nl += se->left[u] > 0.5;
                    nr += se->right[u] > 0.5;
                }
                fprintf(out, "  %-5d %-4s %8.4f %8.4f %14d %15d\n", k, se->name,
                        mean_of(se->left, H), mean_of(se->right, H), nl, nr);
            }
    }

    fprintf(out, "\nfeature correlations: units (layer:unit:state) by |Pearson r|\n");
    for (int j = 0; j < F; j++) {
        const analyze_feature_result *fr = &r->feature[j];
        fprintf(out, "  %-14s mean ", fr->name);
        print_num(out, "%7.3f", fr->mean, 7);
        fprintf(out, " std ");
        print_num(out, "%7.3f", fr->std, 7);
        if (fr->n_top == 0)
            fprintf(out, "   (constant over the text: no correlation)");
        for (int i = 0; i < fr->n_top; i++) {
            char lab[48];
            unit_label(lab, sizeof lab, r, &fr->top[i]);
            fprintf(out, "  %s %+.3f", lab, fr->top[i].r);
        }
        fprintf(out, "\n");
        /* with more than one layer or state, each one's own best units too */
        int n_state = strcmp(r->cell, "lstm") == 0 ? 2 : 1;
        if (fr->n_top == 0 || r->layers * n_state == 1)
            continue;
        for (int k = 0; k < r->layers; k++)
            for (int s = 0; s < n_state; s++) {
                fprintf(out, "  %14s layer %d %s:", "", k, state_name(r, s));
                for (int i = 0; i < fr->n_top_by[k][s]; i++) {
                    char lab[48];
                    unit_label(lab, sizeof lab, r, &fr->top_by[k][s][i]);
                    fprintf(out, "  %s %+.3f", lab, fr->top_by[k][s][i].r);
                }
                fprintf(out, "\n");
            }
    }

    if (r->has_unit) {
        char lab[48];
        unit_label(lab, sizeof lab, r, &r->unit);
        const analyze_series *se = &r->series[r->unit.layer][r->unit.series];
        fprintf(out, "\nunit %s: mean %.4f std %.4f\n", lab, se->mean[r->unit.unit],
                se->std[r->unit.unit]);
        for (int j = 0; j < F; j++) {
            fprintf(out, "  r with %-14s ", r->feature[j].name);
            print_num(out, "%+.4f", se->r[(size_t)j * (size_t)H + (size_t)r->unit.unit], 7);
            fprintf(out, "\n");
        }
    }

    if (r->has_probe) {
        int S = r->n_probe_steps;
        fprintf(out, "\ncorrelation over training ('%s', %d entr%s)\n", r->probe, S,
                S == 1 ? "y" : "ies");
        fprintf(out, "  %-14s %-10s", "feature", "unit");
        for (int e = 0; e < S; e++)
            fprintf(out, " %8lld", (long long)r->probe_steps[e]);
        fprintf(out, "\n");
        for (int j = 0; j < F; j++) {
            char lab[48] = "-";
            if (r->probe_unit[j].layer >= 0)
                unit_label(lab, sizeof lab, r, &r->probe_unit[j]);
            fprintf(out, "  %-14s %-10s", r->feature[j].name, lab);
            for (int e = 0; e < S; e++) {
                fprintf(out, " ");
                print_num(out, "%+8.3f", r->probe_r[(size_t)j * (size_t)S + (size_t)e], 8);
            }
            fprintf(out, "\n");
        }
    }

    if (r->has_grads) {
        int L = r->chunk_len;
        fprintf(out, "\ngradient flow: mean over %lld chunks of |d loss(last step) / d state| "
                     "at distance d\n",
                (long long)r->n_chunks);
        fprintf(out, "  %-5s %-5s", "layer", "state");
        int ds[12], nd = 0;
        for (int d = 0; d < L && nd < 10; d = d ? d * 2 : 1)
            ds[nd++] = d;
        if (ds[nd - 1] != L - 1)
            ds[nd++] = L - 1;
        for (int i = 0; i < nd; i++) {
            char h[16];
            snprintf(h, sizeof h, "d=%d", ds[i]);
            fprintf(out, " %10s", h);
        }
        fprintf(out, " %10s %10s\n", "rate/step", "half-life");
        for (int k = 0; k < r->layers; k++)
            for (int c = 0; c < 1 + r->has_dc; c++) {
                const analyze_decay *dk = c ? &r->dc[k] : &r->dh[k];
                fprintf(out, "  %-5d %-5s", k, c ? "c" : "h");
                for (int i = 0; i < nd; i++) {
                    fprintf(out, " ");
                    print_num(out, "%10.3e", dk->norm[ds[i]], 10);
                }
                fprintf(out, " ");
                print_num(out, "%10.4f", dk->rate, 10);
                fprintf(out, " ");
                print_num(out, "%10.2f", dk->half_life, 10);
                fprintf(out, "\n");
            }
    }
}

/* ---- JSON --------------------------------------------------------------------- */

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void json_num(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%.6g", v);
    else
        fputs("null", out);
}

static void json_array(FILE *out, const double *x, int n)
{
    fputc('[', out);
    for (int i = 0; i < n; i++) {
        if (i)
            fputc(',', out);
        json_num(out, x[i]);
    }
    fputc(']', out);
}

static void json_pick(FILE *out, const analyze_report *r, const analyze_pick *pk)
{
    fprintf(out, "{\"layer\":%d,\"state\":", pk->layer);
    json_str(out, state_name(r, pk->series));
    fprintf(out, ",\"unit\":%d,\"r\":", pk->unit);
    json_num(out, pk->r);
    fputc('}', out);
}

static void json_decay(FILE *out, const analyze_decay *d, int L)
{
    fputs("{\"norm\":", out);
    json_array(out, d->norm, L);
    fprintf(out, ",\"fit_points\":%d,\"rate\":", d->n_fit);
    json_num(out, d->rate);
    fputs(",\"half_life\":", out);
    json_num(out, d->half_life);
    fputc('}', out);
}

void analyze_write_json(FILE *out, const analyze_report *r)
{
    int H = r->hidden, F = r->n_features;
    fputs("{\"trace\":", out);
    json_str(out, r->trace);
    fputs(",\"kind\":", out);
    json_str(out, r->kind);
    fputs(",\"cell\":", out);
    json_str(out, r->cell);
    fprintf(out, ",\"layers\":%d,\"hidden\":%d,\"vocab_size\":%d,\"vocab_mode\":", r->layers, H,
            r->vocab_size);
    json_str(out, r->vocab_mode);
    fputs(",\"model\":", out);
    json_str(out, r->model);
    fprintf(out, ",\"model_step\":%lld,\"source\":", (long long)r->model_step);
    json_str(out, r->source);
    fprintf(out, ",\"n_steps\":%lld", (long long)r->n_steps);
    if (r->probe_step >= 0)
        fprintf(out, ",\"probe_step\":%lld", (long long)r->probe_step);

    fputs(",\"features\":[", out);
    for (int j = 0; j < F; j++) {
        fputs(j ? ",{\"name\":" : "{\"name\":", out);
        json_str(out, r->feature[j].name);
        fputs(",\"regex\":", out);
        if (r->feature[j].regex)
            json_str(out, r->feature[j].regex);
        else
            fputs("null", out);
        fputs(",\"mean\":", out);
        json_num(out, r->feature[j].mean);
        fputs(",\"std\":", out);
        json_num(out, r->feature[j].std);
        fputc('}', out);
    }
    fputs("],\"correlations\":[", out);
    for (int j = 0; j < F; j++) {
        fputs(j ? ",{\"feature\":" : "{\"feature\":", out);
        json_str(out, r->feature[j].name);
        fputs(",\"top\":[", out);
        for (int i = 0; i < r->feature[j].n_top; i++) {
            if (i)
                fputc(',', out);
            json_pick(out, r, &r->feature[j].top[i]);
        }
        fputs("],\"by_layer\":[", out);
        int n_state = strcmp(r->cell, "lstm") == 0 ? 2 : 1;
        for (int k = 0; k < r->layers; k++)
            for (int s = 0; s < n_state; s++) {
                fprintf(out, "%s{\"layer\":%d,\"state\":", k || s ? "," : "", k);
                json_str(out, state_name(r, s));
                fputs(",\"top\":[", out);
                for (int i = 0; i < r->feature[j].n_top_by[k][s]; i++) {
                    if (i)
                        fputc(',', out);
                    json_pick(out, r, &r->feature[j].top_by[k][s][i]);
                }
                fputs("]}", out);
            }
        fputs("]}", out);
    }
    fputs("],\"unit\":", out);
    if (r->has_unit) {
        const analyze_series *se = &r->series[r->unit.layer][r->unit.series];
        fprintf(out, "{\"layer\":%d,\"state\":", r->unit.layer);
        json_str(out, se->name);
        fprintf(out, ",\"unit\":%d,\"mean\":", r->unit.unit);
        json_num(out, se->mean[r->unit.unit]);
        fputs(",\"std\":", out);
        json_num(out, se->std[r->unit.unit]);
        fputs(",\"r\":{", out);
        for (int j = 0; j < F; j++) {
            if (j)
                fputc(',', out);
            json_str(out, r->feature[j].name);
            fputc(':', out);
            json_num(out, se->r[(size_t)j * (size_t)H + (size_t)r->unit.unit]);
        }
        fputs("}}", out);
    } else {
        fputs("null", out);
    }

    fputs(",\"saturation\":[", out);
    int first = 1;
    for (int k = 0; k < r->layers; k++)
        for (int s = 0; s < r->n_series; s++) {
            const analyze_series *se = &r->series[k][s];
            if (!se->is_gate)
                continue;
            fprintf(out, "%s{\"layer\":%d,\"gate\":", first ? "" : ",", k);
            first = 0;
            json_str(out, se->name);
            fputs(",\"lo\":", out);
            json_num(out, se->lo);
            fputs(",\"hi\":", out);
            json_num(out, se->hi);
            fputs(",\"left_mean\":", out);
            json_num(out, mean_of(se->left, H));
            fputs(",\"right_mean\":", out);
            json_num(out, mean_of(se->right, H));
            fputs(",\"left\":", out);
            json_array(out, se->left, H);
            fputs(",\"right\":", out);
            json_array(out, se->right, H);
            fputc('}', out);
        }

    fputs("],\"unit_stats\":[", out);
    first = 1;
    for (int k = 0; k < r->layers; k++)
        for (int s = 0; s < r->n_series; s++) {
            const analyze_series *se = &r->series[k][s];
            fprintf(out, "%s{\"layer\":%d,\"series\":", first ? "" : ",", k);
            first = 0;
            json_str(out, se->name);
            fputs(",\"mean\":", out);
            json_array(out, se->mean, H);
            fputs(",\"std\":", out);
            json_array(out, se->std, H);
            if (se->r) {
                fputs(",\"r\":{", out);
                for (int j = 0; j < F; j++) {
                    if (j)
                        fputc(',', out);
                    json_str(out, r->feature[j].name);
                    fputc(':', out);
                    json_array(out, se->r + (size_t)j * (size_t)H, H);
                }
                fputc('}', out);
            }
            fputc('}', out);
        }
    fputc(']', out);

    fputs(",\"gradient_flow\":", out);
    if (r->has_grads) {
        fprintf(out, "{\"chunk_len\":%d,\"chunks\":%lld,\"layers\":[", r->chunk_len,
                (long long)r->n_chunks);
        for (int k = 0; k < r->layers; k++) {
            fprintf(out, "%s{\"layer\":%d,\"dh\":", k ? "," : "", k);
            json_decay(out, &r->dh[k], r->chunk_len);
            if (r->has_dc) {
                fputs(",\"dc\":", out);
                json_decay(out, &r->dc[k], r->chunk_len);
            }
            fputc('}', out);
        }
        fputs("]}", out);
    } else {
        fputs("null", out);
    }

    fputs(",\"probe\":", out);
    if (r->has_probe) {
        int S = r->n_probe_steps;
        fputs("{\"trace\":", out);
        json_str(out, r->probe);
        fputs(",\"steps\":[", out);
        for (int e = 0; e < S; e++)
            fprintf(out, "%s%lld", e ? "," : "", (long long)r->probe_steps[e]);
        fputs("],\"series\":[", out);
        for (int j = 0; j < F; j++) {
            const analyze_pick *pk = &r->probe_unit[j];
            fputs(j ? ",{\"feature\":" : "{\"feature\":", out);
            json_str(out, r->feature[j].name);
            if (pk->layer >= 0) {
                fprintf(out, ",\"layer\":%d,\"state\":", pk->layer);
                json_str(out, state_name(r, pk->series));
                fprintf(out, ",\"unit\":%d", pk->unit);
            }
            fputs(",\"r\":", out);
            json_array(out, r->probe_r + (size_t)j * (size_t)S, S);
            fputc('}', out);
        }
        fputs("]}", out);
    } else {
        fputs("null", out);
    }
    fputs("}\n", out);
}

/* ---- the CLI ---------------------------------------------------------------- */

/* "L:U" or "L:U:h" / "L:U:c". 0 or -1. */
static int parse_unit(const char *s, int *layer, int *unit, int *state)
{
    char *end;
    errno = 0;
    long l = strtol(s, &end, 10);
    if (errno || end == s || *end != ':' || l < 0 || l > 1000000)
        return -1;
    const char *u0 = end + 1;
    long u = strtol(u0, &end, 10);
    if (errno || end == u0 || u < 0 || u > 100000000)
        return -1;
    *state = 0;
    if (*end == ':') {
        if (strcmp(end + 1, "h") == 0)
            *state = 0;
        else if (strcmp(end + 1, "c") == 0)
            *state = 1;
        else
            return -1;
    } else if (*end) {
        return -1;
    }
    *layer = (int)l;
    *unit = (int)u;
    return 0;
}

int analyze_main(int argc, char **argv)
{
    analyze_options o = {.top_k = 5, .unit_layer = -1, .excerpt = 3000};
    char probe[CONFIG_PATH_MAX] = "", html[CONFIG_PATH_MAX] = "";
    const char *unit = NULL, *feature_help = NULL;
    int json = 0;
    unsigned given = 0;
    const flag_spec flags[] = {
        {"json", F_BOOL, &json, 0, "print one JSON object instead of the table", 0, 0},
        {"html", F_PATH, html, 0, "also write a self-contained page (text coloured by a unit, "
                                  "saturation and gradient plots)", 0, 0},
        {"unit", F_STR, &unit, 0, "L:U[:h|c] the unit to show and follow over training "
                                  "(default: the first feature's top unit on the page, each "
                                  "feature's best unit over training)", 0, 0},
        {"top", F_INT, &o.top_k, 0, "units listed per feature (default 5)", 1, 100000},
        {"feature", F_STR, &feature_help, 0, "NAME=REGEX a feature that is 1 inside matches "
                                             "(POSIX extended; repeatable)", 0, 0},
        {"probe", F_PATH, probe, 0, "probe trace of training (train --trace-every) for the "
                                    "correlation over training", 0, 0},
        {"excerpt", F_INT, &o.excerpt, 0, "characters of text on the page (default 3000)", 1,
         1000000},
    };
    flag_table t = {"analyze", "TRACE [--json] [--html OUT.html] [--unit L:U] [--top K] "
                               "[--feature NAME=REGEX ...] [--probe PROBE.h5]",
                    flags, (int)(sizeof flags / sizeof flags[0])};
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        flags_print_usage(stdout, &t);
        return 0;
    }
    if (argc < 1 || strncmp(argv[0], "--", 2) == 0)
        return flags_usage_error(&t, "give the trace to analyze%s%s", "", "");
    /* --feature repeats, which the flag table cannot hold: take them out first */
    analyze_feature_spec specs[ANALYZE_MAX_USER_FEATURES];
    char **rest = cn_xmalloc((size_t)argc * sizeof *rest);
    int n_rest = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        if (strcmp(argv[i], "--feature") == 0) {
            if (i + 1 >= argc) {
                rc = flags_usage_error(&t, "flag '--feature' needs a value%s%s", "", "");
                goto done;
            }
            value = argv[++i];
        } else if (strncmp(argv[i], "--feature=", 10) == 0) {
            value = argv[i] + 10;
        } else {
            rest[n_rest++] = argv[i];
            continue;
        }
        if (o.n_user == ANALYZE_MAX_USER_FEATURES) {
            char most[16];
            snprintf(most, sizeof most, "%d", ANALYZE_MAX_USER_FEATURES);
            rc = flags_usage_error(&t, "too many --feature flags (at most %s)%s", most, "");
            goto done;
        }
        if (analyze_feature_parse(value, &specs[o.n_user]) != 0) {
            rc = flags_usage_error(&t, "%s%s", cn_errmsg(), "");
            goto done;
        }
        for (int k = 0; k < o.n_user; k++)
            if (strcmp(specs[k].name, specs[o.n_user].name) == 0) {
                rc = flags_usage_error(&t, "--feature '%s' is given twice%s", specs[k].name, "");
                goto done;
            }
        o.n_user++;
    }
    if (flags_parse_or_exit(&t, n_rest, rest, &given, &rc))
        goto done;
    if (unit && parse_unit(unit, &o.unit_layer, &o.unit_index, &o.unit_state) != 0) {
        rc = flags_usage_error(&t, "--unit '%s' is not LAYER:UNIT (e.g. 0:17, or 0:17:c for the "
                                   "LSTM cell state)%s",
                               unit, "");
        goto done;
    }
    /* regexes see UTF-8 text: '.' and bracket expressions take whole characters */
    char *saved = setlocale(LC_CTYPE, NULL);
    saved = saved ? cn_xstrdup(saved) : NULL;
    if (!setlocale(LC_CTYPE, "C.UTF-8"))
        setlocale(LC_CTYPE, "C.utf8");
    for (int j = 0; j < o.n_user && rc == 0; j++)
        if (analyze_feature_check(&specs[j]) != 0) {
            fprintf(stderr, "charnn analyze: %s\n", cn_errmsg());
            rc = FLAGS_EXIT_USAGE;
        }
    o.trace = argv[0];
    o.user = specs;
    o.probe = probe[0] ? probe : NULL;
    analyze_report r;
    if (rc == 0) {
        int arc = analyze_run(&o, &r);
        if (arc != 0) {
            fprintf(stderr, "charnn analyze: %s\n", cn_errmsg());
            rc = arc == ANALYZE_BAD_UNIT ? FLAGS_EXIT_USAGE : 1;
        }
    }
    if (saved) {
        setlocale(LC_CTYPE, saved);
        free(saved);
    }
    if (rc != 0)
        goto done;
    if (json)
        analyze_write_json(stdout, &r);
    else
        analyze_write_table(stdout, &r);
    if (html[0]) {
        if (analyze_write_html(html, &r) != 0) {
            fprintf(stderr, "charnn analyze: %s\n", cn_errmsg());
            rc = 1;
        } else if (!json) {
            printf("\nwrote '%s'\n", html);
        }
    }
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "charnn analyze: cannot write the report: %s\n", strerror(errno));
        rc = 1;
    }
    analyze_report_free(&r);
done:
    free(rest);
    return rc;
}
