/* Tests for vocab: the UTF-8 codec, code-point and byte vocabularies, and the
 * messages a user sees for bad input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/vocab.h"
#include "testlib.h"

/* Encode text with v; returns the token count or aborts the test on error. */
static size_t encode_ok(const vocab *v, const char *text, size_t len, int32_t *out)
{
    size_t n = 0;
    int rc = vocab_encode(v, (const uint8_t *)text, len, out, &n, "t.txt");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return n;
}

/* The bytes that decoding ids gives back. */
static size_t decode_all(const vocab *v, const int32_t *ids, size_t n, char *out)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)vocab_decode(v, ids[i], out + len);
    return len;
}

static int errmsg_has(const char *needle)
{
    if (strstr(cn_errmsg(), needle))
        return 1;
    fprintf(stderr, "\n  message '%s' lacks '%s'\n", cn_errmsg(), needle);
    return 0;
}

static void test_decode_valid(void)
{
    static const struct {
        const char *bytes;
        int len;
        uint32_t cp;
    } cases[] = {
        {"A", 1, 0x41},
        {"\x7F", 1, 0x7F},
        {"\xC2\x80", 2, 0x80},
        {"\xC3\xA9", 2, 0xE9},
        {"\xDF\xBF", 2, 0x7FF},
        {"\xE0\xA0\x80", 3, 0x800},
        {"\xEC\x95\x88", 3, 0xC548},
        {"\xED\x9F\xBF", 3, 0xD7FF},
        {"\xEE\x80\x80", 3, 0xE000},
        {"\xEF\xBF\xBF", 3, 0xFFFF},
        {"\xF0\x90\x80\x80", 4, 0x10000},
        {"\xF0\x9F\x98\x80", 4, 0x1F600},
        {"\xF4\x8F\xBF\xBF", 4, 0x10FFFF},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t cp = 0;
        int used = utf8_decode((const uint8_t *)cases[i].bytes, (size_t)cases[i].len, &cp);
        CU_ASSERT_EQUAL(used, cases[i].len);
        CU_ASSERT_EQUAL(cp, cases[i].cp);
    }
    /* Trailing bytes after a complete sequence are not consumed. */
    uint32_t cp = 0;
    CU_ASSERT_EQUAL(utf8_decode((const uint8_t *)"\xC3\xA9x", 3, &cp), 2);
    CU_ASSERT_EQUAL(cp, 0xE9);
}

