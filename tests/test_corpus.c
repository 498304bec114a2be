/* Tests for corpus: prepared HDF5 corpora match the in-memory encoding of the
 * same text, whatever the read buffer size; errors name the file and offset;
 * and preparing runs in memory that does not grow with the corpus.
 *
 * Files go to a scratch directory under the working directory (run the test
 * binary from a scratch place such as the build tree), removed at the end. */
#define _DEFAULT_SOURCE /* wait4 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "charnn/common.h"
#include "charnn/corpus.h"
#include "charnn/data.h"
#include "charnn/vocab.h"
#include "testlib.h"

#define SCRATCH "corpus_test_scratch"
#define CHILD_FLAG "--corpus-prepare-child"

static const char text_ascii[] = "Hello, world!\nThe quick brown fox jumps over the lazy dog.\n";
static const char text_korean[] = "안녕하세요, 세계!\n"
                                  "\xF0\x9F\x99\x82 \xF0\x9F\x9A\x80 emoji \xE2\x9C\x93\n";

static int errmsg_has(const char *needle)
{
    if (strstr(cn_errmsg(), needle))
        return 1;
    fprintf(stderr, "\n  message '%s' lacks '%s'\n", cn_errmsg(), needle);
    return 0;
}

static const char *scratch(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", SCRATCH, name);
    return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
    testlib_write_file(path, data, len);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Every token of a prepared corpus. */
static int32_t *read_all(data_source *src)
{
    int32_t *ids = cn_xmalloc(src->n_tokens * sizeof *ids);
    CU_ASSERT_EQUAL(src->read(src, 0, src->n_tokens, ids), 0);
    return ids;
}

/* Decode ids back to bytes; returns the byte count written to out. */
static size_t decode_all(const vocab *v, const int32_t *ids, size_t n, char *out)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)vocab_decode(v, ids[i], out + len);
    return len;
}

/* Size in bytes of one stored token id. */
static size_t stored_id_size(const char *path)
{
    size_t size = 0;
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    hid_t dset = H5Dopen2(file, "/tokens", H5P_DEFAULT);
    CU_ASSERT_FATAL(dset >= 0);
    hid_t type = H5Dget_type(dset);
    CU_ASSERT_FATAL(type >= 0);
    size = H5Tget_size(type);
    CU_ASSERT_EQUAL(H5Tget_sign(type), H5T_SGN_NONE);
    H5Tclose(type);
    H5Dclose(dset);
    H5Fclose(file);
    return size;
}

/* Prepare `inputs` with the given buffer and check that the corpus decodes to
 * their concatenation, has its vocabulary and ids of id_size bytes. */
static void check_round_trip(const char *const *inputs, int n_inputs, const char *concat,
                             size_t concat_len, vocab_mode mode, size_t buffer_bytes,
                             size_t id_size)
{
    char out[256];
    scratch(out, sizeof out, "round.h5");
    int rc = corpus_prepare(inputs, n_inputs, out, mode, 0.1, 0.1, buffer_bytes);
    if (rc != 0)
        fprintf(stderr, "\n  prepare: %s\n", cn_errmsg());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_TRUE(corpus_is_prepared(out));

    data_source src;
    vocab v = {0};
    data_splits sp;
    CU_ASSERT_EQUAL_FATAL(data_source_open_prepared(&src, out, &v, &sp), 0);
    vocab expect;
    CU_ASSERT_EQUAL_FATAL(vocab_build(&expect, (const uint8_t *)concat, concat_len, mode, "concat"),
                          0);
    CU_ASSERT_TRUE(vocab_equal(&v, &expect));

    int32_t *ids = read_all(&src);
    char *decoded = cn_xmalloc(4 * src.n_tokens + 1);
    size_t len = decode_all(&v, ids, src.n_tokens, decoded);
    CU_ASSERT_EQUAL(len, concat_len);
    CU_ASSERT_TRUE(len == concat_len && memcmp(decoded, concat, len) == 0);
    CU_ASSERT_EQUAL(stored_id_size(out), id_size);

    free(decoded);
    free(ids);
    vocab_free(&expect);
    vocab_free(&v);
    data_source_close(&src);
    remove(out);
}

