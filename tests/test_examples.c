/* Tests for examples: each reader on small files (CSV quoting, JSON escapes,
 * Korean text), the exact error for each bad input with nothing left behind,
 * stratified and seeded splits, dedup across splits, round trips of ids,
 * labels and names, the names set, and memory that does not grow with the
 * text.
 *
 * Files go to a scratch directory under the working directory. */
#define _DEFAULT_SOURCE /* wait4 */
#include <dirent.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "charnn/common.h"
#include "charnn/examples.h"
#include "charnn/vocab.h"
#include "testlib.h"

#define SCRATCH "examples_test_scratch"
#define CHILD_FLAG "--examples-prepare-child"

static const char *path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", SCRATCH, name);
    return buf;
}

static void put(const char *path, const char *text)
{
    testlib_write_file(path, text, strlen(text));
}

static int errmsg_is(const char *want)
{
    if (strcmp(cn_errmsg(), want) == 0)
        return 1;
    fprintf(stderr, "\n  message '%s'\n  expected '%s'\n", cn_errmsg(), want);
    return 0;
}

/* Only the expected files are in the scratch directory: no temporary or
 * half-written output. */
static int scratch_has_no_tmp(void)
{
    DIR *d = opendir(SCRATCH);
    if (!d)
        return 0;
    struct dirent *e;
    int clean = 1;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.") || strstr(e->d_name, "out.h5"))
            clean = 0;
    closedir(d);
    return clean;
}

/* Example i decoded back to UTF-8 (static storage). */
static const char *decode(examples_file *ex, const vocab *v, size_t i)
{
    static char text[4096];
    int32_t ids[1024];
    size_t n = examples_length(ex, i);
    CU_ASSERT_FATAL(n <= 1024);
    CU_ASSERT_FATAL(examples_read_tokens(ex, i, ids) == 0);
    size_t at = 0;
    for (size_t k = 0; k < n; k++)
        at += (size_t)vocab_decode(v, ids[k], text + at);
    text[at] = '\0';
    return text;
}

static int prepare_one(const char *input, const char *out, const char *text_col,
                       const char *label_col)
{
    examples_prepare_options o;
    examples_prepare_options_init(&o);
    o.inputs = &input;
    o.n_inputs = 1;
    o.out_path = out;
    o.text_col = text_col;
    o.label_col = label_col;
    return examples_prepare(&o);
}

/* ---- readers and round trips ---------------------------------------------- */

static void test_tsv_korean(void)
{
    char in[256], out[256];
    path_in(in, sizeof in, "reviews.tsv");
    path_in(out, sizeof out, "reviews.h5");
    put(in, "id\tdocument\tlabel\n"
            "1\t정말 재미있어요!\t1\n"
            "2\t별로였다...\t0\n"
            "3\tgreat 영화 \xF0\x9F\x98\x80\t1\r\n");
    CU_ASSERT_EQUAL_FATAL(prepare_one(in, out, "document", "label"), 0);
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    CU_ASSERT_EQUAL(ex.n_examples, 3);
    CU_ASSERT_EQUAL(ex.n_classes, 2);
    CU_ASSERT_STRING_EQUAL(ex.class_names[0], "0");
    CU_ASSERT_STRING_EQUAL(ex.class_names[1], "1");
    CU_ASSERT_EQUAL(ex.split_end[SPLIT_TRAIN], 3);
    CU_ASSERT_STRING_EQUAL(decode(&ex, &v, 0), "정말 재미있어요!");
    CU_ASSERT_STRING_EQUAL(decode(&ex, &v, 1), "별로였다...");
    CU_ASSERT_STRING_EQUAL(decode(&ex, &v, 2), "great 영화 \xF0\x9F\x98\x80");
    CU_ASSERT_EQUAL(examples_length(&ex, 0), 9);
    CU_ASSERT_EQUAL(ex.labels[0], 1);
    CU_ASSERT_EQUAL(ex.labels[1], 0);
    CU_ASSERT_EQUAL(ex.labels[2], 1);
    CU_ASSERT_EQUAL(examples_class_id(&ex, "1"), 1);
    CU_ASSERT_EQUAL(examples_class_id(&ex, "2"), -1);
    CU_ASSERT_TRUE(examples_is_examples_file(out));
    CU_ASSERT_FALSE(examples_is_examples_file(in));
    examples_close(&ex);
    vocab_free(&v);
}

static void test_csv_quoting(void)
{
    char in[256], out[256];
    path_in(in, sizeof in, "quoted.csv");
    path_in(out, sizeof out, "quoted.h5");
    put(in, "label,text,note\r\n"
            "pos,\"hello, world\",x\r\n"
            "neg,\"she said \"\"hi\"\"\",\r\n"
            "pos,\"two\r\nlines, \"\"quoted\"\"\",\"\"\r\n"
            "neg,plain 한글,y\n");
    CU_ASSERT_EQUAL_FATAL(prepare_one(in, out, NULL, NULL), 0);
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    CU_ASSERT_EQUAL_FATAL(ex.n_examples, 4);
    CU_ASSERT_STRING_EQUAL(decode(&ex, &v, 0), "hello, world");
    CU_ASSERT_STRING_EQUAL(decode(&ex, &v, 1), "she said \"hi\"");
    CU_ASSERT_STRING_EQUAL(decode(&ex, &v, 2), "two\nlines, \"quoted\"");
    CU_ASSERT_STRING_EQUAL(decode(&ex, &v, 3), "plain 한글");
    CU_ASSERT_STRING_EQUAL(ex.class_names[ex.labels[0]], "pos");
    CU_ASSERT_STRING_EQUAL(ex.class_names[ex.labels[1]], "neg");
    examples_close(&ex);
    vocab_free(&v);
}

