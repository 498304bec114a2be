/* Sentence pairs for seq2seq: prepare (TSV -> HDF5) and open. See pairs.h. */
#include "charnn/pairs.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/data.h"
#include "charnn/fsio.h"
#include "charnn/h5io.h"
#include "charnn/seq2seq.h"

void pairs_prepare_options_init(pairs_prepare_options *o)
{
    memset(o, 0, sizeof *o);
    o->src_col = 1;
    o->tgt_col = 2;
    o->val_frac = 0.05;
    o->test_frac = 0.1;
    o->seed = 1;
}

void pairs_stats_print(const pairs_stats *st, FILE *f)
{
    fprintf(f, "pairs: %zu read, %zu dropped by --max-len, %zu dropped for an empty side; "
               "%zu kept (train %zu, val %zu, test %zu)\n",
            st->n_read, st->n_dropped_len, st->n_dropped_empty, st->n_pairs, st->n_split[0],
            st->n_split[1], st->n_split[2]);
    fprintf(f, "vocabularies: source %d symbols, target %d symbols + BOS/EOS; longest source %d, "
               "longest target %d characters\n",
            st->src_vocab, st->tgt_vocab, st->max_src, st->max_tgt);
}

/* Characters of a valid UTF-8 field, or -1. */
static int count_chars(const char *s, size_t n)
{
    int chars = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (k == 0)
            return -1;
        i += (size_t)k;
        chars++;
    }
    return chars;
}

typedef struct {
    char *buf;       /* all kept fields, one after another */
    size_t len, cap;
    size_t *off;     /* (2 n + 1) field i of pair k is 2k (source), 2k + 1 (target) */
    size_t n, ncap;
} field_store;

static void store_add(field_store *s, const char *a, size_t na)
{
    if (s->len + na > s->cap) {
        s->cap = (s->len + na) * 2 + 4096;
        s->buf = cn_xrealloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, a, na);
    s->len += na;
    if (s->n + 2 > s->ncap) {
        s->ncap = s->ncap * 2 + 1024;
        s->off = cn_xrealloc(s->off, (s->ncap + 1) * sizeof *s->off);
    }
    s->off[++s->n] = s->len;
}

/* Field `col` (1-based) of a tab-separated line: start and length. */
static int find_col(const char *line, size_t n, int col, const char **start, size_t *len)
{
    int c = 1;
    size_t i = 0, b = 0;
    for (;; i++) {
        if (i == n || line[i] == '\t') {
            if (c == col) {
                *start = line + b;
                *len = i - b;
                return 0;
            }
            if (i == n)
                return c; /* columns found */
            c++;
            b = i + 1;
        }
    }
}

static int read_pairs(const pairs_prepare_options *o, field_store *fs, pairs_stats *st)
{
    FILE *f = fopen(o->in_path, "rb");
    if (!f)
        return cn_err("cannot open '%s': %s", o->in_path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    int rc = 0;
    const int sc = o->reverse ? o->tgt_col : o->src_col;
    const int tc = o->reverse ? o->src_col : o->tgt_col;
    fs->off = cn_xcalloc(1, sizeof *fs->off);
    fs->ncap = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        size_t n = (size_t)got;
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        if (o->limit && st->n_read >= o->limit)
            break;
        if (!memchr(line, '\t', n)) {
            rc = cn_err("'%s' line %zu: no tab; a pair is tab-separated columns", o->in_path,
                        lineno);
            break;
        }
        const char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        int ca = find_col(line, n, sc, &a, &na), cb = find_col(line, n, tc, &b, &nb);
        if (ca != 0 || cb != 0) {
            rc = cn_err("'%s' line %zu: %d columns, but the %s column is %d", o->in_path,
                        lineno, ca ? ca : cb, ca ? "source" : "target", ca ? sc : tc);
            break;
        }
        int la = count_chars(a, na), lb = count_chars(b, nb);
        if (la < 0 || lb < 0) {
            rc = cn_err("'%s' line %zu: invalid UTF-8 in column %d", o->in_path, lineno,
                        la < 0 ? sc : tc);
            break;
        }
        st->n_read++;
        if (la == 0 || lb == 0) {
            st->n_dropped_empty++;
            continue;
        }
        if (o->max_len > 0 && (la > o->max_len || lb > o->max_len)) {
            st->n_dropped_len++;
            continue;
        }
        st->max_src = la > st->max_src ? la : st->max_src;
        st->max_tgt = lb > st->max_tgt ? lb : st->max_tgt;
        store_add(fs, a, na);
        store_add(fs, b, nb);
    }
    if (rc == 0 && ferror(f))
        rc = cn_err("cannot read '%s': %s", o->in_path, strerror(errno));
    free(line);
    fclose(f);
    if (rc == 0 && fs->n == 0)
        rc = cn_err("'%s': no pairs left to write", o->in_path);
    return rc;
}

