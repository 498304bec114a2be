/* The batches of a labelled examples file, as classify and tag read them.
 * See task_batches.h. */
#include "task_batches.h"

#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/data.h"
#include "charnn/dist.h"

int task_batches_init(task *t, task_batches *b, const run_config *cfg, const int *split,
                      int per_step)
{
    const examples_file *ex = &b->ex;
    const size_t n_train = ex->split_end[SPLIT_TRAIN] - ex->split_begin[SPLIT_TRAIN];
    b->G = 0;
    for (int r = 0; r < t->nranks; r++)
        b->G += split ? split[r] : cfg->batch;
    exorder_shard(b->G, t->nranks, split, t->rank, &b->first, &b->rows);
    uint32_t *len = examples_lengths(ex, SPLIT_TRAIN);
    int rc = exorder_init(&b->order, n_train, len, b->G, cfg->bucket_batches, 1, cfg->seed);
    for (size_t i = 0; rc == 0 && i < n_train; i++)
        b->n_truncated += cfg->max_len > 0 && len[i] > (uint32_t)cfg->max_len;
    free(len);
    if (rc != 0)
        return -1;

    b->Bv = cfg->batch;
    t->has_val = ex->split_end[SPLIT_VAL] > ex->split_begin[SPLIT_VAL];
    t->eval_split = SPLIT_VAL;
    t->T = (int)ex->max_len;
    if (cfg->max_len > 0 && cfg->max_len < t->T)
        t->T = cfg->max_len;
    if (t->T < 1)
        t->T = 1;
    t->rows_cap = b->rows > b->Bv ? b->rows : b->Bv;
    const size_t cap = (size_t)t->rows_cap, TC = (size_t)t->T * cap, ny = per_step ? TC : cap;
    b->idx = cn_xmalloc(cap * sizeof *b->idx);
    b->x = cn_xmalloc(TC * sizeof *b->x);
    b->len = cn_xmalloc(cap * sizeof *b->len);
    b->y = cn_xmalloc(ny * sizeof *b->y);
    b->mask = cn_xmalloc(ny * sizeof *b->mask);
    model_state_init(&b->st, &cfg->model, b->rows);
    model_state_init(&b->val_st, &cfg->model, b->Bv);
    return 0;
}

void task_batches_free(task_batches *b)
{
    if (b->ex_open)
        examples_close(&b->ex);
    b->ex_open = 0;
    exorder_free(&b->order);
    exorder_free(&b->eval_order);
    b->eval_built = 0;
    free(b->idx);
    free(b->x);
    free(b->len);
    free(b->y);
    free(b->mask);
    b->idx = NULL;
    b->x = b->len = b->y = NULL;
    b->mask = NULL;
    model_state_free(&b->st);
    model_state_free(&b->val_st);
}

int task_batches_steps(const exorder *o, const size_t *rows, int max_len)
{
    const int T = exorder_batch_max_len(o, rows, max_len);
    return T < 1 ? 1 : T;
}

void task_batches_index(task_batches *b, const size_t *rows, int first, int n, size_t base)
{
    for (int i = 0; i < n; i++) {
        const size_t r = rows[first + i];
        b->idx[i] = base + (r == EXORDER_NONE ? rows[0] : r);
    }
}

batch task_batches_train(task_batches *b, int T)
{
    model_state_reset(&b->st);
    return (batch){
        .T = T,
        .B = b->rows,
        .x = b->x,
        .y = b->y,
        .mask = b->mask,
        .len = b->len,
        .carry = &b->st,
        .first_row = b->first,
        .rows_global = b->G,
    };
}

/* The order evaluate reads split in: built on first use, kept until another
 * split is asked for. */
static int eval_order(task_batches *b, int split, int G, const char *data)
{
    if (b->eval_built && b->eval_split == split)
        return 0;
    exorder_free(&b->eval_order);
    b->eval_built = 0;
    const examples_file *ex = &b->ex;
    const size_t n = ex->split_end[split] - ex->split_begin[split];
    if (n == 0)
        return cn_err("split '%s' of '%s' has no examples", data_split_name(split), data);
    uint32_t *len = examples_lengths(ex, split);
    int rc = exorder_init(&b->eval_order, n, len, G, 1, 0, 0);
    free(len);
    b->eval_built = rc == 0;
    b->eval_split = split;
    return rc;
}

int task_batches_evaluate(task *t, task_batches *b, const model *m, model_work *w,
                          int64_t max_batches, int max_len, const char *data,
                          task_batches_fill_fn fill, task_batches_score_fn score, void *ctx,
                          double *local, int n_local)
{
    const int split = t->eval_split;
    if (eval_order(b, split, t->nranks * b->Bv, data) != 0)
        return -1;
    exorder *order = &b->eval_order;
    uint64_t nb = order->batches_per_epoch;
    if (max_batches > 0 && (uint64_t)max_batches < nb)
        nb = (uint64_t)max_batches;
    const int keep_B = w->B;
    const float *keep_mask = w->mask;
    const int32_t *keep_len = w->len;
    const size_t base = b->ex.split_begin[split];
    memset(local, 0, (size_t)n_local * sizeof *local);
    int rc = 0;
    for (uint64_t i = 0; i < nb && rc == 0; i++) {
        const size_t *rows = exorder_batch(order, 0, i);
        const int T = task_batches_steps(order, rows, max_len);
        rc = fill(ctx, rows, t->rank * b->Bv, b->Bv, base, T);
        if (rc != 0)
            break;
        model_state_reset(&b->val_st);
        w->B = b->Bv;
        w->mask = b->mask;
        w->len = b->len;
        local[0] += model_forward(m, w, &b->val_st, b->x, b->y, T, 0, 0);
        score(ctx, w, T, local + 1);
    }
    w->B = keep_B;
    w->mask = keep_mask;
    w->len = keep_len;
    if (rc != 0)
        dist_abort(1, "%s", cn_errmsg());
    dist_allreduce_sum_f64(local, n_local);
    return 0;
}