static void test_jsonl_escapes(void)
{
    char in[256], out[256];
    path_in(in, sizeof in, "lines.jsonl");
    path_in(out, sizeof out, "lines.h5");
    put(in, "{\"text\": \"caf\\u00e9 \\\"q\\\" \\\\ \\/ \\t end\", \"label\": 1}\n"
            "{\"id\": [1, {\"a\": null, \"b\": -2.5e3}], \"label\": \"0\", \"text\": \"\\ud83d\\ude00 가나\"}\n"
            "  {\"label\":0,\"text\":\"\\uAC00\\n\"}  \n");
    CU_ASSERT_EQUAL_FATAL(prepare_one(in, out, NULL, NULL), 0);
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    CU_ASSERT_EQUAL_FATAL(ex.n_examples, 3);
    CU_ASSERT_STRING_EQUAL(decode(&ex, &v, 0), "caf\xC3\xA9 \"q\" \\ / \t end");
    CU_ASSERT_STRING_EQUAL(decode(&ex, &v, 1), "\xF0\x9F\x98\x80 가나");
    CU_ASSERT_STRING_EQUAL(decode(&ex, &v, 2), "가\n");
    CU_ASSERT_EQUAL(ex.n_classes, 2);
    CU_ASSERT_EQUAL(ex.labels[0], 1);
    CU_ASSERT_EQUAL(ex.labels[1], 0);
    CU_ASSERT_EQUAL(ex.labels[2], 0);
    examples_close(&ex);
    vocab_free(&v);
}

static void test_class_folder(void)
{
    char dir[256], f[256], out[256];
    path_in(dir, sizeof dir, "classes");
    mkdir(dir, 0777);
    put(path_in(f, sizeof f, "classes/Korean.txt"), "Kim\nPark\nLee\n");
    put(path_in(f, sizeof f, "classes/English.txt"), "Smith\nJones");
    put(path_in(f, sizeof f, "classes/.hidden"), "not read\n");
    put(path_in(f, sizeof f, "classes/Czech.txt"), "Novak\r\n");
    path_in(out, sizeof out, "classes.h5");
    CU_ASSERT_EQUAL_FATAL(prepare_one(dir, out, NULL, NULL), 0);
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    CU_ASSERT_EQUAL_FATAL(ex.n_examples, 6);
    CU_ASSERT_EQUAL_FATAL(ex.n_classes, 3);
    CU_ASSERT_STRING_EQUAL(ex.class_names[0], "Czech");
    CU_ASSERT_STRING_EQUAL(ex.class_names[1], "English");
    CU_ASSERT_STRING_EQUAL(ex.class_names[2], "Korean");
    /* Files are read in name order, lines in file order. */
    const char *want[6] = {"Novak", "Smith", "Jones", "Kim", "Park", "Lee"};
    const int want_label[6] = {0, 1, 1, 2, 2, 2};
    for (size_t i = 0; i < 6; i++) {
        CU_ASSERT_STRING_EQUAL(decode(&ex, &v, i), want[i]);
        CU_ASSERT_EQUAL(ex.labels[i], want_label[i]);
    }
    examples_close(&ex);
    vocab_free(&v);
}

/* ---- bad input -------------------------------------------------------------- */

static void expect_error_len(const char *name, const char *content, size_t len,
                             const char *text_col, const char *want_fmt)
{
    char in[256], out[256], want[1024];
    path_in(in, sizeof in, name);
    path_in(out, sizeof out, "out.h5");
    testlib_write_file(in, content, len);
    CU_ASSERT_EQUAL(prepare_one(in, out, text_col, NULL), -1);
    snprintf(want, sizeof want, want_fmt, in, in);
    CU_ASSERT_TRUE(errmsg_is(want));
    CU_ASSERT_TRUE(scratch_has_no_tmp());
    remove(in);
}

static void expect_error(const char *name, const char *content, const char *text_col,
                         const char *want_fmt)
{
    expect_error_len(name, content, strlen(content), text_col, want_fmt);
}

static void test_bad_input(void)
{
    expect_error("missing.tsv", "id\tdocument\tlabel\n1\tgood\t1\n", NULL,
                 "'%s' line 1: no column 'text' (the header has: id, document, label)");
    expect_error("emptytext.tsv", "text\tlabel\nfine\ta\n\tb\n", NULL, "'%s' line 3: empty text");
    expect_error("emptylabel.tsv", "text\tlabel\nfine\t\n", NULL, "'%s' line 2: empty label");
    expect_error("badutf8.tsv", "text\tlabel\nok\ta\nbad \xC3\x28\tb\n", NULL,
                 "'%s' line 3: invalid UTF-8 at byte 20 (use --bytes to train on raw bytes)");
    expect_error("fields.tsv", "text\tlabel\tid\nok\ta\t1\nshort\tb\n", NULL,
                 "'%s' line 3: 2 fields where the header has 3");
    expect_error("extra.tsv", "text\tlabel\nok\ta\tx\n", NULL,
                 "'%s' line 2: 3 fields where the header has 2");
    expect_error("zero.tsv", "", NULL, "'%s' is empty");
    expect_error("header.tsv", "text\tlabel\n", NULL, "'%s' has no examples");
    expect_error("empty.jsonl", "", NULL, "'%s' is empty");
    expect_error("one.tsv", "text\tlabel\na\tx\nb\tx\n", NULL,
                 "the inputs have only one label ('x'): a classifier needs two or more");
    expect_error("unclosed.csv", "text,label\n\"open,a\nmore\n", NULL,
                 "'%s' line 2: a quoted field is not closed by the end of the file");
    expect_error("stray.csv", "text,label\nab\"c,a\n", NULL,
                 "'%s' line 2 column 3: a quote inside an unquoted field (quote the whole field)");
    expect_error("after.csv", "text,label\n\"ab\"c,a\n", NULL,
                 "'%s' line 2 column 5: expected ',' after a closing quote");
    expect_error("surrogate.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"x\\udc00\", \"label\": 2}\n",
                 NULL, "'%s' line 2 column 12: a low surrogate without a high surrogate before it");
    expect_error("nokey.jsonl", "{\"body\": \"a\", \"label\": 1}\n", NULL, "'%s' line 1: no \"text\" key");
    expect_error("float.jsonl", "{\"text\": \"a\", \"label\": 1.5}\n", NULL,
                 "'%s' line 1 column 24: \"label\" must be a string or an integer");
    expect_error("trailing.jsonl", "{\"text\": \"a\", \"label\": 1} x\n", NULL,
                 "'%s' line 1 column 27: text after the object (one JSON object per line)");
    expect_error_len("packed.tsv", "\xFD" "7zXZ\x00 rest", 11, NULL,
                 "'%s' is xz-compressed: decompress it first (xz -dk '%s')");
    expect_error("data.txt", "x\n", NULL,
                 "cannot tell the format of '%s' from its name (expected .tsv, .csv, .jsonl or a "
                 "folder of class files)");

    /* A label that only the test file has. */
    char train[256], test[256], out[256], want[600];
    path_in(train, sizeof train, "lt_train.tsv");
    path_in(test, sizeof test, "lt_test.tsv");
    path_in(out, sizeof out, "out.h5");
    put(train, "text\tlabel\none\ta\ntwo\tb\n");
    put(test, "text\tlabel\nthree\ta\nfour\tz\n");
    examples_prepare_options o;
    examples_prepare_options_init(&o);
    const char *inputs[] = {train};
    o.inputs = inputs;
    o.n_inputs = 1;
    o.test_path = test;
    o.out_path = out;
    CU_ASSERT_EQUAL(examples_prepare(&o), -1);
    snprintf(want, sizeof want, "'%s' line 3: label 'z' does not occur in the training inputs", test);
    CU_ASSERT_TRUE(errmsg_is(want));
    CU_ASSERT_TRUE(scratch_has_no_tmp());
    o.test_frac = 0.2;
    CU_ASSERT_EQUAL(examples_prepare(&o), -1);
    CU_ASSERT_TRUE(errmsg_is("a test file and a test fraction exclude each other"));

    /* A failed prepare leaves an existing output as it was. */
    FILE *f = fopen(out, "w");
    fputs("old", f);
    fclose(f);
    o.test_frac = 0;
    CU_ASSERT_EQUAL(examples_prepare(&o), -1);
    char buf[8] = {0};
    f = fopen(out, "r");
    CU_ASSERT_EQUAL(fread(buf, 1, sizeof buf - 1, f), 3);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, "old");
    remove(out);
}

