/* Tag files: per-character tagging examples ("text<TAB>tags" pairs, or a
 * spacing corpus derived from plain text) into the examples layout with task
 * "tag". See examples.h and docs/examples-format.md. */
#define _GNU_SOURCE /* memrchr */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "charnn/common.h"
#include "charnn/examples.h"
#include "charnn/fsio.h"
#include "charnn/h5io.h"

static const char *const tag_origin_names[3] = {"inputs", "val_file", "test_file"};
static const char *const tag_split_attr[3][2] = {
    {"train_begin", "train_end"}, {"val_begin", "val_end"}, {"test_begin", "test_end"}};

typedef struct {
    const examples_tag_options *o;
    uint32_t tagset[EXAMPLES_MAX_TAGS]; /* the tags as code points, in id order */
    int n_tags;
    uint32_t *sym;  /* (n_sym) every kept character, examples one after another */
    uint8_t *tag;   /* (n_sym) */
    size_t n_sym, cap_sym;
    size_t *start;  /* (n_ex + 1) */
    uint8_t *origin; /* (n_ex) EXAMPLES_FROM_* */
    size_t n_ex, cap_ex;
    size_t n_kept[3], n_dropped[3];
    /* the line being read */
    uint32_t *line_sym;
    size_t line_cap;
} tag_prep;

static void push_sym(tag_prep *p, uint32_t s, uint8_t t)
{
    if (p->n_sym == p->cap_sym) {
        p->cap_sym = p->cap_sym ? 2 * p->cap_sym : 4096;
        p->sym = cn_xrealloc(p->sym, p->cap_sym * sizeof *p->sym);
        p->tag = cn_xrealloc(p->tag, p->cap_sym);
    }
    p->sym[p->n_sym] = s;
    p->tag[p->n_sym] = t;
    p->n_sym++;
}

/* Open an example at the current end of the symbols. */
static void push_example(tag_prep *p, int origin)
{
    if (p->n_ex + 1 >= p->cap_ex) {
        p->cap_ex = p->cap_ex ? 2 * p->cap_ex : 1024;
        p->start = cn_xrealloc(p->start, (p->cap_ex + 1) * sizeof *p->start);
        p->origin = cn_xrealloc(p->origin, p->cap_ex);
    }
    p->start[p->n_ex] = p->n_sym;
    p->origin[p->n_ex] = (uint8_t)origin;
    p->n_ex++;
    p->start[p->n_ex] = p->n_sym;
}

/* Symbols of text (len bytes) into p->line_sym; their count, or -1. */
static long decode_line(tag_prep *p, const char *path, size_t line, const char *text, size_t len,
                        vocab_mode mode)
{
    if (len > p->line_cap) {
        p->line_cap = len;
        p->line_sym = cn_xrealloc(p->line_sym, len * sizeof *p->line_sym);
    }
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = (uint8_t)text[i];
        int k = 1;
        if (mode == VOCAB_CODEPOINTS && (k = utf8_decode((const uint8_t *)text + i, len - i, &cp)) == 0)
            return cn_err("'%s' line %zu: invalid UTF-8 at byte %zu of the line (use --bytes "
                          "for raw bytes)", path, line, i + 1);
        p->line_sym[n++] = cp;
        i += (size_t)k;
    }
    return (long)n;
}

static int tag_id(const tag_prep *p, uint32_t cp)
{
    for (int k = 0; k < p->n_tags; k++)
        if (p->tagset[k] == cp)
            return k;
    return -1;
}

static void tagset_string(const tag_prep *p, char *out, size_t n)
{
    size_t q = 0;
    for (int k = 0; k < p->n_tags && q + 5 < n; k++)
        q += (size_t)utf8_encode(p->tagset[k], out + q);
    out[q] = '\0';
}

/* The tag set from a string: distinct single characters, no tab. */
static int parse_tagset(tag_prep *p, const char *s, const char *what)
{
    size_t len = strlen(s);
    p->n_tags = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = utf8_decode((const uint8_t *)s + i, len - i, &cp);
        if (k == 0)
            return cn_err("%s: the tag set is not valid UTF-8", what);
        if (cp == '\t' || cp == ' ')
            return cn_err("%s: a tag cannot be a tab or a space", what);
        if (tag_id(p, cp) >= 0)
            return cn_err("%s: tag '%.*s' is given twice", what, k, s + i);
        if (p->n_tags == EXAMPLES_MAX_TAGS)
            return cn_err("%s: more than %d tags", what, EXAMPLES_MAX_TAGS);
        p->tagset[p->n_tags++] = cp;
        i += (size_t)k;
    }
    if (p->n_tags < 2)
        return cn_err("%s: a tag set needs at least 2 tags, got %d", what, p->n_tags);
    return 0;
}

