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

#endif