/* ---- splits ----------------------------------------------------------------- */

/* n_c examples per class, texts "c<class>-<k>". */
static void write_classes(const char *path, const int *sizes, int C)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("text\tlabel\n", f);
    for (int c = 0; c < C; c++)
        for (int k = 0; k < sizes[c]; k++)
            fprintf(f, "c%d-%d\tclass%02d\n", c, k, c);
    fclose(f);
}

static int prepare_split(const char *in, const char *out, double val, double test, uint64_t seed)
{
    examples_prepare_options o;
    examples_prepare_options_init(&o);
    o.inputs = &in;
    o.n_inputs = 1;
    o.out_path = out;
    o.val_frac = val;
    o.test_frac = test;
    o.seed = seed;
    return examples_prepare(&o);
}

static void test_stratified(void)
{
    char in[256], out[256];
    path_in(in, sizeof in, "strat.tsv");
    path_in(out, sizeof out, "strat.h5");
    const int sizes[4] = {100, 37, 11, 3};
    write_classes(in, sizes, 4);
    CU_ASSERT_EQUAL_FATAL(prepare_split(in, out, 0.1, 0.2, 7), 0);
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    CU_ASSERT_EQUAL_FATAL(ex.n_classes, 4);
    size_t counts[3][4];
    const double frac[3] = {0.7, 0.1, 0.2};
    for (int s = 0; s < 3; s++) {
        examples_class_counts(&ex, s, counts[s]);
        for (int c = 0; c < 4; c++) {
            double want = frac[s] * sizes[c];
            CU_ASSERT(counts[s][c] + 1 >= want && counts[s][c] <= want + 1);
        }
    }
    for (int c = 0; c < 4; c++)
        CU_ASSERT_EQUAL(counts[0][c] + counts[1][c] + counts[2][c], (size_t)sizes[c]);
    CU_ASSERT_EQUAL(counts[2][0], 20);
    CU_ASSERT_EQUAL(counts[1][0], 10);
    /* Every example is in the split whose range holds it, and its text says its class. */
    for (size_t i = 0; i < ex.n_examples; i++) {
        char want[16];
        snprintf(want, sizeof want, "c%d-", ex.labels[i]);
        CU_ASSERT(strncmp(decode(&ex, &v, i), want, strlen(want)) == 0);
    }
    CU_ASSERT_EQUAL(ex.stats.n_read[EXAMPLES_FROM_INPUTS], 151);
    examples_close(&ex);
    vocab_free(&v);
}

/* The texts of a split, sorted, joined by '\n' (malloc'd). */
static char *split_texts(const char *path, int split)
{
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_FATAL(examples_open(&ex, path, &v) == 0);
    size_t n = ex.split_end[split] - ex.split_begin[split];
    char **t = cn_xcalloc(n + 1, sizeof *t);
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        t[i] = cn_xstrdup(decode(&ex, &v, ex.split_begin[split] + i));
        len += strlen(t[i]) + 1;
    }
    char *out = cn_xcalloc(len, 1);
    for (size_t i = 0; i < n; i++) {
        strcat(out, t[i]);
        strcat(out, "\n");
        free(t[i]);
    }
    free(t);
    examples_close(&ex);
    vocab_free(&v);
    return out;
}

static void test_seeded(void)
{
    char in[256], a[256], b[256], c[256];
    path_in(in, sizeof in, "seed.tsv");
    path_in(a, sizeof a, "seed_a.h5");
    path_in(b, sizeof b, "seed_b.h5");
    path_in(c, sizeof c, "seed_c.h5");
    const int sizes[3] = {50, 30, 20};
    write_classes(in, sizes, 3);
    CU_ASSERT_EQUAL_FATAL(prepare_split(in, a, 0.1, 0.1, 42), 0);
    CU_ASSERT_EQUAL_FATAL(prepare_split(in, b, 0.1, 0.1, 42), 0);
    CU_ASSERT_EQUAL_FATAL(prepare_split(in, c, 0.1, 0.1, 43), 0);
    int rank;
    hsize_t da[1], db[1];
    int32_t *la = testlib_read_dset(a, "labels", H5T_NATIVE_INT32, &rank, da);
    int32_t *lb = testlib_read_dset(b, "labels", H5T_NATIVE_INT32, &rank, db);
    CU_ASSERT_FATAL(la && lb && da[0] == db[0]);
    CU_ASSERT(memcmp(la, lb, da[0] * sizeof *la) == 0);
    free(la);
    free(lb);
    for (int s = 0; s < 3; s++) {
        char *ta = split_texts(a, s), *tb = split_texts(b, s), *tc = split_texts(c, s);
        CU_ASSERT_STRING_EQUAL(ta, tb);
        if (s == SPLIT_TEST)
            CU_ASSERT(strcmp(ta, tc) != 0);
        free(ta);
        free(tb);
        free(tc);
    }
}

