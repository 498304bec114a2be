/* Translation with a seq2seq model: `charnn translate` and `charnn eval` of a
 * translation model, and chrF. See translate.h. */
#include "charnn/translate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/ckpt.h"
#include "charnn/config.h"
#include "charnn/common.h"
#include "charnn/data.h"
#include "charnn/fsio.h"
#include "charnn/h5io.h"
#include "charnn/pairs.h"
#include "charnn/seq2seq.h"

/* ---- chrF ---------------------------------------------------------------- */

static int strip_space(const uint32_t *in, int n, uint32_t *out)
{
    int m = 0;
    for (int i = 0; i < n; i++)
        if (in[i] != ' ' && in[i] != '\t' && in[i] != '\n' && in[i] != '\r')
            out[m++] = in[i];
    return m;
}

void chrf_add(chrf_stats *s, const uint32_t *hyp, int nh, const uint32_t *ref, int nr)
{
    uint32_t *h = cn_xmalloc(((size_t)nh + 1) * sizeof *h);
    uint32_t *r = cn_xmalloc(((size_t)nr + 1) * sizeof *r);
    nh = strip_space(hyp, nh, h);
    nr = strip_space(ref, nr, r);
    uint8_t *used = cn_xmalloc((size_t)nr + 1);
    for (int n = 1; n <= CHRF_ORDER; n++) {
        const int gh = nh - n + 1 > 0 ? nh - n + 1 : 0, gr = nr - n + 1 > 0 ? nr - n + 1 : 0;
        s->hyp[n - 1] += gh;
        s->ref[n - 1] += gr;
        memset(used, 0, (size_t)nr + 1);
        /* clipped matches: each reference n-gram matches at most once */
        for (int i = 0; i < gh; i++)
            for (int j = 0; j < gr; j++)
                if (!used[j] && memcmp(h + i, r + j, (size_t)n * sizeof *h) == 0) {
                    used[j] = 1;
                    s->match[n - 1] += 1;
                    break;
                }
    }
    free(used);
    free(h);
    free(r);
}

double chrf_score(const chrf_stats *s)
{
    double p = 0.0, r = 0.0;
    int orders = 0;
    for (int n = 0; n < CHRF_ORDER; n++) {
        if (s->hyp[n] <= 0 || s->ref[n] <= 0)
            continue;
        p += s->match[n] / s->hyp[n];
        r += s->match[n] / s->ref[n];
        orders++;
    }
    if (orders == 0)
        return 0.0;
    p /= orders;
    r /= orders;
    const double b2 = CHRF_BETA * CHRF_BETA;
    return p + r > 0 ? 100.0 * (1 + b2) * p * r / (b2 * p + r) : 0.0;
}

/* ---- the model ----------------------------------------------------------- */

typedef struct {
    ckpt_data d;
    uint32_t *tsym; /* (Vt) code point of each target id, 0 for BOS/EOS */
} s2s_model;

static int model_load(s2s_model *sm, const char *path, const char *command)
{
    memset(sm, 0, sizeof *sm);
    if (ckpt_read(path, &sm->d) != 0)
        return -1;
    if (ckpt_require_task(&sm->d, path, "seq2seq", command) != 0)
        return -1;
    const int Vt = sm->d.m.cfg.head.classes;
    vocab tv = {0};
    if (seq2seq_target_vocab(sm->d.task.labels, sm->d.task.n_labels, &tv) != 0)
        return cn_err_context("'%s'", path);
    sm->tsym = cn_xcalloc((size_t)Vt, sizeof *sm->tsym);
    for (int i = 0; i < tv.size; i++)
        sm->tsym[SEQ2SEQ_SPECIALS + i] = tv.symbols[i];
    vocab_free(&tv);
    return 0;
}

static void model_unload(s2s_model *sm)
{
    free(sm->tsym);
    ckpt_data_free(&sm->d);
}

int translate_is_model(const char *path)
{
    ckpt_data d;
    memset(&d, 0, sizeof d);
    if (ckpt_read(path, &d) != 0)
        return -1;
    int yes = strcmp(d.task.task, "seq2seq") == 0;
    ckpt_data_free(&d);
    return yes;
}

