/* trace_rows: what the per-character traces of the example tasks share
 * (trace_classify.c, trace_tag.c): the start of their `charnn trace`,
 * growable datasets of rows appended block by block, the names of a layer's state datasets per direction, and the
 * Pearson correlation of each unit with each class per (layer, direction).
 * Private to src/analysis/. Layouts in docs/trace-format.md. */
#ifndef CHARNN_TRACE_ROWS_H
#define CHARNN_TRACE_ROWS_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "charnn/ckpt.h"
#include "charnn/examples.h"
#include "charnn/trace.h"
#include "charnn/vocab.h"

/* The start of `charnn trace` on a checkpoint of task task (what names such a
 * model in messages: "a classifier"): 1 when o->model holds another task
 * (nothing said, nothing held); else 0 with d and voc holding the checkpoint
 * and its vocabulary and *source the data to trace (--data, else the
 * checkpoint's), or -1 with a message and nothing held. --grads and --lstmvis
 * are refused: they trace language models. */
int trace_run_open(const trace_options *o, const char *task, const char *what, ckpt_data *d,
                   vocab *voc, const char **source);
/* Whether ex's class names are the checkpoint's labels, in the same order. */
int trace_labels_match(const examples_file *ex, const ckpt_data *d);

/* Suffix of direction d's datasets: "" forward, "_reverse" reverse. */
extern const char *const trace_dir_suffix[2];

/* A growable, chunked, compressed dataset of rows of cols values (0: a
 * vector) in fid; 0 or -1 with a message naming path. */
int trace_rows_create(const char *path, hid_t fid, const char *name, hid_t type, int cols);
/* Write n rows of buf as rows [at, at + n) of dataset name, growing it. */
int trace_rows_append(const char *path, hid_t fid, const char *name, hid_t mem_type, int cols,
                      int64_t at, int n, const void *buf);
/* "/layer<l>/<state><suffix of d>", e.g. /layer1/h_reverse. */
void trace_state_name(char *out, size_t n, int l, int d, char state);

/* Sums for the correlation over samples (positions or examples) of each unit
 * of each (layer, direction) with each class's indicator. */
typedef struct {
    int L, D, H, K;
    double *sx, *sxx; /* (L, D, H) */
    double *sxy;      /* (L, D, K, H) */
    int64_t *nk;      /* (K) samples of each class */
    int64_t n;        /* samples */
} trace_corr;

/* The unit that correlates most with a class. */
typedef struct {
    float r;
    int layer, dir, unit, cls;
} trace_corr_best;

void trace_corr_init(trace_corr *a, int L, int D, int H, int K);
void trace_corr_free(trace_corr *a);
/* Add the units h (H) of layer l, direction d, of a sample of class y. */
void trace_corr_add_units(trace_corr *a, int l, int d, const float *h, int y);
/* Count one sample of class y (once per sample, after its units). */
void trace_corr_count(trace_corr *a, int y);
/* Write /layer<l>/<base><suffix of d>, (K, H) each; fills *best. */
int trace_corr_write(const trace_corr *a, const char *path, hid_t fid, const char *base,
                     trace_corr_best *best);

#endif