/* "text<TAB>tags" */
static int read_pair(tag_prep *p, const char *path, size_t line, char *s, size_t len, int origin)
{
    if (len == 0)
        return cn_err("'%s' line %zu: empty line", path, line);
    char *tab = memrchr(s, '\t', len);
    if (!tab)
        return cn_err("'%s' line %zu: no tab between the text and its tags", path, line);
    size_t tlen = (size_t)(tab - s), glen = len - tlen - 1;
    if (tlen == 0)
        return cn_err("'%s' line %zu: empty text", path, line);
    long n = decode_line(p, path, line, s, tlen, p->o->mode);
    if (n < 0)
        return -1;
    push_example(p, origin);
    long n_tags = 0;
    for (size_t i = 0; i < glen;) {
        uint32_t cp;
        int k = utf8_decode((const uint8_t *)tab + 1 + i, glen - i, &cp);
        if (k == 0)
            return cn_err("'%s' line %zu: the tags are not valid UTF-8", path, line);
        int id = tag_id(p, cp);
        if (id < 0) {
            char set[4 * EXAMPLES_MAX_TAGS + 1];
            tagset_string(p, set, sizeof set);
            return cn_err("'%s' line %zu: unknown tag '%.*s' at character %ld (the tags are '%s')",
                          path, line, k, tab + 1 + i, n_tags + 1, set);
        }
        if (n_tags < n)
            push_sym(p, p->line_sym[n_tags], (uint8_t)id);
        n_tags++;
        i += (size_t)k;
    }
    if (n_tags != n)
        return cn_err("'%s' line %zu: the text has %ld characters but %ld tags", path, line, n,
                      n_tags);
    p->start[p->n_ex] = p->n_sym;
    p->n_kept[origin]++;
    return 0;
}

/* A text whose spaces become tags: B (id 0) before a space, else I (id 1). */
static int read_spacing(tag_prep *p, const char *path, size_t line, const char *s, size_t len,
                        int origin)
{
    long n = decode_line(p, path, line, s, len, p->o->mode);
    if (n < 0)
        return -1;
    size_t first = p->n_sym, chars = 0, spaces = 0;
    push_example(p, origin);
    for (long i = 0; i < n; i++) {
        if (p->line_sym[i] == ' ') {
            if (chars > 0 && p->tag[p->n_sym - 1] != 0) {
                p->tag[p->n_sym - 1] = 0;
                spaces++;
            }
            continue;
        }
        push_sym(p, p->line_sym[i], 1);
        chars++;
    }
    if (chars > 0 && p->tag[p->n_sym - 1] == 0) { /* trailing spaces: nothing follows */
        p->tag[p->n_sym - 1] = 1;
        spaces--;
    }
    if (chars == 0 || (double)spaces < p->o->min_space_rate * (double)chars) {
        p->n_sym = first; /* dropped: no text, or written without normal spacing */
        p->n_ex--;
        p->n_dropped[origin]++;
        return 0;
    }
    p->start[p->n_ex] = p->n_sym;
    p->n_kept[origin]++;
    return 0;
}

/* Field col (0-based) of a tab-separated line, or NULL. */
static const char *tsv_field(const char *s, size_t len, int col, size_t *flen)
{
    const char *end = s + len;
    for (int c = 0; c < col; c++) {
        const char *tab = memchr(s, '\t', (size_t)(end - s));
        if (!tab)
            return NULL;
        s = tab + 1;
    }
    const char *tab = memchr(s, '\t', (size_t)(end - s));
    *flen = (size_t)((tab ? tab : end) - s);
    return s;
}

