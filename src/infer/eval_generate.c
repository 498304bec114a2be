/* `charnn eval` on a conditional generator: the task's own evaluation over a
 * split of an examples file, overall and per class. See generate.h. */
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
