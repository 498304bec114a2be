/* data: in-memory corpora, contiguous splits and the stream layout of
 * truncated BPTT. See data.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "charnn/common.h"
#include "charnn/data.h"
#include "charnn/fsio.h"

static const char *const split_names[] = {"train", "val", "test", "all"};
enum { SPLIT_KINDS = sizeof split_names / sizeof split_names[0] };

int data_split_parse(const char *name)
{
    for (int s = 0; s < SPLIT_KINDS; s++)
        if (strcmp(name, split_names[s]) == 0)
            return s;
    return -1;
}

const char *data_split_name(int split)
{
    if (split < 0 || split >= SPLIT_KINDS)
        return "unknown";
    return split_names[split];
}

/* The in-memory source: impl is the (n_tokens) id array. */
static int memory_source_read(data_source *src, size_t offset, size_t n, int32_t *out)
{
    if (offset > src->n_tokens || n > src->n_tokens - offset)
        return cn_err("cannot read tokens [%zu, %zu) of '%s': it has %zu tokens", offset,
                      offset + n, src->name, src->n_tokens);
    memcpy(out, (const int32_t *)src->impl + offset, n * sizeof *out);
    return 0;
}

static void memory_source_close(data_source *src)
{
    free(src->impl);
}

/* Takes ownership of tokens. */
static void memory_source_init(data_source *src, int32_t *tokens, size_t n, const char *name)
{
    memset(src, 0, sizeof *src);
    src->n_tokens = n;
    src->read = memory_source_read;
    src->close = memory_source_close;
    src->impl = tokens;
    snprintf(src->name, sizeof src->name, "%s", name);
}

void data_source_from_tokens(data_source *src, const int32_t *tokens, size_t n, const char *name)
{
    int32_t *copy = cn_xmalloc(n * sizeof *copy);
    if (n > 0)
        memcpy(copy, tokens, n * sizeof *copy);
    memory_source_init(src, copy, n, name);
}

void data_source_close(data_source *src)
{
    if (src->close)
        src->close(src);
    memset(src, 0, sizeof *src);
}

/* Reads until EOF rather than trusting the size, so a file still being
 * written works too; the size only sizes the first read. Only regular files:
 * a FIFO would block and a device like /dev/zero never ends. */
int data_read_file(const char *path, uint8_t **text_out, size_t *len_out)
{
    if (fsio_check_regular(path, NULL) != 0)
        return -1;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cn_err("cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    size_t cap = 1u << 16;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
        cap = (size_t)st.st_size + 1; /* one spare byte so the first read sees EOF */
    uint8_t *buf = cn_xmalloc(cap);
    size_t len = 0;
    for (;;) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        cap *= 2;
        buf = cn_xrealloc(buf, cap);
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        fclose(f);
        return cn_err("cannot read '%s': %s", path, strerror(e));
    }
    fclose(f);
    *text_out = buf;
    *len_out = len;
    return 0;
}

int data_source_open_text(data_source *src, const char *path, vocab *v, vocab_mode mode)
{
    memset(src, 0, sizeof *src);
    uint8_t *text = NULL;
    int32_t *tokens = NULL;
    size_t len = 0, n = 0;
    if (data_read_file(path, &text, &len) != 0)
        return -1;
    if (len == 0) {
        cn_err("'%s' is empty", path);
        goto error;
    }
    /* A given vocabulary fixes the mode; `mode` only applies when building. */
    if (v->size == 0 && vocab_build(v, text, len, mode, path) != 0)
        goto error;
    tokens = cn_xmalloc(len * sizeof *tokens);
    if (vocab_encode(v, text, len, tokens, &n, path) != 0)
        goto error;
    free(text);
    /* Multi-byte symbols leave the buffer larger than needed. */
    if (n < len)
        tokens = cn_xrealloc(tokens, n * sizeof *tokens);
    memory_source_init(src, tokens, n, path);
    return 0;
error:
    free(tokens);
    free(text);
    return -1;
}