static void put_ids(FILE *f, const s2s_model *sm, const int32_t *ids, int n)
{
    for (int i = 0; i < n; i++) {
        char b[4];
        int k = utf8_encode(sm->tsym[ids[i]], b);
        fwrite(b, 1, (size_t)k, f);
    }
}

/* ids as a malloc'd UTF-8 string */
static char *ids_text(const s2s_model *sm, const int32_t *ids, int n)
{
    char *s = cn_xmalloc((size_t)n * 4 + 1), *p = s;
    for (int i = 0; i < n; i++)
        p += utf8_encode(sm->tsym[ids[i]], p);
    *p = 0;
    return s;
}

/* ---- translate ----------------------------------------------------------- */

typedef struct {
    char **text;   /* (n) the lines */
    int32_t **ids; /* (n) source ids */
    int *len;
    int n, cap;
} lines;

static void lines_free(lines *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->text[i]);
        free(l->ids[i]);
    }
    free(l->text);
    free(l->ids);
    free(l->len);
}

static int read_lines(const char *input, const vocab *v, lines *out)
{
    const char *name = strcmp(input, "-") == 0 ? "stdin" : input;
    FILE *f = strcmp(input, "-") == 0 ? stdin : fopen(input, "rb");
    if (!f)
        return cn_err("cannot open '%s': %s", input, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    memset(out, 0, sizeof *out);
    while ((got = getline(&line, &cap, f)) >= 0) {
        size_t n = (size_t)got;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        line[n] = 0;
        if (out->n == out->cap) {
            out->cap = out->cap * 2 + 64;
            out->text = cn_xrealloc(out->text, (size_t)out->cap * sizeof *out->text);
            out->ids = cn_xrealloc(out->ids, (size_t)out->cap * sizeof *out->ids);
            out->len = cn_xrealloc(out->len, (size_t)out->cap * sizeof *out->len);
        }
        int32_t *ids = cn_xmalloc((n + 1) * sizeof *ids);
        int k = 0;
        out->text[out->n] = cn_xstrdup(line);
        out->ids[out->n] = ids;
        out->len[out->n] = 0;
        out->n++;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int b = utf8_decode((const uint8_t *)line + i, n - i, &cp);
            if (b == 0) {
                rc = cn_err("'%s' line %d: invalid UTF-8 at byte %zu", name, out->n, i + 1);
                goto done;
            }
            int id = vocab_id(v, cp);
            if (id < 0) {
                rc = cn_err("'%s' line %d: '%.*s' (U+%04X) is not in the model's source "
                            "vocabulary",
                            name, out->n, b, line + i, (unsigned)cp);
                goto done;
            }
            ids[k++] = id;
            i += (size_t)b;
        }
        out->len[out->n - 1] = k;
    }
    if (ferror(f))
        rc = cn_err("cannot read '%s': %s", name, strerror(errno));
done:
    free(line);
    if (f != stdin)
        fclose(f);
    return rc;
}

static void print_attention(FILE *f, const seq2seq_hyp *h, int S)
{
    fputs(",\"attention\":[", f);
    const int rows = h->attn ? h->n + h->finished : 0;
    for (int i = 0; i < rows; i++) {
        fputs(i ? ",[" : "[", f);
        for (int s = 0; s < S; s++)
            fprintf(f, "%s%.4g", s ? "," : "", (double)h->attn[(size_t)i * h->S + s]);
        fputc(']', f);
    }
    fputc(']', f);
}

/* Decode the non-empty sources of l into hyps (empty ones get an empty hypothesis). */
static int decode_all(const s2s_model *sm, const int32_t *const *ids, const int *len, int n,
                      int beam, int max_len, float alpha, int want_attn, int rows,
                      seq2seq_hyp *hyps)
{
    int nz = 0, longest = 1;
    int *map = cn_xmalloc(((size_t)n + 1) * sizeof *map);
    const int32_t **src = cn_xmalloc(((size_t)n + 1) * sizeof *src);
    int *slen = cn_xmalloc(((size_t)n + 1) * sizeof *slen);
    for (int i = 0; i < n; i++) {
        if (len[i] > 0) {
            map[nz] = i;
            src[nz] = ids[i];
            slen[nz++] = len[i];
        }
        longest = len[i] > longest ? len[i] : longest;
    }
    seq2seq_decode_options o = {beam, max_len > 0 ? max_len : 2 * longest + 10, alpha,
                                want_attn};
    seq2seq_hyp *tmp = cn_xcalloc((size_t)nz + 1, sizeof *tmp);
    int rc = seq2seq_translate(&sm->d.m, src, slen, nz, rows, &o, tmp);
    memset(hyps, 0, (size_t)n * sizeof *hyps);
    for (int j = 0; j < nz; j++)
        hyps[map[j]] = tmp[j];
    if (rc != 0)
        for (int j = 0; j < nz; j++)
            seq2seq_hyp_free(&tmp[j]);
    free(tmp);
    free(map);
    free(src);
    free(slen);
    return rc;
}