static int read_file(tag_prep *p, const char *path, int origin)
{
    const examples_tag_options *o = p->o;
    if (fsio_check_regular(path, NULL) != 0)
        return -1;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cn_err("cannot open '%s': %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, line = 0;
    ssize_t got;
    int rc = 0, col = -1, header_done = 0;
    while (rc == 0 && (got = getline(&buf, &cap, f)) >= 0) {
        size_t len = (size_t)got;
        line++;
        char *s = buf;
        if (len > 0 && s[len - 1] == '\n')
            len--;
        if (len > 0 && s[len - 1] == '\r')
            len--;
        if (line == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
            s += 3;
            len -= 3;
        }
        s[len] = '\0';
        if (!header_done && !o->derive_spacing && len >= 9 && memcmp(s, "text\ttags", 9) == 0) {
            header_done = 1;
            if (s[9] == ':') {
                tag_prep q = *p;
                char what[64 + 4096];
                snprintf(what, sizeof what, "'%s' line 1", path);
                if (parse_tagset(&q, s + 10, what) != 0) {
                    rc = -1;
                    break;
                }
                if (p->n_tags == 0) {
                    memcpy(p->tagset, q.tagset, sizeof p->tagset);
                    p->n_tags = q.n_tags;
                } else if (q.n_tags != p->n_tags ||
                           memcmp(q.tagset, p->tagset, (size_t)p->n_tags * sizeof *p->tagset)) {
                    char set[4 * EXAMPLES_MAX_TAGS + 1];
                    tagset_string(p, set, sizeof set);
                    rc = cn_err("'%s' line 1: the header's tags '%s' differ from '%s'", path,
                                s + 10, set);
                }
            }
            continue;
        }
        if (!header_done && o->derive_spacing && o->text_col) {
            header_done = 1;
            for (int c = 0;; c++) {
                size_t flen;
                const char *fld = tsv_field(s, len, c, &flen);
                if (!fld)
                    break;
                if (flen == strlen(o->text_col) && memcmp(fld, o->text_col, flen) == 0) {
                    col = c;
                    break;
                }
            }
            if (col < 0)
                rc = cn_err("'%s' line 1: no column '%s' in the header", path, o->text_col);
            continue;
        }
        header_done = 1;
        if (!o->derive_spacing) {
            if (p->n_tags == 0) {
                rc = cn_err("'%s' line %zu: no tag set: give --tag-set or a first line "
                            "'text<TAB>tags:BI'", path, line);
                break;
            }
            rc = read_pair(p, path, line, s, len, origin);
        } else if (col >= 0) {
            size_t flen;
            const char *fld = tsv_field(s, len, col, &flen);
            if (!fld)
                rc = cn_err("'%s' line %zu: no column %d ('%s')", path, line, col + 1, o->text_col);
            else
                rc = read_spacing(p, path, line, fld, flen, origin);
        } else {
            rc = read_spacing(p, path, line, s, len, origin);
        }
    }
    if (rc == 0 && ferror(f))
        rc = cn_err("cannot read '%s': %s", path, strerror(errno));
    free(buf);
    fclose(f);
    return rc;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The split of each example: given files keep theirs; the inputs are
 * shuffled (seeded) and their first round(test_frac n) go to test, the next
 * round(val_frac n) to val. */
static uint8_t *assign_splits(const tag_prep *p)
{
    uint8_t *split = cn_xmalloc(p->n_ex ? p->n_ex : 1);
    size_t *in = cn_xmalloc((p->n_ex ? p->n_ex : 1) * sizeof *in), n_in = 0;
    for (size_t i = 0; i < p->n_ex; i++) {
        split[i] = p->origin[i] == EXAMPLES_FROM_TEST_FILE  ? SPLIT_TEST
                   : p->origin[i] == EXAMPLES_FROM_VAL_FILE ? SPLIT_VAL
                                                            : SPLIT_TRAIN;
        if (p->origin[i] == EXAMPLES_FROM_INPUTS)
            in[n_in++] = i;
    }
    cn_rng rng;
    cn_rng_seed(&rng, p->o->seed);
    for (size_t k = n_in; k > 1; k--) {
        size_t j = (size_t)(cn_rng_next(&rng) % k), t = in[k - 1];
        in[k - 1] = in[j];
        in[j] = t;
    }
    size_t n_test = (size_t)llround(p->o->test_frac * (double)n_in);
    size_t n_val = (size_t)llround(p->o->val_frac * (double)n_in);
    for (size_t k = 0; k < n_test + n_val && k < n_in; k++)
        split[in[k]] = k < n_test ? SPLIT_TEST : SPLIT_VAL;
    free(in);
    return split;
}

static int write_file(tag_prep *p, const char *tmp_path, examples_stats *st)
{
    const examples_tag_options *o = p->o;
    const char *out = o->out_path;
    int rc = -1;
    hid_t fapl = H5I_INVALID_HID, file = H5I_INVALID_HID;
    uint8_t *split = assign_splits(p);
    /* the vocabulary: the distinct symbols, ascending */
    uint32_t *symbols = cn_xmalloc((p->n_sym ? p->n_sym : 1) * sizeof *symbols);
    memcpy(symbols, p->sym, p->n_sym * sizeof *symbols);
    qsort(symbols, p->n_sym, sizeof *symbols, cmp_u32);
    size_t V = 0;
    for (size_t i = 0; i < p->n_sym; i++)
        if (V == 0 || symbols[V - 1] != symbols[i])
            symbols[V++] = symbols[i];
    vocab v;
    memset(&v, 0, sizeof v);
    int32_t *ids = cn_xmalloc((p->n_sym ? p->n_sym : 1) * sizeof *ids);
    uint8_t *tags = cn_xmalloc(p->n_sym ? p->n_sym : 1);
    int64_t *offsets = cn_xmalloc((p->n_ex + 1) * sizeof *offsets);
    char **names = cn_xcalloc((size_t)p->n_tags, sizeof *names);
    size_t split_begin[3], split_end[3], max_len = 0, e = 0, t = 0;
    if (vocab_from_symbols(&v, o->mode, symbols, (int)V) != 0)
        goto done;
    for (int s = 0; s < 3; s++) {
        split_begin[s] = e;
        for (size_t i = 0; i < p->n_ex; i++) {
            if (split[i] != s)
                continue;
            offsets[e++] = (int64_t)t;
            size_t n = p->start[i + 1] - p->start[i];
            max_len = n > max_len ? n : max_len;
            for (size_t j = p->start[i]; j < p->start[i + 1]; j++, t++) {
                ids[t] = vocab_id(&v, p->sym[j]);
                tags[t] = p->tag[j];
            }
        }
        split_end[s] = e;
        st->n_split[s] = split_end[s] - split_begin[s];
    }
    offsets[e] = (int64_t)t;
    CHARNN_ASSERT(e == p->n_ex && t == p->n_sym);
    for (int k = 0; k < p->n_tags; k++) {
        names[k] = cn_xcalloc(5, 1);
        utf8_encode(p->tagset[k], names[k]);
    }
    st->n_examples = p->n_ex;
    st->n_tokens = p->n_sym;
    st->n_classes = p->n_tags;
    st->vocab_size = v.size;
    for (int k = 0; k < 3; k++) {
        st->n_read[k] = p->n_kept[k];
        st->n_duplicates[k] = p->n_dropped[k];
    }
    hid_t file_type = V <= 256 ? H5T_STD_U8LE : V <= 65536 ? H5T_STD_U16LE : H5T_STD_U32LE;
    hsize_t dims = (hsize_t)p->n_sym, n_off = (hsize_t)p->n_ex + 1, n_tags = (hsize_t)p->n_tags;
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0) {
        cn_err("cannot write '%s': file properties failed", out);
        goto done;
    }
    char set[4 * EXAMPLES_MAX_TAGS + 1];
    tagset_string(p, set, sizeof set);
    const char *rule = o->test_path && o->val_path ? "val and test files"
                       : o->test_path             ? "test file; val shuffled, seeded"
                       : o->val_path              ? "val file; test shuffled, seeded"
                                                  : "shuffled, seeded";
    if ((file = h5io_file_create(tmp_path, fapl)) < 0 ||
        h5io_dataset_write(out, file, "/vocab", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1,
                           &(hsize_t){(hsize_t)V}, symbols) != 0 ||
        h5io_dataset_write(out, file, "/tokens", file_type, H5T_NATIVE_INT32, 1, &dims, ids) != 0 ||
        h5io_dataset_write(out, file, "/tags", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, &dims, tags) != 0 ||
        h5io_dataset_write(out, file, "/offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &n_off,
                           offsets) != 0 ||
        h5io_dataset_write_strings(out, file, "/label_names", (const char *const *)names,
                                   (size_t)n_tags) != 0 ||
        h5io_attr_write_str(out, file, "format", EXAMPLES_FORMAT) != 0 ||
        h5io_attr_write_i64(out, file, "format_version", EXAMPLES_FORMAT_VERSION) != 0 ||
        h5io_attr_write_str(out, file, "task", "tag") != 0 ||
        h5io_attr_write_str(out, file, "vocab_mode",
                            o->mode == VOCAB_BYTES ? "bytes" : "codepoints") != 0 ||
        h5io_attr_write_u64(out, file, "n_examples", p->n_ex) != 0 ||
        h5io_attr_write_u64(out, file, "n_tokens", p->n_sym) != 0 ||
        h5io_attr_write_u64(out, file, "n_classes", (uint64_t)p->n_tags) != 0 ||
        h5io_attr_write_u64(out, file, "max_len", max_len) != 0 ||
        h5io_attr_write_str(out, file, "tag_set", set) != 0 ||
        h5io_attr_write_str(out, file, "tag_source",
                            o->derive_spacing ? "derived spacing" : "pairs") != 0 ||
        h5io_attr_write_f64(out, file, "min_space_rate", o->min_space_rate) != 0 ||
        h5io_attr_write_str(out, file, "text_col", o->text_col ? o->text_col : "") != 0 ||
        h5io_attr_write_str(out, file, "val_source", o->val_path ? o->val_path : "") != 0 ||
        h5io_attr_write_str(out, file, "test_source", o->test_path ? o->test_path : "") != 0 ||
        h5io_attr_write_str(out, file, "split_rule", rule) != 0 ||
        h5io_attr_write_u64(out, file, "seed", o->seed) != 0 ||
        h5io_attr_write_f64(out, file, "val_frac", o->val_frac) != 0 ||
        h5io_attr_write_f64(out, file, "test_frac", o->test_frac) != 0 ||
        h5io_attr_write_i64(out, file, "dedup", 0) != 0 ||
        h5io_attr_write_u64(out, file, "n_label_conflicts", 0) != 0 ||
        h5io_attr_write_u64(out, file, "n_cross_split", 0) != 0)
        goto done;
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "n_read_%s", tag_origin_names[k]);
        if (h5io_attr_write_u64(out, file, name, p->n_kept[k]) != 0)
            goto done;
        snprintf(name, sizeof name, "n_duplicates_%s", tag_origin_names[k]);
        if (h5io_attr_write_u64(out, file, name, p->n_dropped[k]) != 0 ||
            h5io_attr_write_u64(out, file, tag_split_attr[k][0], split_begin[k]) != 0 ||
            h5io_attr_write_u64(out, file, tag_split_attr[k][1], split_end[k]) != 0)
            goto done;
    }
    int closed = h5io_file_close(out, file);
    file = H5I_INVALID_HID;
    rc = closed;
