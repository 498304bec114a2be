/* examples: labelled examples (a text and its class) prepared once into an
 * HDF5 file, the many-to-one counterpart of a prepared corpus (corpus.h).
 *
 *   examples_prepare_options o;
 *   examples_prepare_options_init(&o);
 *   o.inputs = (const char *[]){"names"}; o.n_inputs = 1;   // a folder, a TSV/CSV, JSON lines
 *   o.out_path = "names.h5"; o.dedup = 1; o.test_frac = 0.1;
 *   examples_prepare(&o);                                   // atomic: all or nothing
 *
 *   examples_file ex; vocab v = {0};
 *   examples_open(&ex, "names.h5", &v);
 *   for (size_t i = ex.split_begin[SPLIT_TRAIN]; i < ex.split_end[SPLIT_TRAIN]; i++)
 *       examples_read_tokens(&ex, i, ids), ex.labels[i] ...
 *   examples_close(&ex); vocab_free(&v);
 *
 * Inputs (one format for all files of a call, or each told by its name):
 *   TSV  (.tsv, .tab): a header line, fields split by tabs, no quoting; the
 *        text and label columns are found by name (text_col, label_col).
 *   CSV  (.csv): RFC 4180, a header, fields may be quoted ("a, ""b""") and
 *        quoted fields may hold commas and newlines; CRLF or LF.
 *   JSON lines (.jsonl, .ndjson, .json): one object per line; the keys
 *        text_col and label_col hold the text (a string) and the label (a
 *        string or an integer). Other keys are ignored.
 *   a folder: one file per class, one example per line; the class is the
 *        file name without its extension (names/Arabic.txt -> "Arabic").
 *        Hidden files (".x") are skipped.
 * A trailing "\r" is removed from every line. Inputs are read twice, so they
 * must be regular files (not pipes); xz-compressed files are refused with a
 * hint to decompress them (xz -dk); see docs/examples-format.md.
 *
 * Splits: the examples of the inputs are split per class with a seeded
 * shuffle (val_frac and test_frac of each class, rounded), or the user gives
 * a test file and/or a val file, which then replace the drawn split. Classes
 * are the labels of the training inputs in byte order; a label that occurs
 * only in a val or test file is an error.
 *
 * Duplicates: two examples with the same text (bytes) are duplicates. They are
 * always counted; with dedup the copies are dropped so that no text occurs
 * twice in the file, and so never in two splits. A given test file keeps its
 * copy first, then a given val file, then the inputs (in input order), so a
 * user's benchmark set stays whole and training loses the leaked copies. With
 * a drawn split, duplicates are removed before the draw. When copies carry
 * different labels the kept copy's label wins and the text counts as a label
 * conflict (reported, never silently merged).
 *
 * Memory while preparing does not grow with the text: the inputs are read
 * twice (labels, symbols, lengths and a 128-bit hash per example, then
 * encoding), one record at a time. What stays is about 60 bytes per example
 * plus the longest record, the vocabulary tables (4.4 MB in code-point mode)
 * and three write buffers of ids (see docs/examples-format.md for the bound
 * and its measurement).
 *
 * File layout: docs/examples-format.md (format "charnn-examples", version 1).
 *
 * Ownership: an examples_file owns its arrays and HDF5 handles until
 * examples_close; a vocabulary loaded into the caller's vocab is the caller's.
 * One examples_file is not thread-safe (neither is HDF5).
 */
#ifndef CHARNN_EXAMPLES_H
#define CHARNN_EXAMPLES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "charnn/data.h"
#include "charnn/vocab.h"

#define EXAMPLES_FORMAT "charnn-examples"
#define EXAMPLES_FORMAT_VERSION 1
#define EXAMPLES_MAX_CLASSES 65536

typedef enum {
    EXAMPLES_INPUT_AUTO = 0, /* from each path: a folder, or its extension */
    EXAMPLES_INPUT_TSV,
    EXAMPLES_INPUT_CSV,
    EXAMPLES_INPUT_JSONL,
    EXAMPLES_INPUT_DIR,
} examples_input_format;

/* "auto", "tsv", "csv", "jsonl", "dir" -> EXAMPLES_INPUT_*, or -1. */
int examples_input_format_parse(const char *name);

/* Where an example came from: the inputs, or a file given as its split. */
enum { EXAMPLES_FROM_INPUTS = 0, EXAMPLES_FROM_VAL_FILE = 1, EXAMPLES_FROM_TEST_FILE = 2 };

