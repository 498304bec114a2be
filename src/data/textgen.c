/* Synthetic structured text. See textgen.h. */
#include "charnn/textgen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"

static const char *const textgen_words[] = {
    "alpha", "beta", "gamma", "delta", "node",  "tree",  "leaf",  "root", "list", "map",
    "set",   "key",  "value", "left",  "right", "up",    "down",  "red",  "blue", "green",
    "one",   "two",  "three", "four",  "if",    "then",  "else",  "let",  "fn",   "call",
    "a",     "an",   "the",   "of",    "to",    "and",   "or",    "not",  "x",    "y"};
enum { TEXTGEN_N_WORDS = sizeof textgen_words / sizeof textgen_words[0] };

static const char textgen_open[3] = {'(', '[', '{'};
static const char textgen_close[3] = {')', ']', '}'};

/* The writer: counts what it may still write and stops quietly at zero, so
 * the recursive generator needs no length checks of its own. */
typedef struct {
    FILE *out;
    size_t left;   /* characters still to write */
    int col;       /* characters on the current line */
    int width;     /* this line breaks at the first item boundary past width */
    int failed;    /* a write failed (errno kept) */
    cn_rng rng;
    char buf[4096];
    size_t used;
} textgen_writer;

static void tg_flush(textgen_writer *w)
{
    if (w->used && !w->failed && fwrite(w->buf, 1, w->used, w->out) != w->used)
        w->failed = errno ? errno : EIO;
    w->used = 0;
}

static void tg_putc(textgen_writer *w, char ch)
{
    if (w->left == 0)
        return;
    w->buf[w->used++] = ch;
    w->left--;
    w->col = ch == '\n' ? 0 : w->col + 1;
    if (w->used == sizeof w->buf)
        tg_flush(w);
}

static void tg_puts(textgen_writer *w, const char *s)
{
    while (*s)
        tg_putc(w, *s++);
}

static int tg_below(textgen_writer *w, int n)
{
    return (int)(cn_rng_next(&w->rng) % (uint64_t)n);
}

/* Between two items: a space, or past the line's width a newline indented by
 * the depth, and a new width for the next line. */
static void tg_gap(textgen_writer *w, int depth)
{
    if (w->col < w->width) {
        tg_putc(w, ' ');
        return;
    }
    tg_putc(w, '\n');
    for (int i = 0; i < 2 * depth; i++)
        tg_putc(w, ' ');
    w->width = 16 + tg_below(w, 64);
}

static void tg_quoted(textgen_writer *w)
{
    int n = 1 + tg_below(w, 5);
    tg_putc(w, '"');
    for (int i = 0; i < n; i++) {
        if (i)
            tg_putc(w, ' ');
        tg_puts(w, textgen_words[tg_below(w, TEXTGEN_N_WORDS)]);
    }
    tg_putc(w, '"');
}

static void tg_item(textgen_writer *w, int depth);

/* A group opened at `depth` holds items one level deeper. */
static void tg_group(textgen_writer *w, int depth)
{
    int kind = tg_below(w, 3);
    int n = 1 + tg_below(w, 4);
    tg_putc(w, textgen_open[kind]);
    for (int i = 0; i < n && w->left; i++) {
        if (i) {
            if (tg_below(w, 3) == 0)
                tg_putc(w, ',');
            tg_gap(w, depth + 1);
        }
        tg_item(w, depth + 1);
    }
    tg_putc(w, textgen_close[kind]);
}

static void tg_item(textgen_writer *w, int depth)
{
    int roll = tg_below(w, 100);
    /* groups get rarer with depth and stop at TEXTGEN_MAX_DEPTH */
    int group_pct = depth >= TEXTGEN_MAX_DEPTH ? 0 : 40 - 8 * depth;
    if (roll < group_pct)
        tg_group(w, depth);
    else if (roll < group_pct + 15)
        tg_quoted(w);
    else
        tg_puts(w, textgen_words[tg_below(w, TEXTGEN_N_WORDS)]);
}

int textgen_structured(FILE *out, size_t n_chars, uint64_t seed)
{
    textgen_writer *w = cn_xcalloc(1, sizeof *w);
    w->out = out;
    w->left = n_chars;
    w->width = 40;
    cn_rng_seed(&w->rng, seed);
    errno = 0;
    while (w->left && !w->failed) {
        int n = 2 + tg_below(w, 5);
        for (int i = 0; i < n && w->left; i++) {
            if (i)
                tg_gap(w, 0);
            tg_item(w, 0);
        }
        tg_putc(w, tg_below(w, 2) ? ';' : '.');
        /* statements end lines more often than items do */
        if (tg_below(w, 3) == 0 || w->col >= w->width) {
            tg_putc(w, '\n');
            w->width = 16 + tg_below(w, 64);
        } else {
            tg_putc(w, ' ');
        }
    }
    tg_flush(w);
    int failed = w->failed;
    free(w);
    if (failed)
        return cn_err("cannot write the generated text: %s", strerror(failed));
    return 0;
}

int textgen_run(const textgen_options *o, FILE *out)
{
    CHARNN_ASSERT(o->kind == TEXTGEN_STRUCTURED && o->chars >= 0);
    FILE *f = out;
    if (o->path && !(f = fopen(o->path, "wb")))
        return cn_err("cannot open '%s': %s", o->path, strerror(errno));
    int rc = textgen_structured(f, (size_t)o->chars, o->seed);
    if ((o->path ? fclose(f) : fflush(f)) != 0 && rc == 0)
        rc = cn_err("cannot write the generated text: %s", strerror(errno));
    if (rc != 0 && o->path)
        cn_err_context("'%s'", o->path);
    return rc;
}
