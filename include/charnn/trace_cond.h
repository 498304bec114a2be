/* trace_cond: traces of the tasks whose input is a condition rather than a
 * text: conditional generators (task generate, kind "generate") and vector
 * classifiers (classify --features, kind "features"). Layout in
 * docs/trace-format.md; `charnn analyze` reads them (analyze_cond.c).
 *
 * generate: whole examples of a split, each from a zero state with its
 * condition, BOS c1..cn -> c1..cn EOS as in training; per example its
 * condition (class index, or the vector); per step the input, the target,
 * its probability and loss and the hidden (and cell) state of every layer;
 * per layer the Pearson correlation over the traced steps of each unit with
 * each condition class (indicator) or each condition dimension.
 *
 * features: per example the raw vector, the class probabilities and loss,
 * the hidden state of every layer after the one step (layers 0: the MLP's
 * hidden layer as layer 0); per layer the correlation over the examples of
 * each unit with each class.
 *
 * The writers read their examples through the task (task.h accessors), so
 * the split, vocabulary and conditions are exactly training's. Per-step data
 * are growable, compressed datasets appended in blocks (memory does not grow
 * with the split); the file is written under a temporary name and renamed
 * when complete. Serial (one rank). */
#ifndef CHARNN_TRACE_COND_H
#define CHARNN_TRACE_COND_H

#include <stdint.h>

#include "charnn/model.h"
#include "charnn/task.h"
#include "charnn/trace.h"
#include "charnn/vocab.h"

typedef struct {
    const char *path;       /* the trace to write */
    const char *model_name; /* for the attributes: the model file or run directory */
    const char *source;     /* the examples' (the vectors') file */
    int split;              /* SPLIT_* */
    int64_t max_steps;      /* generate: characters (whole examples, at least one); features:
                               examples; 0 = the whole split */
    int64_t step;           /* the model's training step */
} trace_cond_options;

typedef struct {
    int64_t n_examples, n_steps; /* features: n_steps = n_examples */
    double loss;                 /* mean loss per step (character or example), nats */
    int64_t correct;             /* features: examples whose argmax is their class */
    float best_r;                /* the unit that follows a class (dimension) most */
    int best_layer, best_unit, best_target;
} trace_cond_summary;

/* t is an open task of the kind (generate / classify_features), m its model;
 * v the model's vocabulary. 0, or -1 with a message (no file left). */
int trace_generate_write(const trace_cond_options *o, task *t, const model *m, const vocab *v,
                         trace_cond_summary *sum);
int trace_features_write(const trace_cond_options *o, task *t, const model *m,
                         trace_cond_summary *sum);
/* `charnn trace` on a checkpoint: 1 (nothing done) when it is neither a
 * generator nor a vector classifier; else opens its task over o->data (or
 * the model's training data; a vector generator needs o->cond_vectors),
 * writes the trace of o->split and prints one summary line. 0, or -1. */
int trace_cond_run(const trace_options *o);

#endif
