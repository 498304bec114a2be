/* Applying a tagging model to text, and the spacing scores. See tagger.h. */
#include "charnn/tagger.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/ckpt.h"
#include "charnn/common.h"
#include "charnn/head.h"
#include "charnn/kernels.h"
#include "charnn/model.h"
#include "charnn/runtime.h"
#include "charnn/vocab.h"

double tag_precision(const tag_scores *s)
{
    return s->spaces_pred ? (double)s->spaces_hit / (double)s->spaces_pred : 0.0;
}

double tag_recall(const tag_scores *s)
{
    return s->spaces_true ? (double)s->spaces_hit / (double)s->spaces_true : 0.0;
}

double tag_f1(const tag_scores *s)
{
    const double p = tag_precision(s), r = tag_recall(s);
    return p + r > 0.0 ? 2.0 * p * r / (p + r) : 0.0;
}

void tag_score_line(tag_scores *s, const uint8_t *gold, const uint8_t *pred, size_t n)
{
    /* a word is restored when the boundary before it was found (or it opens
     * the line), no space is predicted inside it and its end is found */
    int start_ok = 1, inside_ok = 1;
    s->lines++;
    for (size_t i = 0; i < n; i++) {
        s->chars++;
        s->correct += gold[i] == pred[i];
        s->spaces_true += gold[i];
        s->spaces_pred += pred[i];
        s->spaces_hit += gold[i] && pred[i];
        const int end = gold[i] || i + 1 == n;
        if (!end && pred[i])
            inside_ok = 0;
        if (end) {
            const int boundary = i + 1 == n || pred[i];
            s->words++;
            s->words_exact += start_ok && inside_ok && boundary;
            start_ok = boundary;
            inside_ok = 1;
        }
    }
}

typedef struct {
    ckpt_data d;
    model_work w;
    model_state s;
    int T;          /* the workspace's steps */
    int spacing;
    int32_t *ids;   /* (T) */
    uint32_t *syms; /* (T) the line's symbols, spaces removed for spacing */
    uint8_t *gold, *pred;
    size_t cap;
} tagger;

static void tagger_reserve(tagger *g, size_t n)
{
    if (n <= g->cap)
        return;
    g->cap = n > 2 * g->cap ? n : 2 * g->cap;
    g->ids = cn_xrealloc(g->ids, g->cap * sizeof *g->ids);
    g->syms = cn_xrealloc(g->syms, g->cap * sizeof *g->syms);
    g->gold = cn_xrealloc(g->gold, g->cap);
    g->pred = cn_xrealloc(g->pred, g->cap);
}

/* Tags of the n symbols in g->ids into g->pred. */
static void tagger_run(tagger *g, size_t n)
{
    if (n > (size_t)g->T) {
        if (g->T > 0)
            model_work_free(&g->w);
        g->T = (int)n;
        model_work_init(&g->w, &g->d.m, g->T, 1);
    }
    model_state_reset(&g->s);
    model_forward(&g->d.m, &g->w, &g->s, g->ids, NULL, (int)n, 0, 0);
    const int K = g->d.m.head.outputs;
    for (size_t t = 0; t < n; t++) {
        g->pred[t] = (uint8_t)kern_argmax(head_output(&g->w, t), K);
    }
}

static int put_sym(const vocab *v, uint32_t s, FILE *out)
{
    char buf[4];
    int n = v->mode == VOCAB_BYTES ? (buf[0] = (char)s, 1) : utf8_encode(s, buf);
    return fwrite(buf, 1, (size_t)n, out) == (size_t)n ? 0 : -1;
}

static void html_escape_sym(const vocab *v, uint32_t s, FILE *f)
{
    if (s == '<')
        fputs("&lt;", f);
    else if (s == '>')
        fputs("&gt;", f);
    else if (s == '&')
        fputs("&amp;", f);
    else
        put_sym(v, s, f);
}

