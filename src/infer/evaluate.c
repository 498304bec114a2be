/* Loss over a split, reduced exactly across ranks. See evaluate.h. */
#include "charnn/evaluate.h"

#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/ckpt.h"
#include "charnn/classeval.h"
#include "charnn/generate.h"
#include "charnn/corpus.h"
#include "charnn/dist.h"
#include "charnn/memplan.h"
#include "charnn/task.h"

double eval_mean(const eval_result *r)
{
    return r->tokens > 0 ? r->loss_sum / (double)r->tokens : NAN;
}

double eval_accuracy(const eval_result *r)
{
    return r->correct >= 0 && r->tokens > 0 ? (double)r->correct / (double)r->tokens : NAN;
}

double eval_bpc(const eval_result *r)
{
    return eval_mean(r) / log(2.0);
}

double eval_perplexity(const eval_result *r)
{
    return exp(eval_mean(r));
}

int eval_streams_per_rank(size_t n, int T, int max_streams, int nranks)
{
    /* Aim for streams of at least 4 chunks so that most predictions see context. */
    size_t per = n / ((size_t)nranks * (size_t)T * 4);
    if (per < 1)
        per = 1;
    return per < (size_t)max_streams ? (int)per : max_streams;
}

int eval_plan(const model *m, model_work *w, model_state *s, const batch_plan *p,
              data_source *src, int64_t max_chunks, int32_t *win, int32_t *scratch,
              eval_result *out)
{
    size_t n = p->n_chunks;
    if (max_chunks > 0 && (size_t)max_chunks < n)
        n = (size_t)max_chunks;
    double local[2] = {0.0, 0.0};
    model_state_reset(s);
    for (size_t k = 0; k < n; k++) {
        int T = batch_chunk_len(p, k);
        if (batch_read_window(p, src, k, win, scratch) != 0)
            return -1;
        /* time-major windows: the targets are the inputs one row on */
        local[0] += model_forward(m, w, s, win, win + p->n_streams, T, 0, 0);
        local[1] += (double)T * p->n_streams;
    }
    dist_allreduce_sum_f64(local, 2);
    out->loss_sum = local[0];
    out->tokens = (int64_t)local[1];
    out->correct = -1;
    return 0;
}

/* A model of another task than lm: its loss (and accuracy) through the task's
 * evaluate over the split, with the model's settings (the data's splits as in
 * training, --max-len, pooling) and o->batch examples per rank. */
static int eval_run_task(const eval_options *o, ckpt_data *d)
{
    const int nranks = dist_size(), rank = dist_rank();
    const task_ops *ops = task_find(d->task.task);
    if (!ops)
        return cn_err("'%s' was trained for task '%s', which this charnn does not know (tasks: "
                      "%s)",
                      o->model_path, d->task.task, task_names());
    run_config cfg = d->cfg;
    snprintf(cfg.data, sizeof cfg.data, "%s", o->data_path);
    /* a vector classifier reads its examples as --features */
    if (strcmp(d->task.task, task_features_ops.name) == 0)
        snprintf(cfg.features, sizeof cfg.features, "%s", o->data_path);
    if (o->batch > 0)
        cfg.batch = o->batch;
    cfg.balance[0] = '\0';
    cfg.model = d->m.cfg;
    vocab voc;
    memset(&voc, 0, sizeof voc);
    task t;
    memset(&t, 0, sizeof t);
    t.ops = ops;
    model_work w;
    memset(&w, 0, sizeof w);
    int rc = -1;
    if (vocab_from_symbols(&voc, d->voc.mode, d->voc.symbols, d->voc.size) != 0 ||
        ops->open(&t, &cfg, &voc, rank, nranks) != 0)
        goto done;
    int same = t.n_labels == d->task.n_labels;
    for (int c = 0; same && c < t.n_labels; c++)
        same = strcmp(t.labels[c], d->task.labels[c]) == 0;
    if (!same) {
        cn_err("'%s' has other classes than the model '%s' was trained on", o->data_path,
               o->model_path);
        goto done;
    }
    if (memplan_check_infer(&d->m.cfg, t.T, t.rows_cap, 0.0, "eval") != 0)
        goto done;
    t.eval_split = o->split;
    model_work_init(&w, &d->m, t.T, t.rows_cap);
    eval_result r;
    double t0 = cn_now();
    if (ops->evaluate(&t, &d->m, &w, 0, &r) != 0)
        goto done;
    double secs = cn_now() - t0;
    if (rank == 0) {
        if (o->json) {
            printf("{\"model\":");
            cn_json_string(stdout, o->model_path);
            printf(",\"data\":");
            cn_json_string(stdout, o->data_path);
            printf(",\"task\":");
            cn_json_string(stdout, d->task.task);
            printf(",\"split\":\"%s\",\"loss\":%.9g,\"accuracy\":%.6f,\"examples\":%lld,"
                   "\"seconds\":%.3f}\n",
                   data_split_name(o->split), eval_mean(&r), eval_accuracy(&r),
                   (long long)r.tokens, secs);
        } else {
            printf("%s on '%s' (%s split, %lld examples): loss %.4f nats per example, accuracy "
                   "%.4f\n",
                   o->model_path, o->data_path, data_split_name(o->split), (long long)r.tokens,
                   eval_mean(&r), eval_accuracy(&r));
        }
        fflush(stdout);
    }
    rc = 0;
done:
    if (t.impl)
        ops->close(&t);
    model_work_free(&w);
    vocab_free(&voc);
    return rc;
}

