/* corpus: prepared HDF5 corpora, written in two streaming passes and read by
 * hyperslabs. See corpus.h.
 *
 * Chunks hold 64 Ki ids rather than more: fletcher32 makes every read verify
 * (so load) the whole chunk it touches, and a rank reads B streams at B far
 * apart offsets, so the chunk cache must hold about B chunks at once. 64 Ki
 * ids keep that at 128 KiB per stream for uint16 ids (the 32 MiB read cache
 * holds 256 streams), and chunks stay large enough that each is read from
 * disk once per pass over it. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "charnn/common.h"
#include "charnn/corpus.h"
#include "charnn/fsio.h"
#include "charnn/h5io.h"

enum {
    CORPUS_CHUNK_IDS = 1 << 16,                  /* ids per HDF5 chunk */
    CORPUS_WRITE_IDS = 16 * CORPUS_CHUNK_IDS,    /* ids per H5Dwrite, whole chunks */
    CORPUS_MIN_BUFFER = 4,                       /* one whole UTF-8 sequence */
    CORPUS_READ_CACHE_SLOTS = 12421,             /* prime, >20x the chunks cached */
};
#define CORPUS_READ_CACHE_BYTES ((size_t)32 << 20)

static const char *const split_attr_names[3][2] = {
    {"train_begin", "train_end"}, {"val_begin", "val_end"}, {"test_begin", "test_end"}};

/* ---- symbol bitmap ------------------------------------------------------ */

static size_t corpus_symbol_limit(vocab_mode mode)
{
    return mode == VOCAB_BYTES ? 256u : (size_t)VOCAB_MAX_CODEPOINT + 1u;
}

static inline int corpus_popcount64(uint64_t x)
{
#if defined(__GNUC__)
    return __builtin_popcountll(x);
#else
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (int)((x * 0x0101010101010101ull) >> 56);
#endif
}

/* ---- writing ------------------------------------------------------------- */

/* State of corpus_prepare across both passes. Pass 1 marks symbols in `seen`
 * and counts tokens; pass 2 maps each symbol to its id (its rank among the
 * marked symbols) and writes whole blocks of ids. */
typedef struct {
    vocab_mode mode;
    int pass;
    uint64_t *seen;      /* (n_words) bitmap over all possible symbols */
    uint32_t *rank;      /* (n_words) ids of the symbols before each word; pass 2 */
    size_t n_words;
    size_t n_tokens;     /* tokens taken so far in this pass */
    size_t n_expected;   /* pass 2: the count from pass 1 */
    uint8_t *buf;        /* (buf_cap) read buffer */
    size_t buf_cap;
    const char *out_path;
    const char *path;    /* the input being read, for messages */
    size_t base;         /* offset in that input of buf[0] */
    /* pass 2 output */
    void *ids;           /* (CORPUS_WRITE_IDS) ids of id_size bytes */
    size_t id_size;
    size_t n_ids;        /* ids waiting in `ids` */
    size_t n_written;    /* ids already in /tokens */
    hid_t dset, mem_type;
} corpus_writer;

static int corpus_flush(corpus_writer *w)
{
    if (w->n_ids == 0)
        return 0;
    hsize_t start = (hsize_t)w->n_written, count = (hsize_t)w->n_ids;
    if (h5io_dataset_write_box(w->out_path, "/tokens", w->dset, w->mem_type, 1, &start, &count,
                               H5I_INVALID_HID, H5P_DEFAULT, w->ids) < 0)
        return -1;
    w->n_written += w->n_ids;
    w->n_ids = 0;
    return 0;
}

static int corpus_err_changed(const corpus_writer *w, size_t offset)
{
    return cn_err("'%s' changed while being prepared (at byte %zu)", w->path, offset);
}