static void test_round_trip_two_files(void)
{
    char a[256], b[256];
    scratch(a, sizeof a, "ascii.txt");
    scratch(b, sizeof b, "korean.txt");
    write_file(a, text_ascii, strlen(text_ascii));
    write_file(b, text_korean, strlen(text_korean));
    char concat[512];
    snprintf(concat, sizeof concat, "%s%s", text_ascii, text_korean);
    const char *inputs[] = {a, b};
    /* 4..9 bytes put every UTF-8 sequence across a buffer boundary somewhere. */
    for (size_t buf = 4; buf <= 9; buf++)
        check_round_trip(inputs, 2, concat, strlen(concat), VOCAB_CODEPOINTS, buf, 1);
    check_round_trip(inputs, 2, concat, strlen(concat), VOCAB_CODEPOINTS,
                     CORPUS_DEFAULT_BUFFER_BYTES, 1);
    /* A buffer below one UTF-8 sequence is raised to one. */
    check_round_trip(inputs, 2, concat, strlen(concat), VOCAB_CODEPOINTS, 1, 1);
}

/* Text of n distinct code points from U+00A0 upward (no surrogates), each
 * followed by a space; returns its length. */
static size_t distinct_text(char *out, int n)
{
    size_t len = 0;
    uint32_t cp = 0xA0;
    for (int i = 0; i < n; i++, cp++) {
        if (cp == 0xD800u)
            cp = 0xE000u;
        len += (size_t)utf8_encode(cp, out + len);
        out[len++] = ' ';
    }
    return len;
}

static void test_wide_vocabularies(void)
{
    char path[256];
    scratch(path, sizeof path, "wide.txt");
    const char *inputs[] = {path};

    char *text = cn_xmalloc((size_t)70000 * 5);
    size_t len = distinct_text(text, 300); /* V = 301 > 256 */
    write_file(path, text, len);
    check_round_trip(inputs, 1, text, len, VOCAB_CODEPOINTS, 7, 2);

    len = distinct_text(text, 70000); /* V = 70001 > 65536 */
    write_file(path, text, len);
    check_round_trip(inputs, 1, text, len, VOCAB_CODEPOINTS, 4096, 4);
    free(text);
    remove(path);
}

static void test_bytes_mode(void)
{
    char path[256];
    scratch(path, sizeof path, "binary.bin");
    uint8_t data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 37u + (i >> 3)); /* invalid UTF-8 in plenty */
    write_file(path, data, sizeof data);
    const char *inputs[] = {path};
    check_round_trip(inputs, 1, (const char *)data, sizeof data, VOCAB_BYTES, 5, 1);

    char out[256];
    scratch(out, sizeof out, "binary.h5");
    CU_ASSERT_EQUAL_FATAL(corpus_prepare(inputs, 1, out, VOCAB_BYTES, 0.0, 0.0, 64), 0);
    data_source src;
    vocab v = {0};
    data_splits sp;
    CU_ASSERT_EQUAL_FATAL(data_source_open_prepared(&src, out, &v, &sp), 0);
    CU_ASSERT_EQUAL(v.mode, VOCAB_BYTES);
    CU_ASSERT_EQUAL(src.n_tokens, sizeof data);
    data_source_close(&src);
    vocab_free(&v);
    /* The same bytes in code-point mode are rejected. */
    CU_ASSERT_EQUAL(corpus_prepare(inputs, 1, out, VOCAB_CODEPOINTS, 0.0, 0.0, 64), -1);
    CU_ASSERT_TRUE(errmsg_has("use --bytes"));
    remove(out);
    remove(path);
}

static void read_string_attr(hid_t file, const char *name, char *buf, size_t cap)
{
    buf[0] = '\0';
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    CU_ASSERT_FATAL(attr >= 0);
    hid_t type = H5Aget_type(attr);
    CU_ASSERT_FATAL(type >= 0 && H5Tget_size(type) < cap);
    CU_ASSERT_EQUAL(H5Aread(attr, type, buf), 0);
    H5Tclose(type);
    H5Aclose(attr);
}

