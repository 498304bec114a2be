/* classeval: `charnn eval` on a classifier. The examples of one split of an
 * examples file (prepare --task classify; read with the model's vocabulary;
 * its classes must be the model's), or of a small raw input split as in
 * training (examples_open_input), go through the model in
 * batches in a fixed order (exorder without shuffle: by length within
 * windows, so padding stays small), each rank a contiguous share of every
 * batch; the confusion matrix and loss are summed over ranks exactly
 * (classmetrics.h). Rank 0 prints text or --json, and with html_path writes
 * a self-contained page with the confusion-matrix heatmap in inline SVG.
 *
 * The page: a summary table (loss, accuracy, macro and weighted F1), the
 * per-class table, and an <svg id="confusion"> with one <rect class="cell">
 * per (true, predicted) pair, filled by the row's share (the recall of the
 * true class for the diagonal) from white to CLASSEVAL_DARK, the count
 * written inside. */
#ifndef CHARNN_CLASSEVAL_H
#define CHARNN_CLASSEVAL_H

#include "charnn/ckpt.h"
#include "charnn/classmetrics.h"
#include "charnn/evaluate.h"

/* The heatmap's colour for a share of 1 (a share s is white mixed with it). */
#define CLASSEVAL_DARK_R 8
#define CLASSEVAL_DARK_G 48
#define CLASSEVAL_DARK_B 107

/* Evaluate d (a classifier read from o->model_path) on o->data_path and
 * print/write the results. 0, or -1 with a message. Collective. */
int classeval_run(const eval_options *o, const ckpt_data *d);

/* The page for a summary (labels: C class names) into path, atomically. */
int classeval_write_html(const char *path, const eval_options *o, const char *const *labels,
                         const classmetrics_summary *s);

#endif