done:
    if (file >= 0)
        H5Fclose(file);
    if (fapl >= 0)
        H5Pclose(fapl);
    for (int k = 0; k < p->n_tags; k++)
        free(names[k]);
    free(names);
    vocab_free(&v);
    free(offsets);
    free(tags);
    free(ids);
    free(symbols);
    free(split);
    return rc;
}

int examples_prepare_tag(const examples_tag_options *o)
{
    if (!(o->val_frac >= 0 && o->test_frac >= 0 && o->val_frac + o->test_frac < 1))
        return cn_err("the val and test fractions must be >= 0 and sum below 1");
    if (!(o->min_space_rate >= 0))
        return cn_err("--min-space-rate must be >= 0");
    if (o->derive_spacing && o->tag_set)
        return cn_err("--derive spacing sets the tags (B: a space follows, I: none); drop "
                      "--tag-set");
    tag_prep p;
    memset(&p, 0, sizeof p);
    p.o = o;
    int rc = -1;
    char *tmp_path = NULL;
    examples_stats st;
    memset(&st, 0, sizeof st);
    if (o->derive_spacing) {
        p.tagset[0] = 'B';
        p.tagset[1] = 'I';
        p.n_tags = 2;
    } else if (o->tag_set && parse_tagset(&p, o->tag_set, "--tag-set") != 0) {
        goto done;
    }
    const char *files[3] = {NULL, o->val_path, o->test_path};
    for (int i = 0; i < o->n_inputs; i++)
        if (fsio_same_file(o->inputs[i], o->out_path)) {
            cn_err("'%s' is both an input and the output", o->out_path);
            goto done;
        }
    for (int i = 0; i < o->n_inputs; i++)
        if (read_file(&p, o->inputs[i], EXAMPLES_FROM_INPUTS) != 0)
            goto done;
    for (int k = 1; k < 3; k++)
        if (files[k] && read_file(&p, files[k], k) != 0)
            goto done;
    if (p.n_ex == 0) {
        cn_err("no examples left in the inputs%s",
               o->derive_spacing && o->min_space_rate > 0 ? " after --min-space-rate" : "");
        goto done;
    }
    size_t n = strlen(o->out_path) + 32;
    tmp_path = cn_xmalloc(n);
    if (fsio_tmp_path(tmp_path, n, o->out_path) != 0)
        goto done;
    h5io_silence();
    rc = write_file(&p, tmp_path, &st);
    if (rc == 0)
        rc = fsio_commit(tmp_path, o->out_path, 1);
    if (rc == 0 && o->stats)
        *o->stats = st;
done:
    if (tmp_path) {
        if (rc != 0)
            unlink(tmp_path);
        free(tmp_path);
    }
    free(p.sym);
    free(p.tag);
    free(p.start);
    free(p.origin);
    free(p.line_sym);
    return rc;
}