/* One symbol at byte `offset` of the current input. */
static inline int corpus_take(corpus_writer *w, uint32_t s, size_t offset)
{
    uint64_t bit = 1ull << (s & 63u);
    if (w->pass == 1) {
        w->seen[s >> 6] |= bit;
        w->n_tokens++;
        return 0;
    }
    if (!(w->seen[s >> 6] & bit) || w->n_tokens == w->n_expected)
        return corpus_err_changed(w, offset);
    uint32_t id = w->rank[s >> 6] + (uint32_t)corpus_popcount64(w->seen[s >> 6] & (bit - 1u));
    switch (w->id_size) {
    case 1: ((uint8_t *)w->ids)[w->n_ids] = (uint8_t)id; break;
    case 2: ((uint16_t *)w->ids)[w->n_ids] = (uint16_t)id; break;
    default: ((uint32_t *)w->ids)[w->n_ids] = id; break;
    }
    w->n_tokens++;
    if (++w->n_ids == CORPUS_WRITE_IDS)
        return corpus_flush(w);
    return 0;
}

/* Take the symbols of buf[0, len). Unless `final`, an incomplete UTF-8
 * sequence at the end (fewer than 4 bytes) is left for the next buffer;
 * *used receives the bytes taken. */
static int corpus_take_text(corpus_writer *w, const uint8_t *buf, size_t len, int final,
                            size_t *used)
{
    size_t i = 0;
    if (w->mode == VOCAB_BYTES) {
        for (; i < len; i++)
            if (corpus_take(w, buf[i], w->base + i) != 0)
                return -1;
        *used = len;
        return 0;
    }
    while (i < len) {
        uint32_t cp = buf[i];
        int n = 1;
        if (cp >= 0x80u) {
            n = utf8_decode(buf + i, len - i, &cp);
            if (n == 0) {
                if (!final && len - i < 4)
                    break;
                return cn_err("invalid UTF-8 in '%s' at byte %zu (use --bytes to train on raw bytes)",
                              w->path, w->base + i);
            }
        }
        if (corpus_take(w, cp, w->base + i) != 0)
            return -1;
        i += (size_t)n;
    }
    *used = i;
    return 0;
}

static int corpus_scan_file(corpus_writer *w, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cn_err("cannot open '%s': %s", path, strerror(errno));
    /* Reads go straight into w->buf; stdio's own buffer would only copy. */
    setvbuf(f, NULL, _IONBF, 0);
    w->path = path;
    w->base = 0;
    size_t carry = 0; /* undecoded bytes kept at the front of buf, at most 3 */
    for (;;) {
        size_t want = w->buf_cap - carry;
        size_t got = fread(w->buf + carry, 1, want, f);
        if (ferror(f)) {
            int e = errno;
            fclose(f);
            return cn_err("cannot read '%s': %s", path, strerror(e));
        }
        int at_eof = got < want;
        size_t len = carry + got, used = 0;
        if (len > 0 && corpus_take_text(w, w->buf, len, at_eof, &used) != 0) {
            fclose(f);
            return -1;
        }
        carry = len - used;
        memmove(w->buf, w->buf + used, carry);
        w->base += used;
        if (at_eof)
            break;
    }
    fclose(f);
    return 0;
}

static int corpus_write_attributes(const char *path, hid_t file, const char *const *inputs,
                                   int n_inputs, vocab_mode mode, size_t n_tokens,
                                   double val_frac, double test_frac, const data_splits *sp)
{
    size_t len = 0;
    for (int i = 0; i < n_inputs; i++)
        len += strlen(inputs[i]) + 1;
    char *sources = cn_xmalloc(len);
    char *p = sources;
    for (int i = 0; i < n_inputs; i++) {
        size_t n = strlen(inputs[i]);
        memcpy(p, inputs[i], n);
        p += n;
        *p++ = i + 1 < n_inputs ? '\n' : '\0';
    }
    int rc = 0;
    /* fixed-length strings, as every corpus has had them */
    if (h5io_attr_write_fixed_str(path, file, "format", CORPUS_FORMAT) != 0 ||
        h5io_attr_write_i64(path, file, "format_version", CORPUS_FORMAT_VERSION) != 0 ||
        h5io_attr_write_fixed_str(path, file, "vocab_mode",
                                  mode == VOCAB_BYTES ? "bytes" : "codepoints") != 0 ||
        h5io_attr_write_u64(path, file, "n_tokens", n_tokens) != 0 ||
        h5io_attr_write_fixed_str(path, file, "sources", sources) != 0 ||
        h5io_attr_write_f64(path, file, "val_frac", val_frac) != 0 ||
        h5io_attr_write_f64(path, file, "test_frac", test_frac) != 0)
        rc = -1;
    for (int s = SPLIT_TRAIN; rc == 0 && s <= SPLIT_TEST; s++)
        if (h5io_attr_write_u64(path, file, split_attr_names[s][0], sp->begin[s]) != 0 ||
            h5io_attr_write_u64(path, file, split_attr_names[s][1], sp->end[s]) != 0)
            rc = -1;
    free(sources);
    return rc;
}

