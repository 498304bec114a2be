/* `charnn eval` on a conditional generator: the task's own evaluation over a
 * split of an examples file, overall and per class. See generate.h. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/dist.h"
#include "charnn/generate.h"
#include "charnn/task.h"

static const char *split_name(int split)
{
    static const char *const names[] = {"train", "val", "test", "all"};
    return names[split];
}

static void html_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

/* A page: per class its held-out loss and 10 samples (temperature 0.8, seed
 * 1), written to o->html_path. Rank 0. */
static int write_html(const eval_options *o, const ckpt_data *d, const char *const *names,
                      const double *closs, const int64_t *ctok, int C)
{
    FILE *f = fopen(o->html_path, "w");
    if (!f)
        return cn_err("cannot write '%s': %s", o->html_path, strerror(errno));
    fputs("<!doctype html><meta charset=\"utf-8\"><title>charnn generator</title>\n"
          "<style>body{font-family:sans-serif}td{padding:2px 10px;vertical-align:top}"
          "</style>\n<h1>",
          f);
    html_text(f, o->model_path);
    fputs("</h1>\n<table><tr><th>class</th><th>held-out nats/char</th><th>samples "
          "(temperature 0.8)</th></tr>\n",
          f);
    int rc = 0;
    for (int c = 0; c < d->task.n_labels && rc == 0; c++) {
        int k = 0;
        while (k < C && strcmp(names[k], d->task.labels[c]) != 0)
            k++;
        char *buf = NULL;
        size_t n = 0;
        FILE *mem = open_memstream(&buf, &n);
        if (!mem)
            return cn_err("cannot allocate the samples");
        gen_sample_options g = {.model_path = o->model_path, .cond = d->task.labels[c],
                                .count = 10, .length = 200, .temperature = 0.8, .prime = "",
                                .seed = 1};
        rc = gen_sample_run(&g, mem);
        fclose(mem);
        fputs("<tr><td>", f);
        html_text(f, d->task.labels[c]);
        if (k < C && ctok[k] > 0)
            fprintf(f, "</td><td>%.4f</td><td>", closs[k] / ctok[k]);
        else
            fputs("</td><td>-</td><td>", f);
        for (char *line = buf ? strtok(buf, "\n") : NULL; line; line = strtok(NULL, "\n")) {
            html_text(f, line);
            fputs("<br>", f);
        }
        fputs("</td></tr>\n", f);
        free(buf);
    }
    fputs("</table>\n", f);
    if (fclose(f) != 0 && rc == 0)
        rc = cn_err("cannot write '%s': %s", o->html_path, strerror(errno));
    return rc;
}

int eval_generate_run(const eval_options *o, const ckpt_data *d)
{
    run_config cfg = d->cfg;
    snprintf(cfg.data, sizeof cfg.data, "%s", o->data_path);
    snprintf(cfg.cond_vectors, sizeof cfg.cond_vectors, "%s",
             o->cond_vectors ? o->cond_vectors : "");
    if (o->batch > 0)
        cfg.batch = o->batch;
    if (d->task.n_labels == 0 && !o->cond_vectors)
        return cn_err("'%s' is conditioned on vectors: give --cond-vectors FILE", o->model_path);
    task t;
    memset(&t, 0, sizeof t);
    t.ops = &task_generate_ops;
    vocab voc = {0};
    int rc = -1;
    double *closs = NULL;
    int64_t *ctok = NULL;
    model_work w;
    int have_w = 0;
    if (vocab_from_symbols(&voc, d->voc.mode, d->voc.symbols, d->voc.size) != 0)
        goto done;
    if (t.ops->open(&t, &cfg, &voc, dist_rank(), dist_size()) != 0)
        goto done;
    if (cfg.model.cond.dim != d->m.cfg.cond.dim) {
        cn_err("'%s' has a condition of width %d, '%s' gives %d", o->model_path,
               d->m.cfg.cond.dim, o->data_path, cfg.model.cond.dim);
        goto done;
    }
    for (int c = 0; d->task.n_labels > 0 && c < t.n_labels; c++)
        if (c >= d->task.n_labels || strcmp(t.labels[c], d->task.labels[c]) != 0) {
            cn_err("'%s' has other classes than the model '%s'", o->data_path, o->model_path);
            goto done;
        }
    /* the per-class table is over the examples' classes, whatever the condition */
    const int C = task_generate_classes(&t);
    const char *const *names = task_generate_class_names(&t);
    closs = cn_xcalloc((size_t)C, sizeof *closs);
    ctok = cn_xcalloc((size_t)C, sizeof *ctok);
    model_work_init(&w, &d->m, t.T, t.rows_cap);
    have_w = 1;
    eval_result r;
    if (task_generate_evaluate(&t, &d->m, &w, o->split, 0, &r, closs, ctok) != 0)
        goto done;
    if (r.tokens == 0) {
        cn_err("split '%s' of '%s' has no examples", split_name(o->split), o->data_path);
        goto done;
    }
    if (dist_rank() == 0) {
        const double ln2 = log(2.0);
        if (o->json) {
            printf("{\"model\":");
            cn_json_string(stdout, o->model_path);
            printf(",\"data\":");
            cn_json_string(stdout, o->data_path);
            printf(",\"split\":\"%s\",\"loss\":%.6f,\"bpc\":%.6f,\"perplexity\":%.6f,"
                   "\"tokens\":%lld,\"classes\":{",
                   split_name(o->split), eval_mean(&r), eval_bpc(&r), eval_perplexity(&r),
                   (long long)r.tokens);
            int first = 1;
            for (int c = 0; c < C; c++) {
                if (ctok[c] == 0)
                    continue;
                printf("%s", first ? "" : ",");
                cn_json_string(stdout, names[c]);
                printf(":{\"loss\":%.6f,\"bpc\":%.6f,\"tokens\":%lld}", closs[c] / ctok[c],
                       closs[c] / ctok[c] / ln2, (long long)ctok[c]);
                first = 0;
            }
            printf("}}\n");
        } else {
            printf("%s on '%s' (%s split, %lld characters with EOS): loss %.4f nats/char, "
                   "%.4f bpc, perplexity %.3f\n",
                   o->model_path, o->data_path, split_name(o->split), (long long)r.tokens,
                   eval_mean(&r), eval_bpc(&r), eval_perplexity(&r));
            printf("%-24s %10s %10s %10s\n", "class", "chars", "nats/char", "bpc");
            for (int c = 0; c < C; c++)
                if (ctok[c] > 0)
                    printf("%-24s %10lld %10.4f %10.4f\n", names[c], (long long)ctok[c],
                           closs[c] / ctok[c], closs[c] / ctok[c] / ln2);
        }
        fflush(stdout);
        if (o->html_path && d->task.n_labels == 0) {
            cn_err("--html needs a model conditioned on classes");
            goto done;
        }
        if (o->html_path && write_html(o, d, names, closs, ctok, C) != 0)
            goto done;
    }
    rc = 0;
done:
    if (have_w)
        model_work_free(&w);
    free(closs);
    free(ctok);
    if (t.impl)
        t.ops->close(&t);
    vocab_free(&voc);
    return rc;
}
