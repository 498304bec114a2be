/* `charnn eval` on a classifier: batches of a split, the confusion matrix,
 * text / JSON / an HTML page. See classeval.h. */
#include "charnn/classeval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/dist.h"
#include "charnn/examples.h"
#include "charnn/exorder.h"
#include "charnn/fsio.h"
#include "charnn/head.h"
#include "charnn/htmlplot.h"
#include "charnn/kernels.h"
#include "charnn/memplan.h"

/* Length-sorted windows of this many batches (exorder's bucketing). */
#define CLASSEVAL_BUCKET_BATCHES 64

/* The file's classes must be the model's (prepare sorts them by bytes, so the
 * same set is the same order). */
static int same_classes(const examples_file *ex, const ckpt_data *d)
{
    if (ex->n_classes != d->task.n_labels)
        return 0;
    for (int c = 0; c < ex->n_classes; c++)
        if (strcmp(ex->class_names[c], d->task.labels[c]) != 0)
            return 0;
    return 1;
}

/* The examples of [begin, end) through the model into cm (this rank's share
 * of every batch). */
static int run_split(const eval_options *o, const ckpt_data *d, examples_file *ex, size_t begin,
                     size_t end, classmetrics *cm)
{
    const int R = dist_size(), rank = dist_rank();
    const int B = o->batch > 0 ? o->batch : d->cfg.batch;
    const size_t n = end - begin;
    uint32_t *lengths = examples_lengths(ex, o->split); /* [begin, end) is o->split */
    exorder ord;
    int rc = exorder_init(&ord, n, lengths, R * B, CLASSEVAL_BUCKET_BATCHES, 0, 0);
    free(lengths);
    if (rc != 0)
        return -1;
    int Tmax = (int)ex->max_len;
    const int cut = o->max_len > 0 ? o->max_len : d->cfg.max_len;
    if (cut > 0 && cut < Tmax)
        Tmax = cut;
    if (memplan_check_infer(&d->m.cfg, Tmax, B, 0.0, "eval") != 0) {
        exorder_free(&ord);
        return -1;
    }
    model_work w;
    model_state s;
    model_work_init(&w, &d->m, Tmax, B);
    model_state_init(&s, &d->m.cfg, B);
    size_t *idx = cn_xmalloc((size_t)B * sizeof *idx);
    int32_t *x = cn_xmalloc((size_t)Tmax * B * sizeof *x);
    int32_t *len = cn_xmalloc((size_t)B * sizeof *len);
    int32_t *y = cn_xmalloc((size_t)B * sizeof *y);
    float *mask = cn_xmalloc((size_t)B * sizeof *mask);
    const int C = cm->classes;
    int first, mine;
    exorder_shard(R * B, R, NULL, rank, &first, &mine);
    for (uint64_t k = 0; k < ord.batches_per_epoch && rc == 0; k++) {
        const size_t *rows = exorder_batch(&ord, 0, k);
        int T = exorder_batch_max_len(&ord, rows, Tmax);
        if (T < 1)
            T = 1;
        for (int b = 0; b < B; b++) {
            const size_t r = rows[first + b];
            idx[b] = begin + (r == EXORDER_NONE ? rows[0] : r); /* row 0 is always real */
        }
        if ((rc = examples_fill_batch(ex, idx, B, T, 0, x, len, y, NULL)) != 0)
            break;
        for (int b = 0; b < B; b++) {
            const int real = rows[first + b] != EXORDER_NONE;
            mask[b] = real ? 1.0f : 0.0f;
            if (!real)
                len[b] = 0;
        }
        model_state_reset(&s);
        w.B = B;
        w.mask = mask;
        w.len = len;
        model_forward(&d->m, &w, &s, x, y, T, 0, 0);
        for (int b = 0; b < B; b++)
            if (mask[b] > 0.0f)
                classmetrics_add(cm, y[b], kern_argmax(head_output(&w, (size_t)b), C),
                                 (double)w.head.loss[b]);
    }
    free(idx);
    free(x);
    free(len);
    free(y);
    free(mask);
    model_state_free(&s);
    model_work_free(&w);
    exorder_free(&ord);
    return rc;
}

