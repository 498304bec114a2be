/* Tests for data: splits, the stream layout of a batch plan, batch filling
 * and the in-memory sources. Token ids equal their corpus offsets, so every
 * value read says where it came from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/data.h"
#include "testlib.h"

static int errmsg_has(const char *needle)
{
    if (strstr(cn_errmsg(), needle))
        return 1;
    fprintf(stderr, "\n  message '%s' lacks '%s'\n", cn_errmsg(), needle);
    return 0;
}

/* A source whose token at offset i is i. */
static void identity_source(data_source *src, size_t n)
{
    int32_t *ids = cn_xmalloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)i;
    data_source_from_tokens(src, ids, n, "identity");
    free(ids);
}

static void test_split_names(void)
{
    CU_ASSERT_EQUAL(data_split_parse("train"), SPLIT_TRAIN);
    CU_ASSERT_EQUAL(data_split_parse("val"), SPLIT_VAL);
    CU_ASSERT_EQUAL(data_split_parse("test"), SPLIT_TEST);
    CU_ASSERT_EQUAL(data_split_parse("all"), SPLIT_ALL);
    CU_ASSERT_EQUAL(data_split_parse("valid"), -1);
    CU_ASSERT_EQUAL(data_split_parse(""), -1);
    for (int s = SPLIT_TRAIN; s <= SPLIT_ALL; s++)
        CU_ASSERT_EQUAL(data_split_parse(data_split_name(s)), s);
    CU_ASSERT_STRING_EQUAL(data_split_name(SPLIT_VAL), "val");
}

static void check_splits(size_t n, double val, double test, size_t n_train, size_t n_val)
{
    data_splits sp;
    CU_ASSERT_EQUAL_FATAL(data_splits_init(&sp, n, val, test), 0);
    CU_ASSERT_EQUAL(sp.begin[SPLIT_TRAIN], 0);
    CU_ASSERT_EQUAL(sp.end[SPLIT_TRAIN], n_train);
    CU_ASSERT_EQUAL(sp.begin[SPLIT_VAL], n_train);
    CU_ASSERT_EQUAL(sp.end[SPLIT_VAL], n_train + n_val);
    CU_ASSERT_EQUAL(sp.begin[SPLIT_TEST], n_train + n_val);
    CU_ASSERT_EQUAL(sp.end[SPLIT_TEST], n);
    CU_ASSERT_EQUAL(sp.begin[SPLIT_ALL], 0);
    CU_ASSERT_EQUAL(sp.end[SPLIT_ALL], n);
}

static void test_splits(void)
{
    check_splits(1000, 0.1, 0.1, 800, 100);
    check_splits(1001, 0.05, 0.0, 951, 50);     /* floor(50.05) = 50 */
    check_splits(7, 0.5, 0.25, 3, 3);           /* floor(3.5), floor(1.75) */
    check_splits(10, 0.33, 0.33, 4, 3);
    check_splits(10, 0.0, 0.0, 10, 0);
    check_splits(0, 0.1, 0.1, 0, 0);
    check_splits(3, 0.1, 0.1, 3, 0);
}

static void test_splits_invalid(void)
{
    data_splits sp;
    const double bad[][2] = {{-0.1, 0.1}, {0.1, -0.01}, {0.5, 0.5}, {1.0, 0.0}, {0.7, 0.6}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(data_splits_init(&sp, 1000, bad[i][0], bad[i][1]), -1);
        CU_ASSERT(errmsg_has("--val-frac/--test-frac must be >= 0 and sum to less than 1"));
    }
    volatile double zero = 0.0;
    double nan = zero / zero;
    CU_ASSERT_EQUAL(data_splits_init(&sp, 1000, nan, 0.1), -1);
    CU_ASSERT_EQUAL(data_splits_init(&sp, 1000, 0.1, nan), -1);
}

/* N = 101 tokens 0..100, S = 4, T = 5: L = 100 / 4 = 25, 5 chunks, and stream
 * b at chunk k starts at 25 b + 5 k. */