/* Does haystack (lines joined by '\n') share a line with needle's? */
static int share_a_line(const char *x, const char *y)
{
    char *copy = cn_xstrdup(x);
    int shared = 0;
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line && !shared;
         line = strtok_r(NULL, "\n", &save)) {
        size_t n = strlen(line);
        for (const char *p = y; (p = strstr(p, line)) != NULL; p++)
            if ((p == y || p[-1] == '\n') && p[n] == '\n')
                shared = 1;
    }
    free(copy);
    return shared;
}

static void test_dedup_given_test(void)
{
    char train[256], test[256], out[256], kept[256];
    path_in(train, sizeof train, "dd_train.tsv");
    path_in(test, sizeof test, "dd_test.tsv");
    path_in(out, sizeof out, "dd.h5");
    path_in(kept, sizeof kept, "dd_kept.h5");
    /* train: "apple" twice (a, a), "pear" in test too, "plum" with two labels,
     * "fig" in test with another label. test: "kiwi" twice. */
    put(train, "text\tlabel\napple\ta\nbanana\tb\napple\ta\npear\tb\nplum\ta\nplum\tb\nfig\ta\n"
               "cherry\tb\n");
    put(test, "text\tlabel\npear\tb\nkiwi\ta\nfig\tb\nkiwi\ta\n");
    examples_prepare_options o;
    examples_prepare_options_init(&o);
    const char *inputs[] = {train};
    examples_stats st;
    o.inputs = inputs;
    o.n_inputs = 1;
    o.test_path = test;
    o.out_path = out;
    o.dedup = 1;
    o.stats = &st;
    CU_ASSERT_EQUAL_FATAL(examples_prepare(&o), 0);
    CU_ASSERT_EQUAL(st.n_read[EXAMPLES_FROM_INPUTS], 8);
    CU_ASSERT_EQUAL(st.n_read[EXAMPLES_FROM_TEST_FILE], 4);
    /* Dropped from train: apple's copy, plum's copy, pear and fig (kept in test). */
    CU_ASSERT_EQUAL(st.n_duplicates[EXAMPLES_FROM_INPUTS], 4);
    CU_ASSERT_EQUAL(st.n_duplicates[EXAMPLES_FROM_TEST_FILE], 1);
    CU_ASSERT_EQUAL(st.n_label_conflicts, 2); /* plum (a/b), fig (a in train, b in test) */
    CU_ASSERT_EQUAL(st.n_split[SPLIT_TRAIN], 4);
    CU_ASSERT_EQUAL(st.n_split[SPLIT_VAL], 0);
    CU_ASSERT_EQUAL(st.n_split[SPLIT_TEST], 3);
    CU_ASSERT_EQUAL(st.n_cross_split, 0);
    char *tr = split_texts(out, SPLIT_TRAIN), *te = split_texts(out, SPLIT_TEST);
    CU_ASSERT_STRING_EQUAL(tr, "apple\nbanana\nplum\ncherry\n");
    CU_ASSERT_STRING_EQUAL(te, "pear\nkiwi\nfig\n");
    CU_ASSERT_FALSE(share_a_line(tr, te));
    free(tr);
    free(te);
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    CU_ASSERT_EQUAL(ex.stats.n_duplicates[EXAMPLES_FROM_INPUTS], 4);
    CU_ASSERT_EQUAL(ex.stats.n_label_conflicts, 2);
    CU_ASSERT_EQUAL(ex.stats.dedup, 1);
    /* fig keeps the test file's label. */
    CU_ASSERT_STRING_EQUAL(decode(&ex, &v, ex.split_end[SPLIT_TEST] - 1), "fig");
    CU_ASSERT_STRING_EQUAL(ex.class_names[ex.labels[ex.split_end[SPLIT_TEST] - 1]], "b");
    examples_close(&ex);
    vocab_free(&v);

    /* Without dedup the copies stay, and the leaks are counted. */
    o.dedup = 0;
    o.out_path = kept;
    CU_ASSERT_EQUAL_FATAL(examples_prepare(&o), 0);
    CU_ASSERT_EQUAL(st.n_split[SPLIT_TRAIN], 8);
    CU_ASSERT_EQUAL(st.n_split[SPLIT_TEST], 4);
    CU_ASSERT_EQUAL(st.n_duplicates[EXAMPLES_FROM_INPUTS], 4);
    CU_ASSERT_EQUAL(st.n_cross_split, 2); /* pear, fig */
    char *text = NULL;
    size_t text_len = 0;
    FILE *f = open_memstream(&text, &text_len);
    examples_stats_print(&st, f);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(text,
                           "examples: 12 (train 8, val 0, test 4), 2 classes, 17 symbols, 52 tokens\n"
                           "read: 8 from the inputs, 4 from the test file\n"
                           "duplicates: 5 (inputs 4, val file 0, test file 1), kept (--dedup drops "
                           "them)\n"
                           "label conflicts: 2 texts with two or more labels (every copy kept with "
                           "its label)\n"
                           "leaks: 2 texts are in more than one split\n");
    free(text);
}

static void test_dedup_drawn_split(void)
{
    char in[256], out[256];
    path_in(in, sizeof in, "dd_drawn.tsv");
    path_in(out, sizeof out, "dd_drawn.h5");
    FILE *f = fopen(in, "w");
    fputs("text\tlabel\n", f);
    for (int k = 0; k < 400; k++)
        fprintf(f, "name%d\t%s\n", k % 120, k % 2 ? "odd" : "even");
    fclose(f);
    examples_prepare_options o;
    examples_prepare_options_init(&o);
    examples_stats st;
    o.inputs = (const char *[]){in};
    o.n_inputs = 1;
    o.out_path = out;
    o.val_frac = 0.1;
    o.test_frac = 0.25;
    o.dedup = 1;
    o.stats = &st;
    CU_ASSERT_EQUAL_FATAL(examples_prepare(&o), 0);
    CU_ASSERT_EQUAL(st.n_examples, 120);
    CU_ASSERT_EQUAL(st.n_duplicates[EXAMPLES_FROM_INPUTS], 280);
    CU_ASSERT_EQUAL(st.n_label_conflicts, 0);
    char *texts[3];
    for (int s = 0; s < 3; s++)
        texts[s] = split_texts(out, s);
    CU_ASSERT_FALSE(share_a_line(texts[0], texts[2]));
    CU_ASSERT_FALSE(share_a_line(texts[0], texts[1]));
    CU_ASSERT_FALSE(share_a_line(texts[1], texts[2]));
    for (int s = 0; s < 3; s++)
        free(texts[s]);
    CU_ASSERT_EQUAL(st.n_split[SPLIT_TEST], 30);
    CU_ASSERT_EQUAL(st.n_split[SPLIT_VAL], 12);
}