static void test_splits_and_attributes(void)
{
    char a[256], b[256], out[256];
    scratch(a, sizeof a, "a.txt");
    scratch(b, sizeof b, "b.txt");
    scratch(out, sizeof out, "splits.h5");
    write_file(a, text_ascii, strlen(text_ascii));
    write_file(b, text_korean, strlen(text_korean));
    const char *inputs[] = {a, b};
    CU_ASSERT_EQUAL_FATAL(corpus_prepare(inputs, 2, out, VOCAB_CODEPOINTS, 0.15, 0.1, 4096), 0);

    data_source src;
    vocab v = {0};
    data_splits sp, expect;
    CU_ASSERT_EQUAL_FATAL(data_source_open_prepared(&src, out, &v, &sp), 0);
    CU_ASSERT_EQUAL_FATAL(data_splits_init(&expect, src.n_tokens, 0.15, 0.1), 0);
    for (int s = SPLIT_TRAIN; s <= SPLIT_ALL; s++) {
        CU_ASSERT_EQUAL(sp.begin[s], expect.begin[s]);
        CU_ASSERT_EQUAL(sp.end[s], expect.end[s]);
    }
    size_t n_expect = 0;
    for (const char *p = text_ascii; *p; p++)
        n_expect++;
    for (const uint8_t *p = (const uint8_t *)text_korean; *p; p++)
        n_expect += (*p & 0xC0u) != 0x80u;
    CU_ASSERT_EQUAL(src.n_tokens, n_expect);
    data_source_close(&src);
    vocab_free(&v);

    hid_t file = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    char text[1024], joined[600];
    read_string_attr(file, "format", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "charnn-corpus");
    read_string_attr(file, "vocab_mode", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "codepoints");
    read_string_attr(file, "sources", text, sizeof text);
    snprintf(joined, sizeof joined, "%s\n%s", a, b);
    CU_ASSERT_STRING_EQUAL(text, joined);
    uint64_t n_attr = 0;
    double val = 0;
    hid_t attr = H5Aopen(file, "n_tokens", H5P_DEFAULT);
    CU_ASSERT_EQUAL(H5Aread(attr, H5T_NATIVE_UINT64, &n_attr), 0);
    H5Aclose(attr);
    attr = H5Aopen(file, "val_frac", H5P_DEFAULT);
    CU_ASSERT_EQUAL(H5Aread(attr, H5T_NATIVE_DOUBLE, &val), 0);
    H5Aclose(attr);
    CU_ASSERT_EQUAL(n_attr, n_expect);
    CU_ASSERT_DOUBLE_EQUAL(val, 0.15, 0.0);
    H5Fclose(file);

    /* Nothing but the corpus is left beside it. */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
    CU_ASSERT_FALSE(file_exists(tmp));
    remove(out);
}

/* A text of about n_bytes: ASCII words and Hangul syllables from a fixed
 * pseudo-random sequence (so chunks differ). */
static size_t mixed_text(char *out, size_t n_bytes, unsigned seed)
{
    static const char *const words[] = {"the ", "corpus ", "안녕 ", "세계 ", "하세요. ", "\n",
                                        "streaming ", "데이터 "};
    size_t len = 0;
    unsigned s = seed;
    while (len + 16 < n_bytes) {
        s = s * 1103515245u + 12345u;
        const char *w = words[(s >> 16) % 8u];
        size_t wl = strlen(w);
        memcpy(out + len, w, wl);
        len += wl;
        if ((s >> 8) % 5u == 0)
            len += (size_t)utf8_encode(0xAC00u + (s >> 20) % 400u, out + len);
    }
    return len;
}

