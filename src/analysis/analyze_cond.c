/* `charnn analyze` on the traces of trace_cond.c: a conditional generator's
 * (kind "generate": its loss per character, per class, and the units whose
 * state follows the condition) and a vector classifier's (kind "features":
 * accuracy, loss, the units that follow each class). The unit lists are the
 * classifier's (analyze_units_write). See analyze.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/analyze.h"
#include "charnn/common.h"
#include "charnn/h5io.h"

static int read_i64(const char *path, hid_t fid, const char *name, int64_t *out)
{
    int rc = h5io_attr_read_num(path, fid, "", name, H5T_NATIVE_INT64, 1, out);
    if (rc == 0)
        return cn_err("'%s' is damaged: missing attribute %s", path, name);
    return rc < 0 ? -1 : 0;
}

/* A 1-d dataset of n values. */
static int read_vec(const char *path, hid_t fid, const char *name, hid_t type, H5T_class_t cls,
                    int64_t n, void *out)
{
    hsize_t d[1] = {(hsize_t)n};
    return h5io_dataset_read(path, fid, name, type, cls, 1, d, out);
}

typedef struct {
    char kind[32], cell[16], model[1024], cond[16], cond_mode[16];
    int64_t L, H, C, E, N, step, D;
    char **names; /* (C) */
    size_t n_names;
    float *corr;  /* (S, K, H) */
    int S, K;     /* layers of states, correlation targets */
    char **dims;  /* generate on vectors: "dim 0", ... (K) */
} cond_trace;

static void cond_trace_free(cond_trace *c)
{
    if (c->names)
        h5io_strings_free(c->names, c->n_names);
    for (int k = 0; c->dims && k < c->K; k++)
        free(c->dims[k]);
    free(c->dims);
    free(c->corr);
}

static int read_corr(const char *path, hid_t fid, cond_trace *c, const char *name)
{
    c->corr = cn_xmalloc((size_t)c->S * c->K * c->H * sizeof *c->corr);
    hsize_t d[2] = {(hsize_t)c->K, (hsize_t)c->H};
    for (int l = 0; l < c->S; l++) {
        char ds[64];
        snprintf(ds, sizeof ds, "/layer%d/%s", l, name);
        if (h5io_dataset_read(path, fid, ds, H5T_NATIVE_FLOAT, H5T_FLOAT, 2, d,
                              c->corr + (size_t)l * c->K * c->H) < 0)
            return -1;
    }
    return 0;
}

static void header_json(FILE *out, const char *path, const cond_trace *c)
{
    fprintf(out, "{\"trace\":");
    cn_json_string(out, path);
    fprintf(out, ",\"kind\":\"%s\",\"model\":", c->kind);
    cn_json_string(out, c->model);
    fprintf(out, ",\"model_step\":%lld,\"cell\":\"%s\",\"layers\":%lld,\"hidden\":%lld,"
                 "\"examples\":%lld,\"steps\":%lld,\"classes\":%lld",
            (long long)c->step, c->cell, (long long)c->L, (long long)c->H, (long long)c->E,
            (long long)c->N, (long long)c->C);
}

static const char *shape(const cond_trace *c, char *buf, size_t n)
{
    if (c->L == 0)
        snprintf(buf, n, "MLP, %lld hidden", (long long)c->H);
    else
        snprintf(buf, n, "%s, %lld x %lld", c->cell, (long long)c->L, (long long)c->H);
    return buf;
}

