/* See trace_rows.h. */
#include "trace_rows.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/h5io.h"

const char *const trace_dir_suffix[2] = {"", "_reverse"};

int trace_rows_create(const char *path, hid_t fid, const char *name, hid_t type, int cols)
{
    hsize_t dims[2] = {0, (hsize_t)cols}, chunk[2];
    chunk[1] = (hsize_t)(cols > 0 ? cols : 1);
    chunk[0] = (hsize_t)(65536 / chunk[1] > 0 ? 65536 / chunk[1] : 1);
    hid_t d = h5io_dataset_create(path, fid, name, type, cols > 0 ? 2 : 1, dims, chunk,
                                  H5IO_GROWABLE | H5IO_COMPRESS | H5IO_NO_FILL);
    if (d < 0)
        return -1;
    H5Dclose(d);
    return 0;
}

int trace_rows_append(const char *path, hid_t fid, const char *name, hid_t mem_type, int cols,
                      int64_t at, int n, const void *buf)
{
    hid_t d = h5io_dataset_open(path, fid, name, H5P_DEFAULT, cols > 0 ? 2 : 1, NULL, NULL);
    if (d < 0)
        return -1;
    hsize_t start[2] = {(hsize_t)at, 0}, count[2] = {(hsize_t)n, (hsize_t)cols};
    int rc = h5io_dataset_set_rows(path, name, d, (hsize_t)(at + n));
    if (rc == 0)
        rc = h5io_dataset_write_box(path, name, d, mem_type, cols > 0 ? 2 : 1, start, count,
                                    H5I_INVALID_HID, H5P_DEFAULT, buf);
    H5Dclose(d);
    return rc;
}

void trace_state_name(char *out, size_t n, int l, int d, char state)
{
    snprintf(out, n, "/layer%d/%c%s", l, state, trace_dir_suffix[d]);
}

void trace_corr_init(trace_corr *a, int L, int D, int H, int K)
{
    a->L = L;
    a->D = D;
    a->H = H;
    a->K = K;
    a->sx = cn_xcalloc((size_t)L * D * H, sizeof *a->sx);
    a->sxx = cn_xcalloc((size_t)L * D * H, sizeof *a->sxx);
    a->sxy = cn_xcalloc((size_t)L * D * K * H, sizeof *a->sxy);
    a->nk = cn_xcalloc((size_t)K, sizeof *a->nk);
    a->n = 0;
}

void trace_corr_free(trace_corr *a)
{
    free(a->sx);
    free(a->sxx);
    free(a->sxy);
    free(a->nk);
    memset(a, 0, sizeof *a);
}

void trace_corr_add_units(trace_corr *a, int l, int d, const float *h, int y)
{
    const int H = a->H;
    const size_t ld = (size_t)l * a->D + d;
    double *sx = a->sx + ld * H, *sxx = a->sxx + ld * H, *sxy = a->sxy + (ld * a->K + y) * H;
    for (int j = 0; j < H; j++) {
        sx[j] += h[j];
        sxx[j] += (double)h[j] * h[j];
        sxy[j] += h[j];
    }
}

void trace_corr_count(trace_corr *a, int y)
{
    a->nk[y]++;
    a->n++;
}

static float corr_value(const trace_corr *a, int l, int d, int k, int j)
{
    const size_t ld = (size_t)l * a->D + d;
    const double n = (double)a->n, mx = a->sx[ld * a->H + j] / n,
                 vx = a->sxx[ld * a->H + j] / n - mx * mx, my = (double)a->nk[k] / n,
                 vy = my * (1.0 - my), cov = a->sxy[(ld * a->K + k) * a->H + j] / n - mx * my;
    return n > 0 && vx > 1e-12 && vy > 0.0 ? (float)(cov / sqrt(vx * vy)) : 0.0f;
}

int trace_corr_write(const trace_corr *a, const char *path, hid_t fid, const char *base,
                     trace_corr_best *best)
{
    const int H = a->H, K = a->K;
    float *r = cn_xmalloc((size_t)K * H * sizeof *r);
    int rc = 0;
    memset(best, 0, sizeof *best);
    for (int l = 0; l < a->L && rc == 0; l++)
        for (int d = 0; d < a->D && rc == 0; d++) {
            for (int k = 0; k < K; k++)
                for (int j = 0; j < H; j++) {
                    const float v = r[(size_t)k * H + j] = corr_value(a, l, d, k, j);
                    if (fabsf(v) > fabsf(best->r))
                        *best = (trace_corr_best){v, l, d, j, k};
                }
            char name[64];
            snprintf(name, sizeof name, "/layer%d/%s%s", l, base, trace_dir_suffix[d]);
            hsize_t dims[2] = {(hsize_t)K, (hsize_t)H};
            rc = h5io_dataset_write(path, fid, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, r);
        }
    free(r);
    return rc;
}

int trace_run_open(const trace_options *o, const char *task, const char *what, ckpt_data *d,
                   vocab *voc, const char **source)
{
    if (ckpt_read(o->model, d) != 0)
        return -1;
    if (strcmp(d->task.task, task) != 0) {
        ckpt_data_free(d);
        return 1;
    }
    memset(voc, 0, sizeof *voc);
    *source = o->data[0] ? o->data : d->cfg.data;
    if (o->grads || o->lstmvis)
        cn_err("--grads and --lstmvis trace language models; '%s' is %s", o->model, what);
    else if (!(*source)[0])
        cn_err("checkpoint '%s' names no training data: give --data", o->model);
    else if (vocab_from_symbols(voc, d->voc.mode, d->voc.symbols, d->voc.size) == 0)
        return 0;
    vocab_free(voc);
    ckpt_data_free(d);
    return -1;
}

int trace_labels_match(const examples_file *ex, const ckpt_data *d)
{
    int same = ex->n_classes == d->task.n_labels;
    for (int c = 0; same && c < ex->n_classes; c++)
        same = strcmp(ex->class_names[c], d->task.labels[c]) == 0;
    return same;
}
