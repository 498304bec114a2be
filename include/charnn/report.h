/* report: what training runs did, read back from their run directories, as a
 * table, JSON, or one self-contained HTML page of curves (`charnn report`).
 *
 * Use: fill report_options and call report_run. Underneath, report_read
 * turns one run directory into a report_data (free with report_data_free),
 * which report_write_table / _json / _html print; tests use them directly.
 *
 * What a run directory gives:
 *   metrics.jsonl  one JSON object per line, appended by every session of the
 *                  run (a fresh start and each resume): "train" lines (step,
 *                  loss, grad_norm, lr, chars_per_s (or another task's
 *                  X_per_s: examples_per_s, ...), time = Unix seconds,
 *                  elapsed = seconds since this session began training),
 *                  "val" lines (step, val_loss), "skip" lines (a step skipped
 *                  for a non-finite loss or gradient) and "balance" lines
 *                  (streams moved between ranks).
 *   latest/model.h5 the checkpoint whose attributes give the run's config.
 *
 * Sessions and resumes. A line whose step is not above the last kept line of
 * its type means the run went back to an earlier checkpoint: the kept lines
 * after that step (of any type), and of its type at that step, are replaced
 * by what follows, so the curve continues from the resumed step. (Running a
 * finished run again logs its final validation a second time: that one line
 * is replaced, nothing else.) A new session also shows in the
 * time fields (elapsed starts again, or time - elapsed moves on); the curves
 * against wall time put each session after the time the earlier ones took.
 * Wall time is the sum over sessions of their last logged elapsed (work a
 * resume later redid included: it took that time). Mean chars/s is the
 * characters of every logged interval over their total time (a time-weighted
 * mean of chars_per_s; without time fields, the plain mean over kept lines).
 *
 * Malformed lines (not a JSON object, no "type" or "step", a value that is
 * not a number) are skipped and counted: a run killed mid-write leaves a torn
 * last line that should not hide the rest. The count and the first bad line
 * number are in the report, and report_run warns about them on stderr.
 * Numbers spelt nan / inf (C's printf of a non-finite value) are read as such.
 */
#ifndef CHARNN_REPORT_H
#define CHARNN_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "charnn/config.h"

#define REPORT_UNIT_MAX 16

typedef struct {
    const char *const *runs; /* run directories, n_runs of them */
    int n_runs;
    const char *html;        /* page to write, or NULL */
    int json;                /* 1: JSON instead of the table */
    FILE *out;               /* where the table or JSON goes */
} report_options;

/* One "train" line. time: seconds of training since the run began,
 * continuing across sessions; NaN without time fields. */
typedef struct {
    int64_t step;
    double loss, grad_norm, lr, chars_per_s, time;
} report_train_point;

/* One "val" line; time from the train line of the same step, NaN without one. */
typedef struct {
    int64_t step;
    double val_loss, time;
} report_val_point;

typedef struct {
    char dir[CONFIG_PATH_MAX];
    /* the config, from DIR/latest's checkpoint or DIR/model.h5 */
    int has_config;
    run_config cfg;
    char config_from[CONFIG_PATH_MAX + 300]; /* the checkpoint read, or why none was ("" = none) */
    int64_t config_step;
    /* the curves, kept lines only, ascending steps */
    report_train_point *train; /* (n_train) */
    int n_train;
    report_val_point *val;     /* (n_val) */
    int n_val;
    /* the summary */
    int64_t steps;          /* highest step logged, 0 with no lines */
    double best_val;        /* NaN without a validation */
    int64_t best_val_step;  /* -1 without a validation */
    double last_loss;       /* of the last kept train line, NaN without one */
    double mean_chars_per_s;/* NaN without train lines; in rate_unit per second */
    char rate_unit[REPORT_UNIT_MAX]; /* what the training rate counts: "chars" (a language
                                        model, and lines without a unit), "examples", ... */
    double wall_time;       /* seconds; NaN without time fields */
    int64_t bad_steps;      /* kept "skip" lines */
    int64_t balance_moves;  /* kept "balance" lines */
    int sessions;           /* sessions seen (1 + resumes), 0 with no lines */
    int64_t lines, replaced, malformed, first_malformed; /* line counts; first: its number */
} report_data;

/* Read DIR/metrics.jsonl and the config of run directory dir. 0, or -1 with a
 * message (no such directory, no metrics.jsonl, a file with no valid line).
 * An empty metrics.jsonl (a run that has not logged yet) is not an error. */
int report_read(const char *dir, report_data *out);
void report_data_free(report_data *d);

/* Per run: its config line and summary; then, for several runs, a ranking by
 * best validation loss. */
void report_write_table(FILE *out, const report_data *runs, int n);
/* {"runs": [{dir, config: {...} or null, config_from, steps, best_val_loss,
 *  best_val_step, last_loss, mean_chars_per_s, wall_time_s, bad_steps,
 *  balance_moves, sessions, lines, replaced_lines, malformed_lines,
 *  first_malformed_line}]} in the order given; undefined numbers are null. */
void report_write_json(FILE *out, const report_data *runs, int n);
/* The page: a legend, a table ranked by best validation loss, and the plots
 * #loss-steps, #loss-time, #grad-norm (log scale), #lr and #chars-per-s,
 * runs overlaid. 0, or -1 with a message. */
int report_write_html(const char *path, const report_data *runs, int n);

/* Read every run, print the table or JSON, write the page. 0, or -1 with a
 * message. */
int report_run(const report_options *o);

#endif