static int run_generate(const char *path, hid_t fid, cond_trace *c, int top_k, int json,
                        FILE *out)
{
    int64_t *off = cn_xmalloc((size_t)(c->E + 1) * sizeof *off);
    int32_t *lab = cn_xmalloc((size_t)c->E * sizeof *lab);
    float *loss = cn_xmalloc((size_t)c->N * sizeof *loss);
    double *cls_loss = cn_xcalloc((size_t)c->C, sizeof(double));
    int64_t *cls_n = cn_xcalloc((size_t)c->C, sizeof(int64_t));
    int rc = -1;
    const int vector = strcmp(c->cond, "vector") == 0;
    if (read_vec(path, fid, "/offsets", H5T_NATIVE_INT64, H5T_INTEGER, c->E + 1, off) < 0 ||
        read_vec(path, fid, "/labels", H5T_NATIVE_INT32, H5T_INTEGER, c->E, lab) < 0 ||
        read_vec(path, fid, "/loss", H5T_NATIVE_FLOAT, H5T_FLOAT, c->N, loss) < 0 ||
        read_corr(path, fid, c, vector ? "cond_corr" : "label_corr") < 0)
        goto done;
    if (off[0] != 0 || off[c->E] != c->N) {
        cn_err("'%s' is damaged: its offsets do not match its attributes", path);
        goto done;
    }
    double total = 0.0;
    for (int64_t e = 0; e < c->E; e++) {
        if (off[e + 1] <= off[e] || off[e + 1] > c->N || lab[e] < 0 || lab[e] >= c->C) {
            cn_err("'%s' is damaged: example %lld has bad offsets or label", path, (long long)e);
            goto done;
        }
        for (int64_t i = off[e]; i < off[e + 1]; i++) {
            total += loss[i];
            cls_loss[lab[e]] += loss[i];
        }
        cls_n[lab[e]] += off[e + 1] - off[e];
    }
    const char *const *targets = (const char *const *)(vector ? c->dims : c->names);
    if (json) {
        header_json(out, path, c);
        fprintf(out, ",\"cond\":\"%s\",\"cond_mode\":\"%s\",\"cond_dim\":%lld,\"loss\":%.9g,"
                     "\"class_loss\":{",
                c->cond, c->cond_mode, (long long)c->D, total / (double)c->N);
        for (int k = 0, first = 1; k < c->C; k++) {
            if (cls_n[k] == 0)
                continue;
            fprintf(out, "%s", first ? "" : ",");
            first = 0;
            cn_json_string(out, c->names[k]);
            fprintf(out, ":{\"loss\":%.9g,\"chars\":%lld}", cls_loss[k] / (double)cls_n[k],
                    (long long)cls_n[k]);
        }
        fprintf(out, "},\"units\":");
    } else {
        char sh[64];
        char cond[64];
        if (vector)
            snprintf(cond, sizeof cond, "vectors of width %lld", (long long)c->D);
        else
            snprintf(cond, sizeof cond, "%lld classes", (long long)c->C);
        fprintf(out, "trace '%s' (generate; %s, model '%s' at step %lld; condition: %s, mode "
                     "%s): %lld examples, %lld characters\n",
                path, shape(c, sh, sizeof sh), c->model, (long long)c->step, cond, c->cond_mode,
                (long long)c->E, (long long)c->N);
        fprintf(out, "loss %.4f nats per character (%.4f bits); per class:", total / (double)c->N,
                total / (double)c->N / log(2.0));
        for (int k = 0; k < c->C; k++)
            if (cls_n[k] > 0)
                fprintf(out, " %s %.4f (%lld chars)", c->names[k], cls_loss[k] / (double)cls_n[k],
                        (long long)cls_n[k]);
        fprintf(out, "\n");
        if (vector)
            fprintf(out, "units whose state follows a condition dimension (Pearson r over the "
                         "characters):\n");
        else
            fprintf(out, "units whose state follows the condition class (Pearson r over the "
                         "characters)%s:\n",
                    c->K == 2 ? "; with two classes the other class's r is the negative" : "");
    }
    analyze_units_write(out, json, targets, c->K, vector ? -1 : 1, c->corr, c->S, 1, (int)c->H,
                        top_k);
    if (json)
        fprintf(out, "}\n");
    rc = 0;
done:
    free(off);
    free(lab);
    free(loss);
    free(cls_loss);
    free(cls_n);
    return rc;
}

