/* generate: what conditional generation (train --task generate, sample
 * --cond, eval of a generator) shares about its data.
 *
 * Texts come from an examples file (examples.h, `charnn prepare --task
 * classify`): the label of an example is its condition and the text is what
 * the model learns to generate. A row of T = length + 1 steps is
 *
 *   x: BOS  c1  c2 ... cn          (inputs)
 *   y: c1   c2  ...  cn  EOS       (targets)
 *
 * with one boundary symbol, '\n' (the end of a line: examples never hold one
 * in folder or TSV inputs), as both BOS and EOS: the model's vocabulary is
 * the examples' plus '\n', so a sample ends where the model writes a newline
 * and one sample is one line.
 *
 * Conditions: a class is the one-hot of its label over the file's classes
 * (D = classes; checkpoints store the class names as /labels); a vector
 * condition is row i of the float32 dataset /features (N, D) of an HDF5 file
 * given with --cond-vectors (N = the examples in the file, in file order; the
 * checkpoint stores D only). See docs/examples-format.md.
 */
#ifndef CHARNN_GENERATE_H
#define CHARNN_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "charnn/vocab.h"

#define GEN_BOUNDARY 0x0Au /* '\n': BOS and EOS */

/* out = ex's symbols plus the boundary; -1 with a message when ex already
 * holds it (texts with newlines). */
int gen_vocab(const vocab *ex, vocab *out);
/* Read path's /features as (n, *dim) float32 into *out (malloc'd); n is the
 * count the rows must match ("examples in 'names.h5'" names them in errors
 * via what). 0 or -1 with a message. */
int gen_features_read(const char *path, size_t n, const char *what, int *dim, float **out);
/* A condition vector from a text file of whitespace-separated numbers; it
 * must hold exactly dim of them. 0 or -1 with a message. */
int gen_vector_read_text(const char *path, int dim, float *out);


/* ---- evaluating a generator (charnn eval on a generate model) ---------- */

#include "charnn/ckpt.h"
#include "charnn/evaluate.h"

/* The held-out loss per character (BOS excluded, EOS included) of d, read
 * from o->model_path, on o->split of the examples file o->data_path: overall
 * and per class of the file; text or o->json. Collective. 0 or -1. */
int eval_generate_run(const eval_options *o, const ckpt_data *d);

#endif

/* ---- sampling from a generator (charnn sample on a generate model) ------ */

#include <stdio.h>

typedef struct {
    const char *model_path;
    const char *cond;        /* a class name of the model's /labels, or NULL */
    const char *cond_vector; /* a text file of D numbers, or NULL */
    int count;               /* samples to print (>= 1) */
    int unique;              /* redraw a sample equal to one printed before */
    int novel;               /* redraw a sample that is a training text */
    const char *data;        /* examples file for novel (NULL: the model's training data) */
    int64_t length;          /* most characters of a sample (EOS ends it before) */
    double temperature;
    int top_k;
    const char *prime;       /* every sample starts with it ("" none) */
    uint64_t seed;           /* draw j uses cn_hash64(seed, j), draw 0 seed itself */
    int threads;
    FILE *report;            /* counts of redraws and training texts (NULL: none) */
} gen_sample_options;

/* Print o->count samples, one a line, drawn in batches of the samples still
 * wanted. Unknown classes, a class for a vector model (and the reverse), a
 * vector of the wrong width are errors naming what the model knows. Gives up
 * (an error) after 100 x count + 1000 draws without enough unique or novel
 * ones. 0 or -1 with a message. */
int gen_sample_run(const gen_sample_options *o, FILE *out);