int eval_run(const eval_options *o)
{
    ckpt_data d;
    if (ckpt_read(o->model_path, &d) != 0)
        return -1;
    if (strcmp(d.task.task, "classify") == 0) {
        int crc = classeval_run(o, &d);
        ckpt_data_free(&d);
        return crc;
    }
    if (strcmp(d.task.task, "generate") == 0) {
        int grc = eval_generate_run(o, &d);
        ckpt_data_free(&d);
        return grc;
    }
    if (o->html_path) {
        cn_err("--html is for classifiers, generators and translation models; '%s' is a %s "
               "model", o->model_path, d.task.task);
        ckpt_data_free(&d);
        return -1;
    }
    if (strcmp(d.task.task, CKPT_TASK_LM) != 0) {
        int trc = eval_run_task(o, &d);
        ckpt_data_free(&d);
        return trc;
    }
    const int nranks = dist_size(), rank = dist_rank();
    int rc = -1;
    data_source src;
    memset(&src, 0, sizeof src);
    data_splits sp;
    if (corpus_open(&src, o->data_path, &d.voc, d.voc.mode, d.cfg.val_frac, d.cfg.test_frac,
                    &sp) != 0)
        goto done;
    size_t begin = sp.begin[o->split], end = sp.end[o->split];
    const int T = o->seq > 0 ? o->seq : d.cfg.seq;
    int max_streams = o->batch > 0 ? o->batch : d.cfg.batch;
    if (end - begin < 2) {
        cn_err("split '%s' of '%s' has %zu tokens: nothing to evaluate",
               data_split_name(o->split), o->data_path, end - begin);
        goto done;
    }
    int B = eval_streams_per_rank(end - begin, T, max_streams, nranks);
    batch_plan p;
    if (batch_plan_init(&p, begin, end, nranks * B, rank * B, B, T, 1,
                        data_split_name(o->split)) != 0) {
        cn_err_context("'%s'", o->data_path);
        goto done;
    }
    if (memplan_check_infer(&d.m.cfg, T, B, 0.0, "eval") != 0)
        goto done;
    model_work w;
    model_state s;
    model_work_init(&w, &d.m, T, B);
    model_state_init(&s, &d.m.cfg, B);
    int32_t *win = cn_xmalloc((size_t)(T + 1) * B * sizeof(int32_t));
    int32_t *scratch = cn_xmalloc((size_t)(T + 1) * sizeof(int32_t));
    eval_result r;
    double t0 = cn_now();
    int erc = eval_plan(&d.m, &w, &s, &p, &src, 0, win, scratch, &r);
    double secs = cn_now() - t0;
    free(win);
    free(scratch);
    model_state_free(&s);
    model_work_free(&w);
    if (erc != 0)
        goto done;
    if (rank == 0) {
        if (o->json) {
            printf("{\"model\":");
            cn_json_string(stdout, o->model_path);
            printf(",\"data\":");
            cn_json_string(stdout, o->data_path);
            printf(",\"split\":\"%s\",\"loss\":%.6f,\"bpc\":%.6f,\"perplexity\":%.6f,"
                   "\"tokens\":%lld,\"seconds\":%.3f}\n",
                   data_split_name(o->split), eval_mean(&r), eval_bpc(&r), eval_perplexity(&r),
                   (long long)r.tokens, secs);
        }
        else
            printf("%s on '%s' (%s split, %lld tokens): loss %.4f nats/char, %.4f bpc, "
                   "perplexity %.3f\n",
                   o->model_path, o->data_path, data_split_name(o->split), (long long)r.tokens,
                   eval_mean(&r), eval_bpc(&r), eval_perplexity(&r));
        fflush(stdout);
    }
    rc = 0;
done:
    data_source_close(&src);
    ckpt_data_free(&d);
    return rc;
}
