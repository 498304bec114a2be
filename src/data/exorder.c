/* The order of independent examples: seeded per-epoch permutation or
 * weighted draw, length buckets, shuffled batches, rank shards. See
 * exorder.h. */
#include "charnn/exorder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"

int exorder_init(exorder *o, size_t n, const uint32_t *lengths, int global_batch,
                 int bucket_batches, int shuffle, uint64_t seed)
{
    memset(o, 0, sizeof *o);
    if (n == 0)
        return cn_err("no examples to order");
    if (n > UINT32_MAX)
        return cn_err("%zu examples are more than an order holds (%u)", n, UINT32_MAX);
    if (global_batch < 1)
        return cn_err("a global batch needs at least 1 row, got %d", global_batch);
    o->n = n;
    o->lengths = cn_xmalloc(n * sizeof *o->lengths);
    memcpy(o->lengths, lengths, n * sizeof *o->lengths);
    o->global_batch = global_batch;
    o->bucket_batches = bucket_batches > 0 ? bucket_batches : 0;
    o->shuffle = shuffle;
    o->seed = seed;
    o->batches_per_epoch = (n + (size_t)global_batch - 1) / (size_t)global_batch;
    o->cached_epoch = -1;
    o->order = cn_xmalloc(o->batches_per_epoch * (size_t)global_batch * sizeof *o->order);
    return 0;
}

void exorder_free(exorder *o)
{
    free(o->lengths);
    free(o->cum_weights);
    free(o->order);
    memset(o, 0, sizeof *o);
}

int exorder_set_weights(exorder *o, const double *weights)
{
    free(o->cum_weights);
    o->cum_weights = NULL;
    o->cached_epoch = -1;
    if (!weights)
        return 0;
    double *cum = cn_xmalloc(o->n * sizeof *cum), sum = 0.0;
    for (size_t i = 0; i < o->n; i++) {
        if (!(weights[i] >= 0.0) || !isfinite(weights[i])) {
            free(cum);
            return cn_err("sampling weight %g of example %zu is not a finite value >= 0",
                          weights[i], i);
        }
        sum += weights[i];
        cum[i] = sum;
    }
    if (!(sum > 0.0)) {
        free(cum);
        return cn_err("every sampling weight is 0");
    }
    o->cum_weights = cum;
    return 0;
}

