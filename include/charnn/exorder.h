/* exorder: the order in which a task visits independent examples (classify,
 * and later tag, seq2seq, generate): which examples make up each global batch
 * of an epoch, and which rows of it each rank takes. It knows the examples'
 * lengths, never their labels or tokens.
 *
 *   exorder o;
 *   exorder_init(&o, n, lengths, R * B, 64, 1, seed);   // G = R*B rows a step
 *   const size_t *rows = exorder_batch(&o, epoch, k);   // (G) example indices
 *   exorder_shard(o.global_batch, R, NULL, rank, &first, &mine);
 *   // this rank reads rows[first .. first + mine); EXORDER_NONE rows are padding
 *   exorder_free(&o);
 *
 * An epoch: the n examples (0..n-1, the caller maps them to its own) in a
 * permutation drawn from cn_rng seeded with (seed, epoch), so any epoch is
 * reproduced without replaying the ones before it; with sampling weights
 * (exorder_set_weights, e.g. class-balanced sampling) n examples drawn with
 * replacement, with probability proportional to the weight, instead. Then
 * length bucketing: the sequence is cut into windows of bucket_batches
 * global batches, each window is sorted by length (ties keep their drawn
 * order) and cut into batches of G, so that a batch holds examples of
 * similar length and padding stays small; finally the batches of the epoch
 * are shuffled (same rng), so that lengths do not rise and fall in a
 * pattern. An epoch has ceil(n / G) batches; the last batch is topped up
 * with EXORDER_NONE rows (the task gives them no loss).
 *
 * Without shuffle (evaluation): the examples in index order, sorted by length
 * when bucketing, batches in order; the same for every epoch.
 *
 * The global batch is split across ranks contiguously: rank r takes rows
 * [r*B, (r+1)*B), or with per-rank row counts (--balance weights) the rows
 * after those of ranks 0..r-1. Every rank computes the same global batch, so
 * every rank knows the lengths (hence the padded T) and the loss weights of
 * the whole step without communicating.
 *
 * The cursor of a run is (epoch, batch index): a checkpoint stores it (the
 * train_progress epoch and chunk) and a resume continues with exactly the
 * batches an uninterrupted run would have had, whatever the number of ranks,
 * as long as G is the same.
 *
 * Ownership: an exorder owns copies of the lengths and weights and the cached
 * order of one epoch; exorder_batch's result stays valid until the next call
 * that asks for another epoch. Not thread-safe.
 */
#ifndef CHARNN_EXORDER_H
#define CHARNN_EXORDER_H

#include <stddef.h>
#include <stdint.h>

/* A padding row of a short last batch. */
#define EXORDER_NONE SIZE_MAX

typedef struct {
    size_t n;               /* examples */
    uint32_t *lengths;      /* (n) owned copy */
    double *cum_weights;    /* (n) cumulative sampling weights, NULL: each example once */
    int global_batch;       /* G rows per step over all ranks */
    int bucket_batches;     /* window of the length sort, in batches; 0: no bucketing */
    int shuffle;            /* 0: index order (sorted by length when bucketing) */
    uint64_t seed;
    uint64_t batches_per_epoch; /* ceil(n / G) */
    int64_t cached_epoch;   /* the epoch in order, -1 before the first */
    size_t *order;          /* (batches_per_epoch * G) example of each row */
} exorder;

/* The cursor a checkpoint stores. */
typedef struct {
    int64_t epoch;  /* from 0 */
    uint64_t batch; /* next batch of the epoch, 0..batches_per_epoch */
} exorder_cursor;

/* n >= 1 examples with lengths (n, copied), G >= 1. 0, or -1 with a message. */
int exorder_init(exorder *o, size_t n, const uint32_t *lengths, int global_batch,
                 int bucket_batches, int shuffle, uint64_t seed);
void exorder_free(exorder *o);

/* Sampling weights (n, >= 0, copied; NULL: back to one visit per example).
 * 0, or -1 with a message when none is positive or one is negative or not
 * finite. */
int exorder_set_weights(exorder *o, const double *weights);

/* The G example indices of batch k (< batches_per_epoch) of epoch e. */
const size_t *exorder_batch(exorder *o, int64_t epoch, uint64_t k);

/* The batch at the cursor (an epoch's end rolls over to the next epoch's
 * first batch), then the cursor moves past it. */
const size_t *exorder_next(exorder *o, exorder_cursor *c);

/* The rows of a global batch of G rows that rank `rank` of R takes: with
 * rows_per_rank (R entries summing to G) those, else G / R each (G must be a
 * multiple of R). */
void exorder_shard(int G, int nranks, const int *rows_per_rank, int rank, int *first, int *rows);

/* Longest length (capped at max_len when > 0) of the real rows of a batch. */
int exorder_batch_max_len(const exorder *o, const size_t *rows, int max_len);

/* Padding of an epoch with every batch padded to its longest row (capped at
 * max_len when > 0): padded positions / all positions of the batches, padding
 * rows included. */
double exorder_epoch_padding(exorder *o, int64_t epoch, int max_len);

#endif