static void test_hyperslab_reads(void)
{
    char path[256], out[256];
    scratch(path, sizeof path, "mixed.txt");
    scratch(out, sizeof out, "mixed.h5");
    size_t cap = (size_t)600 * 1024;
    char *text = cn_xmalloc(cap);
    size_t len = mixed_text(text, cap, 7);
    write_file(path, text, len);
    const char *inputs[] = {path};
    CU_ASSERT_EQUAL_FATAL(corpus_prepare(inputs, 1, out, VOCAB_CODEPOINTS, 0.1, 0.1, 1000), 0);

    data_source prep, mem;
    vocab v = {0};
    data_splits sp;
    CU_ASSERT_EQUAL_FATAL(data_source_open_prepared(&prep, out, &v, &sp), 0);
    /* Encoded in memory with the corpus's own vocabulary. */
    CU_ASSERT_EQUAL_FATAL(data_source_open_text(&mem, path, &v, VOCAB_CODEPOINTS), 0);
    CU_ASSERT_EQUAL_FATAL(prep.n_tokens, mem.n_tokens);
    CU_ASSERT_FATAL(prep.n_tokens > 3 * 65536); /* several chunks */
    CU_ASSERT_EQUAL(stored_id_size(out), 2); /* V > 256 */

    size_t ranges[][2] = {{0, 1}, {65530, 20}, {100000, 70000}, {prep.n_tokens - 17, 17},
                          {prep.n_tokens / 2, 1}};
    int32_t *a = cn_xmalloc(80000 * sizeof *a), *b = cn_xmalloc(80000 * sizeof *b);
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        CU_ASSERT_EQUAL(prep.read(&prep, ranges[r][0], ranges[r][1], a), 0);
        CU_ASSERT_EQUAL(mem.read(&mem, ranges[r][0], ranges[r][1], b), 0);
        CU_ASSERT_EQUAL(memcmp(a, b, ranges[r][1] * sizeof *a), 0);
    }
    CU_ASSERT_EQUAL(prep.read(&prep, prep.n_tokens, 0, a), 0);
    CU_ASSERT_EQUAL(prep.read(&prep, prep.n_tokens - 5, 6, a), -1);
    CU_ASSERT_TRUE(errmsg_has("cannot read tokens"));
    CU_ASSERT_EQUAL(prep.read(&prep, prep.n_tokens + 1, 0, a), -1);

    /* Batches of a rank's streams are the same from either source. */
    batch_plan plan;
    CU_ASSERT_EQUAL_FATAL(batch_plan_init(&plan, sp.begin[SPLIT_TRAIN], sp.end[SPLIT_TRAIN], 8, 2,
                                          3, 50, 0, "train"),
                          0);
    int32_t x1[153], x2[153], scratch_ids[51];
    for (size_t k = 0; k < plan.n_chunks; k += plan.n_chunks / 7 + 1) {
        CU_ASSERT_EQUAL(batch_read_window(&plan, &prep, k, x1, scratch_ids), 0);
        CU_ASSERT_EQUAL(batch_read_window(&plan, &mem, k, x2, scratch_ids), 0);
        CU_ASSERT_EQUAL(memcmp(x1, x2, sizeof x1), 0);
    }

    /* The vocabulary a model brings must be the corpus's. */
    data_source again;
    data_splits sp2;
    CU_ASSERT_EQUAL(data_source_open_prepared(&again, out, &v, &sp2), 0);
    data_source_close(&again);
    vocab other;
    CU_ASSERT_EQUAL_FATAL(vocab_build(&other, (const uint8_t *)"abc", 3, VOCAB_CODEPOINTS, "x"), 0);
    CU_ASSERT_EQUAL(data_source_open_prepared(&again, out, &other, &sp2), -1);
    CU_ASSERT_TRUE(errmsg_has("has a different vocabulary than the model"));
    CU_ASSERT_EQUAL(other.size, 3); /* left as it was */
    vocab_free(&other);

    free(a);
    free(b);
    free(text);
    data_source_close(&prep);
    data_source_close(&mem);
    vocab_free(&v);
    remove(out);
    remove(path);
}