/* Build the vocabulary of side k (0 source, 1 target) of every pair. */
static int side_vocab(const field_store *fs, int k, vocab *v, const char *name)
{
    size_t total = 0;
    for (size_t i = k; i < fs->n; i += 2)
        total += fs->off[i + 1] - fs->off[i];
    uint8_t *text = cn_xmalloc(total + 1);
    size_t at = 0;
    for (size_t i = k; i < fs->n; i += 2) {
        memcpy(text + at, fs->buf + fs->off[i], fs->off[i + 1] - fs->off[i]);
        at += fs->off[i + 1] - fs->off[i];
    }
    int rc = vocab_build(v, text, total, VOCAB_CODEPOINTS, name);
    free(text);
    return rc;
}

static int encode_side(const field_store *fs, int k, const vocab *v, const size_t *order,
                       size_t n, int shift, int32_t **ids, int64_t **off, const char *name)
{
    size_t total = 0;
    for (size_t j = 0; j < n; j++)
        total += fs->off[2 * order[j] + k + 1] - fs->off[2 * order[j] + k];
    *ids = cn_xmalloc((total + 1) * sizeof **ids);
    *off = cn_xmalloc((n + 1) * sizeof **off);
    (*off)[0] = 0;
    size_t at = 0;
    for (size_t j = 0; j < n; j++) {
        size_t f = 2 * order[j] + k, got;
        if (vocab_encode(v, (const uint8_t *)fs->buf + fs->off[f], fs->off[f + 1] - fs->off[f],
                         *ids + at, &got, name) != 0)
            return -1;
        for (size_t i = 0; i < got; i++)
            (*ids)[at + i] += shift;
        at += got;
        (*off)[j + 1] = (int64_t)at;
    }
    return 0;
}

static int write_file(const pairs_prepare_options *o, const char *tmp, const vocab *vs,
                      const vocab *vt, const int32_t *src, const int64_t *soff,
                      const int32_t *tgt, const int64_t *toff, const pairs_stats *st)
{
    hid_t fid = h5io_file_create(tmp, H5P_DEFAULT);
    if (fid < 0)
        return -1;
    const size_t n = st->n_pairs;
    hsize_t d_vs = (hsize_t)vs->size, d_vt = (hsize_t)vt->size, d_off = n + 1,
            d_s = (hsize_t)soff[n], d_t = (hsize_t)toff[n];
    int rc = 0;
    if (h5io_attr_write_str(tmp, fid, "format", PAIRS_FORMAT) < 0 ||
        h5io_attr_write_i64(tmp, fid, "version", PAIRS_FORMAT_VERSION) < 0 ||
        h5io_attr_write_str(tmp, fid, "vocab_mode", "codepoints") < 0 ||
        h5io_attr_write_i64(tmp, fid, "n_pairs", (int64_t)n) < 0 ||
        h5io_attr_write_i64(tmp, fid, "n_train", (int64_t)st->n_split[0]) < 0 ||
        h5io_attr_write_i64(tmp, fid, "n_val", (int64_t)st->n_split[1]) < 0 ||
        h5io_attr_write_i64(tmp, fid, "n_test", (int64_t)st->n_split[2]) < 0 ||
        h5io_attr_write_i64(tmp, fid, "n_read", (int64_t)st->n_read) < 0 ||
        h5io_attr_write_i64(tmp, fid, "n_dropped_len", (int64_t)st->n_dropped_len) < 0 ||
        h5io_attr_write_i64(tmp, fid, "n_dropped_empty", (int64_t)st->n_dropped_empty) < 0 ||
        h5io_attr_write_i64(tmp, fid, "max_len", o->max_len) < 0 ||
        h5io_attr_write_u64(tmp, fid, "seed", o->seed) < 0 ||
        h5io_attr_write_str(tmp, fid, "source", o->in_path) < 0 ||
        h5io_attr_write_i64(tmp, fid, "src_col", o->reverse ? o->tgt_col : o->src_col) < 0 ||
        h5io_attr_write_i64(tmp, fid, "tgt_col", o->reverse ? o->src_col : o->tgt_col) < 0 ||
        h5io_dataset_write(tmp, fid, "/vocab_source", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, &d_vs,
                           vs->symbols) < 0 ||
        h5io_dataset_write(tmp, fid, "/vocab_target", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, &d_vt,
                           vt->symbols) < 0 ||
        h5io_dataset_write(tmp, fid, "/src_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &d_off,
                           soff) < 0 ||
        h5io_dataset_write(tmp, fid, "/tgt_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &d_off,
                           toff) < 0 ||
        h5io_dataset_write(tmp, fid, "/src_ids", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &d_s, src) <
            0 ||
        h5io_dataset_write(tmp, fid, "/tgt_ids", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &d_t, tgt) <
            0)
        rc = -1;
    if (h5io_file_close(tmp, fid) < 0)
        rc = -1;
    return rc;
}

