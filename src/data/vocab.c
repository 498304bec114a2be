/* vocab: symbol tables and the UTF-8 codec. See vocab.h.
 *
 * The symbol -> id table is a dense array over every possible symbol (4.4 MB in
 * code-point mode) so that encoding a corpus of hundreds of megabytes costs one
 * load per token and no hashing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/vocab.h"

static size_t vocab_table_size(vocab_mode mode)
{
    return mode == VOCAB_BYTES ? 256u : (size_t)VOCAB_MAX_CODEPOINT + 1u;
}

static int utf8_is_continuation(uint8_t b)
{
    return (b & 0xC0u) == 0x80u;
}

/* Inlined into the encode and build loops; utf8_decode is the public wrapper.
 * The lead-byte ranges exclude C0/C1 and F5..FF outright, so only the 3- and
 * 4-byte forms need a range check on the decoded value. */
static inline int utf8_decode_inline(const uint8_t *s, size_t len, uint32_t *cp)
{
    uint32_t b0 = s[0];
    if (b0 < 0x80u) {
        *cp = b0;
        return 1;
    }
    if (b0 < 0xC2u)
        return 0;
    if (b0 < 0xE0u) {
        if (len < 2 || !utf8_is_continuation(s[1]))
            return 0;
        *cp = ((b0 & 0x1Fu) << 6) | (s[1] & 0x3Fu);
        return 2;
    }
    if (b0 < 0xF0u) {
        if (len < 3 || !utf8_is_continuation(s[1]) || !utf8_is_continuation(s[2]))
            return 0;
        uint32_t c = ((b0 & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        if (c < 0x800u || (c >= 0xD800u && c <= 0xDFFFu))
            return 0;
        *cp = c;
        return 3;
    }
    if (b0 < 0xF5u) {
        if (len < 4 || !utf8_is_continuation(s[1]) || !utf8_is_continuation(s[2]) ||
            !utf8_is_continuation(s[3]))
            return 0;
        uint32_t c = ((b0 & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) |
                     (s[3] & 0x3Fu);
        if (c < 0x10000u || c > VOCAB_MAX_CODEPOINT)
            return 0;
        *cp = c;
        return 4;
    }
    return 0;
}

int utf8_decode(const uint8_t *s, size_t len, uint32_t *cp)
{
    CHARNN_ASSERT(len > 0);
    return utf8_decode_inline(s, len, cp);
}

int utf8_encode(uint32_t cp, char out[4])
{
    CHARNN_ASSERT(cp <= VOCAB_MAX_CODEPOINT && !(cp >= 0xD800u && cp <= 0xDFFFu));
    if (cp < 0x80u) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800u) {
        out[0] = (char)(0xC0u | (cp >> 6));
        out[1] = (char)(0x80u | (cp & 0x3Fu));
        return 2;
    }
    if (cp < 0x10000u) {
        out[0] = (char)(0xE0u | (cp >> 12));
        out[1] = (char)(0x80u | ((cp >> 6) & 0x3Fu));
        out[2] = (char)(0x80u | (cp & 0x3Fu));
        return 3;
    }
    out[0] = (char)(0xF0u | (cp >> 18));
    out[1] = (char)(0x80u | ((cp >> 12) & 0x3Fu));
    out[2] = (char)(0x80u | ((cp >> 6) & 0x3Fu));
    out[3] = (char)(0x80u | (cp & 0x3Fu));
    return 4;
}

/* index[] doubles as the "seen" mark (nonzero) while scanning; this turns the
 * marks into the sorted symbol list and the final symbol -> id table. */
static void vocab_finish_from_marks(vocab *v, vocab_mode mode, int32_t *index)
{
    size_t table = vocab_table_size(mode);
    int n = 0;
    for (size_t s = 0; s < table; s++)
        n += index[s] != 0;
    v->mode = mode;
    v->size = n;
    v->symbols = cn_xmalloc((size_t)n * sizeof *v->symbols);
    v->index = index;
    int id = 0;
    for (size_t s = 0; s < table; s++) {
        if (index[s]) {
            v->symbols[id] = (uint32_t)s;
            index[s] = id++;
        } else {
            index[s] = -1;
        }
    }
}

int vocab_build(vocab *v, const uint8_t *text, size_t len, vocab_mode mode, const char *name)
{
    memset(v, 0, sizeof *v);
    if (len == 0)
        return cn_err("'%s' is empty", name);
    int32_t *index = cn_xcalloc(vocab_table_size(mode), sizeof *index);
    if (mode == VOCAB_BYTES) {
        for (size_t i = 0; i < len; i++)
            index[text[i]] = 1;
    } else {
        size_t i = 0;
        while (i < len) {
            uint32_t cp;
            int used = utf8_decode_inline(text + i, len - i, &cp);
            if (used == 0) {
                free(index);
                return cn_err("invalid UTF-8 in '%s' at byte %zu (use --bytes to train on raw bytes)",
                              name, i);
            }
            index[cp] = 1;
            i += (size_t)used;
        }
    }
    vocab_finish_from_marks(v, mode, index);
    return 0;
}

int vocab_from_symbols(vocab *v, vocab_mode mode, const uint32_t *symbols, int n)
{
    memset(v, 0, sizeof *v);
    if (n < 1)
        return cn_err("vocabulary is empty");
    uint32_t limit = mode == VOCAB_BYTES ? 255u : VOCAB_MAX_CODEPOINT;
    for (int i = 0; i < n; i++) {
        uint32_t s = symbols[i];
        if (s > limit || (mode == VOCAB_CODEPOINTS && s >= 0xD800u && s <= 0xDFFFu))
            return cn_err("vocabulary symbol %d (0x%X) is not a valid %s", i, (unsigned)s,
                          mode == VOCAB_BYTES ? "byte" : "unicode scalar value");
        if (i > 0 && s <= symbols[i - 1])
            return cn_err("vocabulary symbols are not strictly ascending at entry %d", i);
    }
    size_t table = vocab_table_size(mode);
    v->mode = mode;
    v->size = n;
    v->symbols = cn_xmalloc((size_t)n * sizeof *v->symbols);
    memcpy(v->symbols, symbols, (size_t)n * sizeof *v->symbols);
    v->index = cn_xmalloc(table * sizeof *v->index);
    for (size_t s = 0; s < table; s++)
        v->index[s] = -1;
    for (int i = 0; i < n; i++)
        v->index[symbols[i]] = i;
    return 0;
}

void vocab_free(vocab *v)
{
    free(v->symbols);
    free(v->index);
    memset(v, 0, sizeof *v);
}

int vocab_id(const vocab *v, uint32_t symbol)
{
    if (symbol >= vocab_table_size(v->mode))
        return -1;
    return v->index[symbol];
}

/* Control characters are shown only by number so the message stays one line. */
int vocab_err_missing_at(const vocab *v, const char *where, uint32_t symbol)
{
    if (v->mode == VOCAB_BYTES) {
        if (symbol >= 0x20u && symbol < 0x7Fu)
            return cn_err("%s: byte '%c' (0x%02X) is not in the model's vocabulary", where,
                          (char)symbol, (unsigned)symbol);
        return cn_err("%s: byte 0x%02X is not in the model's vocabulary", where, (unsigned)symbol);
    }
    if (symbol < 0x20u || (symbol >= 0x7Fu && symbol < 0xA0u))
        return cn_err("%s: character U+%04X is not in the model's vocabulary", where,
                      (unsigned)symbol);
    char utf8[4];
    int n = utf8_encode(symbol, utf8);
    return cn_err("%s: character '%.*s' (U+%04X) is not in the model's vocabulary", where, n, utf8,
                  (unsigned)symbol);
}

static int vocab_err_missing(const vocab *v, const char *name, size_t offset, uint32_t symbol)
{
    char where[1152]; /* a path and a position */
    snprintf(where, sizeof where, "'%s' at byte %zu", name, offset);
    return vocab_err_missing_at(v, where, symbol);
}

int vocab_check_text(const vocab *v, const uint8_t *text, size_t len, const char *name)
{
    size_t line = 1;
    for (size_t i = 0; i < len;) {
        uint32_t cp = text[i];
        int used = 1;
        if (v->mode == VOCAB_CODEPOINTS && cp >= 0x80u) {
            used = utf8_decode_inline(text + i, len - i, &cp);
            if (used == 0)
                return cn_err("invalid UTF-8 in '%s' at line %zu (byte %zu)", name, line, i);
        }
        if (v->index[cp] < 0) {
            char where[1152]; /* a path and a position */
            snprintf(where, sizeof where, "'%s' line %zu (byte %zu)", name, line, i);
            return vocab_err_missing_at(v, where, cp);
        }
        if (cp == '\n')
            line++;
        i += (size_t)used;
    }
    return 0;
}

int vocab_encode(const vocab *v, const uint8_t *text, size_t len, int32_t *out, size_t *n_out,
                 const char *name)
{
    const int32_t *index = v->index;
    *n_out = 0;
    if (v->mode == VOCAB_BYTES) {
        for (size_t i = 0; i < len; i++) {
            int32_t id = index[text[i]];
            if (id < 0)
                return vocab_err_missing(v, name, i, text[i]);
            out[i] = id;
        }
        *n_out = len;
        return 0;
    }
    size_t i = 0, n = 0;
    while (i < len) {
        uint32_t cp = text[i];
        int used = 1;
        /* Most corpora are mostly ASCII: skip the decoder for those bytes. */
        if (cp >= 0x80u) {
            used = utf8_decode_inline(text + i, len - i, &cp);
            if (used == 0)
                return cn_err("invalid UTF-8 in '%s' at byte %zu", name, i);
        }
        int32_t id = index[cp];
        if (id < 0)
            return vocab_err_missing(v, name, i, cp);
        out[n++] = id;
        i += (size_t)used;
    }
    *n_out = n;
    return 0;
}

int vocab_decode(const vocab *v, int32_t id, char out[4])
{
    CHARNN_ASSERT(id >= 0 && id < v->size);
    uint32_t s = v->symbols[id];
    if (v->mode == VOCAB_BYTES) {
        out[0] = (char)s;
        return 1;
    }
    return utf8_encode(s, out);
}

int vocab_equal(const vocab *a, const vocab *b)
{
    if (a->mode != b->mode || a->size != b->size)
        return 0;
    /* Freed vocabs have NULL arrays, which memcmp may not be given. */
    return a->size == 0 ||
           memcmp(a->symbols, b->symbols, (size_t)a->size * sizeof *a->symbols) == 0;
}