static void test_decode_invalid(void)
{
    static const struct {
        const char *bytes;
        size_t len;
    } cases[] = {
        {"\xFF", 1},                 /* never valid */
        {"\xFE", 1},                 /* never valid */
        {"\x80", 1},                 /* stray continuation */
        {"\xBF", 1},                 /* stray continuation */
        {"\xC0\xAF", 2},             /* overlong '/' */
        {"\xC1\xBF", 2},             /* overlong 2-byte */
        {"\xE0\x80\xAF", 3},         /* overlong 3-byte */
        {"\xE0\x9F\xBF", 3},         /* overlong U+07FF */
        {"\xF0\x80\x80\xAF", 4},     /* overlong 4-byte */
        {"\xF0\x8F\xBF\xBF", 4},     /* overlong U+FFFF */
        {"\xED\xA0\x80", 3},         /* surrogate U+D800 */
        {"\xED\xBF\xBF", 3},         /* surrogate U+DFFF */
        {"\xE4\xB8", 2},             /* truncated 3-byte */
        {"\xC3", 1},                 /* truncated 2-byte */
        {"\xF0\x9F\x98", 3},         /* truncated 4-byte */
        {"\xC3\x41", 2},             /* bad continuation */
        {"\xE4\xB8\x41", 3},         /* bad last continuation */
        {"\xF4\x90\x80\x80", 4},     /* U+110000 */
        {"\xF5\x80\x80\x80", 4},     /* lead byte above F4 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t cp = 0;
        int used = utf8_decode((const uint8_t *)cases[i].bytes, cases[i].len, &cp);
        if (used != 0)
            fprintf(stderr, "\n  case %zu decoded as U+%04X\n", i, (unsigned)cp);
        CU_ASSERT_EQUAL(used, 0);
    }
}

static void test_encode_every_scalar(void)
{
    int bad = 0;
    for (uint32_t cp = 0; cp <= VOCAB_MAX_CODEPOINT; cp++) {
        if (cp >= 0xD800u && cp <= 0xDFFFu)
            continue;
        char buf[4];
        int n = utf8_encode(cp, buf);
        int want = cp < 0x80u ? 1 : cp < 0x800u ? 2 : cp < 0x10000u ? 3 : 4;
        uint32_t back = 0;
        int used = utf8_decode((const uint8_t *)buf, (size_t)n, &back);
        if (n != want || used != n || back != cp)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_korean(void)
{
    const char *text = "안녕하세요 세계";
    size_t len = strlen(text);
    vocab v;
    CU_ASSERT_EQUAL_FATAL(vocab_build(&v, (const uint8_t *)text, len, VOCAB_CODEPOINTS, "k.txt"), 0);
    static const uint32_t want_symbols[] = {0x20, 0xACC4, 0xB155, 0xC138, 0xC548, 0xC694, 0xD558};
    CU_ASSERT_EQUAL_FATAL(v.size, 7);
    for (int i = 0; i < 7; i++)
        CU_ASSERT_EQUAL(v.symbols[i], want_symbols[i]);
    int32_t ids[64];
    size_t n = encode_ok(&v, text, len, ids);
    /* 안 녕 하 세 요 ' ' 세 계 */
    static const int32_t want_ids[] = {4, 2, 6, 3, 5, 0, 3, 1};
    CU_ASSERT_EQUAL_FATAL(n, 8);
    for (int i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(ids[i], want_ids[i]);
    CU_ASSERT_EQUAL(vocab_id(&v, 0xC548), 4);
    CU_ASSERT_EQUAL(vocab_id(&v, 'a'), -1);
    CU_ASSERT_EQUAL(vocab_id(&v, 0x110000), -1);
    vocab_free(&v);
    CU_ASSERT_EQUAL(v.size, 0);
    CU_ASSERT_PTR_NULL(v.index);
}

static void test_emoji(void)
{
    const char *text = "\xF0\x9F\x98\x80\xF0\x9F\x9A\x80\xF0\x9F\x98\x80" "a";
    size_t len = strlen(text);
    vocab v;
    CU_ASSERT_EQUAL_FATAL(vocab_build(&v, (const uint8_t *)text, len, VOCAB_CODEPOINTS, "e.txt"), 0);
    CU_ASSERT_EQUAL_FATAL(v.size, 3);
    CU_ASSERT_EQUAL(v.symbols[0], 'a');
    CU_ASSERT_EQUAL(v.symbols[1], 0x1F600);
    CU_ASSERT_EQUAL(v.symbols[2], 0x1F680);
    int32_t ids[16];
    size_t n = encode_ok(&v, text, len, ids);
    CU_ASSERT_EQUAL_FATAL(n, 4);
    CU_ASSERT_EQUAL(ids[0], 1);
    CU_ASSERT_EQUAL(ids[1], 2);
    CU_ASSERT_EQUAL(ids[2], 1);
    CU_ASSERT_EQUAL(ids[3], 0);
    vocab_free(&v);
}

static void test_roundtrip_mixed(void)
{
    const char *text = "Hello, 세계! caf\xC3\xA9 \xF0\x9F\x9A\x80 \xE2\x82\xAC" "100\n\ttab~\x7F";
    size_t len = strlen(text);
    vocab v;
    CU_ASSERT_EQUAL_FATAL(vocab_build(&v, (const uint8_t *)text, len, VOCAB_CODEPOINTS, "m.txt"), 0);
    for (int i = 1; i < v.size; i++)
        CU_ASSERT(v.symbols[i - 1] < v.symbols[i]);
    int32_t ids[128];
    char back[128];
    size_t n = encode_ok(&v, text, len, ids);
    /* Hello,(6) ' '(1) 세계!(3) ' ' caf é(5) ' ' rocket(2) ' ' € 100 \n \t tab ~ DEL */
    CU_ASSERT_EQUAL(n, 6 + 1 + 3 + 5 + 2 + 2 + 3 + 2 + 5);
    size_t blen = decode_all(&v, ids, n, back);
    CU_ASSERT_EQUAL_FATAL(blen, len);
    CU_ASSERT(memcmp(back, text, len) == 0);
    vocab_free(&v);
}

static const struct {
    const char *bad;
    size_t len;
} invalid_cases[] = {
    {"\xFF", 1},
    {"\xC0\xAF", 2},
    {"\xED\xA0\x80", 3},
    {"\xE4\xB8", 2},
    {"\xF4\x90\x80\x80", 4},
    {"\x80", 1},
};

static void test_invalid_utf8_offsets(void)
{
    /* "안a" is 4 bytes, so every bad sequence starts at byte 4. */
    for (size_t c = 0; c < sizeof invalid_cases / sizeof invalid_cases[0]; c++) {
        for (int at_end = 0; at_end < 2; at_end++) {
            char text[32];
            size_t len = 0;
            memcpy(text, "\xEC\x95\x88" "a", 4);
            len = 4;
            memcpy(text + len, invalid_cases[c].bad, invalid_cases[c].len);
            len += invalid_cases[c].len;
            if (!at_end) {
                memcpy(text + len, "zz", 2);
                len += 2;
            }
            vocab v;
            CU_ASSERT_EQUAL(vocab_build(&v, (const uint8_t *)text, len, VOCAB_CODEPOINTS, "bad.txt"),
                            -1);
            CU_ASSERT(errmsg_has("invalid UTF-8 in 'bad.txt' at byte 4 "));
            CU_ASSERT(errmsg_has("--bytes"));
            CU_ASSERT_EQUAL(v.size, 0);
            CU_ASSERT_PTR_NULL(v.index);

            /* Encoding with an existing vocabulary reports the same offset. */
            vocab ok;
            CU_ASSERT_EQUAL_FATAL(vocab_build(&ok, (const uint8_t *)"a\xEC\x95\x88zz", 6,
                                              VOCAB_CODEPOINTS, "ok.txt"), 0);
            int32_t ids[32];
            size_t n = 0;
            CU_ASSERT_EQUAL(vocab_encode(&ok, (const uint8_t *)text, len, ids, &n, "enc.txt"), -1);
            CU_ASSERT(errmsg_has("invalid UTF-8 in 'enc.txt' at byte 4"));
            vocab_free(&ok);

            /* Byte mode takes any bytes and gives them back unchanged. */
            vocab vb;
            CU_ASSERT_EQUAL_FATAL(vocab_build(&vb, (const uint8_t *)text, len, VOCAB_BYTES, "bad.txt"),
                                  0);
            n = encode_ok(&vb, text, len, ids);
            CU_ASSERT_EQUAL(n, len);
            char back[32];
            CU_ASSERT_EQUAL(decode_all(&vb, ids, n, back), len);
            CU_ASSERT(memcmp(back, text, len) == 0);
            vocab_free(&vb);
        }
    }
}

static void test_bytes_mode(void)
{
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)(255 - i);
    vocab v;
    CU_ASSERT_EQUAL_FATAL(vocab_build(&v, all, sizeof all, VOCAB_BYTES, "all.bin"), 0);
    CU_ASSERT_EQUAL_FATAL(v.size, 256);
    for (int i = 0; i < 256; i++)
        CU_ASSERT_EQUAL(v.symbols[i], (uint32_t)i);
    int32_t ids[256];
    size_t n = encode_ok(&v, (const char *)all, sizeof all, ids);
    CU_ASSERT_EQUAL(n, 256);
    CU_ASSERT_EQUAL(ids[0], 255);
    CU_ASSERT_EQUAL(ids[255], 0);
    CU_ASSERT_EQUAL(vocab_id(&v, 256), -1);
    vocab_free(&v);

    /* A Hangul syllable is three byte tokens in byte mode. */
    CU_ASSERT_EQUAL_FATAL(vocab_build(&v, (const uint8_t *)"\xEC\x95\x88", 3, VOCAB_BYTES, "k"), 0);
    CU_ASSERT_EQUAL(v.size, 3);
    vocab_free(&v);
}

static void test_encode_outside_vocab(void)
{
    vocab v;
    CU_ASSERT_EQUAL_FATAL(vocab_build(&v, (const uint8_t *)"abc", 3, VOCAB_CODEPOINTS, "train.txt"), 0);
    int32_t ids[32];
    size_t n = 0;
    CU_ASSERT_EQUAL(vocab_encode(&v, (const uint8_t *)"ab\xC3\xA9", 4, ids, &n, "x.txt"), -1);
    CU_ASSERT(errmsg_has("'x.txt' at byte 2: character '\xC3\xA9' (U+00E9) is not in the model's vocabulary"));

    /* The offset counts bytes, not characters. */
    CU_ASSERT_EQUAL(vocab_encode(&v, (const uint8_t *)"a\xC3\xA9", 3, ids, &n, "x.txt"), -1);
    CU_ASSERT_EQUAL(vocab_encode(&v, (const uint8_t *)"abc\xF0\x9F\x98\x80", 7, ids, &n, "x.txt"), -1);
    CU_ASSERT(errmsg_has("at byte 3: character '\xF0\x9F\x98\x80' (U+1F600)"));

    /* A newline is shown by number only, keeping the message on one line. */
    CU_ASSERT_EQUAL(vocab_encode(&v, (const uint8_t *)"ab\n", 3, ids, &n, "x.txt"), -1);
    CU_ASSERT(errmsg_has("at byte 2: character U+000A is not"));
    CU_ASSERT_PTR_NULL(strchr(cn_errmsg(), '\n'));
    vocab_free(&v);

    CU_ASSERT_EQUAL_FATAL(vocab_build(&v, (const uint8_t *)"abc", 3, VOCAB_BYTES, "train.txt"), 0);
    CU_ASSERT_EQUAL(vocab_encode(&v, (const uint8_t *)"ab\xE9", 3, ids, &n, "y.txt"), -1);
    CU_ASSERT(errmsg_has("'y.txt' at byte 2: byte 0xE9 is not in the model's vocabulary"));
    CU_ASSERT_EQUAL(vocab_encode(&v, (const uint8_t *)"abcz", 4, ids, &n, "y.txt"), -1);
    CU_ASSERT(errmsg_has("at byte 3: byte 'z' (0x7A)"));
    vocab_free(&v);
}

static void test_empty(void)
{
    vocab v;
    CU_ASSERT_EQUAL(vocab_build(&v, (const uint8_t *)"", 0, VOCAB_CODEPOINTS, "e.txt"), -1);
    CU_ASSERT(errmsg_has("'e.txt' is empty"));
    CU_ASSERT_EQUAL(vocab_build(&v, (const uint8_t *)"", 0, VOCAB_BYTES, "e.bin"), -1);
    CU_ASSERT(errmsg_has("'e.bin' is empty"));
}

static void test_from_symbols(void)
{
    vocab v, built;
    const char *text = "b\xEC\x95\x88" "a\xF0\x9F\x98\x80";
    CU_ASSERT_EQUAL_FATAL(vocab_build(&built, (const uint8_t *)text, strlen(text), VOCAB_CODEPOINTS,
                                      "s.txt"), 0);
    static const uint32_t good[] = {'a', 'b', 0xC548, 0x1F600};
    CU_ASSERT_EQUAL_FATAL(vocab_from_symbols(&v, VOCAB_CODEPOINTS, good, 4), 0);
    CU_ASSERT(vocab_equal(&v, &built));
    CU_ASSERT_EQUAL(vocab_id(&v, 0x1F600), 3);
    CU_ASSERT_EQUAL(vocab_id(&v, 'c'), -1);
    int32_t a[16], b[16];
    size_t na = encode_ok(&v, text, strlen(text), a);
    size_t nb = encode_ok(&built, text, strlen(text), b);
    CU_ASSERT_EQUAL_FATAL(na, nb);
    CU_ASSERT(memcmp(a, b, na * sizeof *a) == 0);
    vocab_free(&v);

    vocab bytes;
    CU_ASSERT_EQUAL_FATAL(vocab_from_symbols(&bytes, VOCAB_BYTES, good, 2), 0);
    CU_ASSERT(!vocab_equal(&bytes, &built));
    vocab_free(&bytes);
    vocab_free(&built);

    static const uint32_t unsorted[] = {'b', 'a'};
    CU_ASSERT_EQUAL(vocab_from_symbols(&v, VOCAB_CODEPOINTS, unsorted, 2), -1);
    CU_ASSERT(errmsg_has("ascending"));
    CU_ASSERT_EQUAL(v.size, 0);
    static const uint32_t dup[] = {'a', 'a'};
    CU_ASSERT_EQUAL(vocab_from_symbols(&v, VOCAB_CODEPOINTS, dup, 2), -1);
    static const uint32_t surrogate[] = {'a', 0xD800};
    CU_ASSERT_EQUAL(vocab_from_symbols(&v, VOCAB_CODEPOINTS, surrogate, 2), -1);
    static const uint32_t too_big[] = {'a', 0x110000};
    CU_ASSERT_EQUAL(vocab_from_symbols(&v, VOCAB_CODEPOINTS, too_big, 2), -1);
    static const uint32_t not_byte[] = {'a', 256};
    CU_ASSERT_EQUAL(vocab_from_symbols(&v, VOCAB_BYTES, not_byte, 2), -1);
    CU_ASSERT_EQUAL(vocab_from_symbols(&v, VOCAB_CODEPOINTS, good, 0), -1);
}

/* A corpus of a few megabytes must still round-trip, crossing every path of
 * the encode loop many times. */
static void test_large_roundtrip(void)
{
    static const char *const pieces[] = {"the ", "\xEC\x95\x88\xEB\x85\x95 ", "\xC3\xA9",
                                         "\xF0\x9F\x98\x80", "\n", "xyz."};
    size_t cap = 4u << 20, len = 0;
    char *text = cn_xmalloc(cap);
    unsigned long long s = 12345;
    while (len + 16 < cap) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const char *p = pieces[(s >> 33) % 6];
        size_t pl = strlen(p);
        memcpy(text + len, p, pl);
        len += pl;
    }
    vocab v;
    CU_ASSERT_EQUAL_FATAL(vocab_build(&v, (const uint8_t *)text, len, VOCAB_CODEPOINTS, "big"), 0);
    CU_ASSERT_EQUAL(v.size, 13);
    int32_t *ids = cn_xmalloc(len * sizeof *ids);
    size_t n = encode_ok(&v, text, len, ids);
    char *back = cn_xmalloc(len);
    CU_ASSERT_EQUAL(decode_all(&v, ids, n, back), len);
    CU_ASSERT(memcmp(back, text, len) == 0);
    free(back);
    free(ids);
    free(text);
    vocab_free(&v);
}

int main(int argc, char **argv)
{
    CU_pSuite codec = testlib_suite("utf8");
    testlib_add(codec, "decode valid sequences", test_decode_valid);
    testlib_add(codec, "decode rejects invalid sequences", test_decode_invalid);
    testlib_add(codec, "encode/decode every scalar value", test_encode_every_scalar);

    CU_pSuite vs = testlib_suite("vocab");
    testlib_add(vs, "korean syllables are single tokens", test_korean);
    testlib_add(vs, "emoji are single tokens", test_emoji);
    testlib_add(vs, "mixed text round trip", test_roundtrip_mixed);
    testlib_add(vs, "invalid utf-8 offsets; byte mode accepts", test_invalid_utf8_offsets);
    testlib_add(vs, "byte mode", test_bytes_mode);
    testlib_add(vs, "encode outside the vocabulary", test_encode_outside_vocab);
    testlib_add(vs, "empty text", test_empty);
    testlib_add(vs, "vocab from symbols", test_from_symbols);
    testlib_add(vs, "large round trip", test_large_roundtrip);
    return testlib_run(argc, argv);
}