int translate_run(const translate_options *o)
{
    s2s_model sm;
    lines l;
    memset(&l, 0, sizeof l);
    seq2seq_hyp *hyps = NULL;
    int rc = -1;
    if (model_load(&sm, o->model_path, "translate") != 0)
        goto error;
    if (read_lines(o->input, &sm.d.voc, &l) != 0)
        goto error;
    hyps = cn_xcalloc((size_t)l.n + 1, sizeof *hyps);
    if (decode_all(&sm, (const int32_t *const *)l.ids, l.len, l.n, o->beam, o->max_len,
                   o->length_penalty, o->json && o->attention, o->rows, hyps) != 0)
        goto error;
    for (int i = 0; i < l.n; i++) {
        const seq2seq_hyp *h = &hyps[i];
        if (!o->json) {
            put_ids(stdout, &sm, h->ids, h->n);
            fputc('\n', stdout);
            continue;
        }
        char *t = ids_text(&sm, h->ids, h->n);
        fputs("{\"source\":", stdout);
        cn_json_string(stdout, l.text[i]);
        fputs(",\"translation\":", stdout);
        cn_json_string(stdout, t);
        fprintf(stdout, ",\"score\":%.6g,\"logprob\":%.6g,\"finished\":%s", h->score,
                h->logprob, h->finished || l.len[i] == 0 ? "true" : "false");
        if (o->attention)
            print_attention(stdout, h, l.len[i]);
        fputs("}\n", stdout);
        free(t);
    }
    fflush(stdout);
    rc = 0;
error:
    if (hyps)
        for (int i = 0; i < l.n; i++)
            seq2seq_hyp_free(&hyps[i]);
    free(hyps);
    lines_free(&l);
    model_unload(&sm);
    return rc;
}

/* ---- eval ---------------------------------------------------------------- */

typedef struct {
    int min_len, max_len, n, exact;
    chrf_stats chrf;
} len_bucket;

static int cmp_len(const void *a, const void *b, void *ctx)
{
    const int *len = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    return len[x] != len[y] ? len[x] - len[y] : x - y;
}