/* /vocab: the marked symbols in ascending order. -1 without a message. */
static int corpus_write_vocab(const char *path, hid_t file, const corpus_writer *w, int V)
{
    uint32_t *symbols = cn_xmalloc((size_t)V * sizeof *symbols);
    int n = 0;
    for (size_t k = 0; k < w->n_words; k++)
        for (uint64_t word = w->seen[k]; word; word &= word - 1u)
            symbols[n++] = (uint32_t)(k * 64u + (size_t)corpus_popcount64((word & (~word + 1u)) - 1u));
    CHARNN_ASSERT(n == V);
    hsize_t dims = (hsize_t)V;
    int rc = h5io_dataset_write(path, file, "/vocab", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, &dims,
                                symbols);
    free(symbols);
    return rc;
}

static int corpus_prepare_hdf5(const char *const *inputs, int n_inputs, const char *out_path,
                               const char *tmp_path, vocab_mode mode, double val_frac,
                               double test_frac, size_t buffer_bytes)
{
    corpus_writer w;
    memset(&w, 0, sizeof w);
    w.mode = mode;
    w.out_path = out_path;
    w.n_words = (corpus_symbol_limit(mode) + 63u) / 64u;
    w.seen = cn_xcalloc(w.n_words, sizeof *w.seen);
    w.buf_cap = buffer_bytes < CORPUS_MIN_BUFFER ? CORPUS_MIN_BUFFER : buffer_bytes;
    w.buf = cn_xmalloc(w.buf_cap);
    w.dset = H5I_INVALID_HID;
    hid_t fapl = H5I_INVALID_HID, file = H5I_INVALID_HID;
    data_splits sp;
    int rc = -1;

    w.pass = 1;
    for (int i = 0; i < n_inputs; i++)
        if (corpus_scan_file(&w, inputs[i]) != 0)
            goto done;
    size_t n = w.n_tokens;
    if (n == 0) {
        if (n_inputs == 1)
            cn_err("'%s' is empty", inputs[0]);
        else
            cn_err("all %d inputs are empty", n_inputs);
        goto done;
    }
    if (data_splits_init(&sp, n, val_frac, test_frac) != 0)
        goto done;

    w.rank = cn_xmalloc(w.n_words * sizeof *w.rank);
    uint32_t V = 0;
    for (size_t k = 0; k < w.n_words; k++) {
        w.rank[k] = V;
        V += (uint32_t)corpus_popcount64(w.seen[k]);
    }
    hid_t file_type;
    if (V <= 256u) {
        file_type = H5T_STD_U8LE;
        w.mem_type = H5T_NATIVE_UINT8;
        w.id_size = 1;
    } else if (V <= 65536u) {
        file_type = H5T_STD_U16LE;
        w.mem_type = H5T_NATIVE_UINT16;
        w.id_size = 2;
    } else {
        file_type = H5T_STD_U32LE;
        w.mem_type = H5T_NATIVE_UINT32;
        w.id_size = 4;
    }
    w.ids = cn_xmalloc((size_t)CORPUS_WRITE_IDS * w.id_size);

    /* 1.8 object headers move an attribute too big for the header (a long
     * `sources`) into dense storage instead of failing. */
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0) {
        h5io_write_fail(out_path, "setting up file access");
        goto done;
    }
    if ((file = h5io_file_create(tmp_path, fapl)) < 0)
        goto done;
    hsize_t dims = (hsize_t)n;
    hsize_t chunk = dims < CORPUS_CHUNK_IDS ? dims : CORPUS_CHUNK_IDS;
    if ((w.dset = h5io_dataset_create(out_path, file, "/tokens", file_type, 1, &dims, &chunk,
                                      H5IO_NO_FILL)) < 0)
        goto done;

    w.pass = 2;
    w.n_expected = n;
    w.n_tokens = 0;
    for (int i = 0; i < n_inputs; i++)
        if (corpus_scan_file(&w, inputs[i]) != 0)
            goto done;
    if (w.n_tokens != n) {
        cn_err("the inputs changed while being prepared (%zu tokens, then %zu)", n, w.n_tokens);
        goto done;
    }
    if (corpus_flush(&w) != 0)
        goto done;
    CHARNN_ASSERT(w.n_written == n);

    if (corpus_write_vocab(out_path, file, &w, (int)V) != 0 ||
        corpus_write_attributes(out_path, file, inputs, n_inputs, mode, n, val_frac, test_frac,
                                &sp) != 0)
        goto done;
    herr_t closed = H5Dclose(w.dset);
    w.dset = H5I_INVALID_HID;
    if (closed < 0) {
        h5io_write_fail(out_path, "closing /tokens");
        goto done;
    }
    rc = h5io_file_close(out_path, file);
    file = H5I_INVALID_HID;