/* What preparing found; also stored in the file's attributes. */
typedef struct {
    size_t n_read[3];        /* examples read, by EXAMPLES_FROM_* */
    size_t n_duplicates[3];  /* of those, copies of a text kept elsewhere, by EXAMPLES_FROM_* */
    int dedup;               /* 1: the duplicates were dropped; 0: they are in the file */
    size_t n_label_conflicts; /* distinct texts seen with two or more labels */
    size_t n_cross_split;    /* distinct texts in more than one split (0 with dedup) */
    size_t n_split[3];       /* examples written, by SPLIT_TRAIN/VAL/TEST */
    size_t n_examples;       /* sum of n_split */
    size_t n_tokens;
    int n_classes;
    int vocab_size;
} examples_stats;

typedef struct {
    const char *const *inputs; /* (n_inputs) files or folders, read in this order */
    int n_inputs;
    const char *val_path;      /* optional: the val split as a file; then val_frac must be 0 */
    const char *test_path;     /* optional: the test split as a file; then test_frac must be 0 */
    const char *out_path;
    examples_input_format format;
    const char *text_col;      /* TSV/CSV column or JSON key; NULL means "text" */
    const char *label_col;     /* NULL means "label" */
    vocab_mode mode;
    double val_frac, test_frac; /* of each class of the inputs; >= 0, sum < 1 */
    uint64_t seed;             /* the per-class shuffles */
    int dedup;
    examples_stats *stats;     /* optional: receives what was found, on success */
} examples_prepare_options;

/* A few lines for people: the counts per split, where duplicates were and
 * whether they were dropped, label conflicts and leaks between splits (what
 * `prepare` and `inspect` print). */
void examples_stats_print(const examples_stats *st, FILE *f);

/* Defaults: auto format, "text"/"label", code points, no split fractions,
 * seed 1, no dedup. */
void examples_prepare_options_init(examples_prepare_options *o);

/* Read the inputs and write o->out_path atomically (a temporary file beside
 * it, fsynced, renamed). Every input error is one line naming the file and
 * line (and column or byte offset where that helps); nothing is left behind
 * on error. */
int examples_prepare(const examples_prepare_options *o);

/* An open examples file. The offsets, labels and class names are in memory
 * (12 bytes per example); token ids are read by hyperslab on demand, so a
 * rank never loads the whole file. Fields are read-only for callers. */
typedef struct {
    char path[4096];
    size_t n_examples;   /* n */
    size_t n_tokens;
    int n_classes;       /* C */
    char **class_names;  /* (C) UTF-8, NUL-terminated; the index is the class id */
    int64_t *offsets;    /* (n + 1) example i is tokens [offsets[i], offsets[i+1]) */
    int32_t *labels;     /* (n) class ids */
    size_t split_begin[4], split_end[4]; /* examples of SPLIT_* are [begin, end) */
    size_t max_len;      /* tokens of the longest example */
    examples_stats stats; /* as recorded at prepare time */
    int tagged;          /* 1: a tag file (task "tag"): labels is NULL, class_names are the
                            C tags and tags holds one per token */
    uint8_t *tags;       /* (n_tokens) tag files: token j's tag id in [0, C), in memory */
    void *impl;          /* HDF5 handles */
} examples_file;

/* Open path for reading. If v->size == 0 the file's vocabulary is loaded into
 * v (the caller frees it). Otherwise ids are read as v's (a model's): the
 * file's own ids are mapped symbol by symbol, so a file prepared apart from
 * the model's training data works; a symbol v lacks is an error naming it and
 * the first example (index, split, character position) that holds it, and a
 * byte file for a code-point model (or the reverse) is an error. */
int examples_open(examples_file *ex, const char *path, vocab *v);
void examples_close(examples_file *ex);

/* path as an examples file, or (for small sets) a raw input of
 * examples_prepare (TSV/CSV with columns "text" and "label", JSON lines, a
 * folder) prepared with these split fractions and seed, duplicates kept, into
 * a temporary file under $TMPDIR (default /tmp; tag tells callers of one
 * process apart) that is removed as soon as it is open. *raw says which. */
int examples_open_input(examples_file *ex, const char *path, vocab *v, vocab_mode mode,
                        double val_frac, double test_frac, uint64_t seed, int tag, int *raw);

/* 1 if path is an examples file (its "format" attribute says so), else 0. */
int examples_is_examples_file(const char *path);