/* ---- reading ---------------------------------------------------------------- */

static void test_read_many_and_lengths(void)
{
    char in[256], out[256];
    path_in(in, sizeof in, "many.tsv");
    path_in(out, sizeof out, "many.h5");
    FILE *f = fopen(in, "w");
    fputs("text\tlabel\n", f);
    for (int k = 1; k <= 100; k++) {
        for (int j = 0; j < k; j++)
            fputc('a' + (k + j) % 26, f);
        fprintf(f, "\t%d\n", k % 3);
    }
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(prepare_one(in, out, NULL, NULL), 0);
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    const size_t idx[] = {57, 3, 4, 5, 99, 3, 0, 58};
    size_t n = sizeof idx / sizeof idx[0], total = 0;
    for (size_t k = 0; k < n; k++)
        total += examples_length(&ex, idx[k]);
    int32_t *many = cn_xmalloc(total * sizeof *many), one[128];
    CU_ASSERT_EQUAL_FATAL(examples_read_many(&ex, idx, n, many), 0);
    size_t at = 0;
    for (size_t k = 0; k < n; k++) {
        size_t len = examples_length(&ex, idx[k]);
        CU_ASSERT_EQUAL(len, idx[k] + 1);
        CU_ASSERT_EQUAL_FATAL(examples_read_tokens(&ex, idx[k], one), 0);
        CU_ASSERT(memcmp(many + at, one, len * sizeof *one) == 0);
        at += len;
    }
    free(many);
    size_t bad = 100;
    CU_ASSERT_EQUAL(examples_read_many(&ex, &bad, 1, one), -1);
    examples_length_stats ls;
    examples_split_lengths(&ex, SPLIT_ALL, &ls);
    CU_ASSERT_EQUAL(ls.n, 100);
    CU_ASSERT_EQUAL(ls.min, 1);
    CU_ASSERT_EQUAL(ls.max, 100);
    CU_ASSERT_EQUAL(ls.total, 5050);
    CU_ASSERT_EQUAL(ls.p50, 50);
    CU_ASSERT_EQUAL(ls.p90, 90);
    CU_ASSERT_EQUAL(ls.p99, 99);
    CU_ASSERT_EQUAL(ex.max_len, 100);
    CU_ASSERT_DOUBLE_EQUAL(ls.mean, 50.5, 1e-12);
    examples_close(&ex);
    vocab_free(&v);
}

/* Sparse picks over a larger file take the grouped-union path (more than
 * EX_BLOCKS_PER_READ blocks, a span far larger than what is asked for). */
static void test_read_sparse(void)
{
    char in[256], out[256];
    path_in(in, sizeof in, "sparse.tsv");
    path_in(out, sizeof out, "sparse.h5");
    FILE *f = fopen(in, "w");
    fputs("text\tlabel\n", f);
    for (int k = 0; k < 3000; k++) {
        for (int j = 0; j <= k % 23; j++)
            fputc('a' + (k * 7 + j) % 26, f);
        fprintf(f, "\t%d\n", k % 2);
    }
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(prepare_one(in, out, NULL, NULL), 0);
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    enum { N = 150, T = 9 };
    size_t idx[N], total = 0;
    for (int k = 0; k < N; k++) {
        idx[k] = (size_t)((N - k) * 19 % 3000); /* descending, with neighbours and repeats */
        if (k % 10 == 3)
            idx[k] = idx[k - 1] + 1;
        if (k % 10 == 7)
            idx[k] = idx[k - 2];
        total += examples_length(&ex, idx[k]);
    }
    int32_t *many = cn_xmalloc(total * sizeof *many), one[32], x[T * N], len[N], y[N];
    CU_ASSERT_EQUAL_FATAL(examples_read_many(&ex, idx, N, many), 0);
    CU_ASSERT_EQUAL_FATAL(examples_fill_batch(&ex, idx, N, T, -1, x, len, y, NULL), 0);
    size_t at = 0;
    for (int k = 0; k < N; k++) {
        size_t n = examples_length(&ex, idx[k]);
        CU_ASSERT_EQUAL_FATAL(examples_read_tokens(&ex, idx[k], one), 0);
        CU_ASSERT(memcmp(many + at, one, n * sizeof *one) == 0);
        at += n;
        CU_ASSERT_EQUAL(len[k], (int32_t)(n < T ? n : T));
        CU_ASSERT_EQUAL(y[k], (int32_t)(idx[k] % 2));
        for (int t = 0; t < T; t++)
            CU_ASSERT_EQUAL(x[t * N + k], t < len[k] ? one[t] : -1);
    }
    free(many);
    examples_close(&ex);
    vocab_free(&v);
}

static void test_fill_batch(void)
{
    char in[256], out[256];
    path_in(in, sizeof in, "batch.tsv");
    path_in(out, sizeof out, "batch.h5");
    put(in, "text\tlabel\nabcdef\tx\nab\ty\nabcd\tx\nbcdefgh\ty\nc\tx\n");
    CU_ASSERT_EQUAL_FATAL(prepare_one(in, out, NULL, NULL), 0);
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    /* ids: a=0 b=1 ... h=7. Rows 3, 1, 2, 1 (a repeat), 4 with T = 4. */
    const size_t idx[5] = {3, 1, 2, 1, 4};
    enum { B = 5, T = 4 };
    int32_t x[T * B], len[B], y[B];
    int truncated = -1;
    CU_ASSERT_EQUAL_FATAL(examples_fill_batch(&ex, idx, B, T, -1, x, len, y, &truncated), 0);
    const int32_t want_x[T][B] = {{1, 0, 0, 0, 2}, {2, 1, 1, 1, -1}, {3, -1, 2, -1, -1},
                                  {4, -1, 3, -1, -1}};
    const int32_t want_len[B] = {4, 2, 4, 2, 1}, want_y[B] = {1, 1, 0, 1, 0};
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            CU_ASSERT_EQUAL(x[t * B + b], want_x[t][b]);
    for (int b = 0; b < B; b++) {
        CU_ASSERT_EQUAL(len[b], want_len[b]);
        CU_ASSERT_EQUAL(y[b], want_y[b]);
    }
    CU_ASSERT_EQUAL(truncated, 1); /* "bcdefgh"; "abcd" fits exactly */
    /* Neighbouring capped rows must not merge into one block: 0 is cut at 4. */
    const size_t two[2] = {0, 1};
    int32_t x2[T * 2], len2[2], y2[2];
    CU_ASSERT_EQUAL_FATAL(examples_fill_batch(&ex, two, 2, T, 9, x2, len2, y2, NULL), 0);
    const int32_t want_x2[T * 2] = {0, 0, 1, 1, 2, 9, 3, 9};
    CU_ASSERT(memcmp(x2, want_x2, sizeof x2) == 0);
    examples_close(&ex);
    vocab_free(&v);
}