static void sort_by_len(int *idx, int n, const int *len)
{
    /* insertion sort keeps it dependency-free; n is a test split */
    for (int i = 1; i < n; i++) {
        int v = idx[i], j = i;
        while (j > 0 && cmp_len(&idx[j - 1], &v, (void *)len) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

/* The teacher-forced loss of pairs [b, e) of p: summed nats and target characters. */
static int teacher_forced_loss(const model *m, const pairs_file *p, size_t b, size_t e, int rows,
                               double *loss, double *chars)
{
    int T = 1;
    for (size_t i = b; i < e; i++) {
        int s = pairs_src_len(p, i), t = pairs_tgt_len(p, i) + 1;
        T = s > T ? s : T;
        T = t > T ? t : T;
    }
    model_work w;
    model_work_init(&w, m, T, rows);
    model_state st;
    model_state_init(&st, &m->cfg, rows);
    int32_t *x = cn_xcalloc((size_t)T * rows, sizeof *x), *y = cn_xcalloc((size_t)T * rows, sizeof *y);
    int32_t *len = cn_xcalloc((size_t)rows, sizeof *len);
    float *mask = cn_xcalloc((size_t)T * rows, sizeof *mask);
    *loss = 0.0;
    *chars = 0.0;
    for (size_t at = b; at < e; at += (size_t)rows) {
        const int B = e - at < (size_t)rows ? (int)(e - at) : rows;
        int Tb = 1;
        for (int r = 0; r < B; r++) {
            int s = pairs_src_len(p, at + r), t = pairs_tgt_len(p, at + r) + 1;
            Tb = s > Tb ? s : Tb;
            Tb = t > Tb ? t : Tb;
        }
        for (int r = 0; r < B; r++) {
            const int32_t *s = p->src + p->src_off[at + r], *d = p->tgt + p->tgt_off[at + r];
            const int ls = pairs_src_len(p, at + r), lt = pairs_tgt_len(p, at + r);
            len[r] = ls;
            for (int t = 0; t < Tb; t++) {
                x[(size_t)t * B + r] = t < ls ? s[t] : 0;
                y[(size_t)t * B + r] = t < lt ? d[t] : SEQ2SEQ_EOS;
                mask[(size_t)t * B + r] = t <= lt ? 1.0f : 0.0f;
                *chars += t <= lt;
            }
        }
        w.B = B;
        w.len = len;
        w.mask = mask;
        st.batch = B;
        model_state_reset(&st);
        *loss += model_forward(m, &w, &st, x, y, Tb, 0, 0);
    }
    st.batch = rows;
    model_state_free(&st);
    model_work_free(&w);
    free(x);
    free(y);
    free(len);
    free(mask);
    return 0;
}

static void html_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

static void html_char(FILE *f, uint32_t cp)
{
    char b[5] = {0};
    if (cp == 0) {
        fputs("&lt;/s&gt;", f);
        return;
    }
    utf8_encode(cp, b);
    html_escape(f, b);
}

/* One SVG heatmap: rows the emitted symbols (and EOS), columns the source. */
static void html_heatmap(FILE *f, const s2s_model *sm, const uint32_t *src, int S,
                         const seq2seq_hyp *h)
{
    const int rows = h->n + h->finished, cell = 18, left = 30, top = 30;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"attn\" width=\"%d\" "
               "height=\"%d\">\n",
            left + S * cell + 4, top + rows * cell + 4);
    for (int s = 0; s < S; s++) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">",
                left + s * cell + cell / 2, top - 8);
        html_char(f, src[s]);
        fputs("</text>\n", f);
    }
    for (int i = 0; i < rows; i++) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", left - 6,
                top + i * cell + 13);
        html_char(f, i < h->n ? sm->tsym[h->ids[i]] : 0);
        fputs("</text>\n", f);
        for (int s = 0; s < S; s++) {
            double a = h->attn ? h->attn[(size_t)i * h->S + s] : 0.0;
            int g = (int)lround(255.0 * (1.0 - a));
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                       "fill=\"rgb(%d,%d,255)\"><title>%.3f</title></rect>\n",
                    left + s * cell, top + i * cell, cell, cell, g, g, a);
        }
    }
    fputs("</svg>\n", f);
}

static int write_html(const char *path, const s2s_model *sm, const pairs_file *p, size_t b,
                      const seq2seq_hyp *hyps, int n, int samples, const vocab *src_voc,
                      double chrf, double exact)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return cn_err("cannot write '%s': %s", path, strerror(errno));
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>charnn translation "
          "eval</title>\n<style>body{font-family:sans-serif;margin:2em}td{padding:4px 8px;"
          "vertical-align:top}tr.miss td.hyp{color:#b00}</style></head><body>\n",
          f);
    fputs("<h1>Translation eval</h1>\n<p>model ", f);
    html_escape(f, sm->d.m.cfg.head.attention ? seq2seq_attention_name(sm->d.m.cfg.head.attention)
                                              : "no attention");
    fprintf(f, "; %d pairs; chrF %.2f; exact match %.2f%%</p>\n<table id=\"samples\">\n"
               "<tr><th>source</th><th>reference</th><th>translation</th><th>attention</th></tr>\n",
            n, chrf, 100.0 * exact);
    const int show = samples < n ? samples : n;
    for (int j = 0; j < show; j++) {
        const size_t i = b + (size_t)j;
        const int ls = pairs_src_len(p, i), lt = pairs_tgt_len(p, i);
        uint32_t *src = cn_xmalloc(((size_t)ls + 1) * sizeof *src);
        for (int s = 0; s < ls; s++)
            src[s] = src_voc->symbols[p->src[p->src_off[i] + s]];
        const seq2seq_hyp *h = &hyps[j];
        int same = h->finished && h->n == lt &&
                   memcmp(h->ids, p->tgt + p->tgt_off[i], (size_t)lt * sizeof(int32_t)) == 0;
        fprintf(f, "<tr class=\"%s\"><td>", same ? "hit" : "miss");
        for (int s = 0; s < ls; s++)
            html_char(f, src[s]);
        fputs("</td><td>", f);
        for (int t = 0; t < lt; t++)
            html_char(f, sm->tsym[p->tgt[p->tgt_off[i] + t]]);
        fputs("</td><td class=\"hyp\">", f);
        for (int t = 0; t < h->n; t++)
            html_char(f, sm->tsym[h->ids[t]]);
        fputs("</td><td>", f);
        if (h->attn)
            html_heatmap(f, sm, src, ls, h);
        else
            fputs("(no attention)", f);
        fputs("</td></tr>\n", f);
        free(src);
    }
    fputs("</table>\n</body></html>\n", f);
    if (fclose(f) != 0)
        return cn_err("cannot write '%s': %s", path, strerror(errno));
    return 0;
}

