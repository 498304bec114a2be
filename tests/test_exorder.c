/* exorder: every epoch is a permutation, the same seed gives the same order
 * and another seed another, the rank shards make up the global batch, length
 * buckets lower padding against a plain shuffle on a skewed length set, a
 * resumed cursor gives the batches that follow, and weighted draws follow
 * their weights. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/exorder.h"
#include "testlib.h"

#define N 1003 /* not a multiple of G: the last batch is topped up */
#define G 16

/* Skewed lengths: most short, a long tail (as names or reviews). */
static void skewed_lengths(uint32_t *len, size_t n)
{
    cn_rng r;
    cn_rng_seed(&r, 99);
    for (size_t i = 0; i < n; i++) {
        double u = cn_rng_uniform(&r);
        len[i] = 3 + (uint32_t)(u * u * u * u * 200.0);
    }
}

static void check_permutation(exorder *o, int64_t epoch)
{
    int *seen = calloc(o->n, sizeof *seen);
    size_t none = 0;
    for (uint64_t k = 0; k < o->batches_per_epoch; k++) {
        const size_t *rows = exorder_batch(o, epoch, k);
        for (int b = 0; b < o->global_batch; b++) {
            if (rows[b] == EXORDER_NONE) {
                none++;
                continue;
            }
            CU_ASSERT_FATAL(rows[b] < o->n);
            seen[rows[b]]++;
        }
    }
    int all_once = 1;
    for (size_t i = 0; i < o->n; i++)
        all_once &= seen[i] == 1;
    CU_ASSERT(all_once);
    CU_ASSERT_EQUAL(none, o->batches_per_epoch * (size_t)o->global_batch - o->n);
    free(seen);
}

static void test_permutation(void)
{
    uint32_t len[N];
    skewed_lengths(len, N);
    for (int bucket = 0; bucket <= 8; bucket += 8) {
        exorder o;
        CU_ASSERT_EQUAL_FATAL(exorder_init(&o, N, len, G, bucket, 1, 5), 0);
        CU_ASSERT_EQUAL(o.batches_per_epoch, (N + G - 1) / G);
        for (int64_t e = 0; e < 3; e++)
            check_permutation(&o, e);
        /* epochs differ */
        size_t first0[G], first1[G];
        memcpy(first0, exorder_batch(&o, 0, 0), sizeof first0);
        memcpy(first1, exorder_batch(&o, 1, 0), sizeof first1);
        CU_ASSERT(memcmp(first0, first1, sizeof first0) != 0);
        exorder_free(&o);
    }
    /* evaluation order: every example once, the same for every epoch */
    exorder o;
    CU_ASSERT_EQUAL_FATAL(exorder_init(&o, N, len, G, 1, 0, 5), 0);
    check_permutation(&o, 0);
    size_t a[G];
    memcpy(a, exorder_batch(&o, 0, 3), sizeof a);
    CU_ASSERT(memcmp(a, exorder_batch(&o, 7, 3), sizeof a) == 0);
    exorder_free(&o);
}

static void test_same_seed(void)
{
    uint32_t len[N];
    skewed_lengths(len, N);
    exorder a, b, c;
    CU_ASSERT_EQUAL_FATAL(exorder_init(&a, N, len, G, 4, 1, 11), 0);
    CU_ASSERT_EQUAL_FATAL(exorder_init(&b, N, len, G, 4, 1, 11), 0);
    CU_ASSERT_EQUAL_FATAL(exorder_init(&c, N, len, G, 4, 1, 12), 0);
    int same = 1, differs = 0;
    /* b visits epoch 2 first: no replay is needed to reproduce it */
    for (uint64_t k = 0; k < b.batches_per_epoch; k++) {
        size_t want[G];
        memcpy(want, exorder_batch(&a, 2, k), sizeof want);
        same &= memcmp(want, exorder_batch(&b, 2, k), sizeof want) == 0;
        differs |= memcmp(want, exorder_batch(&c, 2, k), sizeof want) != 0;
    }
    CU_ASSERT(same);
    CU_ASSERT(differs);
    exorder_free(&a);
    exorder_free(&b);
    exorder_free(&c);
}

static void test_shards(void)
{
    uint32_t len[N];
    skewed_lengths(len, N);
    exorder o;
    CU_ASSERT_EQUAL_FATAL(exorder_init(&o, N, len, G, 4, 1, 3), 0);
    const size_t *rows = exorder_batch(&o, 1, 5);
    /* even shards and uneven ones (--balance weights) */
    static const int uneven[3] = {7, 2, 7};
    for (int mode = 0; mode < 2; mode++) {
        const int R = mode ? 3 : 4;
        int covered[G] = {0}, next = 0;
        for (int r = 0; r < R; r++) {
            int first, n;
            exorder_shard(G, R, mode ? uneven : NULL, r, &first, &n);
            CU_ASSERT_EQUAL(first, next); /* contiguous, in rank order */
            CU_ASSERT_EQUAL(n, mode ? uneven[r] : G / R);
            for (int b = first; b < first + n; b++)
                covered[b]++;
            next = first + n;
        }
        CU_ASSERT_EQUAL(next, G);
        int once = 1;
        for (int b = 0; b < G; b++)
            once &= covered[b] == 1;
        CU_ASSERT(once);
    }
    /* the union of the shards is the global batch: G/R rows of each rank */
    size_t unite[G];
    for (int r = 0; r < 4; r++) {
        int first, n;
        exorder_shard(G, 4, NULL, r, &first, &n);
        memcpy(unite + first, rows + first, (size_t)n * sizeof *unite);
    }
    CU_ASSERT(memcmp(unite, rows, sizeof unite) == 0);
    exorder_free(&o);
}

