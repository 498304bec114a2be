/* pairs: sentence pairs (a source text and its translation) prepared once
 * into an HDF5 file for the encoder-decoder task (seq2seq.h), the
 * many-to-many counterpart of an examples file (examples.h).
 *
 *   pairs_prepare_options o;
 *   pairs_prepare_options_init(&o);
 *   o.in_path = "fra.txt"; o.out_path = "fra.h5"; o.limit = 10000; o.reverse = 0;
 *   pairs_prepare(&o);                         // atomic: all or nothing
 *   pairs_file p; vocab src = {0}, tgt = {0};
 *   pairs_open(&p, "fra.h5", &src, &tgt);      // everything in memory
 *
 * Input: one pair a line, columns split by tabs (no header, no quoting, as
 * the Tatoeba/manythings files: "Go.\tVa !\tCC-BY ..."); src_col and tgt_col
 * are 1-based column numbers (as cut -f counts; defaults 1 and 2); reverse
 * swaps them. A trailing "\r" is removed. A line without a tab, a line with
 * fewer columns than asked for and invalid UTF-8 are errors naming the file
 * and line; empty lines are skipped; a pair with an empty side is dropped
 * and counted. limit (0: all) keeps the first pairs read, before max_len
 * drops (and counts) the pairs with a side longer than max_len characters.
 *
 * Vocabularies: the source's and the target's symbols, code points, each
 * sorted. Target ids in the file are the model's target ids (seq2seq.h):
 * 0 EOS, 1 BOS, 2 + the symbol's index.
 *
 * Splits: a permutation seeded by `seed` puts round(n * test_frac) pairs in
 * test, round(n * val_frac) in val, the rest in train; the file holds the
 * pairs of train, then val, then test, each in input order.
 *
 * File layout: docs/examples-format.md ("charnn-pairs", version 1).
 * Ownership: a pairs_file owns its arrays until pairs_close.
 */
#ifndef CHARNN_PAIRS_H
#define CHARNN_PAIRS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "charnn/vocab.h"

#define PAIRS_FORMAT "charnn-pairs"
#define PAIRS_FORMAT_VERSION 1

typedef struct {
    size_t n_read;          /* pairs read (after limit) */
    size_t n_dropped_len;   /* dropped by max_len */
    size_t n_dropped_empty; /* dropped for an empty side */
    size_t n_split[3];      /* pairs written per SPLIT_TRAIN/VAL/TEST */
    size_t n_pairs;
    int src_vocab, tgt_vocab; /* symbols (the target's without BOS/EOS) */
    int max_src, max_tgt;     /* longest side kept, characters */
} pairs_stats;

typedef struct {
    const char *in_path;
    const char *out_path;
    int src_col, tgt_col; /* 1-based */
    int reverse;
    int max_len;          /* 0: no limit */
    size_t limit;         /* 0: all */
    double val_frac, test_frac;
    uint64_t seed;
    pairs_stats *stats;   /* optional: what was found, on success */
} pairs_prepare_options;

/* Columns 1 and 2, no limit, val 0.05, test 0.1, seed 1. */
void pairs_prepare_options_init(pairs_prepare_options *o);
int pairs_prepare(const pairs_prepare_options *o);
void pairs_stats_print(const pairs_stats *st, FILE *f);

typedef struct {
    char path[4096];
    size_t n;              /* pairs */
    int32_t *src;          /* source ids, pair i is src[src_off[i] .. src_off[i+1]) */
    int64_t *src_off;      /* (n + 1) */
    int32_t *tgt;          /* target ids (model ids, no BOS/EOS) */
    int64_t *tgt_off;      /* (n + 1) */
    size_t split_begin[3], split_end[3];
    pairs_stats stats;
} pairs_file;

/* Open path, loading the vocabularies into src and tgt (both must be empty;
 * the caller frees them). 0, or -1 with a message. */
int pairs_open(pairs_file *p, const char *path, vocab *src, vocab *tgt);
void pairs_close(pairs_file *p);
/* 1 if path is a pairs file (its "format" attribute says so), else 0. */
int pairs_is_pairs_file(const char *path);

static inline int pairs_src_len(const pairs_file *p, size_t i)
{
    return (int)(p->src_off[i + 1] - p->src_off[i]);
}
static inline int pairs_tgt_len(const pairs_file *p, size_t i)
{
    return (int)(p->tgt_off[i + 1] - p->tgt_off[i]);
}

#endif