done:
    H5Dclose(w.dset);
    H5Fclose(file);
    H5Pclose(fapl);
    free(w.ids);
    free(w.rank);
    free(w.buf);
    free(w.seen);
    return rc;
}

int corpus_prepare(const char *const *inputs, int n_inputs, const char *out_path, vocab_mode mode,
                   double val_frac, double test_frac, size_t buffer_bytes)
{
    if (n_inputs < 1)
        return cn_err("no input files to prepare");
    /* Bad fractions fail before anything is read. */
    data_splits sp;
    if (data_splits_init(&sp, 0, val_frac, test_frac) != 0)
        return -1;
    /* Each input is read twice, and a FIFO or a device cannot be: refuse
     * them, and an output that is one of the inputs, before anything is
     * written. */
    for (int i = 0; i < n_inputs; i++) {
        if (fsio_check_regular(inputs[i], NULL) != 0)
            return -1;
        if (fsio_same_file(inputs[i], out_path))
            return cn_err("--out '%s' is the input '%s': preparing would overwrite it", out_path,
                          inputs[i]);
    }

    char tmp_path[4096];
    if (fsio_tmp_path(tmp_path, sizeof tmp_path, out_path) != 0)
        return -1;
    /* Creating the file now reports an unwritable output before a long first
     * pass, and with the reason HDF5 would not give. */
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return cn_err("cannot create '%s': %s", out_path, strerror(errno));
    close(fd);

    int rc = corpus_prepare_hdf5(inputs, n_inputs, out_path, tmp_path, mode, val_frac, test_frac,
                                 buffer_bytes);
    if (rc != 0) {
        unlink(tmp_path);
        return -1;
    }
    return fsio_commit(tmp_path, out_path, 1);
}

/* ---- reading ------------------------------------------------------------- */

int corpus_is_prepared(const char *path)
{
    return h5io_starts_like_hdf5(path);
}

typedef struct {
    hid_t file, dset;
    int32_t V; /* ids read must be below this */
} corpus_reader;

static int corpus_source_read(data_source *src, size_t offset, size_t n, int32_t *out)
{
    corpus_reader *r = src->impl;
    if (offset > src->n_tokens || n > src->n_tokens - offset)
        return cn_err("cannot read tokens [%zu, %zu) of '%s': it has %zu tokens", offset,
                      offset + n, src->name, src->n_tokens);
    if (n == 0)
        return 0;
    hsize_t start = (hsize_t)offset, count = (hsize_t)n;
    if (h5io_dataset_read_box(src->name, "/tokens", r->dset, H5T_NATIVE_INT32, 1, &start, &count,
                              H5P_DEFAULT, out) != 0)
        return -1;
    /* A model indexes its embedding with these; never hand it a wild id. */
    for (size_t i = 0; i < n; i++)
        if (out[i] < 0 || out[i] >= r->V)
            return cn_err("'%s' is damaged: token %zu has id %ld, outside its vocabulary of %ld",
                          src->name, offset + i, (long)out[i], (long)r->V);
    return 0;
}

