/* sample: generate text from a trained model, one symbol at a time, with
 * temperature, top-k and a prime text. */
#ifndef CHARNN_SAMPLE_H
#define CHARNN_SAMPLE_H

#include <stdint.h>
#include <stdio.h>

#include "charnn/common.h"

typedef struct {
    const char *model_path;
    int64_t length;    /* symbols to generate */
    double temperature;/* 0 = greedy (argmax) */
    int top_k;         /* 0 = all symbols */
    const char *prime; /* UTF-8 text fed first; "" = start from a random symbol */
    uint64_t seed;
    int threads;
} sample_options;

/* Temperatures below this are greedy. Two different float probabilities
 * differ by a factor of at least 1 - 2^-24, and (1 - 2^-24)^(1/T) is below
 * 2^-60 for T < 1.4e-9: there every symbol but the argmax weighs less than
 * the draw's double precision resolves, so sampling is the argmax (except for
 * exact ties, which greedy breaks to the lowest index). */
#define SAMPLE_GREEDY_TEMPERATURE 1e-9

/* Pick a symbol from probabilities p (V) at the given temperature (p^(1/temp),
 * renormalised; below SAMPLE_GREEDY_TEMPERATURE the argmax, the lowest index
 * on ties) keeping only the top_k most likely (0 = all). scratch holds V
 * floats and V ints. */
int sample_pick(const float *p, int V, double temperature, int top_k, cn_rng *rng,
                float *scratch_p, int32_t *scratch_idx);

/* Load the model, feed the prime, write prime + generated text to out.
 * 0, or -1 with a message (unreadable model, a prime symbol outside the
 * vocabulary, a write to out that failed: every write and the final flush
 * are checked). */
int sample_run(const sample_options *o, FILE *out);

#endif
