/* examples: labelled examples prepared into HDF5 in two streaming passes, and
 * read back by hyperslabs. See examples.h and docs/examples-format.md.
 *
 * Pass 1 reads every record once and keeps, per example, a 128-bit hash of
 * its text, its token count, its label and where it came from (32 bytes);
 * the symbols seen go into a bitmap. Duplicates, label conflicts and the
 * stratified split are decided on those records alone. Pass 2 reads the
 * inputs again, checks each record hashes as before, encodes the kept ones
 * and streams their ids into three regions of /tokens (train, val, test), so
 * the file is grouped by split without holding any text.
 *
 * Every HDF5 call that names a dataset goes through h5io (chunked,
 * fletcher32, errors in charnn's words); the file is committed with fsio. */
#include <errno.h>
#include <fcntl.h>
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
#include "examples_input.h"

enum {
    EX_CHUNK = 1 << 16,        /* elements per HDF5 chunk of every 1-D dataset */
    EX_WRITE_IDS = 1 << 18,    /* ids buffered per split before one H5Dwrite */
    EX_BLOCKS_PER_READ = 32,   /* blocks of ids in one HDF5 selection */
    EX_READ_CACHE_SLOTS = 12421,
};
#define EX_READ_CACHE_BYTES ((size_t)32 << 20)

static const char *const ex_from_names[3] = {"inputs", "val_file", "test_file"};
static const char *const ex_split_attr[3][2] = {
    {"train_begin", "train_end"}, {"val_begin", "val_end"}, {"test_begin", "test_end"}};

void examples_prepare_options_init(examples_prepare_options *o)
{
    memset(o, 0, sizeof *o);
    o->format = EXAMPLES_INPUT_AUTO;
    o->mode = VOCAB_CODEPOINTS;
    o->seed = 1;
}