static void test_plan_offsets(void)
{
    batch_plan p;
    CU_ASSERT_EQUAL_FATAL(batch_plan_init(&p, 0, 101, 4, 0, 4, 5, 0, "train"), 0);
    CU_ASSERT_EQUAL(p.stream_len, 25);
    CU_ASSERT_EQUAL(p.n_chunks, 5);
    CU_ASSERT_EQUAL(p.partial_last, 0);
    static const size_t want[4][5] = {{0, 5, 10, 15, 20},
                                      {25, 30, 35, 40, 45},
                                      {50, 55, 60, 65, 70},
                                      {75, 80, 85, 90, 95}};
    for (int b = 0; b < 4; b++)
        for (size_t k = 0; k < 5; k++) {
            CU_ASSERT_EQUAL(batch_offset(&p, b, k), want[b][k]);
            CU_ASSERT_EQUAL(batch_chunk_len(&p, k), 5);
        }

    /* The same split placed later in the corpus shifts every offset by begin;
     * a rank owning streams 2 and 3 sees them as its b = 0 and 1. */
    CU_ASSERT_EQUAL_FATAL(batch_plan_init(&p, 200, 301, 4, 2, 2, 5, 0, "val"), 0);
    CU_ASSERT_EQUAL(batch_offset(&p, 0, 0), 250);
    CU_ASSERT_EQUAL(batch_offset(&p, 1, 4), 295);

    /* N = 103 leaves (N - 1) - S L = 2 tokens unread; the layout is unchanged. */
    CU_ASSERT_EQUAL_FATAL(batch_plan_init(&p, 0, 103, 4, 0, 4, 5, 0, "train"), 0);
    CU_ASSERT_EQUAL(p.stream_len, 25);
    CU_ASSERT_EQUAL(batch_offset(&p, 3, 4), 95);
}

static void test_plan_partial(void)
{
    batch_plan p;
    /* L = 25, T = 7: three full chunks (21 steps) and a partial one of 4. */
    CU_ASSERT_EQUAL_FATAL(batch_plan_init(&p, 0, 101, 4, 0, 4, 7, 0, "train"), 0);
    CU_ASSERT_EQUAL(p.n_chunks, 3);
    CU_ASSERT_EQUAL(p.partial_last, 0);
    CU_ASSERT_EQUAL(batch_chunk_len(&p, 2), 7);

    CU_ASSERT_EQUAL_FATAL(batch_plan_init(&p, 0, 101, 4, 0, 4, 7, 1, "val"), 0);
    CU_ASSERT_EQUAL(p.n_chunks, 4);
    CU_ASSERT_EQUAL(p.partial_last, 1);
    CU_ASSERT_EQUAL(batch_chunk_len(&p, 0), 7);
    CU_ASSERT_EQUAL(batch_chunk_len(&p, 2), 7);
    CU_ASSERT_EQUAL(batch_chunk_len(&p, 3), 4);
    CU_ASSERT_EQUAL(batch_offset(&p, 1, 3), 25 + 21);

    /* When T divides L, allow_partial changes nothing. */
    CU_ASSERT_EQUAL_FATAL(batch_plan_init(&p, 0, 101, 4, 0, 4, 5, 1, "val"), 0);
    CU_ASSERT_EQUAL(p.n_chunks, 5);
    CU_ASSERT_EQUAL(p.partial_last, 0);
    CU_ASSERT_EQUAL(batch_chunk_len(&p, 4), 5);

    /* With T > L a partial plan is one short chunk; a full one is impossible. */
    CU_ASSERT_EQUAL_FATAL(batch_plan_init(&p, 0, 120, 64, 0, 64, 50, 1, "val"), 0);
    CU_ASSERT_EQUAL(p.stream_len, 1);
    CU_ASSERT_EQUAL(p.n_chunks, 1);
    CU_ASSERT_EQUAL(batch_chunk_len(&p, 0), 1);
}

static void test_plan_too_small(void)
{
    batch_plan p;
    CU_ASSERT_EQUAL(batch_plan_init(&p, 0, 120, 64, 0, 64, 50, 0, "val"), -1);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), "split 'val' of 120 tokens is too small for 64 streams x 50 steps");
    /* L = 63 / 64 = 0: nothing to read even for evaluation. */
    CU_ASSERT_EQUAL(batch_plan_init(&p, 1000, 1064, 64, 0, 64, 1, 1, "test"), -1);
    CU_ASSERT(errmsg_has("split 'test' of 64 tokens is too small for 64 streams x 1 steps"));
    CU_ASSERT_EQUAL(batch_plan_init(&p, 5, 5, 1, 0, 1, 1, 1, "val"), -1);
    CU_ASSERT(errmsg_has("split 'val' of 0 tokens"));
    CU_ASSERT_EQUAL(batch_plan_init(&p, 0, 1, 1, 0, 1, 1, 1, "val"), -1);
    /* The smallest usable split: 2 tokens, one input and its target. */
    CU_ASSERT_EQUAL(batch_plan_init(&p, 0, 2, 1, 0, 1, 1, 0, "val"), 0);
    CU_ASSERT_EQUAL(p.stream_len, 1);
    CU_ASSERT_EQUAL(p.n_chunks, 1);
}