/* Uniform in [0, n) without modulo bias worth the name (n < 2^32 here). */
static size_t rng_below(cn_rng *r, size_t n)
{
    return (size_t)(((cn_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* The first index whose cumulative weight exceeds u. */
static size_t draw_weighted(const double *cum, size_t n, double u)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cum[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

typedef struct {
    uint32_t len;
    uint32_t pos; /* position in the drawn sequence: ties keep it */
    size_t idx;
} sort_item;

static int item_cmp(const void *pa, const void *pb)
{
    const sort_item *a = pa, *b = pb;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* Sort o->order[begin, end) by length. */
static void sort_window(const exorder *o, size_t begin, size_t end, sort_item *items)
{
    const size_t n = end - begin;
    for (size_t i = 0; i < n; i++)
        items[i] = (sort_item){o->lengths[o->order[begin + i]], (uint32_t)i, o->order[begin + i]};
    qsort(items, n, sizeof *items, item_cmp);
    for (size_t i = 0; i < n; i++)
        o->order[begin + i] = items[i].idx;
}

static void build_epoch(exorder *o, int64_t epoch)
{
    const size_t n = o->n, G = (size_t)o->global_batch, nb = o->batches_per_epoch;
    cn_rng rng;
    cn_rng_seed(&rng, cn_hash64(o->seed ^ 0x6578307264657273ull, (uint64_t)epoch));
    if (o->shuffle && o->cum_weights) {
        const double total = o->cum_weights[n - 1];
        for (size_t i = 0; i < n; i++)
            o->order[i] = draw_weighted(o->cum_weights, n, cn_rng_uniform(&rng) * total);
    } else {
        for (size_t i = 0; i < n; i++)
            o->order[i] = i;
        for (size_t i = n - 1; o->shuffle && i > 0; i--) {
            size_t j = rng_below(&rng, i + 1), tmp = o->order[i];
            o->order[i] = o->order[j];
            o->order[j] = tmp;
        }
    }
    if (o->bucket_batches > 0) {
        size_t window = (size_t)o->bucket_batches * G;
        if (!o->shuffle || window > n)
            window = n;
        sort_item *items = cn_xmalloc(window * sizeof *items);
        for (size_t b = 0; b < n; b += window)
            sort_window(o, b, b + window < n ? b + window : n, items);
        free(items);
    }
    for (size_t i = n; i < nb * G; i++)
        o->order[i] = EXORDER_NONE;
    if (o->shuffle && nb > 1) {
        /* shuffle whole batches: swap G-row blocks */
        size_t *tmp = cn_xmalloc(G * sizeof *tmp);
        for (size_t i = nb - 1; i > 0; i--) {
            size_t j = rng_below(&rng, i + 1);
            if (j == i)
                continue;
            memcpy(tmp, o->order + i * G, G * sizeof *tmp);
            memcpy(o->order + i * G, o->order + j * G, G * sizeof *tmp);
            memcpy(o->order + j * G, tmp, G * sizeof *tmp);
        }
        free(tmp);
    }
    o->cached_epoch = epoch;
}

const size_t *exorder_batch(exorder *o, int64_t epoch, uint64_t k)
{
    CHARNN_ASSERT(epoch >= 0 && k < o->batches_per_epoch);
    if (o->cached_epoch != (o->shuffle ? epoch : 0))
        build_epoch(o, o->shuffle ? epoch : 0);
    return o->order + k * (size_t)o->global_batch;
}

const size_t *exorder_next(exorder *o, exorder_cursor *c)
{
    if (c->batch >= o->batches_per_epoch) {
        c->epoch++;
        c->batch = 0;
    }
    return exorder_batch(o, c->epoch, c->batch++);
}

void exorder_shard(int G, int nranks, const int *rows_per_rank, int rank, int *first, int *rows)
{
    CHARNN_ASSERT(nranks >= 1 && rank >= 0 && rank < nranks);
    if (!rows_per_rank) {
        CHARNN_ASSERT(G % nranks == 0);
        *rows = G / nranks;
        *first = rank * *rows;
        return;
    }
    int f = 0, total = 0;
    for (int r = 0; r < nranks; r++) {
        if (r < rank)
            f += rows_per_rank[r];
        total += rows_per_rank[r];
    }
    CHARNN_ASSERT(total == G);
    *first = f;
    *rows = rows_per_rank[rank];
}

int exorder_batch_max_len(const exorder *o, const size_t *rows, int max_len)
{
    uint32_t longest = 0;
    for (int b = 0; b < o->global_batch; b++)
        if (rows[b] != EXORDER_NONE && o->lengths[rows[b]] > longest)
            longest = o->lengths[rows[b]];
    if (max_len > 0 && longest > (uint32_t)max_len)
        longest = (uint32_t)max_len;
    return (int)longest;
}

double exorder_epoch_padding(exorder *o, int64_t epoch, int max_len)
{
    double all = 0.0, used = 0.0;
    for (uint64_t k = 0; k < o->batches_per_epoch; k++) {
        const size_t *rows = exorder_batch(o, epoch, k);
        const int T = exorder_batch_max_len(o, rows, max_len);
        all += (double)T * o->global_batch;
        for (int b = 0; b < o->global_batch; b++)
            if (rows[b] != EXORDER_NONE)
                used += o->lengths[rows[b]] < (uint32_t)T ? o->lengths[rows[b]] : (uint32_t)T;
    }
    return all > 0.0 ? 1.0 - used / all : 0.0;
}
