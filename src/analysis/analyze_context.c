/* The text before a trace: the state the built-in features start from when a
 * trace begins mid-text (a validation split). See analyze.h. */
#include "charnn/analyze.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "charnn/common.h"
#include "charnn/config.h"
#include "charnn/corpus.h"
#include "charnn/data.h"
#include "charnn/vocab.h"

/* Tokens read and compared with the trace to check the source still holds its text. */
#define CONTEXT_CHECK_TOKENS 4096
/* Tokens of the source read at a time. */
#define CONTEXT_BLOCK 65536

/* The source path to open: as recorded, or next to the trace when that is
 * where a relative path leads. */
static void source_path(char *out, size_t n, const char *source, const char *trace_path)
{
    snprintf(out, n, "%s", source);
    if (source[0] == '/' || access(source, R_OK) == 0)
        return;
    const char *slash = strrchr(trace_path, '/');
    if (!slash)
        return;
    char alt[2 * CONFIG_PATH_MAX + 2];
    snprintf(alt, sizeof alt, "%.*s/%s", (int)(slash - trace_path), trace_path, source);
    if (access(alt, R_OK) == 0)
        snprintf(out, n, "%s", alt);
}

int analyze_context_state(const char *source, const char *trace_path, int64_t begin,
                          const uint32_t *symbols, int n_symbols, int bytes_mode,
                          int64_t n_tokens, analyze_token_reader read, void *ctx,
                          analyze_text_state *out)
{
    vocab v;
    data_source src;
    int32_t *ids = NULL, *want = NULL;
    uint32_t *sym = NULL;
    int rc = -1, opened = 0;
    char path[2 * CONFIG_PATH_MAX + 2];
    analyze_text_state_init(out);
    memset(&src, 0, sizeof src);
    if (!source[0])
        return cn_err("the trace names no source text");
    if (vocab_from_symbols(&v, bytes_mode ? VOCAB_BYTES : VOCAB_CODEPOINTS, symbols, n_symbols) !=
        0)
        return -1;
    source_path(path, sizeof path, source, trace_path);
    data_splits splits; /* the trace's offset counts from the start of the whole text */
    if (corpus_open(&src, path, &v, v.mode, 0.0, 0.0, &splits) != 0)
        goto done;
    opened = 1;
    int64_t n_check = n_tokens < CONTEXT_CHECK_TOKENS ? n_tokens : CONTEXT_CHECK_TOKENS;
    if ((int64_t)src.n_tokens < begin + n_check) {
        cn_err("'%s' holds %zu tokens, fewer than the trace's offset %lld and its text: it is not "
               "the text traced",
               path, src.n_tokens, (long long)begin);
        goto done;
    }
    size_t cap = CONTEXT_BLOCK > n_check ? CONTEXT_BLOCK : (size_t)n_check;
    ids = cn_xmalloc(cap * sizeof *ids);
    want = cn_xmalloc((size_t)(n_check ? n_check : 1) * sizeof *want);
    sym = cn_xmalloc(cap * sizeof *sym);
    if (src.read(&src, (size_t)begin, (size_t)n_check, ids) != 0 ||
        read(ctx, 0, n_check, want) != 0)
        goto done;
    if (n_check && memcmp(ids, want, (size_t)n_check * sizeof *ids) != 0) {
        cn_err("'%s' no longer holds the traced text at token %lld", path, (long long)begin);
        goto done;
    }
    for (int64_t at = 0; at < begin; at += CONTEXT_BLOCK) {
        int64_t k = begin - at < CONTEXT_BLOCK ? begin - at : CONTEXT_BLOCK;
        if (src.read(&src, (size_t)at, (size_t)k, ids) != 0)
            goto done;
        for (int64_t i = 0; i < k; i++)
            sym[i] = symbols[ids[i]];
        analyze_text_state_feed(out, sym, k, bytes_mode);
    }
    rc = 0;
done:
    if (rc != 0)
        analyze_text_state_init(out);
    free(ids);
    free(want);
    free(sym);
    if (opened)
        data_source_close(&src);
    vocab_free(&v);
    return rc;
}
