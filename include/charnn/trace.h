/* trace: hidden-state traces in HDF5, the lecture's "watch one dimension of
 * h_t over a text" as files that h5py and LSTMVis open.
 *
 * `charnn trace` runs a model over a text from a zero state, one stream, and
 * appends per step: the input token, the target, the loss and the probability
 * of the target, and per layer h_t, c_t (LSTM) and every gate's activation
 * (LSTM i, f, g, o; GRU r, z, n). Datasets are chunked, compressed (shuffle +
 * deflate) and growable, written block by block, so memory does not grow with
 * the text; the forward runs in fixed windows, so --block changes memory and
 * write sizes but not one bit of the result. docs/trace-format.md has the
 * layout.
 *
 * Training-time traces (train --trace-every N) use trace_probe_* (one growing
 * file with a step axis for a fixed probe text) and trace_streams_write (every
 * rank's stream states of one step in one shared file, written collectively).
 */
#ifndef CHARNN_TRACE_H
#define CHARNN_TRACE_H

#include <stdint.h>

#include "charnn/config.h"
#include "charnn/examples.h"
#include "charnn/model.h"
#include "charnn/vocab.h"

#define TRACE_FORMAT "charnn-trace"
#define TRACE_FORMAT_VERSION 1

/* What `charnn trace` traces: model over a split of a text, into out. */
typedef struct {
    char model[CONFIG_PATH_MAX]; /* model or checkpoint written by train */
    char data[CONFIG_PATH_MAX];  /* text or prepared corpus; "" = the model's training data */
    char out[CONFIG_PATH_MAX];   /* the HDF5 trace to write (replaced if it exists) */
    int split;                   /* SPLIT_* of data */
    int64_t max_chars;           /* steps to trace, 0 = the whole split */
    int block;                   /* steps held in memory and appended per write, >= 1 */
    int grads;                   /* 1: also record gradient flow into /grads */
    int grad_len, grad_chunks;   /* --grads: steps per chunk, chunks */
    int lstmvis;                 /* 1: also write an LSTMVis project beside out (.h5/.hdf5) */
    char cond_vectors[CONFIG_PATH_MAX]; /* a generator on vectors: /features of data's
                                           examples (trace_cond.h), "" none */
} trace_options;

/* Run the model over the text from a zero state, one stream, and write the
 * trace (and with lstmvis the LSTMVis project); prints one summary line to
 * stdout. Serial. 0, or -1 with a message; no half-written trace is left. */
int trace_run(const trace_options *o);

/* The probe trace of training: the states of a fixed text at every N steps. */
typedef struct trace_probe trace_probe;
/* Open the probe trace `path` for a model shape and a probe text of n tokens
 * (n - 1 steps: inputs tokens[0..n-1), targets tokens[1..n)). An existing file
 * of the same shape, vocabulary and probe text is kept and appended to (a
 * resumed run); any other is replaced (with a warning on stderr). Serial:
 * one rank calls it. 0 or -1 with a message (*out NULL). */
int trace_probe_open(trace_probe **out, const char *path, const model *m, const vocab *v,
                     const int32_t *tokens, int64_t n);
/* Run the model over the probe text from a zero state and append its states
 * as one more entry on the step axis, tagged with the training step; entries
 * of steps >= step already in the file (written after the checkpoint a run
 * resumed from) are dropped first. Opens and closes the file each time. */
int trace_probe_append(trace_probe *p, const model *m, int64_t step);
/* Free p (NULL is fine); the file is already closed. */
void trace_probe_close(trace_probe *p);

/* Collective over all ranks: append, for one training step, every rank's
 * hidden states of its own streams, hs (L, T, B, H) of the last forward, into
 * the shared file `path` (created by the first call; an existing file of the
 * same shape is appended to like the probe trace, any other replaced), each
 * rank writing its own hyperslab of streams [first, first + w->B) of the S
 * streams with parallel HDF5. Every rank returns the same status. */
int trace_streams_write(const char *path, const model *m, const model_work *w, int first, int S,
                        int64_t step);

