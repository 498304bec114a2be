/* Traces of a tagger (kind "tag"): every example of a split of a tag file,
 * or every line of a plain text as `charnn tag` reads it, from a zero state;
 * after each character the hidden (and cell) states of every layer and
 * direction, the tag probabilities the head gives that character, the
 * predicted tag and the gold one where known; per layer and direction the
 * correlation over all characters of each unit with each tag (which units
 * fire before a space). The layout is in docs/trace-format.md. See trace.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "charnn/ckpt.h"
#include "charnn/common.h"
#include "charnn/fsio.h"
#include "charnn/h5io.h"
#include "charnn/head.h"
#include "charnn/kernels.h"
#include "charnn/memplan.h"
#include "charnn/trace.h"
#include "trace_rows.h"

enum { TT_BLOCK = 4096 }; /* positions buffered per append */

typedef struct {
    const char *path;   /* the file being written (a temporary name) */
    hid_t fid;
    int L, H, K, D, lstm; /* D: directions, 1 or 2 */
    int64_t rows;       /* positions written */
    int n;              /* positions buffered */
    int32_t *tok, *gold, *pred; /* (TT_BLOCK) */
    float *prob;        /* (TT_BLOCK, K) */
    float *h[MODEL_MAX_LAYERS][2], *c[MODEL_MAX_LAYERS][2]; /* (TT_BLOCK, H) per direction */
} tt_writer;

static int tt_create_all(tt_writer *t)
{
    if (trace_rows_create(t->path, t->fid, "/tokens", H5T_STD_I32LE, 0) < 0 ||
        trace_rows_create(t->path, t->fid, "/tags", H5T_STD_I32LE, 0) < 0 ||
        trace_rows_create(t->path, t->fid, "/pred", H5T_STD_I32LE, 0) < 0 ||
        trace_rows_create(t->path, t->fid, "/prob", H5T_IEEE_F32LE, t->K) < 0)
        return -1;
    char name[64];
    for (int l = 0; l < t->L; l++)
        for (int d = 0; d < t->D; d++) {
            trace_state_name(name, sizeof name, l, d, 'h');
            if (trace_rows_create(t->path, t->fid, name, H5T_IEEE_F32LE, t->H) < 0)
                return -1;
            trace_state_name(name, sizeof name, l, d, 'c');
            if (t->lstm && trace_rows_create(t->path, t->fid, name, H5T_IEEE_F32LE, t->H) < 0)
                return -1;
        }
    return 0;
}

/* Append the buffered rows to dataset name. */
static int tt_append(tt_writer *t, const char *name, hid_t mem_type, int cols, const void *buf)
{
    return trace_rows_append(t->path, t->fid, name, mem_type, cols, t->rows, t->n, buf);
}

static int tt_flush(tt_writer *t)
{
    if (t->n == 0)
        return 0;
    if (tt_append(t, "/tokens", H5T_NATIVE_INT32, 0, t->tok) < 0 ||
        tt_append(t, "/tags", H5T_NATIVE_INT32, 0, t->gold) < 0 ||
        tt_append(t, "/pred", H5T_NATIVE_INT32, 0, t->pred) < 0 ||
        tt_append(t, "/prob", H5T_NATIVE_FLOAT, t->K, t->prob) < 0)
        return -1;
    char name[64];
    for (int l = 0; l < t->L; l++)
        for (int d = 0; d < t->D; d++) {
            trace_state_name(name, sizeof name, l, d, 'h');
            if (tt_append(t, name, H5T_NATIVE_FLOAT, t->H, t->h[l][d]) < 0)
                return -1;
            trace_state_name(name, sizeof name, l, d, 'c');
            if (t->lstm && tt_append(t, name, H5T_NATIVE_FLOAT, t->H, t->c[l][d]) < 0)
                return -1;
        }
    t->rows += t->n;
    t->n = 0;
    return 0;
}

/* ---- where the examples come from -------------------------------------- */

