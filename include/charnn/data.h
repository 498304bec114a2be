/* data: a corpus of token ids, its train/val/test split, and the batch
 * streams that truncated BPTT reads.
 *
 * Splits are contiguous: train = [0, n_train), val and test follow, by the
 * fractions asked for. Within a split of N tokens, S = streams_global streams
 * each take a contiguous stretch of L = (N - 1) / S tokens; stream s starts at
 * s * L, and chunk k of stream s reads the window [s*L + k*T, s*L + (k+1)*T]
 * of T + 1 tokens (what the window means, e.g. inputs and next-character
 * targets, is the task's: src/tasks/task_lm.c). A rank owns streams [first_stream,
 * first_stream + n_streams), so N ranks x B streams cover the split exactly as
 * 1 rank x N*B streams do. The last (N - 1) - S*L < S tokens are not read.
 *
 * The corpus is read through a data_source so that the same code runs on an
 * in-memory text or a prepared HDF5 corpus read by hyperslabs (corpus.h).
 */
#ifndef CHARNN_DATA_H
#define CHARNN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "charnn/vocab.h"

enum { SPLIT_TRAIN = 0, SPLIT_VAL = 1, SPLIT_TEST = 2, SPLIT_ALL = 3 };

/* "train", "val", "test", "all" -> SPLIT_*, or -1. */
int data_split_parse(const char *name);
const char *data_split_name(int split);

/* Token ids [offset, offset + n) into out; 0 or -1 with a message. */
typedef struct data_source data_source;
struct data_source {
    size_t n_tokens;
    int (*read)(data_source *src, size_t offset, size_t n, int32_t *out);
    void (*close)(data_source *src);
    void *impl;
    char name[256]; /* file the tokens came from, for messages */
};

/* The whole of a regular file into *text_out (the caller frees it), its
 * length into *len_out; 0, or -1 naming the file. */
int data_read_file(const char *path, uint8_t **text_out, size_t *len_out);
/* A whole text file encoded in memory. If v->size == 0 the vocabulary is built
 * from the file (mode as given); otherwise the file is encoded with v and a
 * symbol outside it is an error naming the file and offset. */
int data_source_open_text(data_source *src, const char *path, vocab *v, vocab_mode mode);
/* Tokens already in memory (copied). */
void data_source_from_tokens(data_source *src, const int32_t *tokens, size_t n, const char *name);
void data_source_close(data_source *src);

/* Split boundaries [begin[s], end[s]) for s in train, val, test (SPLIT_ALL
 * covers everything). Fractions must be >= 0 with val + test < 1. */
typedef struct {
    size_t begin[4], end[4];
} data_splits;
int data_splits_init(data_splits *sp, size_t n_tokens, double val_frac, double test_frac);

/* The streams of one split as seen by one rank. */
typedef struct {
    size_t begin, end;      /* the split */
    int streams_global;     /* S */
    int first_stream;       /* this rank's first stream */
    int n_streams;          /* B, this rank's streams */
    int T;                  /* chunk length */
    size_t stream_len;      /* L */
    size_t n_chunks;        /* chunks per pass; the last may be shorter if partial */
    int partial_last;       /* 1: a final chunk shorter than T is included */
} batch_plan;

/* Errors when the split is too small: "split 'val' of 120 tokens is too small
 * for 64 streams x 50 steps". allow_partial includes a short last chunk
 * (evaluation reads every token of each stream). */
int batch_plan_init(batch_plan *p, size_t begin, size_t end, int streams_global,
                    int first_stream, int n_streams, int T, int allow_partial,
                    const char *split_name);
/* Steps in chunk k (T, or fewer for a partial last chunk). */
int batch_chunk_len(const batch_plan *p, size_t k);
/* Offset in the corpus of the first input of stream (first_stream + b) in chunk k. */
size_t batch_offset(const batch_plan *p, int b, size_t k);
/* Fill win (Tk + 1, B), time-major, with the windows of chunk k: row t holds
 * every stream's token at offset t. scratch holds (T + 1) tokens. */
int batch_read_window(const batch_plan *p, data_source *src, size_t k, int32_t *win,
                      int32_t *scratch);

#endif