int translate_eval_run(const translate_eval_options *o)
{
    s2s_model sm;
    pairs_file p;
    memset(&p, 0, sizeof p);
    vocab vs = {0}, vt = {0};
    seq2seq_hyp *hyps = NULL;
    int32_t **ids = NULL;
    int *len = NULL, *idx = NULL, rc = -1, n = 0;
    if (model_load(&sm, o->model_path, "eval") != 0)
        goto error;
    if (pairs_open(&p, o->data_path, &vs, &vt) != 0)
        goto error;
    const model *m = &sm.d.m;
    if (!vocab_equal(&vs, &sm.d.voc) || vt.size + SEQ2SEQ_SPECIALS != m->cfg.head.classes) {
        cn_err("'%s' has other vocabularies than the model '%s'", o->data_path, o->model_path);
        goto error;
    }
    for (int i = 0; i < vt.size; i++)
        if (vt.symbols[i] != sm.tsym[SEQ2SEQ_SPECIALS + i]) {
            cn_err("'%s' has another target vocabulary than the model '%s'", o->data_path,
                   o->model_path);
            goto error;
        }
    const int split = o->split == SPLIT_ALL ? -1 : o->split;
    const size_t b = split < 0 ? 0 : p.split_begin[split], e = split < 0 ? p.n : p.split_end[split];
    n = (int)(e - b);
    if (n == 0) {
        cn_err("'%s' has no pairs in that split", o->data_path);
        goto error;
    }
    double loss, chars;
    teacher_forced_loss(m, &p, b, e, o->rows, &loss, &chars);
    ids = cn_xcalloc((size_t)n, sizeof *ids);
    len = cn_xcalloc((size_t)n, sizeof *len);
    for (int j = 0; j < n; j++) {
        ids[j] = p.src + p.src_off[b + j];
        len[j] = pairs_src_len(&p, b + j);
    }
    hyps = cn_xcalloc((size_t)n, sizeof *hyps);
    if (decode_all(&sm, (const int32_t *const *)ids, len, n, o->beam, o->max_len,
                   o->length_penalty, o->html_path != NULL, o->rows, hyps) != 0)
        goto error;
    /* exact match and chrF, overall and by source-length fifth */
    len_bucket bk[5];
    memset(bk, 0, sizeof bk);
    chrf_stats all;
    memset(&all, 0, sizeof all);
    int exact = 0;
    idx = cn_xmalloc((size_t)n * sizeof *idx);
    for (int j = 0; j < n; j++)
        idx[j] = j;
    sort_by_len(idx, n, len);
    for (int q = 0; q < n; q++) {
        const int j = idx[q], g = (int)((int64_t)q * 5 / n);
        const size_t i = b + (size_t)j;
        const int lt = pairs_tgt_len(&p, i);
        const int32_t *ref = p.tgt + p.tgt_off[i];
        const seq2seq_hyp *h = &hyps[j];
        uint32_t *hc = cn_xmalloc(((size_t)h->n + 1) * sizeof *hc);
        uint32_t *rc_ = cn_xmalloc(((size_t)lt + 1) * sizeof *rc_);
        for (int t = 0; t < h->n; t++)
            hc[t] = sm.tsym[h->ids[t]];
        for (int t = 0; t < lt; t++)
            rc_[t] = sm.tsym[ref[t]];
        const int hit = h->finished && h->n == lt &&
                        memcmp(h->ids, ref, (size_t)lt * sizeof *ref) == 0;
        exact += hit;
        chrf_add(&all, hc, h->n, rc_, lt);
        chrf_add(&bk[g].chrf, hc, h->n, rc_, lt);
        if (bk[g].n == 0)
            bk[g].min_len = len[j];
        bk[g].max_len = len[j];
        bk[g].n++;
        bk[g].exact += hit;
        free(hc);
        free(rc_);
    }
    const double mean = chars > 0 ? loss / chars : NAN, chrf = chrf_score(&all);
    const double em = (double)exact / n;
    static const char *split_names[] = {"train", "val", "test", "all"};
    if (o->json) {
        printf("{\"task\":\"seq2seq\",\"split\":\"%s\",\"pairs\":%d,\"target_chars\":%.0f,"
               "\"loss\":%.6f,\"bpc\":%.6f,\"exact_match\":%.6f,\"chrf\":%.4f,\"beam\":%d,"
               "\"length_penalty\":%g,\"by_source_length\":[",
               split_names[o->split], n, chars, mean, mean / log(2.0), em, chrf, o->beam,
               (double)o->length_penalty);
        for (int g = 0, first = 1; g < 5; g++) {
            if (!bk[g].n)
                continue;
            printf("%s{\"min_len\":%d,\"max_len\":%d,\"pairs\":%d,\"exact_match\":%.6f,"
                   "\"chrf\":%.4f}",
                   first ? "" : ",", bk[g].min_len, bk[g].max_len, bk[g].n,
                   (double)bk[g].exact / bk[g].n, chrf_score(&bk[g].chrf));
            first = 0;
        }
        printf("]}\n");
    } else {
        printf("split %s: %d pairs, %.0f target characters\n", split_names[o->split], n, chars);
        printf("loss %.4f nats/char (%.4f bpc), padding-free, teacher-forced\n", mean,
               mean / log(2.0));
        printf("%s (beam %d): exact match %.2f%% (%d of %d), chrF %.2f\n",
               o->beam > 1 ? "beam search" : "greedy", o->beam, 100.0 * em, exact, n, chrf);
        for (int g = 0; g < 5; g++)
            if (bk[g].n)
                printf("  source length %3d-%-3d: %5d pairs, exact match %6.2f%%, chrF %6.2f\n",
                       bk[g].min_len, bk[g].max_len, bk[g].n, 100.0 * bk[g].exact / bk[g].n,
                       chrf_score(&bk[g].chrf));
    }
    if (o->html_path &&
        write_html(o->html_path, &sm, &p, b, hyps, n, o->samples, &vs, chrf, em) != 0)
        goto error;
    rc = 0;
error:
    if (hyps)
        for (int j = 0; j < n; j++)
            seq2seq_hyp_free(&hyps[j]);
    free(hyps);
    free(ids);
    free(len);
    free(idx);
    pairs_close(&p);
    vocab_free(&vs);
    vocab_free(&vt);
    model_unload(&sm);
    return rc;
}

