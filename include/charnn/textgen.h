/* textgen: synthetic texts with known structure, for testing what a model
 * learns and what `charnn analyze` finds in it.
 *
 * The structured text is ASCII: statements of words with nested groups in
 * (), [] and {} up to depth 4 and quoted spans "..." of words (never holding
 * brackets or quotes, so quote state and bracket depth are unambiguous), and
 * lines of varying width that break between items, indented by the depth.
 * The same seed always gives the same text; n_chars is the exact length
 * written (the last groups may be cut short).
 */
#ifndef CHARNN_TEXTGEN_H
#define CHARNN_TEXTGEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Deepest bracket nesting textgen_structured produces. */
#define TEXTGEN_MAX_DEPTH 4

/* Write n_chars characters of structured text to out. 0, or -1 with a
 * message when writing fails. */
int textgen_structured(FILE *out, size_t n_chars, uint64_t seed);

typedef enum { TEXTGEN_STRUCTURED = 0 } textgen_kind;

/* What `charnn generate` writes. */
typedef struct {
    textgen_kind kind;
    int64_t chars;    /* characters to write, >= 0 */
    uint64_t seed;
    const char *path; /* file to create or truncate; NULL = the stream given */
} textgen_options;

/* Write the text to o->path, or to out when o->path is NULL. 0, or -1 with a
 * message naming the file. */
int textgen_run(const textgen_options *o, FILE *out);

#endif
