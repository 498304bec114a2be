/* tagger: apply a tagging model (train --task tag) to text, and score a
 * spacing model against spaced text. `charnn tag` is its CLI.
 *
 *   tag_options o = {.model_path = "run/model.h5", .input = "-", .apply = 1};
 *   tag_run(&o, stdout);
 *
 * Each input line is one example, tagged whole (a bidirectional model reads
 * it in both directions). For a spacing model (tags "B", "I") the spaces of a
 * line are removed first, as `prepare --derive spacing` does.
 *   default: print "text<TAB>tags", the pairs format of prepare --task tag;
 *   apply:   spacing models: print the text with a space after every
 *            character tagged B (the line's last character never gets one);
 *   eval:    spacing models: the lines are correctly spaced text (lines with
 *            fewer than min_space_rate spaces per character are skipped, like
 *            prepare's filter); print the per-character accuracy, the
 *            precision, recall and F1 of the predicted spaces and the share
 *            of words restored exactly (both its boundaries found and no
 *            space inside), as text or one JSON object; html_path writes a
 *            page with the first sentences, wrong spaces marked.
 * Characters outside the model's vocabulary are an error naming the line. */
#ifndef CHARNN_TAGGER_H
#define CHARNN_TAGGER_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    const char *model_path;
    const char *input;      /* a file, or "-" for stdin */
    int apply;
    int eval;
    int json;               /* eval: one JSON object */
    const char *html_path;  /* eval: optional page; NULL: none */
    double min_space_rate;  /* eval: the filter of prepare --derive spacing */
    int threads;
} tag_options;

/* Spacing scores: counts, summed over lines. */
typedef struct {
    int64_t lines, skipped;  /* scored, and dropped by the filter or empty */
    int64_t chars, correct;  /* characters (spaces removed) and correctly tagged ones */
    int64_t spaces_true, spaces_pred, spaces_hit;
    int64_t words, words_exact;
} tag_scores;

/* Precision, recall, F1 of the spaces; the share of words restored. */
double tag_precision(const tag_scores *s);
double tag_recall(const tag_scores *s);
double tag_f1(const tag_scores *s);

/* Add one line's gold (gold[i] = 1: a space follows character i) against
 * pred (n characters). */
void tag_score_line(tag_scores *s, const uint8_t *gold, const uint8_t *pred, size_t n);

/* 0, or -1 with a message. */
int tag_run(const tag_options *o, FILE *out);

#endif