/* One line of the page: the predicted spacing, wrong spaces marked. */
static void html_line(const tagger *g, size_t n, FILE *f)
{
    fputs("<p>", f);
    for (size_t i = 0; i < n; i++) {
        html_escape_sym(&g->d.voc, g->syms[i], f);
        if (i + 1 == n)
            break;
        /* gold/pred 1 = a space; spacing models' tag id 0 (B) was mapped to 1 */
        if (g->gold[i] && g->pred[i])
            fputs(" ", f);
        else if (g->pred[i])
            fputs("<span class=\"extra\" title=\"a space where there is none\">&#x2423;</span>",
                  f);
        else if (g->gold[i])
            fputs("<span class=\"missed\" title=\"a missed space\">&#x2038;</span>", f);
    }
    fputs("</p>\n", f);
}

int tag_run(const tag_options *o, FILE *out)
{
    tagger g;
    memset(&g, 0, sizeof g);
    FILE *in = NULL, *html = NULL;
    char *line = NULL;
    size_t line_cap = 0, line_no = 0;
    int rc = -1, html_lines = 0;
    tag_scores sc;
    memset(&sc, 0, sizeof sc);
    if (ckpt_read(o->model_path, &g.d) != 0)
        return -1;
    runtime_set_threads(o->threads > 0 ? o->threads : 1);
    model_state_init(&g.s, &g.d.m.cfg, 1);
    if (g.d.m.cfg.head.kind != HEAD_TAG) {
        cn_err("'%s' is a %s model, not a tagger (train --task tag)", o->model_path,
               head_name(g.d.m.cfg.head.kind));
        goto done;
    }
    g.spacing = g.d.task.n_labels == 2 && strcmp(g.d.task.labels[0], "B") == 0 &&
                strcmp(g.d.task.labels[1], "I") == 0;
    if ((o->apply || o->eval) && !g.spacing) {
        cn_err("--%s needs a spacing model (tags B and I, prepare --derive spacing)",
               o->apply ? "apply" : "eval");
        goto done;
    }
    const char *name = strcmp(o->input, "-") == 0 ? "<stdin>" : o->input;
    in = strcmp(o->input, "-") == 0 ? stdin : fopen(o->input, "rb");
    if (!in) {
        cn_err("cannot open '%s': %s", o->input, strerror(errno));
        goto done;
    }
    if (o->html_path && !(html = fopen(o->html_path, "w"))) {
        cn_err("cannot create '%s': %s", o->html_path, strerror(errno));
        goto done;
    }
    if (html)
        fprintf(html, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>spacing: "
                      "%s</title>\n<style>body{font:16px sans-serif;max-width:50em;margin:2em}"
                      ".extra{color:#c00;font-weight:bold}.missed{color:#06c;font-weight:bold}"
                      "</style></head><body>\n",
                o->model_path);
    ssize_t got;
    while ((got = getline(&line, &line_cap, in)) >= 0) {
        size_t len = (size_t)got;
        line_no++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        tagger_reserve(&g, len + 1);
        size_t n = 0, spaces = 0;
        for (size_t i = 0; i < len;) {
            uint32_t cp = (uint8_t)line[i];
            int k = 1;
            if (g.d.voc.mode == VOCAB_CODEPOINTS &&
                (k = utf8_decode((const uint8_t *)line + i, len - i, &cp)) == 0) {
                cn_err("'%s' line %zu: invalid UTF-8", name, line_no);
                goto done;
            }
            i += (size_t)k;
            if (g.spacing && cp == ' ') {
                if (n > 0 && !g.gold[n - 1]) {
                    g.gold[n - 1] = 1;
                    spaces++;
                }
                continue;
            }
            int id = vocab_id(&g.d.voc, cp);
            if (id < 0) {
                if (o->eval) { /* a character the model never saw: score it as unknown */
                    id = 0;
                } else {
                    cn_err("'%s' line %zu: character '%.*s' is not in the model's vocabulary",
                           name, line_no, k, line + i - k);
                    goto done;
                }
            }
            g.syms[n] = cp;
            g.gold[n] = 0;
            g.ids[n++] = id;
        }
        if (n > 0 && g.gold[n - 1]) {
            g.gold[n - 1] = 0;
            spaces--;
        }
        if (o->eval && (n == 0 || (double)spaces < o->min_space_rate * (double)n)) {
            sc.skipped++;
            continue;
        }
        if (n > 0)
            tagger_run(&g, n);
        if (g.spacing) /* tag id 0 is B: a space follows */
            for (size_t i = 0; i < n; i++)
                g.pred[i] = g.pred[i] == 0 && i + 1 < n;
        int ok = 1;
        if (o->eval) {
            tag_score_line(&sc, g.gold, g.pred, n);
            if (html && html_lines < 200) {
                html_line(&g, n, html);
                html_lines++;
            }
        } else if (o->apply) {
            for (size_t i = 0; ok && i < n; i++)
                ok = put_sym(&g.d.voc, g.syms[i], out) == 0 &&
                     (!g.pred[i] || fputc(' ', out) != EOF);
            ok = ok && fputc('\n', out) != EOF;
        } else {
            for (size_t i = 0; ok && i < n; i++)
                ok = put_sym(&g.d.voc, g.syms[i], out) == 0;
            ok = ok && fputc('\t', out) != EOF;
            for (size_t i = 0; ok && i < n; i++)
                ok = fputs(g.spacing ? (g.pred[i] ? "B" : "I") : g.d.task.labels[g.pred[i]],
                           out) != EOF;
            ok = ok && fputc('\n', out) != EOF;
        }
        if (!ok) {
            cn_err("cannot write the output: %s", strerror(errno));
            goto done;
        }
    }
    if (ferror(in)) {
        cn_err("cannot read '%s': %s", name, strerror(errno));
        goto done;
    }
    if (o->eval) {
        const double acc = sc.chars ? (double)sc.correct / (double)sc.chars : 0.0;
        const double words = sc.words ? (double)sc.words_exact / (double)sc.words : 0.0;
        if (o->json)
            fprintf(out, "{\"model\":\"%s\",\"lines\":%lld,\"skipped\":%lld,\"chars\":%lld,"
                         "\"accuracy\":%.6f,\"space_precision\":%.6f,\"space_recall\":%.6f,"
                         "\"space_f1\":%.6f,\"spaces\":%lld,\"words\":%lld,"
                         "\"words_exact\":%.6f}\n",
                    o->model_path, (long long)sc.lines, (long long)sc.skipped,
                    (long long)sc.chars, acc, tag_precision(&sc), tag_recall(&sc), tag_f1(&sc),
                    (long long)sc.spaces_true, (long long)sc.words, words);
        else
            fprintf(out, "%s on '%s': %lld lines (%lld skipped), %lld characters\n"
                         "accuracy %.4f; spaces: precision %.4f recall %.4f F1 %.4f (%lld true, "
                         "%lld predicted); words restored exactly %.4f of %lld\n",
                    o->model_path, name, (long long)sc.lines, (long long)sc.skipped,
                    (long long)sc.chars, acc, tag_precision(&sc), tag_recall(&sc), tag_f1(&sc),
                    (long long)sc.spaces_true, (long long)sc.spaces_pred, words,
                    (long long)sc.words);
        if (html)
            fprintf(html, "<p id=\"summary\">accuracy %.4f, space F1 %.4f (precision %.4f, recall "
                          "%.4f), words restored %.4f; <span class=\"extra\">&#x2423;</span> a "
                          "space too many, <span class=\"missed\">&#x2038;</span> a missed "
                          "space</p>\n",
                    acc, tag_f1(&sc), tag_precision(&sc), tag_recall(&sc), words);
    }
    if (html && fputs("</body></html>\n", html) == EOF) {
        cn_err("cannot write '%s': %s", o->html_path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (html && fclose(html) != 0 && rc == 0)
        rc = cn_err("cannot write '%s': %s", o->html_path, strerror(errno));
    if (in && in != stdin)
        fclose(in);
    free(line);
    free(g.ids);
    free(g.syms);
    free(g.gold);
    free(g.pred);
    if (g.T > 0)
        model_work_free(&g.w);
    if (g.s.h)
        model_state_free(&g.s);
    ckpt_data_free(&g.d);
    return rc;
}