/* A classifier's trace (kind "classify", docs/trace-format.md): whole
 * examples of a split of an examples file, each from a zero state; after each
 * character the hidden (and cell) states of every layer and direction (the
 * reverse direction's, of the whole example, under names ending in
 * "_reverse") and the class probabilities the model gives the prefix as an
 * example of its own (unidirectional: the head's pooling over the states so
 * far; bidirectional: the model run on each prefix, len (len - 1) / 2 more
 * positions per example); at the last character the whole example's, as
 * predict computes them; per example its label and the predicted class; per
 * layer and direction the correlation over examples of each unit's final
 * state (the reverse's: after the first character) with each class. Written
 * atomically. Serial. */
typedef struct {
    const char *path;       /* the trace to write */
    const char *model_name; /* for the attributes: the model file or run directory */
    const char *source;     /* the examples' file */
    int split;              /* SPLIT_* */
    int64_t max_chars;      /* characters to trace (whole examples, at least one), 0 = all */
    int max_len;            /* the model's --max-len: an example is cut to it, 0 = none */
    int64_t step;           /* the model's training step */
} trace_classify_options;

typedef struct {
    int64_t n_examples, n_steps, correct;
    float best_r; /* the unit whose final state correlates most with a class */
    int best_layer, best_dir, best_unit, best_class; /* best_dir: 0 forward, 1 reverse */
} trace_classify_summary;

/* `charnn trace` on a checkpoint: 1 (nothing done) when it is not a
 * classifier, else trace_classify_write over o's split of o->data (or the
 * model's training data; an examples file or a raw input prepared with the
 * model's split fractions and seed) and one summary line; 0, or -1 with a
 * message. */
int trace_classify_run(const trace_options *o);
int trace_classify_write(const trace_classify_options *o, const model *m, const vocab *v,
                         const char *const *labels, examples_file *ex,
                         trace_classify_summary *sum);

/* A tagger's trace (kind "tag", docs/trace-format.md): whole examples of a
 * split of a tag file (cut to the model's --max-len), or every non-empty line
 * of a plain text as `charnn tag` reads it (a spacing model's spaces removed
 * and turned into gold tags; other taggers have no gold tags there), each
 * from a zero state; after each character the hidden (and cell) states of
 * every layer and direction (the reverse direction's under names ending in
 * "_reverse"), the tag probabilities, the predicted tag and the gold one (-1
 * where not known); per layer and direction the correlation over all
 * characters of each unit's h with each tag (gold, or the predicted tag when
 * no gold is known). Written atomically; memory holds one example's
 * activations and a block of positions. Serial. */
typedef struct {
    const char *path;       /* the trace to write */
    const char *model_name; /* for the attributes: the model file or run directory */
    const char *source;     /* the tag file, or the text ("-": stdin) */
    int split;              /* SPLIT_* of the tag file; -1: source is plain text */
    int64_t max_chars;      /* characters to trace (whole examples, at least one), 0 = all */
    int max_len;            /* the model's --max-len: a tag file's example is cut to it */
    int64_t step;           /* the model's training step */
} trace_tag_options;

typedef struct {
    int64_t n_examples, n_steps;
    int64_t n_gold, correct; /* characters with a gold tag, and those predicted right */
    float best_r;            /* the unit whose h correlates most with a tag */
    int best_layer, best_dir, best_unit, best_tag; /* best_dir: 0 forward, 1 reverse */
} trace_tag_summary;

/* `charnn trace` on a checkpoint: 1 (nothing done) when it is not a tagger,
 * else trace_tag_write over o's split of o->data (a tag file; or the model's
 * training data), or over o->data as plain text (o->split must be
 * SPLIT_ALL), and one summary line; 0, or -1 with a message. */
int trace_tag_run(const trace_options *o);
/* ex: the open tag file (its tags those of the model), unused for plain text. */
int trace_tag_write(const trace_tag_options *o, const model *m, const vocab *v,
                    const char *const *tags, examples_file *ex, trace_tag_summary *sum);

#endif