static void corpus_reader_free(corpus_reader *r)
{
    H5Dclose(r->dset);
    H5Fclose(r->file);
    free(r);
}

static void corpus_source_close(data_source *src)
{
    corpus_reader *r = src->impl;
    if (r)
        corpus_reader_free(r);
    src->impl = NULL;
}

/* A required root attribute: 0, or -1 with "'P' is damaged: missing attribute NAME". */
static int corpus_attr_u64(const char *path, hid_t file, const char *name, uint64_t *out)
{
    int rc = h5io_attr_read_num(path, file, "", name, H5T_NATIVE_UINT64, 1, out);
    if (rc == 0)
        return cn_err("'%s' is damaged: missing attribute %s", path, name);
    return rc < 0 ? -1 : 0;
}

static int corpus_read_vocab(hid_t file, const char *path, vocab_mode mode, vocab *fv)
{
    hsize_t dims[H5IO_MAX_RANK];
    int rank = 0, rc = -1;
    uint32_t *symbols = NULL;
    if (h5io_dataset_shape(path, file, "/vocab", &rank, dims) != 0)
        return -1;
    if (rank != 1 || dims[0] < 1 || dims[0] > corpus_symbol_limit(mode))
        return cn_err("'%s' is damaged: /vocab has an invalid shape", path);
    symbols = cn_xmalloc((size_t)dims[0] * sizeof *symbols);
    if (h5io_dataset_read(path, file, "/vocab", H5T_NATIVE_UINT32, H5T_INTEGER, 1, dims,
                          symbols) != 0)
        goto done;
    if (vocab_from_symbols(fv, mode, symbols, (int)dims[0]) != 0) {
        cn_err_context("'%s' is damaged: /vocab", path);
        goto done;
    }
    rc = 0;
done:
    free(symbols);
    return rc;
}