static void test_plan_invalid_streams(void)
{
    batch_plan p;
    CU_ASSERT_EQUAL(batch_plan_init(&p, 0, 1000, 4, 3, 2, 5, 0, "train"), -1);
    CU_ASSERT(errmsg_has("streams [3, 5) are not within the 4 streams"));
    CU_ASSERT_EQUAL(batch_plan_init(&p, 0, 1000, 4, -1, 2, 5, 0, "train"), -1);
    CU_ASSERT_EQUAL(batch_plan_init(&p, 0, 1000, 4, 0, 0, 5, 0, "train"), -1);
    CU_ASSERT_EQUAL(batch_plan_init(&p, 0, 1000, 0, 0, 0, 5, 0, "train"), -1);
    CU_ASSERT_EQUAL(batch_plan_init(&p, 0, 1000, 4, 0, 4, 0, 0, "train"), -1);
    CU_ASSERT_EQUAL(batch_plan_init(&p, 0, 1000, 4, 0, 4, 5, 0, "train"), 0);
}

/* Mark every input position of every chunk of every stream of the plans in
 * count[] (relative to begin). */
static void count_inputs(const batch_plan *p, int *count)
{
    for (int b = 0; b < p->n_streams; b++)
        for (size_t k = 0; k < p->n_chunks; k++) {
            size_t off = batch_offset(p, b, k);
            for (int t = 0; t < batch_chunk_len(p, k); t++)
                count[off - p->begin + (size_t)t]++;
        }
}

/* 2 ranks x B streams must read exactly what 1 rank x 2B streams reads. */
static void test_ranks_cover_like_one(void)
{
    enum { BEGIN = 37, N = 1003, B = 3, T = 9 };
    for (int partial = 0; partial < 2; partial++) {
        int one[N] = {0}, two[N] = {0};
        batch_plan whole, r0, r1;
        CU_ASSERT_EQUAL_FATAL(batch_plan_init(&whole, BEGIN, BEGIN + N, 2 * B, 0, 2 * B, T, partial,
                                              "train"), 0);
        CU_ASSERT_EQUAL_FATAL(batch_plan_init(&r0, BEGIN, BEGIN + N, 2 * B, 0, B, T, partial,
                                              "train"), 0);
        CU_ASSERT_EQUAL_FATAL(batch_plan_init(&r1, BEGIN, BEGIN + N, 2 * B, B, B, T, partial,
                                              "train"), 0);
        CU_ASSERT_EQUAL(r0.n_chunks, whole.n_chunks);
        CU_ASSERT_EQUAL(r1.n_chunks, whole.n_chunks);
        for (size_t k = 0; k < whole.n_chunks; k++)
            for (int b = 0; b < B; b++) {
                CU_ASSERT_EQUAL(batch_offset(&r0, b, k), batch_offset(&whole, b, k));
                CU_ASSERT_EQUAL(batch_offset(&r1, b, k), batch_offset(&whole, B + b, k));
            }
        count_inputs(&whole, one);
        count_inputs(&r0, two);
        count_inputs(&r1, two);
        CU_ASSERT(memcmp(one, two, sizeof one) == 0);

        /* L = 1002 / 6 = 167 = 18 x 9 + 5. No position is read twice; with
         * partial chunks the streams tile [0, S L) with no gap; without, each
         * stream skips only its last L mod T positions. */
        size_t L = whole.stream_len;
        CU_ASSERT_EQUAL(L, 167);
        int overlap = 0, mismatch = 0;
        for (size_t i = 0; i < N; i++) {
            int want = i < 2 * B * L && (partial || i % L < 18 * T);
            overlap += one[i] > 1;
            mismatch += one[i] != want;
        }
        CU_ASSERT_EQUAL(overlap, 0);
        CU_ASSERT_EQUAL(mismatch, 0);

        /* Consecutive streams: stream s ends where stream s + 1 begins. */
        for (int s = 0; s + 1 < 2 * B; s++) {
            size_t last = whole.n_chunks - 1;
            size_t end_s = batch_offset(&whole, s, last) + (size_t)batch_chunk_len(&whole, last);
            if (partial)
                CU_ASSERT_EQUAL(end_s, batch_offset(&whole, s + 1, 0));
            CU_ASSERT_EQUAL(batch_offset(&whole, s + 1, 0) - batch_offset(&whole, s, 0), L);
        }
    }
}