int examples_input_format_parse(const char *name)
{
    static const char *const names[] = {"auto", "tsv", "csv", "jsonl", "dir"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

void examples_stats_print(const examples_stats *st, FILE *f)
{
    fprintf(f, "examples: %zu (train %zu, val %zu, test %zu), %d classes, %d symbols, %zu tokens\n",
            st->n_examples, st->n_split[SPLIT_TRAIN], st->n_split[SPLIT_VAL],
            st->n_split[SPLIT_TEST], st->n_classes, st->vocab_size, st->n_tokens);
    fprintf(f, "read: %zu from the inputs", st->n_read[EXAMPLES_FROM_INPUTS]);
    if (st->n_read[EXAMPLES_FROM_VAL_FILE])
        fprintf(f, ", %zu from the val file", st->n_read[EXAMPLES_FROM_VAL_FILE]);
    if (st->n_read[EXAMPLES_FROM_TEST_FILE])
        fprintf(f, ", %zu from the test file", st->n_read[EXAMPLES_FROM_TEST_FILE]);
    size_t dups = st->n_duplicates[0] + st->n_duplicates[1] + st->n_duplicates[2];
    fprintf(f, "\nduplicates: %zu", dups);
    if (dups)
        fprintf(f, " (inputs %zu, val file %zu, test file %zu), %s",
                st->n_duplicates[EXAMPLES_FROM_INPUTS], st->n_duplicates[EXAMPLES_FROM_VAL_FILE],
                st->n_duplicates[EXAMPLES_FROM_TEST_FILE],
                st->dedup ? "dropped" : "kept (--dedup drops them)");
    fprintf(f, "\n");
    if (st->n_label_conflicts)
        fprintf(f, "label conflicts: %zu texts with two or more labels (%s)\n",
                st->n_label_conflicts,
                st->dedup ? "the kept copy's label wins" : "every copy kept with its label");
    if (st->n_cross_split)
        fprintf(f, "leaks: %zu texts are in more than one split\n", st->n_cross_split);
}

/* ---- hashing -------------------------------------------------------------- */

static inline uint64_t ex_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Two independent 64-bit lanes over 8-byte words: texts are duplicates when
 * both agree, so n texts collide with probability about n^2 / 2^129. */
static void ex_hash128(const char *s, size_t n, uint64_t h[2])
{
    uint64_t a = 0x9e3779b97f4a7c15ull ^ n, b = 0xc2b2ae3d27d4eb4full + n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        a = ex_mix64(a ^ w);
        b = ex_mix64(b + (w ^ 0x165667b19e3779f9ull)) ^ (b >> 17);
    }
    uint64_t tail = 0;
    for (size_t k = 0; i + k < n; k++)
        tail |= (uint64_t)(uint8_t)s[i + k] << (8 * k);
    h[0] = ex_mix64(ex_mix64(a ^ tail) ^ n);
    h[1] = ex_mix64(ex_mix64(b + (tail ^ 0x27d4eb2f165667c5ull)) + n);
}

/* ---- the label table ------------------------------------------------------ */

typedef struct {
    char **names; /* (n) NUL-terminated, in first-seen order */
    int n, cap;
    int32_t *slots; /* (n_slots) index into names, or -1 */
    size_t n_slots;
} ex_labels;

static void ex_labels_init(ex_labels *t)
{
    memset(t, 0, sizeof *t);
    t->n_slots = 64;
    t->slots = cn_xmalloc(t->n_slots * sizeof *t->slots);
    for (size_t k = 0; k < t->n_slots; k++)
        t->slots[k] = -1;
}

static void ex_labels_free(ex_labels *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->names[i]);
    free(t->names);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static size_t ex_labels_slot(const ex_labels *t, const char *s, size_t len)
{
    size_t k = (size_t)cn_hash_bytes(s, len) & (t->n_slots - 1);
    while (t->slots[k] >= 0) {
        const char *name = t->names[t->slots[k]];
        if (strlen(name) == len && memcmp(name, s, len) == 0)
            break;
        k = (k + 1) & (t->n_slots - 1);
    }
    return k;
}

static int ex_labels_find(const ex_labels *t, const char *s, size_t len)
{
    return t->slots[ex_labels_slot(t, s, len)];
}

static int ex_labels_add(ex_labels *t, const char *s, size_t len)
{
    if ((size_t)(t->n + 1) * 2 > t->n_slots) {
        free(t->slots);
        t->n_slots *= 2;
        t->slots = cn_xmalloc(t->n_slots * sizeof *t->slots);
        for (size_t k = 0; k < t->n_slots; k++)
            t->slots[k] = -1;
        for (int i = 0; i < t->n; i++)
            t->slots[ex_labels_slot(t, t->names[i], strlen(t->names[i]))] = i;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->names = cn_xrealloc(t->names, (size_t)t->cap * sizeof *t->names);
    }
    char *name = cn_xmalloc(len + 1);
    memcpy(name, s, len);
    name[len] = '\0';
    t->names[t->n] = name;
    t->slots[ex_labels_slot(t, s, len)] = t->n;
    return t->n++;
}

/* ---- records of pass 1 ---------------------------------------------------- */

typedef struct {
    uint64_t hash[2];
    uint32_t len;    /* tokens */
    int32_t label;   /* class id (first-seen order until the names are sorted) */
    uint32_t pos;    /* reading order */
    uint8_t origin;  /* EXAMPLES_FROM_* */
    uint8_t split;   /* SPLIT_TRAIN/VAL/TEST */
    uint8_t keep;    /* written to the file */
    uint8_t pad;
} ex_item;

static int ex_item_cmp_hash(const void *pa, const void *pb)
{
    const ex_item *a = pa, *b = pb;
    static const int priority[3] = {2, 1, 0}; /* test file, val file, inputs */
    if (a->hash[0] != b->hash[0])
        return a->hash[0] < b->hash[0] ? -1 : 1;
    if (a->hash[1] != b->hash[1])
        return a->hash[1] < b->hash[1] ? -1 : 1;
    if (a->origin != b->origin)
        return priority[a->origin] < priority[b->origin] ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int ex_item_cmp_pos(const void *pa, const void *pb)
{
    const ex_item *a = pa, *b = pb;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int ex_same_text(const ex_item *a, const ex_item *b)
{
    return a->hash[0] == b->hash[0] && a->hash[1] == b->hash[1];
}

/* ---- preparing ------------------------------------------------------------ */

typedef struct {
    const examples_prepare_options *o;
    const char *text_key, *label_key;
    examples_input_file *files[3]; /* by EXAMPLES_FROM_* */
    int n_files[3];
    ex_labels labels;
    ex_item *items;
    size_t n_items, items_cap;
    uint64_t *seen;    /* (n_words) bitmap over every possible symbol */
    size_t n_words;
    examples_stats st;
    int32_t *remap;    /* (C) first-seen id -> sorted class id */
    /* pass 2 */
    vocab v;
    int32_t *ids;      /* (ids_cap) one encoded record */
    size_t ids_cap;
    void *out_buf[3];  /* (EX_WRITE_IDS) ids of id_size bytes, per split */
    size_t out_n[3];   /* ids waiting per split */
    size_t cursor[3];  /* next token offset in /tokens per split */
    size_t id_size;
    hid_t mem_type;
    hid_t tokens;
} ex_prep;

static size_t ex_symbol_limit(vocab_mode mode)
{
    return mode == VOCAB_BYTES ? 256u : (size_t)VOCAB_MAX_CODEPOINT + 1u;
}

/* Token count of a record and, in pass 1, its symbols marked in p->seen. */
static size_t ex_scan_symbols(ex_prep *p, const char *text, size_t len)
{
    const uint8_t *u = (const uint8_t *)text;
    if (p->o->mode == VOCAB_BYTES) {
        for (size_t i = 0; i < len; i++)
            p->seen[u[i] >> 6] |= 1ull << (u[i] & 63u);
        return len;
    }
    size_t n = 0, i = 0;
    while (i < len) {
        uint32_t cp = u[i];
        int used = 1;
        if (cp >= 0x80u) {
            used = utf8_decode(u + i, len - i, &cp);
            CHARNN_ASSERT(used > 0); /* the reader checked the line */
        }
        p->seen[cp >> 6] |= 1ull << (cp & 63u);
        i += (size_t)used;
        n++;
    }
    return n;
}

static int ex_pass1_record(ex_prep *p, const examples_reader *r, int origin)
{
    int label = ex_labels_find(&p->labels, r->label, r->label_len);
    if (label < 0) {
        if (origin != EXAMPLES_FROM_INPUTS)
            return cn_err("'%s' line %zu: label '%.*s' does not occur in the training inputs",
                          r->in->path, r->rec_line, (int)r->label_len, r->label);
        if (p->labels.n == EXAMPLES_MAX_CLASSES)
            return cn_err("'%s' line %zu: more than %d distinct labels (is the label column right?)",
                          r->in->path, r->rec_line, EXAMPLES_MAX_CLASSES);
        label = ex_labels_add(&p->labels, r->label, r->label_len);
    }
    if (p->n_items == UINT32_MAX)
        return cn_err("'%s' line %zu: more than %u examples", r->in->path, r->rec_line,
                      (unsigned)UINT32_MAX);
    size_t len = ex_scan_symbols(p, r->text, r->text_len);
    if (len > UINT32_MAX)
        return cn_err("'%s' line %zu: a text of more than %u tokens", r->in->path, r->rec_line,
                      (unsigned)UINT32_MAX);
    if (p->n_items == p->items_cap) {
        p->items_cap = p->items_cap ? p->items_cap + p->items_cap / 2 : 4096;
        p->items = cn_xrealloc(p->items, p->items_cap * sizeof *p->items);
    }
    ex_item *it = &p->items[p->n_items];
    memset(it, 0, sizeof *it);
    ex_hash128(r->text, r->text_len, it->hash);
    it->len = (uint32_t)len;
    it->label = label;
    it->pos = (uint32_t)p->n_items;
    it->origin = (uint8_t)origin;
    it->keep = 1;
    p->n_items++;
    p->st.n_read[origin]++;
    return 0;
}

static void ex_flush_split(ex_prep *p, int s, int *rc)
{
    hsize_t start = (hsize_t)p->cursor[s], count = (hsize_t)p->out_n[s];
    if (*rc == 0 && count > 0 &&
        h5io_dataset_write_box(p->o->out_path, "/tokens", p->tokens, p->mem_type, 1, &start, &count,
                               H5I_INVALID_HID, H5P_DEFAULT, p->out_buf[s]) != 0)
        *rc = -1;
    p->cursor[s] += p->out_n[s];
    p->out_n[s] = 0;
}

static int ex_pass2_record(ex_prep *p, const examples_reader *r, size_t pos)
{
    uint64_t h[2];
    ex_hash128(r->text, r->text_len, h);
    if (pos >= p->n_items || h[0] != p->items[pos].hash[0] || h[1] != p->items[pos].hash[1])
        return cn_err("'%s' changed while being prepared (line %zu)", r->in->path, r->rec_line);
    const ex_item *it = &p->items[pos];
    if (!it->keep)
        return 0;
    if (p->ids_cap < r->text_len) {
        p->ids_cap = r->text_len > 2 * p->ids_cap ? r->text_len : 2 * p->ids_cap;
        p->ids = cn_xrealloc(p->ids, p->ids_cap * sizeof *p->ids);
    }
    size_t n = 0;
    if (vocab_encode(&p->v, (const uint8_t *)r->text, r->text_len, p->ids, &n, r->in->path) != 0 ||
        n != it->len)
        return cn_err("'%s' changed while being prepared (line %zu)", r->in->path, r->rec_line);
    int s = it->split, rc = 0;
    for (size_t k = 0; k < n; k++) {
        size_t at = p->out_n[s];
        uint32_t id = (uint32_t)p->ids[k];
        switch (p->id_size) {
        case 1: ((uint8_t *)p->out_buf[s])[at] = (uint8_t)id; break;
        case 2: ((uint16_t *)p->out_buf[s])[at] = (uint16_t)id; break;
        default: ((uint32_t *)p->out_buf[s])[at] = id; break;
        }
        if (++p->out_n[s] == EX_WRITE_IDS)
            ex_flush_split(p, s, &rc);
    }
    return rc;
}

/* Read every file of every origin; pass 1 or 2. */
static int ex_read_all(ex_prep *p, int pass)
{
    size_t pos = 0;
    for (int origin = 0; origin < 3; origin++) {
        for (int f = 0; f < p->n_files[origin]; f++) {
            examples_reader r;
            if (examples_reader_open(&r, &p->files[origin][f], p->text_key, p->label_key,
                                     p->o->mode == VOCAB_CODEPOINTS) != 0)
                return -1;
            int got;
            while ((got = examples_reader_next(&r)) == 1) {
                int rc = pass == 1 ? ex_pass1_record(p, &r, origin) : ex_pass2_record(p, &r, pos);
                pos++;
                if (rc != 0) {
                    examples_reader_close(&r);
                    return -1;
                }
            }
            examples_reader_close(&r);
            if (got < 0)
                return -1;
        }
    }
    if (pass == 2 && pos != p->n_items)
        return cn_err("the inputs changed while being prepared (%zu examples, then %zu)",
                      p->n_items, pos);
    return 0;
}

static const char *const *ex_sorted_names_base;
static int ex_name_index_cmp(const void *a, const void *b)
{
    return strcmp(ex_sorted_names_base[*(const int *)a], ex_sorted_names_base[*(const int *)b]);
}

/* Classes in byte order of their names: remap first-seen ids, sort names. */
static void ex_sort_classes(ex_prep *p)
{
    int C = p->labels.n;
    int *order = cn_xmalloc((size_t)C * sizeof *order);
    for (int c = 0; c < C; c++)
        order[c] = c;
    /* strcmp order is byte order for UTF-8, and names are unique. */
    ex_sorted_names_base = (const char *const *)p->labels.names;
    qsort(order, (size_t)C, sizeof *order, ex_name_index_cmp);
    ex_sorted_names_base = NULL;
    p->remap = cn_xmalloc((size_t)C * sizeof *p->remap);
    char **sorted = cn_xmalloc((size_t)C * sizeof *sorted);
    for (int k = 0; k < C; k++) {
        p->remap[order[k]] = k;
        sorted[k] = p->labels.names[order[k]];
    }
    memcpy(p->labels.names, sorted, (size_t)C * sizeof *sorted);
    free(sorted);
    free(order);
    for (size_t i = 0; i < p->n_items; i++)
        p->items[i].label = p->remap[p->items[i].label];
}

/* Walk groups of equal text (items sorted by hash, then priority): the first
 * of each group is kept, the others are duplicates. */
static void ex_find_duplicates(ex_prep *p)
{
    qsort(p->items, p->n_items, sizeof *p->items, ex_item_cmp_hash);
    for (size_t g = 0; g < p->n_items;) {
        size_t e = g + 1;
        int conflict = 0;
        while (e < p->n_items && ex_same_text(&p->items[g], &p->items[e])) {
            p->st.n_duplicates[p->items[e].origin]++;
            conflict |= p->items[e].label != p->items[g].label;
            p->items[e].keep = !p->o->dedup;
            e++;
        }
        p->st.n_label_conflicts += (size_t)conflict;
        g = e;
    }
    qsort(p->items, p->n_items, sizeof *p->items, ex_item_cmp_pos);
}

/* Given files keep their split; each class of the kept inputs is shuffled
 * with its own seeded generator and its first round(test_frac * n) examples
 * go to test, the next round(val_frac * n) to val, the rest to train. */
static void ex_assign_splits(ex_prep *p)
{
    int C = p->labels.n;
    size_t *count = cn_xcalloc((size_t)C + 1, sizeof *count);
    for (size_t i = 0; i < p->n_items; i++) {
        ex_item *it = &p->items[i];
        it->split = it->origin == EXAMPLES_FROM_TEST_FILE  ? SPLIT_TEST
                    : it->origin == EXAMPLES_FROM_VAL_FILE ? SPLIT_VAL
                                                           : SPLIT_TRAIN;
        if (it->origin == EXAMPLES_FROM_INPUTS && it->keep)
            count[it->label + 1]++;
    }
    for (int c = 0; c < C; c++)
        count[c + 1] += count[c];
    size_t n_in = count[C];
    uint32_t *members = cn_xmalloc((n_in ? n_in : 1) * sizeof *members);
    size_t *fill = cn_xmalloc((size_t)C * sizeof *fill);
    memcpy(fill, count, (size_t)C * sizeof *fill);
    for (size_t i = 0; i < p->n_items; i++)
        if (p->items[i].origin == EXAMPLES_FROM_INPUTS && p->items[i].keep)
            members[fill[p->items[i].label]++] = (uint32_t)i;
    for (int c = 0; c < C; c++) {
        uint32_t *m = members + count[c];
        size_t n = count[c + 1] - count[c];
        cn_rng rng;
        cn_rng_seed(&rng, cn_hash64(p->o->seed, (uint64_t)c));
        for (size_t k = n; k > 1; k--) {
            size_t j = (size_t)(cn_rng_next(&rng) % k);
            uint32_t t = m[k - 1];
            m[k - 1] = m[j];
            m[j] = t;
        }
        size_t n_test = (size_t)llround(p->o->test_frac * (double)n);
        size_t n_val = (size_t)llround(p->o->val_frac * (double)n);
        CHARNN_ASSERT(n_test + n_val <= n);
        for (size_t k = 0; k < n_test; k++)
            p->items[m[k]].split = SPLIT_TEST;
        for (size_t k = n_test; k < n_test + n_val; k++)
            p->items[m[k]].split = SPLIT_VAL;
    }
    free(fill);
    free(members);
    free(count);
}

/* Without dedup, how many distinct texts ended up in more than one split. */
static void ex_count_cross_split(ex_prep *p)
{
    if (p->o->dedup)
        return;
    qsort(p->items, p->n_items, sizeof *p->items, ex_item_cmp_hash);
    for (size_t g = 0; g < p->n_items;) {
        size_t e = g + 1;
        int splits = 1 << p->items[g].split;
        while (e < p->n_items && ex_same_text(&p->items[g], &p->items[e]))
            splits |= 1 << p->items[e++].split;
        p->st.n_cross_split += (splits & (splits - 1)) != 0;
        g = e;
    }
    qsort(p->items, p->n_items, sizeof *p->items, ex_item_cmp_pos);
}

static char *ex_join_paths(const char *const *paths, int n)
{
    size_t len = 1;
    for (int i = 0; i < n; i++)
        len += strlen(paths[i]) + 1;
    char *s = cn_xmalloc(len), *q = s;
    *q = '\0';
    for (int i = 0; i < n; i++)
        q += sprintf(q, "%s%s", i ? "\n" : "", paths[i]);
    return s;
}

static int ex_write_attributes(ex_prep *p, hid_t file, const size_t *split_begin,
                               const size_t *split_end, size_t max_len)
{
    const examples_prepare_options *o = p->o;
    char *sources = ex_join_paths(o->inputs, o->n_inputs);
    char rule[160];
    if (o->test_path && o->val_path)
        snprintf(rule, sizeof rule, "val and test files");
    else if (o->test_path)
        snprintf(rule, sizeof rule, "test file; val stratified by class, seeded");
    else if (o->val_path)
        snprintf(rule, sizeof rule, "val file; test stratified by class, seeded");
    else
        snprintf(rule, sizeof rule, "stratified by class, seeded");
    const char *out = o->out_path;
    int rc = 0;
    if (h5io_attr_write_str(out, file, "format", EXAMPLES_FORMAT) != 0 ||
        h5io_attr_write_i64(out, file, "format_version", EXAMPLES_FORMAT_VERSION) != 0 ||
        h5io_attr_write_str(out, file, "task", "classify") != 0 ||
        h5io_attr_write_str(out, file, "vocab_mode", o->mode == VOCAB_BYTES ? "bytes" : "codepoints") != 0 ||
        h5io_attr_write_u64(out, file, "n_examples", p->st.n_examples) != 0 ||
        h5io_attr_write_u64(out, file, "n_tokens", p->st.n_tokens) != 0 ||
        h5io_attr_write_u64(out, file, "n_classes", (uint64_t)p->st.n_classes) != 0 ||
        h5io_attr_write_u64(out, file, "max_len", max_len) != 0 ||
        h5io_attr_write_str(out, file, "sources", sources) != 0 ||
        h5io_attr_write_str(out, file, "val_source", o->val_path ? o->val_path : "") != 0 ||
        h5io_attr_write_str(out, file, "test_source", o->test_path ? o->test_path : "") != 0 ||
        h5io_attr_write_str(out, file, "text_col", p->text_key) != 0 ||
        h5io_attr_write_str(out, file, "label_col", p->label_key) != 0 ||
        h5io_attr_write_str(out, file, "split_rule", rule) != 0 ||
        h5io_attr_write_u64(out, file, "seed", o->seed) != 0 ||
        h5io_attr_write_f64(out, file, "val_frac", o->val_frac) != 0 ||
        h5io_attr_write_f64(out, file, "test_frac", o->test_frac) != 0 ||
        h5io_attr_write_i64(out, file, "dedup", o->dedup) != 0 ||
        h5io_attr_write_u64(out, file, "n_label_conflicts", p->st.n_label_conflicts) != 0 ||
        h5io_attr_write_u64(out, file, "n_cross_split", p->st.n_cross_split) != 0)
        rc = -1;
    for (int k = 0; rc == 0 && k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "n_read_%s", ex_from_names[k]);
        if (h5io_attr_write_u64(out, file, name, p->st.n_read[k]) != 0)
            rc = -1;
        snprintf(name, sizeof name, "n_duplicates_%s", ex_from_names[k]);
        if (rc == 0 && h5io_attr_write_u64(out, file, name, p->st.n_duplicates[k]) != 0)
            rc = -1;
        if (rc == 0 && (h5io_attr_write_u64(out, file, ex_split_attr[k][0], split_begin[k]) != 0 ||
                        h5io_attr_write_u64(out, file, ex_split_attr[k][1], split_end[k]) != 0))
            rc = -1;
    }
    free(sources);
    return rc;
}

/* /vocab from the bitmap, and p->v for encoding. */
static int ex_build_vocab(ex_prep *p, hid_t file)
{
    size_t V = 0;
    for (size_t k = 0; k < p->n_words; k++)
        V += (size_t)__builtin_popcountll(p->seen[k]);
    uint32_t *symbols = cn_xmalloc(V * sizeof *symbols);
    size_t n = 0;
    for (size_t k = 0; k < p->n_words; k++)
        for (uint64_t w = p->seen[k]; w; w &= w - 1u)
            symbols[n++] = (uint32_t)(k * 64u + (size_t)__builtin_ctzll(w));
    int rc = vocab_from_symbols(&p->v, p->o->mode, symbols, (int)V);
    CHARNN_ASSERT(rc == 0);
    hsize_t dims = (hsize_t)V;
    rc = h5io_dataset_write(p->o->out_path, file, "/vocab", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1,
                            &dims, symbols);
    free(symbols);
    return rc;
}

static int ex_write_label_names(ex_prep *p, hid_t file)
{
    return h5io_dataset_write_strings(p->o->out_path, file, "/label_names",
                                      (const char *const *)p->labels.names, (size_t)p->labels.n);
}

/* Everything after pass 1: decisions, then the file (pass 2 inside). */
static int ex_write_file(ex_prep *p, const char *tmp_path)
{
    const examples_prepare_options *o = p->o;
    int C = p->labels.n;
    size_t n_out[3] = {0, 0, 0}, tok_out[3] = {0, 0, 0}, max_len = 0;
    for (size_t i = 0; i < p->n_items; i++) {
        const ex_item *it = &p->items[i];
        if (!it->keep)
            continue;
        n_out[it->split]++;
        tok_out[it->split] += it->len;
        if (it->len > max_len)
            max_len = it->len;
    }
    size_t n = n_out[0] + n_out[1] + n_out[2], n_tokens = tok_out[0] + tok_out[1] + tok_out[2];
    size_t split_begin[3], split_end[3];
    split_begin[0] = 0;
    for (int s = 0; s < 3; s++) {
        if (s > 0)
            split_begin[s] = split_end[s - 1];
        split_end[s] = split_begin[s] + n_out[s];
        p->st.n_split[s] = n_out[s];
    }
    p->st.n_examples = n;
    p->st.n_tokens = n_tokens;
    p->st.n_classes = C;
    p->st.dedup = o->dedup;

    /* Offsets and labels in file order: by split, then reading order. */
    int64_t *offsets = cn_xmalloc((n + 1) * sizeof *offsets);
    int32_t *labels = cn_xmalloc(n * sizeof *labels);
    size_t e = 0;
    int64_t t = 0;
    for (int s = 0; s < 3; s++) {
        p->cursor[s] = (size_t)t;
        for (size_t i = 0; i < p->n_items; i++) {
            const ex_item *it = &p->items[i];
            if (!it->keep || it->split != s)
                continue;
            offsets[e] = t;
            labels[e] = it->label;
            t += it->len;
            e++;
        }
    }
    offsets[n] = t;
    CHARNN_ASSERT(e == n && (size_t)t == n_tokens);

    hid_t fapl = H5I_INVALID_HID, file = H5I_INVALID_HID, file_type;
    int rc = -1;
    /* 1.8 object headers move an attribute too long for the header (a long
     * list of sources) into dense storage instead of failing. */
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0) {
        cn_err("cannot write '%s': file properties failed", o->out_path);
        goto done;
    }
    if ((file = h5io_file_create(tmp_path, fapl)) < 0 || ex_build_vocab(p, file) != 0)
        goto done;
    p->st.vocab_size = p->v.size;
    if (p->v.size <= 256) {
        file_type = H5T_STD_U8LE;
        p->mem_type = H5T_NATIVE_UINT8;
        p->id_size = 1;
    } else if (p->v.size <= 65536) {
        file_type = H5T_STD_U16LE;
        p->mem_type = H5T_NATIVE_UINT16;
        p->id_size = 2;
    } else {
        file_type = H5T_STD_U32LE;
        p->mem_type = H5T_NATIVE_UINT32;
        p->id_size = 4;
    }
    for (int s = 0; s < 3; s++)
        p->out_buf[s] = cn_xmalloc((size_t)EX_WRITE_IDS * p->id_size);
    hsize_t dims = (hsize_t)n_tokens, chunk = n_tokens < EX_CHUNK ? n_tokens : EX_CHUNK;
    if ((p->tokens = h5io_dataset_create(o->out_path, file, "/tokens", file_type, 1, &dims, &chunk,
                                         H5IO_NO_FILL)) < 0)
        goto done;
    if (ex_read_all(p, 2) != 0)
        goto done;
    int flush_rc = 0;
    for (int s = 0; s < 3; s++)
        ex_flush_split(p, s, &flush_rc);
    if (flush_rc != 0)
        goto done;
    for (int s = 0; s < 3; s++)
        CHARNN_ASSERT(p->cursor[s] == (size_t)offsets[split_end[s]]);
    herr_t closed = H5Dclose(p->tokens);
    p->tokens = H5I_INVALID_HID;
    if (closed < 0) {
        h5io_write_fail(o->out_path, "closing /tokens");
        goto done;
    }
    hsize_t n_offsets = (hsize_t)n + 1, n_labels = (hsize_t)n;
    if (h5io_dataset_write(o->out_path, file, "/offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, 1,
                           &n_offsets, offsets) != 0 ||
        h5io_dataset_write(o->out_path, file, "/labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1,
                           &n_labels, labels) != 0 ||
        ex_write_label_names(p, file) != 0 ||
        ex_write_attributes(p, file, split_begin, split_end, max_len) != 0)
        goto done;
    closed = h5io_file_close(o->out_path, file);
    file = H5I_INVALID_HID;
    if (closed != 0)
        goto done;
    rc = 0;
done:
    if (p->tokens >= 0)
        H5Dclose(p->tokens);
    p->tokens = H5I_INVALID_HID;
    if (file >= 0)
        H5Fclose(file);
    if (fapl >= 0)
        H5Pclose(fapl);
    free(offsets);
    free(labels);
    return rc;
}

static int ex_check_options(const examples_prepare_options *o)
{
    if (o->n_inputs < 1 || !o->inputs)
        return cn_err("no input files to prepare");
    if (!o->out_path)
        return cn_err("no output file given");
    if (!(o->val_frac >= 0.0) || !(o->test_frac >= 0.0) || !(o->val_frac + o->test_frac < 1.0))
        return cn_err("the val and test fractions must be >= 0 and sum to less than 1 (got %g and %g)",
                      o->val_frac, o->test_frac);
    if (o->test_path && o->test_frac > 0.0)
        return cn_err("a test file and a test fraction exclude each other");
    if (o->val_path && o->val_frac > 0.0)
        return cn_err("a val file and a val fraction exclude each other");
    return 0;
}

static void ex_prep_free(ex_prep *p)
{
    for (int k = 0; k < 3; k++) {
        examples_input_free(p->files[k], p->n_files[k]);
        free(p->out_buf[k]);
    }
    ex_labels_free(&p->labels);
    vocab_free(&p->v);
    free(p->items);
    free(p->seen);
    free(p->remap);
    free(p->ids);
}

int examples_prepare(const examples_prepare_options *o)
{
    if (ex_check_options(o) != 0)
        return -1;
    ex_prep p;
    memset(&p, 0, sizeof p);
    p.o = o;
    p.text_key = o->text_col ? o->text_col : "text";
    p.label_key = o->label_col ? o->label_col : "label";
    p.tokens = H5I_INVALID_HID;
    ex_labels_init(&p.labels);
    int rc = -1;
    char *tmp_path = NULL;
    if (examples_input_expand(o->inputs, o->n_inputs, o->format, &p.files[0], &p.n_files[0]) != 0 ||
        (o->val_path &&
         examples_input_expand(&o->val_path, 1, o->format, &p.files[1], &p.n_files[1]) != 0) ||
        (o->test_path &&
         examples_input_expand(&o->test_path, 1, o->format, &p.files[2], &p.n_files[2]) != 0))
        goto done;

    /* The output replaces its target only at the end, but never an input. */
    for (int k = 0; k < 3; k++)
        for (int f = 0; f < p.n_files[k]; f++)
            if (fsio_same_file(p.files[k][f].path, o->out_path)) {
                cn_err("'%s' is both an input and the output", o->out_path);
                goto done;
            }
    if (o->test_path && o->val_path && fsio_same_file(o->test_path, o->val_path)) {
        cn_err("'%s' is both the val and the test file", o->test_path);
        goto done;
    }
    for (int k = 1; k < 3; k++)
        for (int g = 0; g < p.n_files[k]; g++)
            for (int f = 0; f < p.n_files[0]; f++)
                if (fsio_same_file(p.files[0][f].path, p.files[k][g].path)) {
                    cn_err("'%s' is both an input and in the %s split given", p.files[k][g].path,
                           k == EXAMPLES_FROM_TEST_FILE ? "test" : "val");
                    goto done;
                }
    tmp_path = cn_xmalloc(strlen(o->out_path) + 32);
    if (fsio_tmp_path(tmp_path, strlen(o->out_path) + 32, o->out_path) != 0)
        goto done;
    /* Creating it now reports an unwritable output before a long first pass. */
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) {
        cn_err("cannot create '%s': %s", o->out_path, strerror(errno));
        goto done;
    }
    close(fd);

    p.n_words = (ex_symbol_limit(o->mode) + 63u) / 64u;
    p.seen = cn_xcalloc(p.n_words, sizeof *p.seen);
    if (ex_read_all(&p, 1) != 0)
        goto done;
    if (p.labels.n < 2) {
        cn_err("the inputs have only one label ('%s'): a classifier needs two or more",
               p.labels.names[0]);
        goto done;
    }
    ex_sort_classes(&p);
    ex_find_duplicates(&p);
    ex_assign_splits(&p);
    ex_count_cross_split(&p);
    h5io_silence();
    rc = ex_write_file(&p, tmp_path);
    if (rc == 0)
        rc = fsio_commit(tmp_path, o->out_path, 1);
    if (rc == 0 && o->stats)
        *o->stats = p.st;
done:
    if (tmp_path) {
        if (rc != 0)
            unlink(tmp_path);
        free(tmp_path);
    }
    ex_prep_free(&p);
    return rc;
}