int data_splits_init(data_splits *sp, size_t n_tokens, double val_frac, double test_frac)
{
    /* Written so that NaN fails too. */
    if (!(val_frac >= 0.0) || !(test_frac >= 0.0) || !(val_frac + test_frac < 1.0))
        return cn_err("--val-frac/--test-frac must be >= 0 and sum to less than 1 (got %g and %g)",
                      val_frac, test_frac);
    size_t n_val = (size_t)floor((double)n_tokens * val_frac);
    size_t n_test = (size_t)floor((double)n_tokens * test_frac);
    /* Rounding of n * frac in double can only matter for enormous n. */
    if (n_val > n_tokens)
        n_val = n_tokens;
    if (n_test > n_tokens - n_val)
        n_test = n_tokens - n_val;
    size_t n_train = n_tokens - n_val - n_test;
    sp->begin[SPLIT_TRAIN] = 0;
    sp->end[SPLIT_TRAIN] = n_train;
    sp->begin[SPLIT_VAL] = n_train;
    sp->end[SPLIT_VAL] = n_train + n_val;
    sp->begin[SPLIT_TEST] = n_train + n_val;
    sp->end[SPLIT_TEST] = n_tokens;
    sp->begin[SPLIT_ALL] = 0;
    sp->end[SPLIT_ALL] = n_tokens;
    return 0;
}

int batch_plan_init(batch_plan *p, size_t begin, size_t end, int streams_global,
                    int first_stream, int n_streams, int T, int allow_partial,
                    const char *split_name)
{
    CHARNN_ASSERT(begin <= end && split_name != NULL);
    memset(p, 0, sizeof *p);
    if (T < 1)
        return cn_err("sequence length must be at least 1 (got %d)", T);
    if (streams_global < 1 || n_streams < 1 || first_stream < 0 ||
        first_stream > streams_global - n_streams)
        return cn_err("streams [%d, %d) are not within the %d streams of split '%s'",
                      first_stream, first_stream + n_streams, streams_global, split_name);
    size_t N = end - begin;
    size_t S = (size_t)streams_global;
    /* Targets run one token ahead of inputs, hence N - 1. */
    size_t L = N > 0 ? (N - 1) / S : 0;
    size_t n_chunks = allow_partial ? (L + (size_t)T - 1) / (size_t)T : L / (size_t)T;
    if (L < 1 || n_chunks == 0)
        return cn_err("split '%s' of %zu tokens is too small for %d streams x %d steps",
                      split_name, N, streams_global, T);
    p->begin = begin;
    p->end = end;
    p->streams_global = streams_global;
    p->first_stream = first_stream;
    p->n_streams = n_streams;
    p->T = T;
    p->stream_len = L;
    p->n_chunks = n_chunks;
    p->partial_last = allow_partial && L % (size_t)T != 0;
    return 0;
}

int batch_chunk_len(const batch_plan *p, size_t k)
{
    CHARNN_ASSERT(k < p->n_chunks);
    if (p->partial_last && k == p->n_chunks - 1)
        return (int)(p->stream_len - k * (size_t)p->T);
    return p->T;
}

size_t batch_offset(const batch_plan *p, int b, size_t k)
{
    CHARNN_ASSERT(b >= 0 && b < p->n_streams && k < p->n_chunks);
    return p->begin + (size_t)(p->first_stream + b) * p->stream_len + k * (size_t)p->T;
}

int batch_read_window(const batch_plan *p, data_source *src, size_t k, int32_t *win,
                      int32_t *scratch)
{
    int B = p->n_streams;
    int Tk = batch_chunk_len(p, k);
    for (int b = 0; b < B; b++) {
        if (src->read(src, batch_offset(p, b, k), (size_t)Tk + 1, scratch) != 0)
            return -1;
        for (int t = 0; t <= Tk; t++)
            win[(size_t)t * (size_t)B + (size_t)b] = scratch[t];
    }
    return 0;
}
