/* Text features of a trace that begins mid-text: they must start from the
 * state the text before it leaves. By hand at every split point of a small
 * text (features started from the prefix's state equal the whole text's), and
 * end to end: a model traced over a validation split that begins inside a
 * quote gives the quote feature of the whole text there, and without the
 * source text analyze says it could not read it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/analyze.h"
#include "charnn/common.h"
#include "charnn/data.h"
#include "charnn/vocab.h"
#include "testlib.h"

typedef struct {
    const int32_t *ids;
} id_reader;

static int read_ids(void *ctx, int64_t start, int64_t count, int32_t *out)
{
    const id_reader *r = ctx;
    memcpy(out, r->ids + start, (size_t)count * sizeof *out);
    return 0;
}

/* Features from position k on, started from the state of text[0..k), equal
 * the whole text's rows k.. for every k (the built-in features and a
 * one-character regex anchored at line starts). */
static void test_start_state_by_hand(void)
{
    const char *text = "int a; /* open \"q (x\n*/ b = \"s [t\" + (u);\nword \"more {x\" y\n"
                       "/* c \"d */ e) f\n";
    analyze_feature_spec user = {"line_start", "^[a-z/]"};
    double *whole;
    int64_t n;
    int F;
    CU_ASSERT_FATAL(analyze_text_features(text, strlen(text), &user, 1, &whole, &n, &F) == 0);
    vocab v;
    CU_ASSERT_FATAL(vocab_build(&v, (const uint8_t *)text, strlen(text), VOCAB_CODEPOINTS,
                                "text") == 0);
    int32_t *ids = cn_xmalloc((size_t)n * sizeof *ids);
    uint32_t *sym = cn_xmalloc((size_t)n * sizeof *sym);
    size_t got;
    CU_ASSERT_FATAL(vocab_encode(&v, (const uint8_t *)text, strlen(text), ids, &got, "text") == 0);
    for (int64_t i = 0; i < n; i++)
        sym[i] = v.symbols[ids[i]];
    double *rows = cn_xmalloc((size_t)n * (size_t)F * sizeof *rows);
    int64_t mismatched = 0, inside_quote = 0;
    for (int64_t k = 0; k < n; k++) {
        analyze_text_state st;
        analyze_text_state_init(&st);
        analyze_text_state_feed(&st, sym, k, 0);
        inside_quote += st.quote;
        id_reader rd = {ids + k};
        analyze_features *f;
        CU_ASSERT_FATAL(analyze_features_open(&f, v.symbols, v.size, 0, n - k, read_ids, &rd,
                                              &user, 1) == 0);
        analyze_features_start_from(f, &st);
        CU_ASSERT_FATAL(analyze_features_next(f, 0, (int)(n - k), rows) == 0);
        analyze_features_free(f);
        for (int64_t i = 0; i < (n - k) * F; i++)
            mismatched += rows[i] != whole[k * F + i];
    }
    CU_ASSERT_EQUAL(mismatched, 0);
    CU_ASSERT(inside_quote > 10); /* the splits do fall inside quotes */
    /* without the state, a split inside a quote inverts the quote feature */
    analyze_features *f;
    id_reader rd = {ids + 16}; /* just after the opening quote of "q (x */
    CU_ASSERT_FATAL(text[15] == '"');
    CU_ASSERT_FATAL(analyze_features_open(&f, v.symbols, v.size, 0, n - 16, read_ids, &rd, NULL,
                                          0) == 0);
    CU_ASSERT_FATAL(analyze_features_next(f, 0, 1, rows) == 0);
    CU_ASSERT(rows[ANALYZE_FEAT_QUOTE] == 0.0 && whole[16 * F + ANALYZE_FEAT_QUOTE] == 1.0);
    analyze_features_free(f);
    free(rows);
    free(sym);
    free(ids);
    free(whole);
    vocab_free(&v);
}

/* A text whose validation split (the default 90/5/5 split) begins inside a
 * long quote: "He said "<300 characters>" and left." over and over. */
static char *quoted_text(size_t *len)
{
    const char *words[] = {"alpha", "beta", "gamma", "delta", "echo", "fox", "golf", "hotel"};
    size_t cap = 80000, used = 0;
    char *t = cn_xmalloc(cap + 512);
    unsigned seed = 7;
    while (used < cap) {
        used += (size_t)sprintf(t + used, "He said \"");
        size_t stop = used + 300;
        while (used < stop) {
            seed = seed * 1103515245u + 12345u;
            used += (size_t)sprintf(t + used, "%s ", words[(seed >> 16) % 8]);
        }
        used += (size_t)sprintf(t + used, "(%u)\" and left.\n", (seed >> 8) % 100);
    }
    *len = used;
    return t;
}

static double quote_mean(const double *whole, int F, int64_t begin, int64_t n)
{
    double sum = 0;
    for (int64_t t = begin; t < begin + n; t++)
        sum += whole[t * F + ANALYZE_FEAT_QUOTE];
    return sum / (double)n;
}