static void test_invalid_utf8(void)
{
    char a[256], b[256], out[256], msg[600];
    scratch(a, sizeof a, "good.txt");
    scratch(b, sizeof b, "bad.txt");
    scratch(out, sizeof out, "bad.h5");
    write_file(a, text_korean, strlen(text_korean));
    const char *inputs[] = {a, b};

    /* A stray continuation byte after 25 good bytes (Korean is 3 bytes each). */
    const char bad[] = "안녕하세요 ok\x80 rest";
    write_file(b, bad, strlen(bad));
    for (size_t buf = 4; buf <= 8; buf++) {
        CU_ASSERT_EQUAL(corpus_prepare(inputs, 2, out, VOCAB_CODEPOINTS, 0.1, 0.1, buf), -1);
        snprintf(msg, sizeof msg, "invalid UTF-8 in '%s' at byte 18 (use --bytes", b);
        CU_ASSERT_TRUE(errmsg_has(msg));
    }
    /* A sequence cut short by the end of the file: not carried forever. */
    const char cut[] = "ab\xEC\x95";
    write_file(b, cut, strlen(cut));
    for (size_t buf = 4; buf <= 6; buf++) {
        CU_ASSERT_EQUAL(corpus_prepare(inputs, 2, out, VOCAB_CODEPOINTS, 0.1, 0.1, buf), -1);
        snprintf(msg, sizeof msg, "invalid UTF-8 in '%s' at byte 2 ", b);
        CU_ASSERT_TRUE(errmsg_has(msg));
    }
    /* Nothing is left behind by a failed prepare. */
    CU_ASSERT_FALSE(file_exists(out));
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
    CU_ASSERT_FALSE(file_exists(tmp));
    remove(a);
    remove(b);
}

static void test_errors(void)
{
    char a[256], missing[256], out[256], empty[256];
    scratch(a, sizeof a, "plain.txt");
    scratch(missing, sizeof missing, "missing.txt");
    scratch(out, sizeof out, "errors.h5");
    scratch(empty, sizeof empty, "empty.txt");
    write_file(a, text_ascii, strlen(text_ascii));
    write_file(empty, "", 0);
    data_source src;
    vocab v = {0};
    data_splits sp;
    char msg[600];

    const char *with_missing[] = {a, missing};
    CU_ASSERT_EQUAL(corpus_prepare(with_missing, 2, out, VOCAB_CODEPOINTS, 0.1, 0.1, 4096), -1);
    snprintf(msg, sizeof msg, "cannot open '%s': No such file or directory", missing);
    CU_ASSERT_TRUE(errmsg_has(msg));
    CU_ASSERT_FALSE(file_exists(out));

    const char *only_empty[] = {empty};
    CU_ASSERT_EQUAL(corpus_prepare(only_empty, 1, out, VOCAB_CODEPOINTS, 0.1, 0.1, 4096), -1);
    CU_ASSERT_TRUE(errmsg_has("is empty"));
    const char *two_empty[] = {empty, empty};
    CU_ASSERT_EQUAL(corpus_prepare(two_empty, 2, out, VOCAB_CODEPOINTS, 0.1, 0.1, 4096), -1);
    CU_ASSERT_TRUE(errmsg_has("all 2 inputs are empty"));
    /* An empty file among others is fine. */
    const char *some_empty[] = {empty, a, empty};
    CU_ASSERT_EQUAL(corpus_prepare(some_empty, 3, out, VOCAB_CODEPOINTS, 0.1, 0.1, 4096), 0);
    remove(out);

    const char *one[] = {a};
    CU_ASSERT_EQUAL(corpus_prepare(one, 1, SCRATCH "/no/such/dir/x.h5", VOCAB_CODEPOINTS, 0.1,
                                   0.1, 4096),
                    -1);
    CU_ASSERT_TRUE(errmsg_has("cannot create '" SCRATCH "/no/such/dir/x.h5'"));
    CU_ASSERT_EQUAL(corpus_prepare(one, 1, out, VOCAB_CODEPOINTS, 0.6, 0.5, 4096), -1);
    CU_ASSERT_TRUE(errmsg_has("--val-frac"));
    CU_ASSERT_FALSE(file_exists(out));

    /* Opening: missing, a text file, an HDF5 file of something else. */
    CU_ASSERT_EQUAL(data_source_open_prepared(&src, missing, &v, &sp), -1);
    CU_ASSERT_TRUE(errmsg_has("No such file or directory"));
    CU_ASSERT_FALSE(corpus_is_prepared(missing));
    CU_ASSERT_FALSE(corpus_is_prepared(a));
    CU_ASSERT_EQUAL(data_source_open_prepared(&src, a, &v, &sp), -1);
    snprintf(msg, sizeof msg, "'%s' is not a charnn corpus", a);
    CU_ASSERT_TRUE(errmsg_has(msg));

    char other[256];
    scratch(other, sizeof other, "other.h5");
    hid_t file = H5Fcreate(other, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    H5Fclose(file);
    CU_ASSERT_TRUE(corpus_is_prepared(other));
    CU_ASSERT_EQUAL(data_source_open_prepared(&src, other, &v, &sp), -1);
    snprintf(msg, sizeof msg, "'%s' is not a charnn corpus", other);
    CU_ASSERT_TRUE(errmsg_has(msg));
    CU_ASSERT_EQUAL(v.size, 0);
    remove(other);
    remove(a);
    remove(empty);
}

/* Flip one byte inside the first chunk of /tokens. */
static void damage_first_chunk(const char *path)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    hid_t dset = H5Dopen2(file, "/tokens", H5P_DEFAULT);
    hid_t space = H5Dget_space(dset);
    hsize_t coords[1];
    unsigned mask = 0;
    haddr_t addr = 0;
    hsize_t size = 0;
    CU_ASSERT_FATAL(H5Dget_chunk_info(dset, space, 0, coords, &mask, &addr, &size) >= 0);
    H5Sclose(space);
    H5Dclose(dset);
    H5Fclose(file);
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(fseek(f, (long)addr + 3, SEEK_SET), 0);
    int c = fgetc(f);
    CU_ASSERT_EQUAL(fseek(f, (long)addr + 3, SEEK_SET), 0);
    fputc(c ^ 0x01, f);
    fclose(f);
}