static int run_features(const char *path, hid_t fid, cond_trace *c, int top_k, int json,
                        FILE *out)
{
    int32_t *lab = cn_xmalloc((size_t)c->E * sizeof *lab);
    int32_t *pred = cn_xmalloc((size_t)c->E * sizeof *pred);
    float *loss = cn_xmalloc((size_t)c->E * sizeof *loss);
    int rc = -1;
    if (read_vec(path, fid, "/labels", H5T_NATIVE_INT32, H5T_INTEGER, c->E, lab) < 0 ||
        read_vec(path, fid, "/pred", H5T_NATIVE_INT32, H5T_INTEGER, c->E, pred) < 0 ||
        read_vec(path, fid, "/loss", H5T_NATIVE_FLOAT, H5T_FLOAT, c->E, loss) < 0 ||
        read_corr(path, fid, c, "label_corr") < 0)
        goto done;
    double total = 0.0;
    int64_t right = 0;
    for (int64_t e = 0; e < c->E; e++) {
        total += loss[e];
        right += pred[e] == lab[e];
    }
    if (json) {
        header_json(out, path, c);
        fprintf(out, ",\"features\":%lld,\"loss\":%.9g,\"accuracy\":%.6f,\"units\":",
                (long long)c->D, total / (double)c->E, (double)right / (double)c->E);
    } else {
        char sh[64];
        fprintf(out, "trace '%s' (features; %s, model '%s' at step %lld): %lld examples of %lld "
                     "features, %lld classes\n",
                path, shape(c, sh, sizeof sh), c->model, (long long)c->step, (long long)c->E,
                (long long)c->D, (long long)c->C);
        fprintf(out, "accuracy %.4f, loss %.4f nats per example\n", (double)right / (double)c->E,
                total / (double)c->E);
        fprintf(out, "units whose state follows a class (Pearson r over the examples)%s:\n",
                c->K == 2 ? "; with two classes the other class's r is the negative" : "");
    }
    analyze_units_write(out, json, (const char *const *)c->names, c->K, 1, c->corr, c->S, 1,
                        (int)c->H, top_k);
    if (json)
        fprintf(out, "}\n");
    rc = 0;
done:
    free(lab);
    free(pred);
    free(loss);
    return rc;
}

int analyze_cond_run(const char *path, int top_k, int json, FILE *out)
{
    h5io_silence();
    if (!h5io_is_hdf5(path))
        return 1;
    hid_t fid = h5io_file_open(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fid < 0)
        return 1;
    cond_trace c;
    memset(&c, 0, sizeof c);
    int rc = h5io_attr_read_str(path, fid, "", "kind", c.kind, sizeof c.kind);
    const int gen = rc > 0 && strcmp(c.kind, "generate") == 0;
    if (rc <= 0 || (!gen && strcmp(c.kind, "features") != 0)) {
        H5Fclose(fid);
        return 1;
    }
    rc = -1;
    if (read_i64(path, fid, "layers", &c.L) < 0 || read_i64(path, fid, "hidden", &c.H) < 0 ||
        read_i64(path, fid, "n_classes", &c.C) < 0 || read_i64(path, fid, "n_examples", &c.E) < 0 ||
        read_i64(path, fid, "n_steps", &c.N) < 0 || read_i64(path, fid, "model_step", &c.step) < 0 ||
        read_i64(path, fid, gen ? "cond_dim" : "n_features", &c.D) < 0 ||
        h5io_attr_read_str(path, fid, "", "cell", c.cell, sizeof c.cell) < 0 ||
        h5io_attr_read_str(path, fid, "", "model", c.model, sizeof c.model) < 0 ||
        (gen && (h5io_attr_read_str(path, fid, "", "cond", c.cond, sizeof c.cond) < 0 ||
                 h5io_attr_read_str(path, fid, "", "cond_mode", c.cond_mode,
                                    sizeof c.cond_mode) < 0)))
        goto done;
    if (c.L < (gen ? 1 : 0) || c.L > 64 || c.H < 1 || c.C < 1 || c.E < 1 || c.N < c.E ||
        c.D < 1 || c.D > 65536) {
        cn_err("'%s' is damaged: a %s trace of %lld layers, %lld units, %lld classes, %lld "
               "examples and %lld steps",
               path, c.kind, (long long)c.L, (long long)c.H, (long long)c.C, (long long)c.E,
               (long long)c.N);
        goto done;
    }
    if (h5io_dataset_read_strings(path, fid, "/label_names", &c.names, &c.n_names) < 0)
        goto done;
    if ((int64_t)c.n_names != c.C) {
        cn_err("'%s' is damaged: %zu label names for %lld classes", path, c.n_names,
               (long long)c.C);
        goto done;
    }
    c.S = c.L > 0 ? (int)c.L : 1;
    c.K = (int)c.C;
    if (gen && strcmp(c.cond, "vector") == 0) {
        c.K = (int)c.D;
        c.dims = cn_xcalloc((size_t)c.K, sizeof *c.dims);
        for (int k = 0; k < c.K; k++) {
            char buf[32];
            snprintf(buf, sizeof buf, "dim %d", k);
            c.dims[k] = cn_xstrdup(buf);
        }
    }
    rc = gen ? run_generate(path, fid, &c, top_k, json, out)
             : run_features(path, fid, &c, top_k, json, out);
done:
    H5Fclose(fid);
    cond_trace_free(&c);
    return rc;
}
