/* translate: using a seq2seq model (seq2seq.h): `charnn translate` (sources
 * in, translations out, text or JSON lines) and `charnn eval` of a
 * translation model on a split of a pairs file (pairs.h): the padding-free
 * loss per target character, the exact-match rate and chrF, overall and by
 * source-length fifth, as text or JSON, optionally an HTML page of sample
 * translations with their attention as SVG heatmaps.
 *
 * chrF (README.md, "Translation"): corpus-level character n-gram F-score after
 * Popovic (2015) as sacreBLEU's chrF without word n-grams: whitespace is
 * removed, for n = 1..6 the clipped n-gram matches and the n-gram counts of
 * hypotheses and references are summed over the corpus, precision P and
 * recall R are the means over n of the per-n ratios (orders with no n-gram on
 * either side are left out), chrF = 100 (1 + b^2) P R / (b^2 P + R), b = 2
 * (sacreBLEU's value on its documented example, checked in test_seq2seq.c).
 */
#ifndef CHARNN_TRANSLATE_H
#define CHARNN_TRANSLATE_H

#include <stddef.h>
#include <stdint.h>

#include "charnn/model.h"
#include "charnn/pairs.h"

#define CHRF_ORDER 6
#define CHRF_BETA 2.0

typedef struct {
    double match[CHRF_ORDER], hyp[CHRF_ORDER], ref[CHRF_ORDER];
} chrf_stats;

/* Add one hypothesis/reference pair of code points to the statistics. */
void chrf_add(chrf_stats *s, const uint32_t *hyp, int nh, const uint32_t *ref, int nr);
/* chrF in [0, 100] of the statistics (0 when empty). */
double chrf_score(const chrf_stats *s);

typedef struct {
    const char *model_path;
    const char *input;     /* a file of sources, one a line; "-" (no FILE) is stdin */
    int beam;              /* 1: greedy */
    int max_len;           /* 0: twice the longest source + 10 */
    float length_penalty;
    int json;              /* JSON lines: source, translation, score, logprob, finished */
    int attention;         /* with json: the attention matrix too */
    int rows;              /* sources decoded together */
} translate_options;

/* Prints the translations (stdout). 0, or -1 with a message. */
int translate_run(const translate_options *o);

typedef struct {
    const char *model_path;
    const char *data_path; /* a pairs file */
    int split;             /* SPLIT_*; default test */
    int beam, max_len, rows;
    float length_penalty;
    int json;
    const char *html_path; /* NULL: no page */
    int samples;           /* translations shown on the page */
} translate_eval_options;

/* 1 if the model file holds a translation model (task seq2seq), 0 if not,
 * -1 when it cannot be read. */
int translate_is_model(const char *path);
int translate_eval_run(const translate_eval_options *o);

/* `charnn trace` of a translation model: the teacher-forced pass over the
 * first max_pairs pairs (0: all) of a split, written to out_path (HDF5,
 * "charnn-seq2seq-trace"): per pair its source and target (EOS included) ids,
 * the encoder's and the decoder's states of every layer at every step, the
 * attention weights of every target step over the source and each target's
 * loss, ragged arrays concatenated with offsets (README, "Translation"). */
typedef struct {
    const char *model_path, *data_path, *out_path;
    int split;
    int64_t max_pairs;
    int rows;
} translate_trace_options;
int translate_trace_run(const translate_trace_options *o);
/* The same for pairs [b, e) of an open pairs file and a model in memory
 * (train --trace-every); `what` names the source in the file's attributes. */
int translate_trace_write(const model *m, const pairs_file *p, size_t b, size_t e, int rows,
                          const char *out_path, const char *what);

#endif
