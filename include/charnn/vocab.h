/* vocab: the symbols a model knows and the UTF-8 codec between text and ids.
 *
 * In code-point mode (the default) a symbol is a Unicode scalar value decoded
 * from UTF-8: a Hangul syllable or an emoji is one token. In byte mode
 * (--bytes) every byte is a symbol, whatever the encoding. Symbols are sorted
 * ascending, so the same text always gives the same ids.
 *
 * A vocab owns its arrays; vocab_free releases them.
 */
#ifndef CHARNN_VOCAB_H
#define CHARNN_VOCAB_H

#include <stddef.h>
#include <stdint.h>

typedef enum { VOCAB_CODEPOINTS = 0, VOCAB_BYTES = 1 } vocab_mode;

#define VOCAB_MAX_CODEPOINT 0x10FFFFu

typedef struct {
    vocab_mode mode;
    int size;          /* V */
    uint32_t *symbols; /* (V) code points or byte values, strictly ascending */
    int32_t *index;    /* (VOCAB_MAX_CODEPOINT+1 or 256) symbol -> id, -1 if absent */
} vocab;

/* Decode one UTF-8 scalar value from s (len > 0 bytes available). Returns the
 * bytes consumed (1-4) and sets *cp, or 0 if the bytes there are not valid
 * UTF-8 (overlong forms, surrogates, values above U+10FFFF and truncated
 * sequences are all invalid). */
int utf8_decode(const uint8_t *s, size_t len, uint32_t *cp);
/* Encode cp as UTF-8 into out; returns the byte count (1-4). */
int utf8_encode(uint32_t cp, char out[4]);

/* Build the vocabulary of every symbol in text (len bytes). `name` names the
 * input in errors: "invalid UTF-8 in 'x.txt' at byte 1234 (use --bytes ...)". */
int vocab_build(vocab *v, const uint8_t *text, size_t len, vocab_mode mode, const char *name);
/* A vocabulary from a known symbol list (e.g. read from a checkpoint); checks
 * the list is strictly ascending and in range. */
int vocab_from_symbols(vocab *v, vocab_mode mode, const uint32_t *symbols, int n);
void vocab_free(vocab *v);

/* Id of a symbol, or -1. */
int vocab_id(const vocab *v, uint32_t symbol);

/* Encode text into ids. *n_out receives the token count; out must hold len
 * entries (never more tokens than bytes). Errors name `name` and the byte
 * offset: invalid UTF-8, or a symbol outside the vocabulary (showing it). */
int vocab_encode(const vocab *v, const uint8_t *text, size_t len, int32_t *out, size_t *n_out,
                 const char *name);
/* 0 when every symbol of text is in v; else -1 and an error naming `name`,
 * the line (1-based) and byte offset of the first symbol outside v, and that
 * symbol (or the first invalid UTF-8 there, in code-point mode). */
int vocab_check_text(const vocab *v, const uint8_t *text, size_t len, const char *name);
/* -1 and the error "<where>: character 'x' (U+0078) is not in the model's
 * vocabulary" (a byte in byte mode; control characters by number only). */
int vocab_err_missing_at(const vocab *v, const char *where, uint32_t symbol);
/* Append the bytes of symbol `id` to out (at most 4); returns the count. */
int vocab_decode(const vocab *v, int32_t id, char out[4]);
/* Same vocabulary (mode and symbols)? */
int vocab_equal(const vocab *a, const vocab *b);

#endif