int pairs_prepare(const pairs_prepare_options *o)
{
    field_store fs = {0};
    pairs_stats st = {0};
    vocab vs = {0}, vt = {0};
    size_t *order = NULL;
    int32_t *src = NULL, *tgt = NULL;
    int64_t *soff = NULL, *toff = NULL;
    char tmp[4200];
    int rc = -1;
    if (o->src_col < 1 || o->tgt_col < 1 || o->src_col == o->tgt_col) {
        cn_err("--src-col and --tgt-col must be two different columns from 1");
        goto error;
    }
    if (read_pairs(o, &fs, &st) != 0)
        goto error;
    if (side_vocab(&fs, 0, &vs, o->in_path) != 0 || side_vocab(&fs, 1, &vt, o->in_path) != 0)
        goto error;
    const size_t n = fs.n / 2;
    /* splits: a seeded permutation picks test, then val; each split keeps input order */
    uint8_t *split = cn_xcalloc(n, 1);
    size_t *perm = cn_xmalloc(n * sizeof *perm);
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    cn_rng r;
    cn_rng_seed(&r, o->seed);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(cn_rng_next(&r) % i), t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    size_t n_test = (size_t)llround((double)n * o->test_frac);
    size_t n_val = (size_t)llround((double)n * o->val_frac);
    if (n_test + n_val > n)
        n_val = n - n_test;
    for (size_t i = 0; i < n_test; i++)
        split[perm[i]] = SPLIT_TEST;
    for (size_t i = n_test; i < n_test + n_val; i++)
        split[perm[i]] = SPLIT_VAL;
    order = perm; /* reused: train, val, test in input order */
    size_t at = 0;
    for (int s = 0; s < 3; s++)
        for (size_t i = 0; i < n; i++)
            if (split[i] == s) {
                order[at++] = i;
                st.n_split[s]++;
            }
    free(split);
    st.n_pairs = n;
    st.src_vocab = vs.size;
    st.tgt_vocab = vt.size;
    if (encode_side(&fs, 0, &vs, order, n, 0, &src, &soff, o->in_path) != 0 ||
        encode_side(&fs, 1, &vt, order, n, SEQ2SEQ_SPECIALS, &tgt, &toff, o->in_path) != 0)
        goto error;
    if (fsio_tmp_path(tmp, sizeof tmp, o->out_path) != 0)
        goto error;
    if (write_file(o, tmp, &vs, &vt, src, soff, tgt, toff, &st) != 0) {
        remove(tmp);
        goto error;
    }
    if (fsio_commit(tmp, o->out_path, 1) != 0)
        goto error;
    if (o->stats)
        *o->stats = st;
    rc = 0;
error:
    free(fs.buf);
    free(fs.off);
    free(order);
    free(src);
    free(tgt);
    free(soff);
    free(toff);
    vocab_free(&vs);
    vocab_free(&vt);
    return rc;
}

int pairs_is_pairs_file(const char *path)
{
    if (!h5io_is_hdf5(path))
        return 0;
    hid_t fid = h5io_file_open(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fid < 0)
        return 0;
    char fmt[64] = "";
    int yes = h5io_attr_read_str(path, fid, "", "format", fmt, sizeof fmt) == 1 &&
              strcmp(fmt, PAIRS_FORMAT) == 0;
    H5Fclose(fid);
    return yes;
}

static int read_u32s(const char *path, hid_t fid, const char *name, uint32_t **out, int *n)
{
    int rank;
    hsize_t dims[4];
    if (h5io_dataset_shape(path, fid, name, &rank, dims) != 0)
        return -1;
    if (rank != 1 || dims[0] < 1 || dims[0] > VOCAB_MAX_CODEPOINT)
        return cn_err("'%s' is damaged: %s has a bad shape", path, name);
    *out = cn_xmalloc(dims[0] * sizeof **out);
    *n = (int)dims[0];
    return h5io_dataset_read(path, fid, name, H5T_NATIVE_UINT32, H5T_INTEGER, 1, dims, *out);
}