static void test_validation_trace(void)
{
    size_t len;
    char *text = quoted_text(&len);
    const char *dir = testlib_scratch_dir("context_run");
    char path[512];
    snprintf(path, sizeof path, "%s/quoted.txt", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f && fwrite(text, 1, len, f) == len && fclose(f) == 0);
    /* where the validation split begins, and that it begins inside a quote */
    double *whole;
    int64_t n;
    int F;
    CU_ASSERT_FATAL(analyze_text_features(text, len, NULL, 0, &whole, &n, &F) == 0);
    data_splits sp;
    CU_ASSERT_FATAL(data_splits_init(&sp, (size_t)n, 0.05, 0.05) == 0);
    int64_t begin = (int64_t)sp.begin[SPLIT_VAL];
    CU_ASSERT_FATAL(whole[(begin - 1) * F + ANALYZE_FEAT_QUOTE] == 1.0);

    CU_ASSERT_FATAL(testlib_system("'%s' train --data %s --out %s --layers 1 --hidden 8 --seq 16 "
                                   "--batch 2 --steps 3 --threads 1 --eval-every 0 "
                                   "--checkpoint-every 0 --no-progress > %s/train.log 2>&1",
                                   CHARNN_BIN, path, dir, dir) == 0);
    CU_ASSERT_FATAL(testlib_system("'%s' trace --model %s/model.h5 --split val --max-chars 2000 "
                                   "--out %s/val.h5 --threads 1 > %s/trace.log 2>&1",
                                   CHARNN_BIN, dir, dir, dir) == 0);
    char trace[512], page[512];
    snprintf(trace, sizeof trace, "%s/val.h5", dir);
    snprintf(page, sizeof page, "%s/val.html", dir);
    analyze_options o = {.trace = trace, .top_k = 3, .unit_layer = -1, .excerpt = 200};
    analyze_report r;
    CU_ASSERT_FATAL(analyze_run(&o, &r) == 0);
    CU_ASSERT_EQUAL(r.begin, begin);
    CU_ASSERT_EQUAL(r.context, ANALYZE_CONTEXT_READ);
    CU_ASSERT_EQUAL(r.n_steps, 2000);
    double want = quote_mean(whole, F, begin, r.n_steps);
    CU_ASSERT(want > 0.85); /* mostly inside quotes: the feature is right side up */
    CU_ASSERT_DOUBLE_EQUAL(r.feature[ANALYZE_FEAT_QUOTE].mean, want, 1e-12);
    printf("\n    val split at token %lld, inside quotes for %.1f%% of the trace (%.1f%% as read) ",
           (long long)begin, 100 * want, 100 * r.feature[ANALYZE_FEAT_QUOTE].mean);
    CU_ASSERT(analyze_write_html(page, &r) == 0);
    CU_ASSERT(testlib_system("grep -q 'id=\"context-note\">The trace begins mid-text: the quote' "
                             "%s",
                             page) == 0);
    analyze_report_free(&r);

    /* without the source text: the features start from nothing, and analyze says why */
    char moved[600];
    snprintf(moved, sizeof moved, "%s.moved", path);
    CU_ASSERT_FATAL(rename(path, moved) == 0);
    CU_ASSERT_FATAL(analyze_run(&o, &r) == 0);
    CU_ASSERT_EQUAL(r.context, ANALYZE_CONTEXT_MISSING);
    char note[700];
    snprintf(note, sizeof note, "cannot open '%s': No such file or directory", path);
    CU_ASSERT(strstr(r.context_note, note) != NULL);
    if (!strstr(r.context_note, note))
        printf("\n    note: %s", r.context_note);
    CU_ASSERT_DOUBLE_EQUAL(r.feature[ANALYZE_FEAT_QUOTE].mean, 1.0 - want, 1e-12);
    CU_ASSERT(analyze_write_html(page, &r) == 0);
    CU_ASSERT(testlib_system("grep -q 'could not be read' %s", page) == 0);
    analyze_report_free(&r);

    /* a source that no longer holds the traced text is not used either */
    f = fopen(path, "w");
    CU_ASSERT_FATAL(f && fwrite(text + 1, 1, len - 1, f) == len - 1 && fclose(f) == 0);
    CU_ASSERT_FATAL(analyze_run(&o, &r) == 0);
    CU_ASSERT_EQUAL(r.context, ANALYZE_CONTEXT_MISSING);
    snprintf(note, sizeof note, "'%s' no longer holds the traced text at token %lld", path,
             (long long)begin);
    CU_ASSERT(strstr(r.context_note, note) != NULL);
    analyze_report_free(&r);
    free(whole);
    free(text);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("analyze_context");
    testlib_add(s, "features from the state of the text before, at every split",
                test_start_state_by_hand);
    testlib_add(s, "a validation trace that begins inside a quote", test_validation_trace);
    return testlib_run(argc, argv);
}