static void test_bucketing(void)
{
    uint32_t len[N];
    skewed_lengths(len, N);
    exorder plain, bucket;
    CU_ASSERT_EQUAL_FATAL(exorder_init(&plain, N, len, G, 0, 1, 7), 0);
    CU_ASSERT_EQUAL_FATAL(exorder_init(&bucket, N, len, G, 50, 1, 7), 0);
    double p = exorder_epoch_padding(&plain, 0, 0), q = exorder_epoch_padding(&bucket, 0, 0);
    /* measured: plain shuffle 0.75, buckets of 50 batches 0.09 */
    printf("\n  padding: plain shuffle %.3f, buckets of 50 batches %.3f\n", p, q);
    CU_ASSERT(p > 0.5);
    CU_ASSERT(q < 0.25);
    CU_ASSERT(q < p / 3.0);
    /* a cap on the length lowers both */
    CU_ASSERT(exorder_epoch_padding(&bucket, 0, 20) < q);
    /* batches are still shuffled: their longest rows do not rise in order */
    int rising = 1, prev = 0;
    for (uint64_t k = 0; k < bucket.batches_per_epoch; k++) {
        int T = exorder_batch_max_len(&bucket, exorder_batch(&bucket, 0, k), 0);
        rising &= T >= prev;
        prev = T;
    }
    CU_ASSERT(!rising);
    exorder_free(&plain);
    exorder_free(&bucket);
}

static void test_resume(void)
{
    uint32_t len[N];
    skewed_lengths(len, N);
    exorder a, b;
    CU_ASSERT_EQUAL_FATAL(exorder_init(&a, N, len, G, 8, 1, 21), 0);
    CU_ASSERT_EQUAL_FATAL(exorder_init(&b, N, len, G, 8, 1, 21), 0);
    exorder_cursor ca = {0, 0};
    const uint64_t nb = a.batches_per_epoch, stop = nb + nb / 2; /* mid epoch 1 */
    for (uint64_t s = 0; s < stop; s++)
        exorder_next(&a, &ca);
    CU_ASSERT_EQUAL(ca.epoch, 1);
    CU_ASSERT_EQUAL(ca.batch, nb / 2);
    exorder_cursor cb = ca; /* a fresh order, resumed from the stored cursor */
    int same = 1;
    for (uint64_t s = 0; s < nb + 3; s++) {
        size_t want[G];
        memcpy(want, exorder_next(&a, &ca), sizeof want);
        same &= memcmp(want, exorder_next(&b, &cb), sizeof want) == 0;
    }
    CU_ASSERT(same);
    CU_ASSERT_EQUAL(ca.epoch, cb.epoch);
    CU_ASSERT_EQUAL(ca.batch, cb.batch);
    /* an epoch's end rolls over */
    exorder_cursor end = {4, nb};
    const size_t *r = exorder_next(&b, &end);
    CU_ASSERT_EQUAL(end.epoch, 5);
    CU_ASSERT_EQUAL(end.batch, 1);
    CU_ASSERT(memcmp(r, exorder_batch(&a, 5, 0), G * sizeof *r) == 0);
    exorder_free(&a);
    exorder_free(&b);
}

static void test_weights(void)
{
    /* two classes, 900 and 100 examples; inverse-frequency weights draw them
     * about equally often */
    enum { M = 1000 };
    uint32_t len[M];
    double w[M];
    for (int i = 0; i < M; i++) {
        len[i] = 5;
        w[i] = i < 900 ? 1.0 / 900 : 1.0 / 100;
    }
    exorder o;
    CU_ASSERT_EQUAL_FATAL(exorder_init(&o, M, len, 10, 0, 1, 2), 0);
    CU_ASSERT_EQUAL(exorder_set_weights(&o, w), 0);
    size_t minority = 0, total = 0;
    for (int64_t e = 0; e < 5; e++)
        for (uint64_t k = 0; k < o.batches_per_epoch; k++) {
            const size_t *rows = exorder_batch(&o, e, k);
            for (int b = 0; b < 10; b++) {
                CU_ASSERT_FATAL(rows[b] < M);
                minority += rows[b] >= 900;
                total++;
            }
        }
    double frac = (double)minority / (double)total;
    CU_ASSERT(fabs(frac - 0.5) < 0.03); /* 5000 draws: sd 0.007 */
    w[3] = -1.0;
    CU_ASSERT_EQUAL(exorder_set_weights(&o, w), -1);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), "sampling weight -1 of example 3 is not a finite value >= 0");
    memset(w, 0, sizeof w);
    CU_ASSERT_EQUAL(exorder_set_weights(&o, w), -1);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), "every sampling weight is 0");
    exorder_free(&o);
    CU_ASSERT_EQUAL(exorder_init(&o, 0, len, 10, 0, 1, 2), -1);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), "no examples to order");
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("exorder");
    testlib_add(s, "each epoch is a permutation", test_permutation);
    testlib_add(s, "same seed, same order", test_same_seed);
    testlib_add(s, "rank shards make up the global batch", test_shards);
    testlib_add(s, "length buckets lower padding", test_bucketing);
    testlib_add(s, "a resumed cursor continues exactly", test_resume);
    testlib_add(s, "weighted draws", test_weights);
    return testlib_run(argc, argv);
}