static inline size_t examples_length(const examples_file *ex, size_t i)
{
    return (size_t)(ex->offsets[i + 1] - ex->offsets[i]);
}

/* Class id of a name, or -1. */
int examples_class_id(const examples_file *ex, const char *name);

/* Example i's ids into out (examples_length(ex, i) entries): one hyperslab. */
int examples_read_tokens(examples_file *ex, size_t i, int32_t *out);
/* The ids of examples idx[0..count) one after another into out (the sum of
 * their lengths), in idx order, with one HDF5 read of the union of their
 * ranges (neighbours merge into one block). Indices may repeat and come in
 * any order. */
int examples_read_many(examples_file *ex, const size_t *idx, size_t count, int32_t *out);

/* A time-major batch of rows idx[0..B) (any examples, repeats allowed), for
 * the many-to-one task: x (T, B) their first min(length, T) ids, pad_id after
 * each row's end; len (B) those lengths; y (B) their labels. One HDF5 read
 * (of only the ids kept). *n_truncated (may be NULL) receives the rows longer
 * than T, for reporting what --max-len cut. */
int examples_fill_batch(examples_file *ex, const size_t *idx, int B, int T, int32_t pad_id,
                        int32_t *x, int32_t *len, int32_t *y, int *n_truncated);

/* Tag files: as examples_fill_batch, with y (T, B) the tags of the ids
 * kept, pad_tag after each row's end. */
int examples_fill_tags(examples_file *ex, const size_t *idx, int B, int T, int32_t pad_id,
                       int32_t pad_tag, int32_t *x, int32_t *len, int32_t *y, int *n_truncated);

/* ---- tag files (src/data/examples_tag.c) ----------------------------------
 * Per-character tagging: every character of a text has one tag, a single
 * character of a small tag set. Inputs are either
 *   pairs: lines "text<TAB>tags", as many tags as text characters; the tag
 *          set comes from tag_set or a first line "text<TAB>tags:BI";
 *   derived spacing (derive_spacing): any text, one per line, or one column
 *          of a TSV with a header (text_col): spaces are removed and each
 *          remaining character is tagged B when a space followed it, else I
 *          (the line's last character is I). A run of spaces counts as one.
 *          Lines with fewer than min_space_rate spaces per remaining
 *          character (users who write without spaces) are dropped and
 *          counted, e.g. 0.125: at least one space per 8 characters.
 * Errors name the file and line: a tag count that differs from the text's
 * characters, a tag outside the set, an empty line (pairs), invalid UTF-8.
 * The file is the examples layout with task "tag": /label_names holds the
 * tags, /tags (n_tokens, uint8) the tag of every token, no /labels; splits
 * are drawn by a seeded shuffle of all examples, or given as files. The
 * whole input is held in memory while preparing (4 bytes per character).
 * Written atomically like examples_prepare. */
#define EXAMPLES_MAX_TAGS 64

typedef struct {
    const char *const *inputs;
    int n_inputs;
    const char *val_path, *test_path; /* optional split files (same kind of input) */
    const char *out_path;
    const char *tag_set;      /* pairs: the tags in id order, e.g. "BI"; NULL: from the header */
    int derive_spacing;
    const char *text_col;     /* derive: the TSV column (a header line); NULL: each line */
    double min_space_rate;    /* derive: 0 keeps every line */
    vocab_mode mode;
    double val_frac, test_frac;
    uint64_t seed;
    examples_stats *stats;    /* optional; n_read[] counts lines kept, n_duplicates[] the
                                 lines dropped by the filter or empty after removing spaces */
} examples_tag_options;

int examples_prepare_tag(const examples_tag_options *o);

/* Examples per class in a split (SPLIT_ALL for all); counts has C entries. */
void examples_class_counts(const examples_file *ex, int split, size_t *counts);

/* The token lengths of a split's examples in index order (exorder_init's
 * lengths): a new array of max(n, 1) entries, the caller frees it. */
uint32_t *examples_lengths(const examples_file *ex, int split);

/* Token lengths of a split, for bucketing by length. */
typedef struct {
    size_t n;              /* examples */
    size_t total;          /* tokens */
    size_t min, max;
    double mean;
    size_t p50, p90, p99;  /* nearest-rank percentiles */
} examples_length_stats;
void examples_split_lengths(const examples_file *ex, int split, examples_length_stats *st);

#endif