static void print_text(const eval_options *o, const char *const *labels,
                       const classmetrics_summary *s, double secs)
{
    const int C = s->classes;
    int wl = 5;
    for (int c = 0; c < C; c++)
        if ((int)strlen(labels[c]) > wl)
            wl = (int)strlen(labels[c]);
    if (wl > 24)
        wl = 24;
    printf("%s on '%s' (%s split, %lld examples, %.2f s): loss %.4f nats, accuracy %.2f%%, "
           "macro-F1 %.4f\n",
           o->model_path, o->data_path, data_split_name(o->split), (long long)s->n, secs, s->loss,
           100.0 * s->accuracy, s->macro_f1);
    printf("\n%-*s  precision  recall      f1  support\n", wl, "class");
    for (int c = 0; c < C; c++)
        printf("%-*.*s  %9.4f  %6.4f  %6.4f  %7lld\n", wl, wl, labels[c], s->precision[c],
               s->recall[c], s->f1[c], (long long)s->support[c]);
    printf("%-*s  %9.4f  %6.4f  %6.4f  %7lld\n", wl, "macro avg", s->macro_precision,
           s->macro_recall, s->macro_f1, (long long)s->n);
    printf("%-*s  %9s  %6s  %6.4f  %7lld\n", wl, "weighted avg", "", "", s->weighted_f1,
           (long long)s->n);
    printf("\nconfusion matrix (rows: true class, columns: predicted, in the order above)\n");
    for (int i = 0; i < C; i++) {
        printf("%-*.*s", wl, wl, labels[i]);
        for (int j = 0; j < C; j++)
            printf(" %6lld", (long long)s->confusion[(size_t)i * C + j]);
        printf("\n");
    }
}

static void print_json(const eval_options *o, const char *const *labels,
                       const classmetrics_summary *s, double secs)
{
    const int C = s->classes;
    printf("{\"model\":");
    cn_json_string(stdout, o->model_path);
    printf(",\"data\":");
    cn_json_string(stdout, o->data_path);
    printf(",\"task\":\"classify\",\"split\":\"%s\",\"examples\":%lld,\"loss\":%.9g,\"accuracy\":%.6f,"
           "\"macro_precision\":%.6f,\"macro_recall\":%.6f,\"macro_f1\":%.6f,"
           "\"weighted_f1\":%.6f,\"seconds\":%.3f,\"classes\":[",
           data_split_name(o->split), (long long)s->n, s->loss, s->accuracy, s->macro_precision,
           s->macro_recall, s->macro_f1, s->weighted_f1, secs);
    for (int c = 0; c < C; c++) {
        printf("%s{\"label\":", c ? "," : "");
        cn_json_string(stdout, labels[c]);
        printf(",\"precision\":%.6f,\"recall\":%.6f,\"f1\":%.6f,\"support\":%lld,"
               "\"predicted\":%lld}",
               s->precision[c], s->recall[c], s->f1[c], (long long)s->support[c],
               (long long)s->predicted[c]);
    }
    printf("],\"confusion\":[");
    for (int i = 0; i < C; i++) {
        printf("%s[", i ? "," : "");
        for (int j = 0; j < C; j++)
            printf("%s%lld", j ? "," : "", (long long)s->confusion[(size_t)i * C + j]);
        printf("]");
    }
    printf("]}\n");
}

