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

/* Pick a symbol from probabilities p (V) at the given temperature (p^(1/temp),
 * renormalised; 0 = argmax, the lowest index on ties) keeping only the top_k
 * most likely (0 = all). scratch holds V floats and V ints. */
int sample_pick(const float *p, int V, double temperature, int top_k, cn_rng *rng,
                float *scratch_p, int32_t *scratch_idx);

/* Load the model, feed the prime, write prime + generated text to out.
 * 0, or -1 with a message (unreadable model, a prime symbol outside the
 * vocabulary, ...). */
int sample_run(const sample_options *o, FILE *out);

#endif