/* ---- trace --------------------------------------------------------------- */

static int write_f32(const char *path, hid_t fid, const char *name, int rank, const hsize_t *dims,
                     const float *data)
{
    return h5io_dataset_write(path, fid, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, rank, dims, data);
}

int translate_trace_write(const model *m, const pairs_file *pf, size_t b0, size_t e0, int rows,
                          const char *out_path, const char *what)
{
    const pairs_file p = *pf;
    int rc = -1;
    hid_t fid = H5I_INVALID_HID;
    float *enc_h = NULL, *dec_h = NULL, *attn = NULL, *loss = NULL;
    int64_t *soff = NULL, *toff = NULL, *aoff = NULL;
    int32_t *sids = NULL, *tids = NULL;
    const size_t n = e0 - b0;
    if (n == 0)
        return cn_err("no pairs to trace");
    const int L = m->cfg.layers, H = m->cfg.hidden, R = rows;
    soff = cn_xcalloc(n + 1, sizeof *soff);
    toff = cn_xcalloc(n + 1, sizeof *toff);
    aoff = cn_xcalloc(n + 1, sizeof *aoff);
    int T = 1;
    for (size_t j = 0; j < n; j++) {
        const int ls = pairs_src_len(&p, b0 + j), lt = pairs_tgt_len(&p, b0 + j) + 1;
        soff[j + 1] = soff[j] + ls;
        toff[j + 1] = toff[j] + lt;
        aoff[j + 1] = aoff[j] + (int64_t)ls * lt;
        T = ls > T ? ls : T;
        T = lt > T ? lt : T;
    }
    const size_t ns = (size_t)soff[n], nt = (size_t)toff[n];
    enc_h = cn_xmalloc((size_t)L * ns * H * sizeof *enc_h + 1);
    dec_h = cn_xmalloc((size_t)L * nt * H * sizeof *dec_h + 1);
    attn = cn_xcalloc((size_t)aoff[n] + 1, sizeof *attn);
    loss = cn_xmalloc((nt + 1) * sizeof *loss);
    sids = cn_xmalloc((ns + 1) * sizeof *sids);
    tids = cn_xmalloc((nt + 1) * sizeof *tids);
    model_work w;
    model_work_init(&w, m, T, R);
    model_state st;
    model_state_init(&st, &m->cfg, R);
    int32_t *x = cn_xcalloc((size_t)T * R, sizeof *x), *y = cn_xcalloc((size_t)T * R, sizeof *y);
    int32_t *len = cn_xcalloc((size_t)R, sizeof *len);
    float *mask = cn_xcalloc((size_t)T * R, sizeof *mask);
    for (size_t at = 0; at < n; at += (size_t)R) {
        const int B = n - at < (size_t)R ? (int)(n - at) : R;
        int Tb = 1;
        for (int r = 0; r < B; r++) {
            int ls = pairs_src_len(&p, b0 + at + r), lt = pairs_tgt_len(&p, b0 + at + r) + 1;
            Tb = ls > Tb ? ls : Tb;
            Tb = lt > Tb ? lt : Tb;
        }
        for (int r = 0; r < B; r++) {
            const size_t i = b0 + at + r;
            const int32_t *s = p.src + p.src_off[i], *d = p.tgt + p.tgt_off[i];
            const int ls = pairs_src_len(&p, i), lt = pairs_tgt_len(&p, i);
            len[r] = ls;
            for (int t = 0; t < Tb; t++) {
                x[(size_t)t * B + r] = t < ls ? s[t] : 0;
                y[(size_t)t * B + r] = t < lt ? d[t] : SEQ2SEQ_EOS;
                mask[(size_t)t * B + r] = t <= lt ? 1.0f : 0.0f;
            }
        }
        w.B = B;
        w.len = len;
        w.mask = mask;
        st.batch = B;
        model_state_reset(&st);
        model_forward(m, &w, &st, x, y, Tb, 0, 0);
        const float *a = seq2seq_attention_weights(&w);
        for (int r = 0; r < B; r++) {
            const size_t j = at + (size_t)r;
            const int ls = (int)(soff[j + 1] - soff[j]), lt = (int)(toff[j + 1] - toff[j]);
            for (int t = 0; t < ls; t++)
                sids[soff[j] + t] = x[(size_t)t * B + r];
            for (int t = 0; t < lt; t++) {
                tids[toff[j] + t] = y[(size_t)t * B + r];
                loss[toff[j] + t] = w.head.loss[(size_t)t * B + r];
            }
            for (int l = 0; l < L; l++) {
                const float *dh = seq2seq_decoder_states(&w, l);
                for (int t = 0; t < ls; t++)
                    memcpy(enc_h + ((size_t)l * ns + soff[j] + t) * H,
                           w.hs[l] + ((size_t)(t + 1) * B + r) * H, (size_t)H * sizeof(float));
                for (int t = 0; t < lt; t++)
                    memcpy(dec_h + ((size_t)l * nt + toff[j] + t) * H,
                           dh + ((size_t)(t + 1) * B + r) * H, (size_t)H * sizeof(float));
            }
            if (a)
                for (int t = 0; t < lt; t++)
                    memcpy(attn + aoff[j] + (size_t)t * ls, a + ((size_t)r * Tb + t) * Tb,
                           (size_t)ls * sizeof(float));
        }
    }
    st.batch = R;
    model_state_free(&st);
    model_work_free(&w);
    free(x);
    free(y);
    free(len);
    free(mask);
    char tmp[4200];
    if (fsio_tmp_path(tmp, sizeof tmp, out_path) != 0)
        goto error;
    fid = h5io_file_create(tmp, H5P_DEFAULT);
    if (fid < 0)
        goto error;
    hsize_t d_off = n + 1, d_s = ns, d_t = nt, d_a = (hsize_t)aoff[n];
    hsize_t d_enc[3] = {(hsize_t)L, ns, (hsize_t)H}, d_dec[3] = {(hsize_t)L, nt, (hsize_t)H};
    int bad = h5io_attr_write_str(tmp, fid, "format", "charnn-seq2seq-trace") < 0 ||
              h5io_attr_write_i64(tmp, fid, "version", 1) < 0 ||
              h5io_attr_write_str(tmp, fid, "source", what) < 0 ||
              h5io_attr_write_i64(tmp, fid, "first_pair", (int64_t)b0) < 0 ||
              h5io_attr_write_str(tmp, fid, "attention",
                                  seq2seq_attention_name(m->cfg.head.attention)) < 0 ||
              h5io_dataset_write(tmp, fid, "/src_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, 1,
                                 &d_off, soff) < 0 ||
              h5io_dataset_write(tmp, fid, "/tgt_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, 1,
                                 &d_off, toff) < 0 ||
              h5io_dataset_write(tmp, fid, "/attention_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64,
                                 1, &d_off, aoff) < 0 ||
              h5io_dataset_write(tmp, fid, "/src_ids", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &d_s,
                                 sids) < 0 ||
              h5io_dataset_write(tmp, fid, "/tgt_ids", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &d_t,
                                 tids) < 0 ||
              write_f32(tmp, fid, "/encoder_h", 3, d_enc, enc_h) < 0 ||
              write_f32(tmp, fid, "/decoder_h", 3, d_dec, dec_h) < 0 ||
              write_f32(tmp, fid, "/loss", 1, &d_t, loss) < 0 ||
              (m->cfg.head.attention != SEQ2SEQ_ATTN_NONE &&
               write_f32(tmp, fid, "/attention", 1, &d_a, attn) < 0);
    if (h5io_file_close(tmp, fid) < 0)
        bad = 1;
    fid = H5I_INVALID_HID;
    if (bad) {
        remove(tmp);
        goto error;
    }
    if (fsio_commit(tmp, out_path, 1) != 0)
        goto error;
    rc = 0;
error:
    free(enc_h);
    free(dec_h);
    free(attn);
    free(loss);
    free(soff);
    free(toff);
    free(aoff);
    free(sids);
    free(tids);
    return rc;
}