int classeval_run(const eval_options *o, const ckpt_data *d)
{
    const int C = d->task.n_labels;
    if (C < 1)
        return cn_err("'%s' is a classifier without labels: it is damaged", o->model_path);
    examples_file ex;
    vocab v;
    if (vocab_from_symbols(&v, d->voc.mode, d->voc.symbols, d->voc.size) != 0)
        return -1;
    /* an examples file, or a small raw input split as in training */
    int raw = 0;
    if (examples_open_input(&ex, o->data_path, &v, d->voc.mode, d->cfg.val_frac,
                            d->cfg.test_frac, d->cfg.seed, dist_rank(), &raw) != 0) {
        vocab_free(&v);
        return -1;
    }
    int rc = -1;
    classmetrics cm;
    classmetrics_init(&cm, C);
    const size_t begin = ex.split_begin[o->split], end = ex.split_end[o->split];
    if (!same_classes(&ex, d)) {
        cn_err("'%s' has other classes than the model '%s' was trained on", o->data_path,
               o->model_path);
        goto done;
    }
    if (end <= begin) {
        cn_err("split '%s' of '%s' has no examples: nothing to evaluate",
               data_split_name(o->split), o->data_path);
        goto done;
    }
    double t0 = cn_now();
    int failed = run_split(o, d, &ex, begin, end, &cm) != 0;
    /* every rank reads the same file: when one fails, say so once and stop together */
    if (dist_allreduce_sum_int(failed) != 0) {
        if (!failed)
            cn_err("another rank failed to read '%s'", o->data_path);
        goto done;
    }
    dist_allreduce_sum_f64(classmetrics_counts(&cm), (size_t)classmetrics_count_len(&cm));
    const double secs = cn_now() - t0;
    classmetrics_summary s;
    classmetrics_summarize(&cm, &s);
    const char *const *labels = (const char *const *)d->task.labels;
    rc = 0;
    if (dist_rank() == 0) {
        if (o->json)
            print_json(o, labels, &s, secs);
        else
            print_text(o, labels, &s, secs);
        fflush(stdout);
        if (o->html_path && classeval_write_html(o->html_path, o, labels, &s) != 0)
            rc = -1;
        else if (o->html_path && !o->json)
            printf("\nwrote '%s'\n", o->html_path);
    }
    classmetrics_summary_free(&s);
done:
    classmetrics_free(&cm);
    examples_close(&ex);
    vocab_free(&v);
    return rc;
}

/* White mixed with the dark colour by share f in [0, 1]. */
static void heat_color(double f, char out[8])
{
    if (!(f >= 0.0))
        f = 0.0;
    if (f > 1.0)
        f = 1.0;
    const int r = (int)lround(255.0 + f * (CLASSEVAL_DARK_R - 255.0));
    const int g = (int)lround(255.0 + f * (CLASSEVAL_DARK_G - 255.0));
    const int b = (int)lround(255.0 + f * (CLASSEVAL_DARK_B - 255.0));
    snprintf(out, 8, "#%02x%02x%02x", r, g, b);
}

static void write_heatmap(FILE *out, const char *const *labels, const classmetrics_summary *s)
{
    const int C = s->classes;
    const double cell = C <= 12 ? 44.0 : C <= 24 ? 30.0 : 600.0 / C;
    size_t longest = 1;
    for (int c = 0; c < C; c++)
        if (strlen(labels[c]) > longest)
            longest = strlen(labels[c]);
    if (longest > 28)
        longest = 28;
    /* room for the labels: 6.5 px a character across, rotated by 60 degrees above */
    const double left = 40.0 + 6.5 * (double)longest, top = 20.0 + 5.7 * (double)longest;
    const double W = left + cell * C + 20.0, H = top + cell * C + 40.0;
    fprintf(out,
            "<svg id=\"confusion\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
            "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n",
            W, H, W, H);
    for (int j = 0; j < C; j++) {
        fprintf(out,
                "<text class=\"pred-label\" transform=\"translate(%.1f,%.1f) rotate(-60)\">",
                left + cell * (j + 0.5) + 4.0, top - 6.0);
        htmlplot_escape(out, labels[j]);
        fputs("</text>\n", out);
    }
    for (int i = 0; i < C; i++) {
        fprintf(out, "<text class=\"true-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
                left - 6.0, top + cell * (i + 0.5) + 4.0);
        htmlplot_escape(out, labels[i]);
        fputs("</text>\n", out);
        for (int j = 0; j < C; j++) {
            const int64_t k = s->confusion[(size_t)i * C + j];
            const double f = s->support[i] > 0 ? (double)k / (double)s->support[i] : 0.0;
            char color[8];
            heat_color(f, color);
            fprintf(out,
                    "<rect class=\"cell\" data-true=\"%d\" data-pred=\"%d\" data-count=\"%lld\" "
                    "x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
                    "stroke=\"#ddd\"><title>",
                    i, j, (long long)k, left + cell * j, top + cell * i, cell, cell, color);
            htmlplot_escape(out, labels[i]);
            fputs(" predicted as ", out);
            htmlplot_escape(out, labels[j]);
            fprintf(out, ": %lld (%.1f%% of the class)</title></rect>\n", (long long)k,
                    100.0 * f);
            if (k > 0 && cell >= 24.0)
                fprintf(out,
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                        "style=\"fill:%s\">%lld</text>\n",
                        left + cell * (j + 0.5), top + cell * (i + 0.5) + 4.0,
                        f > 0.5 ? "#fff" : "#222", (long long)k);
        }
    }
    fprintf(out,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">predicted class</text>\n"
            "<text transform=\"translate(14,%.1f) rotate(-90)\" text-anchor=\"middle\">true "
            "class</text>\n</svg>\n",
            left + cell * C / 2.0, top + cell * C + 28.0, top + cell * C / 2.0);
}