static void test_bytes_and_val_file(void)
{
    char train[256], val[256], out[256], want[700];
    path_in(train, sizeof train, "bv_train.tsv");
    path_in(val, sizeof val, "bv_val.tsv");
    path_in(out, sizeof out, "bv.h5");
    testlib_write_file(train, "text\tlabel\nok\ta\nla\xE9tin\tb\n", 25);
    put(val, "text\tlabel\nval text\tb\nok\ta\n");
    examples_prepare_options o;
    examples_prepare_options_init(&o);
    examples_stats st;
    const char *inputs[] = {train};
    o.inputs = inputs;
    o.n_inputs = 1;
    o.val_path = val;
    o.test_frac = 0.5;
    o.out_path = out;
    o.stats = &st;
    CU_ASSERT_EQUAL(examples_prepare(&o), -1); /* Latin-1 is not UTF-8 */
    snprintf(want, sizeof want,
             "'%s' line 3: invalid UTF-8 at byte 18 (use --bytes to train on raw bytes)", train);
    CU_ASSERT_TRUE(errmsg_is(want));
    o.mode = VOCAB_BYTES;
    o.dedup = 1;
    CU_ASSERT_EQUAL_FATAL(examples_prepare(&o), 0);
    /* "ok" is kept in the val file and dropped from the inputs. */
    CU_ASSERT_EQUAL(st.n_duplicates[EXAMPLES_FROM_INPUTS], 1);
    CU_ASSERT_EQUAL(st.n_split[SPLIT_VAL], 2);
    CU_ASSERT_EQUAL(st.n_split[SPLIT_TRAIN] + st.n_split[SPLIT_TEST], 1);
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    CU_ASSERT_EQUAL(v.mode, VOCAB_BYTES);
    size_t i = ex.split_begin[SPLIT_TRAIN] < ex.split_end[SPLIT_TRAIN] ? ex.split_begin[SPLIT_TRAIN]
                                                                       : ex.split_begin[SPLIT_TEST];
    CU_ASSERT_STRING_EQUAL(decode(&ex, &v, i), "la\xE9tin");
    CU_ASSERT_EQUAL(examples_length(&ex, i), 6);
    examples_close(&ex);
    vocab_free(&v);

    /* An input given again as the val file, or as the output. */
    o.val_path = train;
    CU_ASSERT_EQUAL(examples_prepare(&o), -1);
    snprintf(want, sizeof want, "'%s' is both an input and in the val split given", train);
    CU_ASSERT_TRUE(errmsg_is(want));
    o.val_path = val;
    o.out_path = train;
    CU_ASSERT_EQUAL(examples_prepare(&o), -1);
    snprintf(want, sizeof want, "'%s' is both an input and the output", train);
    CU_ASSERT_TRUE(errmsg_is(want));
}

static void test_damaged(void)
{
    char in[256], out[256], want[600];
    path_in(in, sizeof in, "damage.tsv");
    path_in(out, sizeof out, "damage.h5");
    put(in, "text\tlabel\nsomething long enough to find\ta\nanother text\tb\n");
    CU_ASSERT_EQUAL_FATAL(prepare_one(in, out, NULL, NULL), 0);
    /* Flip one byte of the stored text (ids are one byte each here). */
    FILE *f = fopen(out, "r+b");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    unsigned char *buf = cn_xmalloc((size_t)size);
    rewind(f);
    CU_ASSERT_FATAL(fread(buf, 1, (size_t)size, f) == (size_t)size);
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    int32_t ids[64];
    CU_ASSERT_EQUAL_FATAL(examples_read_tokens(&ex, 0, ids), 0);
    size_t n = examples_length(&ex, 0);
    examples_close(&ex);
    long at = -1;
    for (long k = 0; k + (long)n <= size && at < 0; k++) {
        size_t j = 0;
        while (j < n && buf[k + (long)j] == (unsigned char)ids[j])
            j++;
        if (j == n)
            at = k;
    }
    CU_ASSERT_FATAL(at >= 0);
    fseek(f, at + 3, SEEK_SET);
    fputc(buf[at + 3] ^ 0x01, f);
    fclose(f);
    free(buf);
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    CU_ASSERT_EQUAL(examples_read_tokens(&ex, 0, ids), -1);
    snprintf(want, sizeof want, "'%s' is damaged: checksum mismatch in /tokens", out);
    CU_ASSERT_TRUE(errmsg_is(want));
    examples_close(&ex);
    vocab_free(&v);
    CU_ASSERT_EQUAL(examples_open(&ex, in, &v), -1);
    snprintf(want, sizeof want, "'%s' is not a charnn examples file", in);
    CU_ASSERT_TRUE(errmsg_is(want));
}

/* ---- the names set ----------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Independently of the library: distinct lines and lines with two or more
 * labels over the class files. */
