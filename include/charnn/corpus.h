/* corpus: text encoded once into an HDF5 file of token ids, so that training
 * on a corpus larger than memory reads only the tokens each rank needs.
 *
 *   corpus_prepare(inputs, n, "corpus.h5", VOCAB_CODEPOINTS, 0.05, 0.05,
 *                  CORPUS_DEFAULT_BUFFER_BYTES);
 *   data_source src; vocab v = {0}; data_splits sp;
 *   data_source_open_prepared(&src, "corpus.h5", &v, &sp);
 *   ... batch_fill(&plan, &src, ...) reads hyperslabs of /tokens ...
 *   data_source_close(&src); vocab_free(&v);
 *
 * Preparing streams the inputs twice through one fixed buffer (symbols and
 * token count, then encoding), so memory does not grow with the corpus: the
 * buffer, a bitmap of every possible symbol (136 KiB), one write block of ids
 * and HDF5's own bookkeeping. The inputs are concatenated as they are.
 *
 * File layout (format "charnn-corpus", version 1), written through h5io, so
 * every dataset is chunked and fletcher32-checked (corpora written before
 * charnn 0.2 have no checksum on /vocab and still read):
 *   /tokens  (n_tokens) ids, the narrowest of uint8/uint16/uint32 for V;
 *            not compressed
 *   /vocab   (V) uint32 symbols, ascending (code points or byte values)
 *   root attributes: format, format_version, vocab_mode ("codepoints" or
 *   "bytes"), n_tokens, sources (input names joined by '\n'), val_frac,
 *   test_frac, and the splits train_begin/train_end, val_begin/val_end,
 *   test_begin/test_end (data_splits_init of n_tokens).
 */
#ifndef CHARNN_CORPUS_H
#define CHARNN_CORPUS_H

#include <stddef.h>

#include "charnn/data.h"
#include "charnn/vocab.h"

#define CORPUS_FORMAT "charnn-corpus"
#define CORPUS_FORMAT_VERSION 1
#define CORPUS_DEFAULT_BUFFER_BYTES ((size_t)4 << 20)

/* Encode inputs[0..n_inputs) into out_path, written atomically (fsio: a
 * temporary file beside it, fsynced, renamed). buffer_bytes is the read buffer
 * (at least 4 bytes are used). Errors name the input and, for invalid UTF-8,
 * the byte offset within that input. Inputs must be regular files (each is
 * read twice), and an output that is one of the inputs (same device and
 * inode) is refused before anything is written. */
int corpus_prepare(const char *const *inputs, int n_inputs, const char *out_path, vocab_mode mode,
                   double val_frac, double test_frac, size_t buffer_bytes);

/* 1 if path is a regular file that starts like an HDF5 file (damaged or not),
 * else 0 (also when unreadable). Such a file is never read as text. */
int corpus_is_prepared(const char *path);

/* Open any corpus: a prepared one (its own vocabulary and splits, see
 * data_source_open_prepared), or else a text file encoded with v (built in
 * `mode` from the file when v->size == 0) and split by val_frac/test_frac.
 * The one way train, eval and trace open their data. Non-regular files (FIFOs,
 * devices, directories) are refused at once. */
int corpus_open(data_source *src, const char *path, vocab *v, vocab_mode mode, double val_frac,
                double test_frac, data_splits *splits);

/* Open a prepared corpus for reading. If v->size == 0 the file's vocabulary
 * is loaded into v (the caller frees it); otherwise the file must have exactly
 * v's vocabulary. splits receives the stored boundaries. The file stays open
 * until data_source_close; each src->read is one hyperslab read of [offset,
 * offset + n). Reads are not thread-safe (neither is the HDF5 library). */
int data_source_open_prepared(data_source *src, const char *path, vocab *v, data_splits *splits);

#endif