static void check_fill(const batch_plan *p, data_source *src)
{
    int B = p->n_streams;
    int32_t *x = cn_xmalloc((size_t)p->T * (size_t)B * sizeof *x);
    int32_t *y = cn_xmalloc((size_t)p->T * (size_t)B * sizeof *y);
    int32_t *scratch = cn_xmalloc(((size_t)p->T + 1) * sizeof *scratch);
    int bad = 0;
    for (size_t k = 0; k < p->n_chunks; k++) {
        CU_ASSERT_EQUAL_FATAL(batch_fill(p, src, k, x, y, scratch), 0);
        int Tk = batch_chunk_len(p, k);
        for (int b = 0; b < B; b++) {
            size_t off = batch_offset(p, b, k);
            for (int t = 0; t < Tk; t++) {
                bad += x[t * B + b] != (int32_t)(off + (size_t)t);
                bad += y[t * B + b] != (int32_t)(off + (size_t)t + 1);
            }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(scratch);
    free(y);
    free(x);
}

static void test_fill(void)
{
    data_source src;
    identity_source(&src, 101);
    batch_plan p;
    CU_ASSERT_EQUAL_FATAL(batch_plan_init(&p, 0, 101, 4, 0, 4, 5, 0, "train"), 0);
    int32_t x[5 * 4], y[5 * 4], scratch[6];
    CU_ASSERT_EQUAL_FATAL(batch_fill(&p, &src, 1, x, y, scratch), 0);
    /* Chunk 1: stream b starts at 25 b + 5; x is time-major (T, B). */
    CU_ASSERT_EQUAL(x[0 * 4 + 0], 5);
    CU_ASSERT_EQUAL(x[0 * 4 + 2], 55);
    CU_ASSERT_EQUAL(x[1 * 4 + 0], 6);
    CU_ASSERT_EQUAL(x[4 * 4 + 3], 84);
    CU_ASSERT_EQUAL(y[4 * 4 + 3], 85);
    CU_ASSERT_EQUAL(y[0 * 4 + 1], 31);
    /* The very last target of the last stream is token S L = 100. */
    CU_ASSERT_EQUAL_FATAL(batch_fill(&p, &src, 4, x, y, scratch), 0);
    CU_ASSERT_EQUAL(y[4 * 4 + 3], 100);
    check_fill(&p, &src);

    /* Partial chunks, a split that starts mid-corpus, and a rank's subset. */
    CU_ASSERT_EQUAL_FATAL(batch_plan_init(&p, 10, 95, 3, 1, 2, 6, 1, "val"), 0);
    CU_ASSERT_EQUAL(p.partial_last, 1);
    check_fill(&p, &src);
    CU_ASSERT_EQUAL_FATAL(batch_plan_init(&p, 10, 95, 3, 0, 3, 6, 0, "val"), 0);
    check_fill(&p, &src);
    data_source_close(&src);
}

static void test_memory_source(void)
{
    static const int32_t ids[] = {7, 8, 9, 10};
    data_source src;
    data_source_from_tokens(&src, ids, 4, "mem");
    CU_ASSERT_EQUAL(src.n_tokens, 4);
    CU_ASSERT_STRING_EQUAL(src.name, "mem");
    int32_t out[4] = {0};
    CU_ASSERT_EQUAL(src.read(&src, 1, 3, out), 0);
    CU_ASSERT_EQUAL(out[0], 8);
    CU_ASSERT_EQUAL(out[2], 10);
    CU_ASSERT_EQUAL(src.read(&src, 4, 0, out), 0);
    CU_ASSERT_EQUAL(src.read(&src, 2, 3, out), -1);
    CU_ASSERT(errmsg_has("'mem'"));
    CU_ASSERT_EQUAL(src.read(&src, 5, 0, out), -1);
    CU_ASSERT_EQUAL(src.read(&src, 1, (size_t)-1, out), -1);
    data_source_close(&src);
    CU_ASSERT_PTR_NULL(src.impl);
    /* Closing twice is harmless. */
    data_source_close(&src);

    /* A batch reading past the end of the source fails with its message. */
    identity_source(&src, 50);
    batch_plan p;
    CU_ASSERT_EQUAL_FATAL(batch_plan_init(&p, 0, 101, 4, 0, 4, 5, 0, "train"), 0);
    int32_t x[20], y[20], scratch[6];
    CU_ASSERT_EQUAL(batch_fill(&p, &src, 0, x, y, scratch), -1);
    CU_ASSERT(errmsg_has("'identity'"));
    data_source_close(&src);
}

static void test_open_text(void)
{
    const char *text = "\xEC\x95\x88\xEB\x85\x95 hi \xEC\x95\x88";
    char path[64];
    snprintf(path, sizeof path, "%s", testlib_write_file("test_data_corpus.txt", text, strlen(text)));
    vocab v = {0};
    data_source src;
    CU_ASSERT_EQUAL_FATAL(data_source_open_text(&src, path, &v, VOCAB_CODEPOINTS), 0);
    CU_ASSERT_EQUAL(v.size, 5); /* ' ' h i 녕 안, by code point */
    CU_ASSERT_EQUAL_FATAL(src.n_tokens, 7);
    CU_ASSERT_STRING_EQUAL(src.name, path);
    int32_t ids[7];
    CU_ASSERT_EQUAL_FATAL(src.read(&src, 0, 7, ids), 0);
    static const int32_t want[] = {4, 3, 0, 1, 2, 0, 4};
    CU_ASSERT(memcmp(ids, want, sizeof want) == 0);
    data_source_close(&src);

    /* A second file is encoded with the first one's vocabulary. */
    testlib_write_file("test_data_other.txt", "hi \xEC\x95\x88", 6);
    CU_ASSERT_EQUAL_FATAL(data_source_open_text(&src, "test_data_other.txt", &v, VOCAB_BYTES), 0);
    CU_ASSERT_EQUAL(src.n_tokens, 4);
    CU_ASSERT_EQUAL_FATAL(src.read(&src, 3, 1, ids), 0);
    CU_ASSERT_EQUAL(ids[0], 4);
    data_source_close(&src);

    testlib_write_file("test_data_other.txt", "hi\xEC\x95\x88?", 6);
    CU_ASSERT_EQUAL(data_source_open_text(&src, "test_data_other.txt", &v, VOCAB_CODEPOINTS), -1);
    CU_ASSERT(errmsg_has("'test_data_other.txt' at byte 5: character '?' (U+003F)"));
    CU_ASSERT_EQUAL(src.n_tokens, 0);
    data_source_close(&src);
    vocab_free(&v);

    /* Byte mode builds a vocabulary of bytes from the same file. */
    CU_ASSERT_EQUAL_FATAL(data_source_open_text(&src, path, &v, VOCAB_BYTES), 0);
    CU_ASSERT_EQUAL(v.mode, VOCAB_BYTES);
    CU_ASSERT_EQUAL(src.n_tokens, strlen(text));
    data_source_close(&src);
    vocab_free(&v);

    testlib_write_file("test_data_other.txt", "ok\xFF", 3);
    CU_ASSERT_EQUAL(data_source_open_text(&src, "test_data_other.txt", &v, VOCAB_CODEPOINTS), -1);
    CU_ASSERT(errmsg_has("invalid UTF-8 in 'test_data_other.txt' at byte 2"));
    CU_ASSERT_EQUAL(v.size, 0);

    testlib_write_file("test_data_other.txt", "", 0);
    CU_ASSERT_EQUAL(data_source_open_text(&src, "test_data_other.txt", &v, VOCAB_CODEPOINTS), -1);
    CU_ASSERT(errmsg_has("'test_data_other.txt' is empty"));

    CU_ASSERT_EQUAL(data_source_open_text(&src, "test_data_missing.txt", &v, VOCAB_CODEPOINTS), -1);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(),
                           "cannot open 'test_data_missing.txt': No such file or directory");
    CU_ASSERT_EQUAL(data_source_open_text(&src, ".", &v, VOCAB_CODEPOINTS), -1);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), "'.' is a directory, not a regular file");
    CU_ASSERT_EQUAL(v.size, 0);

    remove(path);
    remove("test_data_other.txt");
}

int main(int argc, char **argv)
{
    CU_pSuite splits = testlib_suite("splits");
    testlib_add(splits, "split names", test_split_names);
    testlib_add(splits, "split sizes", test_splits);
    testlib_add(splits, "invalid fractions", test_splits_invalid);

    CU_pSuite plan = testlib_suite("batch plan");
    testlib_add(plan, "stream offsets", test_plan_offsets);
    testlib_add(plan, "partial last chunk", test_plan_partial);
    testlib_add(plan, "split too small", test_plan_too_small);
    testlib_add(plan, "invalid stream ranges", test_plan_invalid_streams);
    testlib_add(plan, "2 ranks cover like 1", test_ranks_cover_like_one);
    testlib_add(plan, "batch fill", test_fill);

    CU_pSuite sources = testlib_suite("sources");
    testlib_add(sources, "in-memory tokens", test_memory_source);
    testlib_add(sources, "text files", test_open_text);
    return testlib_run(argc, argv);
}
