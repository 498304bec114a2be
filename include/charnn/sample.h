/* sample: generate text from a trained model, one symbol at a time, with
 * temperature, top-k and a prime text; several samples as one batch. */
#ifndef CHARNN_SAMPLE_H
#define CHARNN_SAMPLE_H

#include <stdint.h>
#include <stdio.h>

#include "charnn/common.h"

/* What a sample_run measured: the generation loop alone (model loading and
 * the prime excluded). */
typedef struct {
    double seconds;
    int64_t symbols; /* count x length */
} sample_stats;

typedef struct {
    const char *model_path;
    int64_t length;    /* symbols to generate */
    double temperature;/* 0 = greedy (argmax) */
    int top_k;         /* 0 = all symbols */
    const char *prime; /* UTF-8 text fed first; "" = start from a random symbol */
    uint64_t seed;     /* sample i draws from its own stream, sample_stream_seed(seed, i) */
    int threads;
    int count;         /* samples drawn together, one batch row each (>= 1) */
    int json;          /* one {"sample":i,"seed":S,"text":"..."} line per sample */
    sample_stats *stats; /* filled on success when not NULL */
} sample_options;

/* The seed of sample i's stream: seed itself for sample 0 (what one sample
 * has always drawn), cn_hash64(seed, i) mod 10^18 after it (a --seed that
 * draws sample i alone). Sample i is the same text whatever the count. */
uint64_t sample_stream_seed(uint64_t seed, int i);

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

/* Load the model, feed the prime to count rows, generate length symbols in
 * each (one forward of count rows per symbol), write prime + generated text
 * to out: one sample streams out as it is drawn, followed by a newline;
 * several are written at the end, each followed by a newline and separated
 * by a blank line (or as JSON lines with json).
 * 0, or -1 with a message (unreadable model, a prime symbol outside the
 * vocabulary, a write to out that failed: every write and the final flush
 * are checked). */
int sample_run(const sample_options *o, FILE *out);

#endif