int translate_trace_run(const translate_trace_options *o)
{
    s2s_model sm;
    pairs_file p;
    memset(&p, 0, sizeof p);
    vocab vs = {0}, vt = {0};
    int rc = -1;
    char what[3 * CONFIG_PATH_MAX];
    static const char *split_names[] = {"train", "val", "test", "all"};
    if (model_load(&sm, o->model_path, "trace") != 0)
        goto error;
    if (pairs_open(&p, o->data_path, &vs, &vt) != 0)
        goto error;
    const model *m = &sm.d.m;
    if (!vocab_equal(&vs, &sm.d.voc) || vt.size + SEQ2SEQ_SPECIALS != m->cfg.head.classes) {
        cn_err("'%s' has other vocabularies than the model '%s'", o->data_path, o->model_path);
        goto error;
    }
    const size_t b0 = o->split == SPLIT_ALL ? 0 : p.split_begin[o->split];
    size_t e0 = o->split == SPLIT_ALL ? p.n : p.split_end[o->split];
    if (o->max_pairs > 0 && (size_t)o->max_pairs < e0 - b0)
        e0 = b0 + (size_t)o->max_pairs;
    if (e0 == b0) {
        cn_err("'%s' has no pairs in that split", o->data_path);
        goto error;
    }
    snprintf(what, sizeof what, "model %s, data %s, split %s, pairs %zu..%zu", o->model_path,
             o->data_path, split_names[o->split], b0, e0);
    if (translate_trace_write(m, &p, b0, e0, o->rows, o->out_path, what) != 0)
        goto error;
    printf("traced %zu pairs into '%s'\n", e0 - b0, o->out_path);
    rc = 0;
error:
    pairs_close(&p);
    vocab_free(&vs);
    vocab_free(&vt);
    model_unload(&sm);
    return rc;
}