static int corpus_open_hdf5(data_source *src, const char *path, vocab *v, data_splits *splits)
{
    corpus_reader *r = cn_xmalloc(sizeof *r);
    r->file = r->dset = H5I_INVALID_HID;
    hid_t dapl = H5I_INVALID_HID, type = H5I_INVALID_HID;
    vocab fv;
    memset(&fv, 0, sizeof fv);
    char text[64];
    int64_t version = 0;
    uint64_t n_tokens = 0;
    data_splits sp;

    if ((r->file = h5io_file_open(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        goto error;
    int got = h5io_attr_read_str(path, r->file, "", "format", text, sizeof text);
    if (got < 0)
        goto error;
    if (got == 0 || strcmp(text, CORPUS_FORMAT) != 0) {
        cn_err("'%s' is not a charnn corpus", path);
        goto error;
    }
    got = h5io_attr_read_num(path, r->file, "", "format_version", H5T_NATIVE_INT64, 1, &version);
    if (got <= 0) {
        if (got == 0)
            cn_err("'%s' is damaged: missing attribute format_version", path);
        goto error;
    }
    if (version != CORPUS_FORMAT_VERSION) {
        cn_err("'%s' is charnn corpus format version %lld; this charnn reads version %d", path,
               (long long)version, CORPUS_FORMAT_VERSION);
        goto error;
    }
    got = h5io_attr_read_str(path, r->file, "", "vocab_mode", text, sizeof text);
    if (got < 0)
        goto error;
    if (got == 0 || (strcmp(text, "codepoints") != 0 && strcmp(text, "bytes") != 0)) {
        cn_err("'%s' is damaged: attribute vocab_mode is missing or unknown", path);
        goto error;
    }
    vocab_mode mode = strcmp(text, "bytes") == 0 ? VOCAB_BYTES : VOCAB_CODEPOINTS;
    if (corpus_attr_u64(path, r->file, "n_tokens", &n_tokens) != 0)
        goto error;
    for (int s = SPLIT_TRAIN; s <= SPLIT_TEST; s++) {
        uint64_t b = 0, e = 0;
        if (corpus_attr_u64(path, r->file, split_attr_names[s][0], &b) != 0 ||
            corpus_attr_u64(path, r->file, split_attr_names[s][1], &e) != 0)
            goto error;
        sp.begin[s] = (size_t)b;
        sp.end[s] = (size_t)e;
    }
    sp.begin[SPLIT_ALL] = 0;
    sp.end[SPLIT_ALL] = (size_t)n_tokens;
    if (sp.begin[SPLIT_TRAIN] != 0 || sp.end[SPLIT_TRAIN] < sp.begin[SPLIT_TRAIN] ||
        sp.begin[SPLIT_VAL] != sp.end[SPLIT_TRAIN] || sp.end[SPLIT_VAL] < sp.begin[SPLIT_VAL] ||
        sp.begin[SPLIT_TEST] != sp.end[SPLIT_VAL] || sp.end[SPLIT_TEST] < sp.begin[SPLIT_TEST] ||
        sp.end[SPLIT_TEST] != (size_t)n_tokens) {
        cn_err("'%s' is damaged: its split boundaries do not cover its %llu tokens", path,
               (unsigned long long)n_tokens);
        goto error;
    }
    if (corpus_read_vocab(r->file, path, mode, &fv) != 0)
        goto error;
    if (v->size != 0 && !vocab_equal(v, &fv)) {
        cn_err("'%s' has a different vocabulary than the model", path);
        goto error;
    }

    if ((dapl = H5Pcreate(H5P_DATASET_ACCESS)) < 0 ||
        H5Pset_chunk_cache(dapl, CORPUS_READ_CACHE_SLOTS, CORPUS_READ_CACHE_BYTES, 1.0) < 0) {
        cn_err("cannot open '%s': HDF5 property setup failed", path);
        goto error;
    }
    const int64_t want = (int64_t)n_tokens;
    if ((r->dset = h5io_dataset_open(path, r->file, "/tokens", dapl, 1, &want, NULL)) < 0)
        goto error;
    if ((type = H5Dget_type(r->dset)) < 0) {
        h5io_read_fail(path, "/tokens");
        goto error;
    }
    if (H5Tget_class(type) != H5T_INTEGER || H5Tget_size(type) > 4) {
        cn_err("'%s' is damaged: /tokens is not an array of token ids", path);
        goto error;
    }
    H5Tclose(type);
    H5Pclose(dapl);

    r->V = (int32_t)fv.size;
    if (v->size == 0)
        *v = fv;
    else
        vocab_free(&fv);
    *splits = sp;
    src->n_tokens = (size_t)n_tokens;
    src->read = corpus_source_read;
    src->close = corpus_source_close;
    src->impl = r;
    snprintf(src->name, sizeof src->name, "%s", path);
    return 0;
error:
    H5Tclose(type);
    H5Pclose(dapl);
    vocab_free(&fv);
    corpus_reader_free(r);
    return -1;
}

int data_source_open_prepared(data_source *src, const char *path, vocab *v, data_splits *splits)
{
    memset(src, 0, sizeof *src);
    if (fsio_check_regular(path, NULL) != 0)
        return -1;
    if (!corpus_is_prepared(path)) {
        FILE *f = fopen(path, "rb");
        if (!f)
            return cn_err("cannot open '%s': %s", path, strerror(errno));
        fclose(f);
        return cn_err("'%s' is not a charnn corpus", path);
    }
    return corpus_open_hdf5(src, path, v, splits);
}

int corpus_open(data_source *src, const char *path, vocab *v, vocab_mode mode, double val_frac,
                double test_frac, data_splits *splits)
{
    memset(src, 0, sizeof *src);
    if (fsio_check_regular(path, NULL) != 0)
        return -1;
    /* a prepared corpus carries its own vocabulary and splits */
    if (corpus_is_prepared(path))
        return data_source_open_prepared(src, path, v, splits);
    if (data_source_open_text(src, path, v, mode) != 0)
        return -1;
    if (data_splits_init(splits, src->n_tokens, val_frac, test_frac) != 0) {
        data_source_close(src);
        return -1;
    }
    return 0;
}