int classeval_write_html(const char *path, const eval_options *o, const char *const *labels,
                         const classmetrics_summary *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out)
        return cn_err("cannot write '%s': out of memory", path);
    const int C = s->classes;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>charnn "
          "eval: classifier</title>\n<style>\n",
          out);
    htmlplot_base_style(out);
    fputs("table{border-collapse:collapse;font-size:12px;margin:8px 0}\n"
          "td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}\n"
          "th{background:#f4f4f4}td.label{text-align:left}\n</style></head><body>\n"
          "<h1>Classifier evaluation</h1>\n<p class=\"meta\">model <code>",
          out);
    htmlplot_escape(out, o->model_path);
    fputs("</code> on <code>", out);
    htmlplot_escape(out, o->data_path);
    fprintf(out, "</code>, %s split, %lld examples, %d classes</p>\n", data_split_name(o->split),
            (long long)s->n, C);
    fprintf(out,
            "<table id=\"summary\"><tr><th>loss (nats)</th><th>accuracy</th><th>macro "
            "precision</th><th>macro recall</th><th>macro F1</th><th>weighted F1</th></tr>\n"
            "<tr><td>%.4f</td><td>%.2f%%</td><td>%.4f</td><td>%.4f</td><td>%.4f</td>"
            "<td>%.4f</td></tr></table>\n",
            s->loss, 100.0 * s->accuracy, s->macro_precision, s->macro_recall, s->macro_f1,
            s->weighted_f1);
    fputs("<h2>Confusion matrix</h2>\n<p class=\"note\">Rows are the true class, columns the "
          "predicted one; a cell's shade is its share of the row (the diagonal is the class's "
          "recall).</p>\n",
          out);
    write_heatmap(out, labels, s);
    fputs("<h2>Per class</h2>\n<table id=\"classes\"><tr><th>class</th><th>precision</th>"
          "<th>recall</th><th>F1</th><th>support</th><th>predicted</th></tr>\n",
          out);
    for (int c = 0; c < C; c++) {
        fputs("<tr class=\"class-row\"><td class=\"label\">", out);
        htmlplot_escape(out, labels[c]);
        fprintf(out, "</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%lld</td><td>%lld</td></tr>\n",
                s->precision[c], s->recall[c], s->f1[c], (long long)s->support[c],
                (long long)s->predicted[c]);
    }
    fputs("</table>\n</body></html>\n", out);
    if (fclose(out) != 0) {
        free(buf);
        return cn_err("cannot write '%s': out of memory", path);
    }
    int rc = fsio_write_atomic(path, buf, len);
    free(buf);
    return rc;
}