static void names_reference(const char *dir, size_t *n_lines, size_t *n_distinct,
                            size_t *n_conflicts)
{
    DIR *d = opendir(dir);
    CU_ASSERT_FATAL(d != NULL);
    size_t cap = 32768, n = 0;
    char **pairs = cn_xmalloc(cap * sizeof *pairs);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024], line[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        CU_ASSERT_FATAL(f != NULL);
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            char pair[1024];
            snprintf(pair, sizeof pair, "%s\t%s", line, e->d_name);
            if (n == cap)
                pairs = cn_xrealloc(pairs, (cap *= 2) * sizeof *pairs);
            pairs[n++] = cn_xstrdup(pair);
        }
        fclose(f);
    }
    closedir(d);
    qsort(pairs, n, sizeof *pairs, cmp_str);
    *n_lines = n;
    *n_distinct = 0;
    *n_conflicts = 0;
    for (size_t i = 0; i < n;) {
        size_t tl = strcspn(pairs[i], "\t"), j = i + 1;
        int labels = 1;
        while (j < n && strncmp(pairs[j], pairs[i], tl + 1) == 0) {
            labels += strcmp(pairs[j], pairs[j - 1]) != 0;
            j++;
        }
        (*n_distinct)++;
        *n_conflicts += labels > 1;
        i = j;
    }
    for (size_t i = 0; i < n; i++)
        free(pairs[i]);
    free(pairs);
}

static void test_names(void)
{
    const char *dir = CHARNN_SHARED_DATA "/names";
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        printf("\n    skipped: %s is missing ", dir);
        return;
    }
    size_t n_lines, n_distinct, n_conflicts;
    names_reference(dir, &n_lines, &n_distinct, &n_conflicts);
    CU_ASSERT_EQUAL(n_lines, 20074);
    CU_ASSERT_EQUAL(n_distinct, 17459);

    char out[256];
    path_in(out, sizeof out, "names.h5");
    examples_prepare_options o;
    examples_prepare_options_init(&o);
    examples_stats st;
    o.inputs = &dir;
    o.n_inputs = 1;
    o.out_path = out;
    o.test_frac = 0.1;
    o.dedup = 1;
    o.seed = 5;
    o.stats = &st;
    double t0 = cn_now();
    CU_ASSERT_EQUAL_FATAL(examples_prepare(&o), 0);
    double t1 = cn_now();
    CU_ASSERT_EQUAL(st.n_read[EXAMPLES_FROM_INPUTS], 20074);
    CU_ASSERT_EQUAL(st.n_examples, 17459);
    CU_ASSERT_EQUAL(st.n_duplicates[EXAMPLES_FROM_INPUTS], 20074 - 17459);
    CU_ASSERT_EQUAL(st.n_label_conflicts, n_conflicts);
    CU_ASSERT_EQUAL(st.n_classes, 18);
    CU_ASSERT_EQUAL(st.n_cross_split, 0);
    printf("\n    names: %zu read, %zu kept, %zu texts with two or more labels, train %zu / test "
           "%zu, vocab %d (%.2fs) ",
           st.n_read[0], st.n_examples, st.n_label_conflicts, st.n_split[SPLIT_TRAIN],
           st.n_split[SPLIT_TEST], st.vocab_size, t1 - t0);
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    CU_ASSERT_STRING_EQUAL(ex.class_names[0], "Arabic");
    CU_ASSERT_STRING_EQUAL(ex.class_names[17], "Vietnamese");
    size_t all[18], test[18];
    examples_class_counts(&ex, SPLIT_ALL, all);
    examples_class_counts(&ex, SPLIT_TEST, test);
    /* Arabic: 2,000 lines, 108 distinct (LC_ALL=C sort -u Arabic.txt | wc -l; the data
     * README says 109); read first, it keeps every one of its texts. */
    CU_ASSERT_EQUAL(all[0], 108);
    for (int c = 0; c < 18; c++)
        CU_ASSERT(test[c] * 10 + 5 >= all[c] && test[c] * 10 <= all[c] + 5);
    examples_close(&ex);
    vocab_free(&v);

    /* The published split keeps duplicates: every line is an example. */
    o.dedup = 0;
    CU_ASSERT_EQUAL_FATAL(examples_prepare(&o), 0);
    CU_ASSERT_EQUAL(st.n_examples, 20074);
    CU_ASSERT(st.n_cross_split > 0);
    printf("\n    names with duplicates: %zu texts in both train and test ", st.n_cross_split);
    remove(out);
}

/* NSMC-rebuilt with its own test file: decompressed into the scratch
 * directory as the user would (xz -dk), then prepared with dedup. */
static void test_nsmc(void)
{
    const char *dir = CHARNN_SHARED_DATA "/nsmc";
    struct stat sb;
    if (stat(dir, &sb) != 0 || testlib_system("command -v xz >/dev/null") != 0) {
        printf("\n    skipped: %s or xz is missing ", dir);
        return;
    }
    char train[256], test[256], out[256];
    path_in(train, sizeof train, "nsmc_train.tsv");
    path_in(test, sizeof test, "nsmc_test.tsv");
    path_in(out, sizeof out, "nsmc.h5");
    CU_ASSERT_EQUAL_FATAL(testlib_system("xz -dc %s/train.tsv.xz > %s", dir, train), 0);
    CU_ASSERT_EQUAL_FATAL(testlib_system("xz -dc %s/test.tsv.xz > %s", dir, test), 0);
    examples_prepare_options o;
    examples_prepare_options_init(&o);
    examples_stats st;
    const char *inputs[] = {train};
    o.inputs = inputs;
    o.n_inputs = 1;
    o.test_path = test;
    o.val_frac = 0.05;
    o.text_col = "document";
    o.dedup = 1;
    o.out_path = out;
    o.stats = &st;
    double t0 = cn_now();
    CU_ASSERT_EQUAL_FATAL(examples_prepare(&o), 0);
    double t1 = cn_now();
    CU_ASSERT_EQUAL(st.n_read[EXAMPLES_FROM_INPUTS], 150000);
    CU_ASSERT_EQUAL(st.n_read[EXAMPLES_FROM_TEST_FILE], 50000);
    CU_ASSERT_EQUAL(st.n_classes, 2);
    CU_ASSERT_EQUAL(st.n_split[SPLIT_TEST], 50000 - st.n_duplicates[EXAMPLES_FROM_TEST_FILE]);
    CU_ASSERT_EQUAL(st.n_split[SPLIT_TRAIN] + st.n_split[SPLIT_VAL],
                    150000 - st.n_duplicates[EXAMPLES_FROM_INPUTS]);
    printf("\n    nsmc: train %zu, val %zu, test %zu; duplicates dropped: %zu from train, %zu from "
           "test; %zu label conflicts; vocab %d; %zu tokens (%.2fs) ",
           st.n_split[SPLIT_TRAIN], st.n_split[SPLIT_VAL], st.n_split[SPLIT_TEST],
           st.n_duplicates[EXAMPLES_FROM_INPUTS], st.n_duplicates[EXAMPLES_FROM_TEST_FILE],
           st.n_label_conflicts, st.vocab_size, st.n_tokens, t1 - t0);
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    CU_ASSERT_STRING_EQUAL(ex.class_names[0], "0");
    CU_ASSERT_STRING_EQUAL(ex.class_names[1], "1");
    CU_ASSERT_STRING_EQUAL(decode(&ex, &v, 0), "내게 영감의 뮤즈를 ...!");
    examples_length_stats ls;
    examples_split_lengths(&ex, SPLIT_TRAIN, &ls);
    printf("\n    nsmc train lengths: mean %.1f, p50 %zu, p90 %zu, p99 %zu, max %zu ", ls.mean,
           ls.p50, ls.p90, ls.p99, ls.max);
    examples_close(&ex);
    vocab_free(&v);
    remove(train);
    remove(test);
    remove(out);
}