static void test_checksum(void)
{
    char a[256], out[256];
    scratch(a, sizeof a, "check.txt");
    scratch(out, sizeof out, "check.h5");
    write_file(a, text_ascii, strlen(text_ascii));
    const char *one[] = {a};
    CU_ASSERT_EQUAL_FATAL(corpus_prepare(one, 1, out, VOCAB_CODEPOINTS, 0.1, 0.1, 4096), 0);
    damage_first_chunk(out);
    data_source src;
    vocab v = {0};
    data_splits sp;
    CU_ASSERT_EQUAL_FATAL(data_source_open_prepared(&src, out, &v, &sp), 0);
    int32_t ids[8];
    CU_ASSERT_EQUAL(src.read(&src, 0, 8, ids), -1);
    char msg[600];
    snprintf(msg, sizeof msg, "'%s' is damaged: checksum mismatch in /tokens", out);
    CU_ASSERT_TRUE(errmsg_has(msg));
    data_source_close(&src);
    vocab_free(&v);
    remove(out);
    remove(a);
}

/* ---- bounded memory ------------------------------------------------------ */

/* A file of about mb MiB of mixed text; returns its code-point count. */
static size_t write_big_text(const char *path, int mb)
{
    size_t block_len = (size_t)1 << 20;
    char *block = cn_xmalloc(block_len);
    size_t n_tokens = 0, written = 0;
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    for (int i = 0; i < mb; i++) {
        size_t len = mixed_text(block, block_len, (unsigned)i + 1u);
        for (size_t k = 0; k < len; k++)
            n_tokens += ((uint8_t)block[k] & 0xC0u) != 0x80u;
        written += fwrite(block, 1, len, f);
    }
    CU_ASSERT_EQUAL(fclose(f), 0);
    free(block);
    (void)written;
    return n_tokens;
}