typedef struct {
    examples_file *ex;      /* a tag file; NULL: plain text */
    size_t next, end;       /* tag file: the split's examples still to read */
    int max_len;            /* tag file: examples are cut to it, 0 = none */
    FILE *in;               /* text: one example per line */
    const char *name;
    const vocab *v;
    int spacing;            /* text: spaces are removed and give the gold tags B / I */
    int64_t line_no;
    char *line;
    size_t line_cap;
    int32_t *ids, *gold;    /* (cap) the current example */
    size_t cap;
} tt_source;

static void source_reserve(tt_source *s, size_t n)
{
    if (n <= s->cap)
        return;
    s->cap = n > 2 * s->cap ? n : 2 * s->cap;
    s->ids = cn_xrealloc(s->ids, s->cap * sizeof *s->ids);
    s->gold = cn_xrealloc(s->gold, s->cap * sizeof *s->gold);
}

/* The next example of a tag file: 1 with its n characters, 0 at the end, -1. */
static int source_next_example(tt_source *s, size_t *n, int64_t *index)
{
    if (s->next == s->end)
        return 0;
    const size_t i = s->next++, len = examples_length(s->ex, i);
    source_reserve(s, len ? len : 1);
    if (examples_read_tokens(s->ex, i, s->ids) != 0)
        return -1;
    *n = s->max_len > 0 && len > (size_t)s->max_len ? (size_t)s->max_len : len;
    const uint8_t *tags = s->ex->tags + s->ex->offsets[i];
    for (size_t k = 0; k < *n; k++)
        s->gold[k] = tags[k];
    *index = (int64_t)i;
    return 1;
}

/* The next non-empty line of a text, as `charnn tag` reads it: 1, 0 at the
 * end, -1 with a message naming the line. */
static int source_next_line(tt_source *s, size_t *n, int64_t *index)
{
    ssize_t got;
    while ((got = getline(&s->line, &s->line_cap, s->in)) >= 0) {
        size_t len = (size_t)got, k = 0;
        s->line_no++;
        while (len > 0 && (s->line[len - 1] == '\n' || s->line[len - 1] == '\r'))
            len--;
        source_reserve(s, len + 1);
        for (size_t i = 0; i < len;) {
            uint32_t cp = (uint8_t)s->line[i];
            int step = 1;
            if (s->v->mode == VOCAB_CODEPOINTS &&
                (step = utf8_decode((const uint8_t *)s->line + i, len - i, &cp)) == 0)
                return cn_err("'%s' line %lld: invalid UTF-8", s->name, (long long)s->line_no);
            i += (size_t)step;
            if (s->spacing && cp == ' ') {
                if (k > 0)
                    s->gold[k - 1] = 0; /* B: a space follows */
                continue;
            }
            const int id = vocab_id(s->v, cp);
            if (id < 0)
                return cn_err("'%s' line %lld: character '%.*s' is not in the model's vocabulary",
                              s->name, (long long)s->line_no, step, s->line + i - step);
            s->gold[k] = s->spacing ? 1 : -1; /* I, or not known */
            s->ids[k++] = id;
        }
        if (k == 0)
            continue;
        if (s->spacing)
            s->gold[k - 1] = 1; /* the line's last character never gets a space */
        *n = k;
        *index = s->line_no;
        return 1;
    }
    if (ferror(s->in))
        return cn_err("cannot read '%s': %s", s->name, strerror(errno));
    return 0;
}

static int source_next(tt_source *s, size_t *n, int64_t *index)
{
    return s->ex ? source_next_example(s, n, index) : source_next_line(s, n, index);
}

/* ---- the correlation of each unit with each tag ------------------------- */

/* ---- the trace ------------------------------------------------------------ */