/* ---- reading -------------------------------------------------------------- */

typedef struct {
    hid_t file, tokens, fspace;
    hid_t id_type;    /* native unsigned type as wide as the stored ids */
    size_t id_size;
    int32_t V;
    void *raw;        /* (raw_cap) ids as stored, before widening */
    size_t raw_cap;
    int32_t *scratch; /* ex_gather */
    size_t scratch_cap;
    int32_t *map;     /* (V) file id -> the caller's vocabulary's id (-1: absent), or NULL
                         when the file's vocabulary is the caller's */
    uint32_t *file_symbols; /* (V) with map: the file's symbols, for messages */
} ex_reader;

static int ex_read_u64(examples_file *ex, hid_t file, const char *name, size_t *out)
{
    uint64_t v = 0;
    int got = h5io_attr_read_num(ex->path, file, "", name, H5T_NATIVE_UINT64, 1, &v);
    if (got == 0)
        cn_err("'%s' is damaged: attribute '%s' is missing", ex->path, name);
    if (got != 1)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* A string attribute that must be one of a few words. */
static int ex_read_word(examples_file *ex, hid_t file, const char *name, char *buf, size_t n)
{
    int got = h5io_attr_read_str(ex->path, file, "", name, buf, n);
    if (got == 0)
        cn_err("'%s' is damaged: attribute '%s' is missing", ex->path, name);
    return got == 1 ? 0 : -1;
}

static int ex_read_1d(examples_file *ex, hid_t file, const char *name, hid_t mem_type, size_t n,
                      void *buf)
{
    hsize_t dims = (hsize_t)n;
    return h5io_dataset_read(ex->path, file, name, mem_type, H5T_INTEGER, 1, &dims, buf);
}

static int ex_open_hdf5(examples_file *ex, vocab *v)
{
    ex_reader *r = cn_xcalloc(1, sizeof *r);
    r->file = r->tokens = r->fspace = H5I_INVALID_HID;
    ex->impl = r;
    vocab fv;
    memset(&fv, 0, sizeof fv);
    hid_t dapl = H5I_INVALID_HID;
    uint32_t *symbols = NULL;
    char **names = NULL;
    size_t n_names = 0;
    char text[64];
    int64_t version = 0, dedup = 0;

    if ((r->file = h5io_file_open(ex->path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        goto error;
    if (h5io_attr_read_str(ex->path, r->file, "", "format", text, sizeof text) != 1 ||
        strcmp(text, EXAMPLES_FORMAT) != 0) {
        cn_err("'%s' is not a charnn examples file", ex->path);
        goto error;
    }
    if (h5io_attr_read_num(ex->path, r->file, "", "format_version", H5T_NATIVE_INT64, 1,
                           &version) != 1) {
        cn_err("'%s' is damaged: attribute 'format_version' is missing", ex->path);
        goto error;
    }
    if (version != EXAMPLES_FORMAT_VERSION) {
        cn_err("'%s' is charnn examples format version %lld; this charnn reads version %d",
               ex->path, (long long)version, EXAMPLES_FORMAT_VERSION);
        goto error;
    }
    if (ex_read_word(ex, r->file, "task", text, sizeof text) != 0)
        goto error;
    if (strcmp(text, "classify") != 0 && strcmp(text, "tag") != 0) {
        cn_err("'%s' holds examples for task '%s'; this reader knows 'classify' and 'tag'",
               ex->path, text);
        goto error;
    }
    ex->tagged = strcmp(text, "tag") == 0;
    if (ex_read_word(ex, r->file, "vocab_mode", text, sizeof text) != 0)
        goto error;
    if (strcmp(text, "codepoints") != 0 && strcmp(text, "bytes") != 0) {
        cn_err("'%s' is damaged: unknown vocab_mode '%s'", ex->path, text);
        goto error;
    }
    vocab_mode mode = strcmp(text, "bytes") == 0 ? VOCAB_BYTES : VOCAB_CODEPOINTS;
    size_t n_classes = 0;
    examples_stats *st = &ex->stats;
    if (ex_read_u64(ex, r->file, "n_examples", &ex->n_examples) != 0 ||
        ex_read_u64(ex, r->file, "n_tokens", &ex->n_tokens) != 0 ||
        ex_read_u64(ex, r->file, "n_classes", &n_classes) != 0 ||
        ex_read_u64(ex, r->file, "max_len", &ex->max_len) != 0 ||
        ex_read_u64(ex, r->file, "n_label_conflicts", &st->n_label_conflicts) != 0 ||
        ex_read_u64(ex, r->file, "n_cross_split", &st->n_cross_split) != 0)
        goto error;
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "n_read_%s", ex_from_names[k]);
        if (ex_read_u64(ex, r->file, name, &st->n_read[k]) != 0)
            goto error;
        snprintf(name, sizeof name, "n_duplicates_%s", ex_from_names[k]);
        if (ex_read_u64(ex, r->file, name, &st->n_duplicates[k]) != 0 ||
            ex_read_u64(ex, r->file, ex_split_attr[k][0], &ex->split_begin[k]) != 0 ||
            ex_read_u64(ex, r->file, ex_split_attr[k][1], &ex->split_end[k]) != 0)
            goto error;
    }
    if (h5io_attr_read_num(ex->path, r->file, "", "dedup", H5T_NATIVE_INT64, 1, &dedup) < 0)
        goto error;
    ex->split_begin[SPLIT_ALL] = 0;
    ex->split_end[SPLIT_ALL] = ex->n_examples;
    if (ex->split_begin[0] != 0 || ex->split_end[0] < ex->split_begin[0] ||
        ex->split_begin[1] != ex->split_end[0] || ex->split_end[1] < ex->split_begin[1] ||
        ex->split_begin[2] != ex->split_end[1] || ex->split_end[2] != ex->n_examples) {
        cn_err("'%s' is damaged: its split boundaries do not cover its %zu examples", ex->path,
               ex->n_examples);
        goto error;
    }
    if (n_classes < 1 || n_classes > EXAMPLES_MAX_CLASSES || ex->n_examples < 1) {
        cn_err("'%s' is damaged: %zu classes, %zu examples", ex->path, n_classes, ex->n_examples);
        goto error;
    }
    ex->n_classes = (int)n_classes;
    for (int s = 0; s < 3; s++)
        st->n_split[s] = ex->split_end[s] - ex->split_begin[s];
    st->n_examples = ex->n_examples;
    st->n_tokens = ex->n_tokens;
    st->n_classes = ex->n_classes;
    st->dedup = (int)dedup;

    int rank = 0;
    hsize_t vdims[H5IO_MAX_RANK] = {0};
    if (h5io_dataset_shape(ex->path, r->file, "/vocab", &rank, vdims) != 0)
        goto error;
    size_t V = (size_t)vdims[0];
    if (rank != 1 || V < 1 || V > ex_symbol_limit(mode)) {
        cn_err("'%s' is damaged: /vocab is malformed", ex->path);
        goto error;
    }
    symbols = cn_xmalloc(V * sizeof *symbols);
    if (ex_read_1d(ex, r->file, "/vocab", H5T_NATIVE_UINT32, V, symbols) != 0)
        goto error;
    if (vocab_from_symbols(&fv, mode, symbols, (int)V) != 0) {
        cn_err_context("'%s' is damaged", ex->path);
        goto error;
    }
    if (v->size != 0 && !vocab_equal(v, &fv)) {
        if (v->mode != fv.mode) {
            cn_err("'%s' has a %s vocabulary, the model a %s one", ex->path,
                   fv.mode == VOCAB_BYTES ? "byte" : "code-point",
                   v->mode == VOCAB_BYTES ? "byte" : "code-point");
            goto error;
        }
        /* the model's ids for the file's: a file prepared on its own works too */
        r->map = cn_xmalloc((size_t)fv.size * sizeof *r->map);
        r->file_symbols = cn_xmalloc((size_t)fv.size * sizeof *r->file_symbols);
        for (int i = 0; i < fv.size; i++) {
            r->map[i] = vocab_id(v, fv.symbols[i]);
            r->file_symbols[i] = fv.symbols[i];
        }
    }
    st->vocab_size = fv.size;
    r->V = fv.size;

    size_t n = ex->n_examples;
    ex->offsets = cn_xmalloc((n + 1) * sizeof *ex->offsets);
    if (ex->tagged)
        ex->tags = cn_xmalloc(ex->n_tokens ? ex->n_tokens : 1);
    else
        ex->labels = cn_xmalloc(n * sizeof *ex->labels);
    if (ex_read_1d(ex, r->file, "/offsets", H5T_NATIVE_INT64, n + 1, ex->offsets) != 0 ||
        (ex->tagged
             ? ex_read_1d(ex, r->file, "/tags", H5T_NATIVE_UINT8, ex->n_tokens, ex->tags)
             : ex_read_1d(ex, r->file, "/labels", H5T_NATIVE_INT32, n, ex->labels)) != 0 ||
        h5io_dataset_read_strings(ex->path, r->file, "/label_names", &names, &n_names) != 0)
        goto error;
    if (n_names != n_classes) {
        cn_err("'%s' is damaged: /label_names has %zu names for %zu classes", ex->path, n_names,
               n_classes);
        goto error;
    }
    ex->class_names = names;
    names = NULL;
    for (size_t j = 0; ex->tagged && j < ex->n_tokens; j++)
        if (ex->tags[j] >= ex->n_classes) {
            cn_err("'%s' is damaged: token %zu has tag %d of %d tags", ex->path, j,
                   (int)ex->tags[j], ex->n_classes);
            goto error;
        }
    if (ex->offsets[0] != 0 || ex->offsets[n] != (int64_t)ex->n_tokens) {
        cn_err("'%s' is damaged: /offsets do not span its %zu tokens", ex->path, ex->n_tokens);
        goto error;
    }
    for (size_t i = 0; i < n; i++) {
        if (ex->offsets[i + 1] <= ex->offsets[i] ||
            (size_t)(ex->offsets[i + 1] - ex->offsets[i]) > ex->max_len) {
            cn_err("'%s' is damaged: /offsets are not increasing at example %zu", ex->path, i);
            goto error;
        }
        if (ex->labels && (ex->labels[i] < 0 || ex->labels[i] >= ex->n_classes)) {
            cn_err("'%s' is damaged: example %zu has label %ld of %d classes", ex->path, i,
                   (long)ex->labels[i], ex->n_classes);
            goto error;
        }
    }

    /* A cache that holds the chunks of a batch of examples spread over the file. */
    int64_t want = (int64_t)ex->n_tokens;
    if ((dapl = H5Pcreate(H5P_DATASET_ACCESS)) < 0 ||
        H5Pset_chunk_cache(dapl, EX_READ_CACHE_SLOTS, EX_READ_CACHE_BYTES, 1.0) < 0) {
        cn_err("cannot open '%s': dataset properties failed", ex->path);
        goto error;
    }
    if ((r->tokens = h5io_dataset_open(ex->path, r->file, "/tokens", dapl, 1, &want, NULL)) < 0)
        goto error;
    if ((r->fspace = H5Dget_space(r->tokens)) < 0) {
        h5io_read_fail(ex->path, "/tokens");
        goto error;
    }
    hid_t ftype = H5Dget_type(r->tokens);
    int unsigned_int = ftype >= 0 && H5Tget_class(ftype) == H5T_INTEGER &&
                       H5Tget_sign(ftype) == H5T_SGN_NONE;
    r->id_size = ftype >= 0 ? H5Tget_size(ftype) : 0;
    if (ftype >= 0)
        H5Tclose(ftype);
    if (!unsigned_int || (r->id_size != 1 && r->id_size != 2 && r->id_size != 4)) {
        cn_err("'%s' is damaged: /tokens does not hold unsigned 8, 16 or 32-bit ids", ex->path);
        goto error;
    }
    r->id_type = r->id_size == 1 ? H5T_NATIVE_UINT8
                 : r->id_size == 2 ? H5T_NATIVE_UINT16
                                   : H5T_NATIVE_UINT32;
    H5Pclose(dapl);
    free(symbols);
    if (v->size == 0)
        *v = fv;
    else
        vocab_free(&fv);
    return 0;
error:
    if (dapl >= 0)
        H5Pclose(dapl);
    h5io_strings_free(names, n_names);
    free(symbols);
    vocab_free(&fv);
    return -1;
}

static int ex_check_mapped(examples_file *ex, const vocab *v);

int examples_open(examples_file *ex, const char *path, vocab *v)
{
    memset(ex, 0, sizeof *ex);
    snprintf(ex->path, sizeof ex->path, "%s", path);
    if (fsio_check_regular(path, NULL) != 0)
        return -1;
    if (!h5io_is_hdf5(path))
        return cn_err("'%s' is not a charnn examples file", path);
    int rc = ex_open_hdf5(ex, v);
    if (rc == 0)
        rc = ex_check_mapped(ex, v);
    if (rc != 0)
        examples_close(ex);
    return rc;
}

void examples_close(examples_file *ex)
{
    ex_reader *r = ex->impl;
    if (r) {
        h5io_silence();
        if (r->fspace >= 0)
            H5Sclose(r->fspace);
        if (r->tokens >= 0)
            H5Dclose(r->tokens);
        if (r->file >= 0)
            H5Fclose(r->file);
        free(r->scratch);
        free(r->raw);
        free(r->map);
        free(r->file_symbols);
        free(r);
    }
    h5io_strings_free(ex->class_names, ex->class_names ? (size_t)ex->n_classes : 0);
    free(ex->offsets);
    free(ex->labels);
    free(ex->tags);
    memset(ex, 0, sizeof *ex);
}

int examples_is_examples_file(const char *path)
{
    if (!h5io_is_hdf5(path))
        return 0;
    /* h5io's file access properties, so a file this process has open opens again. */
    hid_t f = h5io_file_open(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return 0;
    char text[64];
    int yes = h5io_attr_read_str(path, f, "", "format", text, sizeof text) == 1 &&
              strcmp(text, EXAMPLES_FORMAT) == 0;
    H5Fclose(f);
    return yes;
}

int examples_class_id(const examples_file *ex, const char *name)
{
    for (int c = 0; c < ex->n_classes; c++)
        if (strcmp(ex->class_names[c], name) == 0)
            return c;
    return -1;
}

/* Check the ids a read returned: a model indexes its embedding with them. */
static int ex_check_ids(const examples_file *ex, const int32_t *ids, size_t n)
{
    const ex_reader *r = ex->impl;
    for (size_t k = 0; k < n; k++)
        if (ids[k] < 0 || ids[k] >= r->V)
            return cn_err("'%s' is damaged: a token has id %ld, outside its vocabulary of %ld",
                          ex->path, (long)ids[k], (long)r->V);
    return 0;
}

/* Read the current selection of r->fspace (count ids) into out. */
/* Read the current selection of r->fspace (count ids) into out. The ids are
 * read as stored and widened here: asking HDF5 to convert them would make it
 * clear a 1 MiB conversion buffer on every read (about 100 us, measured on
 * 1.10), which dominates reading one short example. */
static int ex_read_selection(examples_file *ex, size_t count, int32_t *out)
{
    ex_reader *r = ex->impl;
    if (r->raw_cap < count * r->id_size) {
        r->raw_cap = count * r->id_size;
        free(r->raw);
        r->raw = cn_xmalloc(r->raw_cap);
    }
    hsize_t c = (hsize_t)count;
    hid_t mspace = H5Screate_simple(1, &c, NULL);
    int rc = 0;
    if (mspace < 0 || H5Dread(r->tokens, r->id_type, mspace, r->fspace, H5P_DEFAULT, r->raw) < 0)
        rc = h5io_read_fail(ex->path, "/tokens");
    if (mspace >= 0)
        H5Sclose(mspace);
    if (rc != 0)
        return rc;
    switch (r->id_size) {
    case 1:
        for (size_t k = 0; k < count; k++)
            out[k] = ((const uint8_t *)r->raw)[k];
        break;
    case 2:
        for (size_t k = 0; k < count; k++)
            out[k] = ((const uint16_t *)r->raw)[k];
        break;
    default:
        for (size_t k = 0; k < count; k++)
            out[k] = (int32_t)((const uint32_t *)r->raw)[k];
        break;
    }
    if (ex_check_ids(ex, out, count) != 0)
        return -1;
    if (r->map)
        for (size_t k = 0; k < count; k++)
            out[k] = r->map[out[k]];
    return 0;
}

int examples_read_tokens(examples_file *ex, size_t i, int32_t *out)
{
    if (i >= ex->n_examples)
        return cn_err("cannot read example %zu of '%s': it has %zu", i, ex->path, ex->n_examples);
    ex_reader *r = ex->impl;
    hsize_t start = (hsize_t)ex->offsets[i], count = (hsize_t)examples_length(ex, i);
    h5io_silence();
    if (H5Sselect_hyperslab(r->fspace, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0)
        return cn_err("cannot read example %zu of '%s'", i, ex->path);
    return ex_read_selection(ex, (size_t)count, out);
}

/* With a mapped vocabulary: a symbol of the file the caller's vocabulary
 * lacks is an error naming it and the first example (and split) holding it. */
static int ex_check_mapped(examples_file *ex, const vocab *v)
{
    ex_reader *r = ex->impl;
    if (!r->map)
        return 0;
    int missing = 0;
    for (int32_t i = 0; i < r->V; i++)
        missing += r->map[i] < 0;
    if (!missing)
        return 0;
    int32_t *map = r->map;
    r->map = NULL; /* read the file's own ids */
    const size_t block = (size_t)1 << 20;
    int32_t *ids = cn_xmalloc(block * sizeof *ids);
    int rc = 0;
    for (size_t at = 0; at < ex->n_tokens && rc == 0; at += block) {
        hsize_t start = (hsize_t)at, n = (hsize_t)(ex->n_tokens - at < block ? ex->n_tokens - at
                                                                             : block);
        h5io_silence();
        if (H5Sselect_hyperslab(r->fspace, H5S_SELECT_SET, &start, NULL, &n, NULL) < 0) {
            rc = cn_err("cannot read examples of '%s'", ex->path);
            break;
        }
        if ((rc = ex_read_selection(ex, (size_t)n, ids)) != 0)
            break;
        for (size_t k = 0; k < (size_t)n; k++) {
            if (map[ids[k]] >= 0)
                continue;
            /* the example holding token at + k */
            size_t lo = 0, hi = ex->n_examples;
            while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;
                if ((size_t)ex->offsets[mid] <= at + k)
                    lo = mid;
                else
                    hi = mid;
            }
            const char *split = "train";
            for (int sp = SPLIT_TRAIN; sp <= SPLIT_TEST; sp++)
                if (lo >= ex->split_begin[sp] && lo < ex->split_end[sp])
                    split = data_split_name(sp);
            char where[sizeof ex->path + 96];
            snprintf(where, sizeof where, "'%s' example %zu (%s split), character %zu", ex->path,
                     lo, split, at + k - (size_t)ex->offsets[lo] + 1);
            rc = vocab_err_missing_at(v, where, r->file_symbols[ids[k]]);
            break;
        }
    }
    free(ids);
    r->map = map;
    return rc != 0 ? -1 : cn_err("'%s' has symbols outside the model's vocabulary", ex->path);
}

typedef struct {
    size_t example, slot;
} ex_pick;

static int ex_pick_cmp(const void *pa, const void *pb)
{
    const ex_pick *a = pa, *b = pb;
    if (a->example != b->example)
        return a->example < b->example ? -1 : 1;
    return a->slot < b->slot ? -1 : a->slot > b->slot;
}

/* The first min(length, cap) ids of examples idx[0..count) to out + out_at[k].
 * The union of their ranges, in file order, is one selection (ranges that
 * touch merge into one block); it is read into scratch and copied out in the
 * order asked for. */
static int ex_gather(examples_file *ex, const size_t *idx, size_t count, size_t cap,
                     const size_t *out_at, int32_t *out)
{
    ex_reader *r = ex->impl;
    ex_pick *picks = cn_xmalloc(count * sizeof *picks);
    int rc = 0;
    for (size_t k = 0; k < count; k++) {
        if (idx[k] >= ex->n_examples) {
            rc = cn_err("cannot read example %zu of '%s': it has %zu", idx[k], ex->path,
                        ex->n_examples);
            goto done;
        }
        picks[k].example = idx[k];
        picks[k].slot = k;
    }
    qsort(picks, count, sizeof *picks, ex_pick_cmp);
    size_t unique_tokens = 0;
    for (size_t k = 0; k < count; k++)
        if (k == 0 || picks[k].example != picks[k - 1].example) {
            size_t len = examples_length(ex, picks[k].example);
            unique_tokens += len < cap ? len : cap;
        }
    size_t span_first = (size_t)ex->offsets[picks[0].example];
    size_t span = (size_t)ex->offsets[picks[count - 1].example + 1] - span_first;
    /* HDF5 builds a union of n blocks in about n^2 time (1.10: 31 us for 32
     * blocks, 2.9 ms for 256): read a span that is mostly wanted in one piece,
     * else the blocks in groups of EX_BLOCKS_PER_READ. */
    int whole_span = span <= 4 * unique_tokens + 4096;
    size_t n_read = whole_span ? span : unique_tokens;
    if (r->scratch_cap < n_read) {
        r->scratch_cap = n_read;
        free(r->scratch);
        r->scratch = cn_xmalloc(n_read * sizeof *r->scratch);
    }
    h5io_silence();
    if (whole_span) {
        hsize_t start = (hsize_t)span_first, n = (hsize_t)span;
        if (H5Sselect_hyperslab(r->fspace, H5S_SELECT_SET, &start, NULL, &n, NULL) < 0)
            rc = cn_err("cannot read examples of '%s'", ex->path);
        if (rc == 0)
            rc = ex_read_selection(ex, span, r->scratch);
    }
    size_t done_ids = 0, group_ids = 0;
    int blocks = 0;
    for (size_t k = 0; k < count && rc == 0 && !whole_span;) {
        size_t e = picks[k].example, len = examples_length(ex, e);
        hsize_t start = (hsize_t)ex->offsets[e], end = start + (len < cap ? len : cap);
        for (k++; k < count; k++) {
            size_t f = picks[k].example, flen = examples_length(ex, f);
            if (f != e && (hsize_t)ex->offsets[f] != end)
                break;
            if (f != e)
                end = (hsize_t)ex->offsets[f] + (flen < cap ? flen : cap);
            e = f;
        }
        hsize_t n = end - start;
        if (H5Sselect_hyperslab(r->fspace, blocks == 0 ? H5S_SELECT_SET : H5S_SELECT_OR, &start,
                                NULL, &n, NULL) < 0)
            rc = cn_err("cannot read examples of '%s'", ex->path);
        group_ids += (size_t)n;
        if (rc == 0 && (++blocks == EX_BLOCKS_PER_READ || k == count)) {
            rc = ex_read_selection(ex, group_ids, r->scratch + done_ids);
            done_ids += group_ids;
            group_ids = 0;
            blocks = 0;
        }
    }
    if (rc != 0)
        goto done;
    size_t from = 0;
    for (size_t k = 0; k < count; k++) {
        size_t e = picks[k].example, len = examples_length(ex, e);
        if (whole_span) {
            from = (size_t)ex->offsets[e] - span_first;
        } else if (k > 0 && e != picks[k - 1].example) {
            size_t prev = examples_length(ex, picks[k - 1].example);
            from += prev < cap ? prev : cap;
        }
        memcpy(out + out_at[picks[k].slot], r->scratch + from, (len < cap ? len : cap) * sizeof *out);
    }
done:
    free(picks);
    return rc;
}

int examples_read_many(examples_file *ex, const size_t *idx, size_t count, int32_t *out)
{
    if (count == 0)
        return 0;
    size_t *out_at = cn_xmalloc(count * sizeof *out_at), at = 0;
    for (size_t k = 0; k < count; k++) {
        out_at[k] = at;
        if (idx[k] < ex->n_examples)
            at += examples_length(ex, idx[k]);
    }
    int rc = ex_gather(ex, idx, count, SIZE_MAX, out_at, out);
    free(out_at);
    return rc;
}

/* x (T, B), len (B), and y: (B) labels, or for a tag file (T, B) tags. */
static int ex_fill(examples_file *ex, const size_t *idx, int B, int T, int32_t pad_id,
                   int32_t pad_tag, int32_t *x, int32_t *len, int32_t *y, int *n_truncated)
{
    CHARNN_ASSERT(B >= 1 && T >= 1);
    size_t *out_at = cn_xmalloc((size_t)B * sizeof *out_at);
    int32_t *rows = cn_xmalloc((size_t)B * (size_t)T * sizeof *rows); /* (B, T) */
    for (int b = 0; b < B; b++)
        out_at[b] = (size_t)b * (size_t)T;
    int rc = ex_gather(ex, idx, (size_t)B, (size_t)T, out_at, rows);
    if (rc == 0) {
        int truncated = 0;
        for (int b = 0; b < B; b++) {
            size_t n = examples_length(ex, idx[b]);
            truncated += n > (size_t)T;
            len[b] = (int32_t)(n < (size_t)T ? n : (size_t)T);
            if (ex->tagged) {
                const uint8_t *tag = ex->tags + ex->offsets[idx[b]];
                for (int t = 0; t < T; t++)
                    y[(size_t)t * (size_t)B + (size_t)b] = t < len[b] ? tag[t] : pad_tag;
            } else {
                y[b] = ex->labels[idx[b]];
            }
            for (int t = 0; t < T; t++)
                x[(size_t)t * (size_t)B + (size_t)b] =
                    t < len[b] ? rows[(size_t)b * (size_t)T + (size_t)t] : pad_id;
        }
        if (n_truncated)
            *n_truncated = truncated;
    }
    free(rows);
    free(out_at);
    return rc;
}

int examples_fill_batch(examples_file *ex, const size_t *idx, int B, int T, int32_t pad_id,
                        int32_t *x, int32_t *len, int32_t *y, int *n_truncated)
{
    CHARNN_ASSERT(!ex->tagged);
    return ex_fill(ex, idx, B, T, pad_id, 0, x, len, y, n_truncated);
}

int examples_fill_tags(examples_file *ex, const size_t *idx, int B, int T, int32_t pad_id,
                       int32_t pad_tag, int32_t *x, int32_t *len, int32_t *y, int *n_truncated)
{
    CHARNN_ASSERT(ex->tagged);
    return ex_fill(ex, idx, B, T, pad_id, pad_tag, x, len, y, n_truncated);
}

static void ex_split_bounds(const examples_file *ex, int split, size_t *b, size_t *e)
{
    CHARNN_ASSERT(split >= SPLIT_TRAIN && split <= SPLIT_ALL);
    *b = ex->split_begin[split];
    *e = ex->split_end[split];
}

void examples_class_counts(const examples_file *ex, int split, size_t *counts)
{
    size_t b, e;
    ex_split_bounds(ex, split, &b, &e);
    memset(counts, 0, (size_t)ex->n_classes * sizeof *counts);
    for (size_t i = b; i < e; i++)
        if (ex->labels)
            counts[ex->labels[i]]++;
}

static int ex_size_cmp(const void *pa, const void *pb)
{
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    return a < b ? -1 : a > b;
}

uint32_t *examples_lengths(const examples_file *ex, int split)
{
    size_t b, e;
    ex_split_bounds(ex, split, &b, &e);
    uint32_t *len = cn_xmalloc((e > b ? e - b : 1) * sizeof *len);
    for (size_t i = b; i < e; i++)
        len[i - b] = (uint32_t)examples_length(ex, i);
    return len;
}

void examples_split_lengths(const examples_file *ex, int split, examples_length_stats *st)
{
    size_t b, e;
    ex_split_bounds(ex, split, &b, &e);
    memset(st, 0, sizeof *st);
    st->n = e - b;
    if (st->n == 0)
        return;
    size_t *len = cn_xmalloc(st->n * sizeof *len);
    for (size_t i = b; i < e; i++) {
        len[i - b] = examples_length(ex, i);
        st->total += len[i - b];
    }
    qsort(len, st->n, sizeof *len, ex_size_cmp);
    st->min = len[0];
    st->max = len[st->n - 1];
    st->mean = (double)st->total / (double)st->n;
    /* Nearest rank: the smallest length with at least q of the examples at or below it. */
    const double q[3] = {0.50, 0.90, 0.99};
    size_t *dst[3] = {&st->p50, &st->p90, &st->p99};
    for (int k = 0; k < 3; k++) {
        size_t rank = (size_t)ceil(q[k] * (double)st->n);
        *dst[k] = len[(rank ? rank : 1) - 1];
    }
    free(len);
}