/* Prepare in a fresh process and return its peak resident set in KiB. */
static long prepare_in_child(const char *in, const char *out)
{
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        execl("/proc/self/exe", "test_corpus", CHILD_FLAG, out, in, (char *)NULL);
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
    char small[256], big[256], out_small[256], out_big[256];
    scratch(small, sizeof small, "big16.txt");
    scratch(big, sizeof big, "big64.txt");
    scratch(out_small, sizeof out_small, "big16.h5");
    scratch(out_big, sizeof out_big, "big64.h5");
    size_t n_small = write_big_text(small, 16);
    size_t n_big = write_big_text(big, 64);

    double t0 = cn_now();
    long rss_small = prepare_in_child(small, out_small);
    double t1 = cn_now();
    long rss_big = prepare_in_child(big, out_big);
    double t2 = cn_now();
    printf("\n    peak RSS of prepare: 16 MiB corpus %.1f MiB (%.1fs), 64 MiB corpus %.1f MiB "
           "(%.1fs) ",
           (double)rss_small / 1024.0, t1 - t0, (double)rss_big / 1024.0, t2 - t1);
    /* Holding the text alone would take 64 MiB; the token array as much again.
     * About 21 MiB measured: 4 MiB buffer, 2 MiB of ids, the bitmap, HDF5 and
     * the libraries mapped (Open MPI among them). */
    if (UNDER_ASAN) {
        printf("(bound not checked under AddressSanitizer) ");
    } else {
        CU_ASSERT(rss_big < 40L * 1024);
        CU_ASSERT(labs(rss_big - rss_small) < 4L * 1024);
    }

    data_source src;
    vocab v = {0};
    data_splits sp;
    CU_ASSERT_EQUAL_FATAL(data_source_open_prepared(&src, out_small, &v, &sp), 0);
    CU_ASSERT_EQUAL(src.n_tokens, n_small);
    data_source_close(&src);
    vocab_free(&v);
    CU_ASSERT_EQUAL_FATAL(data_source_open_prepared(&src, out_big, &v, &sp), 0);
    CU_ASSERT_EQUAL(src.n_tokens, n_big);
    int32_t ids[100];
    CU_ASSERT_EQUAL(src.read(&src, n_big - 100, 100, ids), 0);
    data_source_close(&src);
    vocab_free(&v);

    remove(small);
    remove(big);
    remove(out_small);
    remove(out_big);
}

static int child_prepare(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    const char *const *inputs = (const char *const *)(argv + 3);
    if (corpus_prepare(inputs, argc - 3, argv[2], VOCAB_CODEPOINTS, 0.05, 0.05,
                       CORPUS_DEFAULT_BUFFER_BYTES) != 0) {
        fprintf(stderr, "test_corpus child: %s\n", cn_errmsg());
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], CHILD_FLAG) == 0)
        return child_prepare(argc, argv);
    /* The tests check cn_errmsg; HDF5's own traces would only add noise. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    testlib_scratch_dir(SCRATCH);

    CU_pSuite s = testlib_suite("corpus");
    testlib_add(s, "round trip of two files, UTF-8 across buffer edges", test_round_trip_two_files);
    testlib_add(s, "uint16 and uint32 ids for wide vocabularies", test_wide_vocabularies);
    testlib_add(s, "bytes mode", test_bytes_mode);
    testlib_add(s, "stored splits and attributes", test_splits_and_attributes);
    testlib_add(s, "hyperslab reads equal the in-memory encoding", test_hyperslab_reads);
    testlib_add(s, "invalid UTF-8 names the file and offset", test_invalid_utf8);
    testlib_add(s, "errors: missing, empty, unwritable, not a corpus", test_errors);
    testlib_add(s, "checksum mismatch is reported", test_checksum);
    testlib_add(s, "prepare runs in bounded memory", test_bounded_memory);
    int rc = testlib_run(argc, argv);
    testlib_system("rm -rf '%s'", SCRATCH);
    return rc;
}