static int write_root(const trace_tag_options *o, const tt_writer *t, const model *m,
                      const vocab *v, int spacing, int has_gold)
{
    hid_t fid = t->fid;
    const char *path = t->path;
    if (h5io_attr_write_str(path, fid, "format", TRACE_FORMAT) < 0 ||
        h5io_attr_write_i64(path, fid, "format_version", TRACE_FORMAT_VERSION) < 0 ||
        h5io_attr_write_str(path, fid, "kind", "tag") < 0 ||
        h5io_attr_write_str(path, fid, "model", o->model_name) < 0 ||
        h5io_attr_write_i64(path, fid, "model_step", o->step) < 0 ||
        h5io_attr_write_str(path, fid, "cell", cell_name(m->cfg.cell)) < 0 ||
        h5io_attr_write_i64(path, fid, "layers", m->cfg.layers) < 0 ||
        h5io_attr_write_i64(path, fid, "hidden", m->cfg.hidden) < 0 ||
        h5io_attr_write_i64(path, fid, "directions", t->D) < 0 ||
        h5io_attr_write_i64(path, fid, "vocab_size", m->cfg.vocab) < 0 ||
        h5io_attr_write_str(path, fid, "vocab_mode",
                            v->mode == VOCAB_BYTES ? "bytes" : "codepoints") < 0 ||
        h5io_attr_write_str(path, fid, "source", o->source) < 0 ||
        h5io_attr_write_str(path, fid, "split",
                            o->split < 0 ? "text" : data_split_name(o->split)) < 0 ||
        h5io_attr_write_i64(path, fid, "n_tags", t->K) < 0 ||
        h5io_attr_write_i64(path, fid, "spacing", spacing) < 0 ||
        h5io_attr_write_str(path, fid, "corr_with", has_gold ? "gold" : "pred") < 0 ||
        h5io_attr_write_i64(path, fid, "max_len", o->split < 0 ? 0 : o->max_len) < 0)
        return -1;
    hsize_t dv[1] = {(hsize_t)v->size};
    return h5io_dataset_write(path, fid, "/vocab", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, dv,
                              v->symbols);
}

/* Workspace for examples of up to n characters: grown (after a memory check)
 * when a longer one comes. */
static int reserve_work(model_work *w, int *T, const model *m, size_t n, int K)
{
    if (n <= (size_t)*T)
        return 0;
    if (n > (size_t)INT32_MAX / 2)
        return cn_err("an example of %zu characters is too long to trace", n);
    const int L = m->cfg.layers, H = m->cfg.hidden, D = model_directions(&m->cfg);
    if (memplan_check_infer(&m->cfg, (int)n, 1, 4.0 * TT_BLOCK * (2.0 * L * D * H + K + 3),
                            "trace") != 0)
        return -1;
    if (*T > 0)
        model_work_free(w);
    *T = (int)n;
    model_work_init(w, m, *T, 1);
    return 0;
}