static int read_side(pairs_file *p, hid_t fid, const char *ids_name, const char *off_name,
                     int32_t **ids, int64_t **off, int lo, int hi)
{
    hsize_t d_off = p->n + 1, d_ids;
    *off = cn_xmalloc(d_off * sizeof **off);
    if (h5io_dataset_read(p->path, fid, off_name, H5T_NATIVE_INT64, H5T_INTEGER, 1, &d_off,
                          *off) != 0)
        return -1;
    if ((*off)[0] != 0)
        return cn_err("'%s' is damaged: %s does not start at 0", p->path, off_name);
    for (size_t i = 0; i < p->n; i++)
        if ((*off)[i + 1] < (*off)[i])
            return cn_err("'%s' is damaged: %s is not ascending", p->path, off_name);
    d_ids = (hsize_t)(*off)[p->n];
    *ids = cn_xmalloc((d_ids + 1) * sizeof **ids);
    if (h5io_dataset_read(p->path, fid, ids_name, H5T_NATIVE_INT32, H5T_INTEGER, 1, &d_ids,
                          *ids) != 0)
        return -1;
    for (hsize_t i = 0; i < d_ids; i++)
        if ((*ids)[i] < lo || (*ids)[i] >= hi)
            return cn_err("'%s' is damaged: %s holds id %d outside [%d, %d)", p->path, ids_name,
                          (*ids)[i], lo, hi);
    return 0;
}

int pairs_open(pairs_file *p, const char *path, vocab *src, vocab *tgt)
{
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", path);
    uint32_t *sym = NULL;
    int nsym = 0, rc = -1;
    int64_t v[4];
    char fmt[64] = "";
    hid_t fid = h5io_file_open(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fid < 0)
        return -1;
    if (h5io_attr_read_str(path, fid, "", "format", fmt, sizeof fmt) != 1 ||
        strcmp(fmt, PAIRS_FORMAT) != 0) {
        cn_err("'%s' is not a pairs file (prepare it with charnn prepare --task seq2seq)", path);
        goto error;
    }
    const char *counts[4] = {"n_pairs", "n_train", "n_val", "n_test"};
    for (int i = 0; i < 4; i++)
        if (h5io_attr_read_num(path, fid, "", counts[i], H5T_NATIVE_INT64, 1, &v[i]) != 1 ||
            v[i] < 0) {
            cn_err("'%s' is damaged: attribute %s", path, counts[i]);
            goto error;
        }
    if (v[1] + v[2] + v[3] != v[0]) {
        cn_err("'%s' is damaged: the splits do not add up to n_pairs", path);
        goto error;
    }
    p->n = (size_t)v[0];
    for (int s = 0; s < 3; s++) {
        p->split_begin[s] = s ? p->split_end[s - 1] : 0;
        p->split_end[s] = p->split_begin[s] + (size_t)v[1 + s];
        p->stats.n_split[s] = (size_t)v[1 + s];
    }
    p->stats.n_pairs = p->n;
    if (read_u32s(path, fid, "/vocab_source", &sym, &nsym) != 0 ||
        vocab_from_symbols(src, VOCAB_CODEPOINTS, sym, nsym) != 0)
        goto error;
    free(sym);
    sym = NULL;
    if (read_u32s(path, fid, "/vocab_target", &sym, &nsym) != 0 ||
        vocab_from_symbols(tgt, VOCAB_CODEPOINTS, sym, nsym) != 0)
        goto error;
    p->stats.src_vocab = src->size;
    p->stats.tgt_vocab = tgt->size;
    if (read_side(p, fid, "/src_ids", "/src_offsets", &p->src, &p->src_off, 0, src->size) != 0 ||
        read_side(p, fid, "/tgt_ids", "/tgt_offsets", &p->tgt, &p->tgt_off, SEQ2SEQ_SPECIALS,
                  tgt->size + SEQ2SEQ_SPECIALS) != 0)
        goto error;
    for (size_t i = 0; i < p->n; i++) {
        p->stats.max_src = pairs_src_len(p, i) > p->stats.max_src ? pairs_src_len(p, i)
                                                                  : p->stats.max_src;
        p->stats.max_tgt = pairs_tgt_len(p, i) > p->stats.max_tgt ? pairs_tgt_len(p, i)
                                                                  : p->stats.max_tgt;
        if (pairs_src_len(p, i) < 1) {
            cn_err("'%s' is damaged: pair %zu has an empty source", path, i);
            goto error;
        }
    }
    rc = 0;
error:
    free(sym);
    if (h5io_file_close(path, fid) < 0)
        rc = -1;
    if (rc != 0)
        pairs_close(p);
    return rc;
}

void pairs_close(pairs_file *p)
{
    free(p->src);
    free(p->src_off);
    free(p->tgt);
    free(p->tgt_off);
    p->src = p->tgt = NULL;
    p->src_off = p->tgt_off = NULL;
}
