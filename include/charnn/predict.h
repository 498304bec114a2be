/* predict: `charnn predict`, a classifier over one example per line of a
 * file or stdin. Lines are read in batches of `batch` (a trailing "\r" is
 * dropped), each encoded with the model's vocabulary, padded to the batch's
 * longest (cut at max_len), run through the model in one forward, and
 * written in input order:
 *
 *   TSV   label<TAB>probability[<TAB>label2<TAB>probability2 ...]  (top_k pairs,
 *         most probable first, ties by class order)
 *   JSON  {"line":N,"label":...,"probability":...,"top":[{"label":...,"probability":...},...]}
 *
 * An empty line gives an empty TSV line ({"line":N,"error":"empty line"} in
 * JSON) and one warning on stderr naming it, so output lines stay aligned
 * with input lines. A character outside the vocabulary (the model has no
 * unknown symbol) or invalid UTF-8 is an error naming the input, the line and
 * the character; what was predicted before it has been written. */
#ifndef CHARNN_PREDICT_H
#define CHARNN_PREDICT_H

#include <stdio.h>

typedef struct {
    const char *model_path;
    const char *input;  /* a file, or "-" / NULL for stdin */
    int top_k;          /* label/probability pairs per line, >= 1 */
    int batch;          /* lines per forward */
    int max_len;        /* characters an example is cut to, 0 = the model's --max-len */
    int json;
} predict_options;

/* Classify every line of o->input, writing to out. 0, or -1 with a message. */
int predict_run(const predict_options *o, FILE *out);

#endif