int trace_tag_write(const trace_tag_options *o, const model *m, const vocab *v,
                    const char *const *tags, examples_file *ex, trace_tag_summary *sum)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, K = m->cfg.head.classes;
    const int D = model_directions(&m->cfg), spacing = K == 2 && strcmp(tags[0], "B") == 0 &&
                                                       strcmp(tags[1], "I") == 0;
    tt_source src = {.ex = o->split >= 0 ? ex : NULL, .max_len = o->max_len, .v = v,
                     .spacing = spacing, .name = o->source};
    if (src.ex) {
        src.next = ex->split_begin[o->split];
        src.end = ex->split_end[o->split];
        if (src.end == src.next)
            return cn_err("split '%s' of '%s' has no examples: nothing to trace",
                          data_split_name(o->split), o->source);
    } else {
        src.in = strcmp(o->source, "-") == 0 ? stdin : fopen(o->source, "rb");
        if (!src.in)
            return cn_err("cannot open '%s': %s", o->source, strerror(errno));
    }
    /* tag files always have gold tags; a text only for spacing models */
    const int has_gold = src.ex != NULL || spacing;
    char tmp[4200];
    if (fsio_tmp_path(tmp, sizeof tmp, o->path) != 0) {
        if (src.in && src.in != stdin)
            fclose(src.in);
        return -1;
    }
    tt_writer t = {.path = tmp, .fid = H5I_INVALID_HID, .L = L, .H = H, .K = K, .D = D,
                   .lstm = m->cfg.cell == CELL_LSTM};
    t.tok = cn_xmalloc(TT_BLOCK * sizeof *t.tok);
    t.gold = cn_xmalloc(TT_BLOCK * sizeof *t.gold);
    t.pred = cn_xmalloc(TT_BLOCK * sizeof *t.pred);
    t.prob = cn_xmalloc((size_t)TT_BLOCK * K * sizeof *t.prob);
    for (int l = 0; l < L; l++)
        for (int d = 0; d < D; d++) {
            t.h[l][d] = cn_xmalloc((size_t)TT_BLOCK * H * sizeof(float));
            t.c[l][d] = t.lstm ? cn_xmalloc((size_t)TT_BLOCK * H * sizeof(float)) : NULL;
        }
    trace_corr acc;
    trace_corr_init(&acc, L, D, H, K);
    trace_corr_best top_unit;
    size_t off_cap = 1024, n_ex = 0;
    int64_t *offsets = cn_xmalloc(off_cap * sizeof *offsets);
    int64_t *index = cn_xmalloc(off_cap * sizeof *index);
    int64_t n_steps = 0;
    model_work w;
    model_state s;
    int T = 0, rc = -1, got;
    memset(&w, 0, sizeof w);
    model_state_init(&s, &m->cfg, 1);
    memset(sum, 0, sizeof *sum);
    offsets[0] = 0;
    if ((t.fid = h5io_file_create(tmp, H5P_DEFAULT)) < 0)
        goto done;
    if (write_root(o, &t, m, v, spacing, has_gold) < 0 || tt_create_all(&t) < 0)
        goto done;
    size_t n = 0;
    int64_t ix = 0;
    while ((got = source_next(&src, &n, &ix)) == 1) {
        /* whole examples up to max_chars characters, at least one */
        if (n_ex > 0 && o->max_chars > 0 && n_steps + (int64_t)n > o->max_chars)
            break;
        if (reserve_work(&w, &T, m, n, K) != 0)
            goto done;
        model_state_reset(&s);
        w.len = NULL;
        w.mask = NULL;
        model_forward(m, &w, &s, src.ids, NULL, (int)n, 0, 0);
        for (size_t k = 0; k < n; k++) {
            const float *p = head_output(&w, k);
            const int best = kern_argmax(p, K);
            const int32_t y = src.gold[k];
            const int y_corr = has_gold ? y : best;
            memcpy(t.prob + (size_t)t.n * K, p, (size_t)K * sizeof *p);
            t.tok[t.n] = src.ids[k];
            t.gold[t.n] = y;
            t.pred[t.n] = best;
            for (int l = 0; l < L; l++)
                for (int d = 0; d < D; d++) {
                    /* forward: after reading 0..k; reverse: after reading n-1 down to k,
                       step n-1-k of its reversed time */
                    const size_t at = d ? n - k : k + 1;
                    const float *h = (d ? w.hs_rev[l] : w.hs[l]) + at * H;
                    memcpy(t.h[l][d] + (size_t)t.n * H, h, (size_t)H * sizeof(float));
                    if (t.lstm)
                        memcpy(t.c[l][d] + (size_t)t.n * H, (d ? w.cs_rev[l] : w.cs[l]) + at * H,
                               (size_t)H * sizeof(float));
                    trace_corr_add_units(&acc, l, d, h, y_corr);
                }
            trace_corr_count(&acc, y_corr);
            sum->n_gold += y >= 0;
            sum->correct += y >= 0 && best == y;
            if (++t.n == TT_BLOCK && tt_flush(&t) < 0)
                goto done;
        }
        if (n_ex + 1 == off_cap) {
            off_cap *= 2;
            offsets = cn_xrealloc(offsets, off_cap * sizeof *offsets);
            index = cn_xrealloc(index, off_cap * sizeof *index);
        }
        index[n_ex] = ix;
        n_steps += (int64_t)n;
        offsets[++n_ex] = n_steps;
    }
    if (got < 0)
        goto done;
    if (n_ex == 0) {
        cn_err("'%s' has no text to tag: nothing to trace", o->source);
        goto done;
    }
    if (tt_flush(&t) < 0)
        goto done;
    hsize_t de[1] = {(hsize_t)n_ex}, dof[1] = {(hsize_t)n_ex + 1};
    if (h5io_attr_write_i64(tmp, t.fid, "n_steps", n_steps) < 0 ||
        h5io_attr_write_i64(tmp, t.fid, "n_examples", (int64_t)n_ex) < 0 ||
        h5io_dataset_write(tmp, t.fid, "/offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, dof,
                           offsets) < 0 ||
        h5io_dataset_write(tmp, t.fid, "/example_index", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, de,
                           index) < 0 ||
        h5io_dataset_write_strings(tmp, t.fid, "/tag_names", tags, (size_t)K) < 0 ||
        trace_corr_write(&acc, tmp, t.fid, "tag_corr", &top_unit) < 0)
        goto done;
    if (h5io_file_close(tmp, t.fid) < 0) {
        t.fid = H5I_INVALID_HID;
        goto done;
    }
    t.fid = H5I_INVALID_HID;
    if (fsio_commit(tmp, o->path, 1) != 0)
        goto done;
    sum->n_examples = (int64_t)n_ex;
    sum->n_steps = n_steps;
    sum->best_r = top_unit.r;
    sum->best_layer = top_unit.layer;
    sum->best_dir = top_unit.dir;
    sum->best_unit = top_unit.unit;
    sum->best_tag = top_unit.cls;
    rc = 0;