/* ---- bounded memory ------------------------------------------------------------ */

/* n examples of about len bytes each (mixed ASCII and Hangul), two labels. */
static void write_big_tsv(const char *path, size_t n, size_t len)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("id\ttext\tlabel\n", f);
    uint64_t x = 88172645463325252ull;
    char *line = cn_xmalloc(len + 8);
    for (size_t i = 0; i < n; i++) {
        size_t at = 0;
        while (at < len) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (x % 4 == 0) {
                char h[4];
                at += (size_t)utf8_encode(0xAC00u + (uint32_t)(x >> 20) % 2000u, h);
                memcpy(line + at - 3, h, 3);
            } else {
                line[at++] = (char)('a' + (x >> 8) % 26);
            }
        }
        fprintf(f, "%zu\t%.*s\t%d\n", i, (int)at, line, (int)(x >> 40) & 1);
    }
    free(line);
    fclose(f);
}

static long prepare_in_child(const char *in, const char *out)
{
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        execl("/proc/self/exe", "test_examples", CHILD_FLAG, out, in, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    CU_ASSERT_FATAL(wait4(pid, &status, 0, &ru) == pid);
    CU_ASSERT_FATAL(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return ru.ru_maxrss;
}

static void test_bounded_memory(void)
{
    char small[256], big[256], many[256], out[256];
    path_in(small, sizeof small, "mem16.tsv");
    path_in(big, sizeof big, "mem64.tsv");
    path_in(many, sizeof many, "mem_many.tsv");
    path_in(out, sizeof out, "mem.h5");
    /* The same 100k examples, 160 and 640 bytes long: 16 and 64 MiB of text;
     * then 400k examples of 160 bytes (64 MiB). */
    write_big_tsv(small, 100000, 160);
    write_big_tsv(big, 100000, 640);
    write_big_tsv(many, 400000, 160);
    double t0 = cn_now();
    long rss_small = prepare_in_child(small, out);
    double t1 = cn_now();
    long rss_big = prepare_in_child(big, out);
    double t2 = cn_now();
    long rss_many = prepare_in_child(many, out);
    double t3 = cn_now();
    printf("\n    peak RSS of prepare: 100k x 160 B %.1f MiB (%.1fs), 100k x 640 B %.1f MiB (%.1fs), "
           "400k x 160 B %.1f MiB (%.1fs) ",
           rss_small / 1024.0, t1 - t0, rss_big / 1024.0, t2 - t1, rss_many / 1024.0, t3 - t2);
    if (UNDER_ASAN) {
        printf("(bound not checked under AddressSanitizer) ");
    } else {
        /* Four times the text costs (almost) nothing more; four times the
         * examples costs about 48 bytes each (300k more: about 14 MiB). */
        CU_ASSERT(rss_big < 48L * 1024);
        CU_ASSERT(labs(rss_big - rss_small) < 4L * 1024);
        CU_ASSERT(rss_many - rss_small < 24L * 1024);
    }
    examples_file ex;
    vocab v = {0};
    CU_ASSERT_EQUAL_FATAL(examples_open(&ex, out, &v), 0);
    CU_ASSERT_EQUAL(ex.n_examples, 400000);
    examples_close(&ex);
    vocab_free(&v);
    remove(small);
    remove(big);
    remove(many);
    remove(out);
}

static int child_prepare(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    examples_prepare_options o;
    examples_prepare_options_init(&o);
    o.inputs = (const char *const *)(argv + 3);
    o.n_inputs = 1;
    o.out_path = argv[2];
    o.val_frac = 0.05;
    o.test_frac = 0.05;
    o.dedup = 1;
    if (examples_prepare(&o) != 0) {
        fprintf(stderr, "test_examples child: %s\n", cn_errmsg());
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], CHILD_FLAG) == 0)
        return child_prepare(argc, argv);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    testlib_scratch_dir(SCRATCH);

    CU_pSuite s = testlib_suite("examples");
    testlib_add(s, "TSV by column name, Korean text", test_tsv_korean);
    testlib_add(s, "CSV quoting (RFC 4180)", test_csv_quoting);
    testlib_add(s, "JSON lines escapes and surrogate pairs", test_jsonl_escapes);
    testlib_add(s, "a folder of class files", test_class_folder);
    testlib_add(s, "bad input: exact errors, nothing written", test_bad_input);
    testlib_add(s, "stratified split within one example per class", test_stratified);
    testlib_add(s, "seeded determinism", test_seeded);
    testlib_add(s, "dedup across a given test file", test_dedup_given_test);
    testlib_add(s, "dedup before a drawn split", test_dedup_drawn_split);
    testlib_add(s, "read_many and length statistics", test_read_many_and_lengths);
    testlib_add(s, "a time-major batch with truncation", test_fill_batch);
    testlib_add(s, "sparse batches (grouped union reads)", test_read_sparse);
    testlib_add(s, "byte mode and a given val file", test_bytes_and_val_file);
    testlib_add(s, "damaged and foreign files", test_damaged);
    testlib_add(s, "the names set", test_names);
    testlib_add(s, "NSMC-rebuilt with its own test file", test_nsmc);
    testlib_add(s, "bounded memory", test_bounded_memory);
    int rc = testlib_run(argc, argv);
    testlib_system("rm -rf %s", SCRATCH);
    return rc;
}