done:
    if (t.fid >= 0)
        H5Fclose(t.fid);
    if (rc != 0)
        unlink(tmp);
    if (src.in && src.in != stdin)
        fclose(src.in);
    free(src.line);
    free(src.ids);
    free(src.gold);
    if (T > 0)
        model_work_free(&w);
    model_state_free(&s);
    free(index);
    free(offsets);
    trace_corr_free(&acc);
    for (int l = 0; l < L; l++)
        for (int d = 0; d < D; d++) {
            free(t.h[l][d]);
            free(t.c[l][d]);
        }
    free(t.prob);
    free(t.pred);
    free(t.gold);
    free(t.tok);
    return rc;
}

int trace_tag_run(const trace_options *o)
{
    ckpt_data d;
    vocab voc;
    const char *source;
    int rc = trace_run_open(o, "tag", "a tagger", &d, &voc, &source);
    if (rc != 0)
        return rc;
    examples_file ex;
    memset(&ex, 0, sizeof ex);
    int have_ex = 0, split = o->split;
    rc = -1;
    if (strcmp(source, "-") != 0 && examples_is_examples_file(source)) {
        if (examples_open(&ex, source, &voc) != 0)
            goto done;
        have_ex = 1;
        if (!ex.tagged || !trace_labels_match(&ex, &d)) {
            cn_err("'%s' has other tags than the model '%s' was trained on", source, o->model);
            goto done;
        }
    } else if (split != SPLIT_ALL) {
        cn_err("'%s' is plain text, traced whole: --split applies to tag files", source);
        goto done;
    } else {
        split = -1;
    }
    trace_tag_options to = {o->out, o->model, source, split, o->max_chars, d.cfg.max_len,
                            d.prog.step};
    trace_tag_summary s;
    if (trace_tag_write(&to, &d.m, &voc, (const char *const *)d.task.labels, &ex, &s) != 0)
        goto done;
    printf("trace of %lld examples (%lld characters, %s of '%s') by '%s' written to '%s': ",
           (long long)s.n_examples, (long long)s.n_steps,
           split < 0 ? "plain text" : data_split_name(split), source, o->model, o->out);
    if (s.n_gold > 0)
        printf("accuracy %.4f over %lld tagged characters; ",
               (double)s.correct / (double)s.n_gold, (long long)s.n_gold);
    printf("unit %d of layer %d%s follows tag '%s' most (r = %.3f)\n", s.best_unit, s.best_layer,
           s.best_dir ? " (reverse)" : "", d.task.labels[s.best_tag], (double)s.best_r);
    fflush(stdout);
    rc = 0;
done:
    if (have_ex)
        examples_close(&ex);
    vocab_free(&voc);
    ckpt_data_free(&d);
    return rc;
}
