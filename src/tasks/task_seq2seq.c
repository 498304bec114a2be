/* Translation as a task: pairs (pairs.h) in the order of exorder.h (a seeded
 * permutation per epoch, length buckets, each global batch of R * B pairs
 * split across the ranks), one batch = B pairs on this rank, source x (T, B)
 * with its lengths, target y (T, B) = the target's symbols then EOS under
 * mask 1, EOS padding under mask 0 (the model, seq2seq.h, feeds the decoder
 * BOS, y_0, ...). Every row starts from a zero state. The step's loss is
 * normalised by the target characters (EOS included) of the whole global
 * batch, so R ranks x B rows give the gradients of 1 rank x R*B rows. The
 * log reports bits per target character and target characters per second;
 * validation is the padding-free loss per target character over the val
 * split. The cursor is train_progress (epoch, chunk = next batch): exact
 * resume needs nothing else (no carried state). See task.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/data.h"
#include "charnn/dist.h"
#include "charnn/exorder.h"
#include "charnn/pairs.h"
#include "charnn/runtime.h"
#include "charnn/seq2seq.h"
#include "charnn/task.h"
#include "charnn/translate.h"
#include "task_examples.h"

enum { S2S_BUCKET_BATCHES = 32 };

typedef struct {
    task_examples shared; /* first: the order's checkpoint record and resume */
    run_config cfg;
    pairs_file p;
    vocab tgt;
    exorder order, val_order;
    int B, G, first;      /* rows on this rank, rows of a global batch, this rank's first */
    int32_t *x, *y, *len; /* (T, B), (T, B), (B) */
    float *mask;          /* (T, B) */
    model_state st;       /* zero start states, B rows */
    double norm;          /* target characters of the last global batch */
    double chars_logged;  /* target characters since the last metrics call */
} s2s_task;
_Static_assert(offsetof(s2s_task, shared) == 0, "task_examples.h takes t->impl as its own");

static s2s_task *s2s(const task *t)
{
    return (s2s_task *)t->impl;
}

/* Steps a pair needs: its source, or its target and EOS. */
static uint32_t pair_steps(const pairs_file *p, size_t i)
{
    int a = pairs_src_len(p, i), b = pairs_tgt_len(p, i) + 1;
    return (uint32_t)(a > b ? a : b);
}

static int make_order(s2s_task *k, exorder *o, int split, int shuffle)
{
    const size_t begin = k->p.split_begin[split], n = k->p.split_end[split] - begin;
    uint32_t *lengths = cn_xmalloc((n ? n : 1) * sizeof *lengths);
    for (size_t i = 0; i < n; i++)
        lengths[i] = pair_steps(&k->p, begin + i);
    int rc = exorder_init(o, n, lengths, k->G, S2S_BUCKET_BATCHES, shuffle, k->cfg.seed);
    free(lengths);
    return rc;
}

static int s2s_open(task *t, run_config *cfg, vocab *voc, int rank, int nranks)
{
    s2s_task *k = task_examples_alloc(t, sizeof *k, rank, nranks);
    vocab src = {0};
    if (pairs_open(&k->p, cfg->data, &src, &k->tgt) != 0)
        return -1;
    if (voc->size > 0) { /* resuming: the checkpoint's vocabularies */
        int same = vocab_equal(voc, &src);
        vocab_free(&src);
        if (!same)
            return cn_err("'%s' has another source vocabulary than the checkpoint", cfg->data);
        if (cfg->model.head.classes != k->tgt.size + SEQ2SEQ_SPECIALS)
            return cn_err("'%s' has another target vocabulary than the checkpoint", cfg->data);
    } else {
        *voc = src;
    }
    cfg->vocab_mode = VOCAB_CODEPOINTS;
    cfg->model.vocab = voc->size;
    cfg->model.head.kind = HEAD_SEQ2SEQ;
    cfg->model.head.classes = k->tgt.size + SEQ2SEQ_SPECIALS;
    if (model_config_check(&cfg->model) != 0)
        return -1;
    if (cfg->batch < 1)
        return cn_err("--batch must be at least 1");
    k->cfg = *cfg;
    k->B = cfg->batch;
    k->G = nranks * cfg->batch;
    k->first = rank * cfg->batch;
    if (k->p.split_end[SPLIT_TRAIN] == k->p.split_begin[SPLIT_TRAIN])
        return cn_err("'%s' has no training pairs", cfg->data);
    if (make_order(k, &k->order, SPLIT_TRAIN, 1) != 0)
        return -1;
    task_examples_init(&k->shared, &k->order, k->G, TASK_RECORD_EMPTY, &cfg->model);
    if (k->p.split_end[SPLIT_VAL] > k->p.split_begin[SPLIT_VAL]) {
        if (make_order(k, &k->val_order, SPLIT_VAL, 0) != 0)
            return -1;
        t->has_val = 1;
    } else {
        task_say(t, "warning: '%s' has no validation pairs; no validation loss\n", cfg->data);
    }
    seq2seq_target_labels(&k->tgt, &t->labels, &t->n_labels);
    int T = k->p.stats.max_src > k->p.stats.max_tgt + 1 ? k->p.stats.max_src
                                                         : k->p.stats.max_tgt + 1;
    t->T = T;
    t->rows_cap = k->B;
    const size_t N = (size_t)T * k->B;
    k->x = cn_xcalloc(N, sizeof *k->x);
    k->y = cn_xcalloc(N, sizeof *k->y);
    k->mask = cn_xcalloc(N, sizeof *k->mask);
    k->len = cn_xcalloc((size_t)k->B, sizeof *k->len);
    model_state_init(&k->st, &cfg->model, k->B);
    return 0;
}

static void s2s_close(task *t)
{
    s2s_task *k = s2s(t);
    if (!k)
        return;
    exorder_free(&k->order);
    exorder_free(&k->val_order);
    pairs_close(&k->p);
    vocab_free(&k->tgt);
    free(k->x);
    free(k->y);
    free(k->mask);
    free(k->len);
    model_state_free(&k->st);
    task_examples_free(t);
}

/* This rank's rows of the global batch `rows` (G example indices relative to
 * split's start) into x, y, mask, len; returns the batch's steps and sets
 * *chars to the target characters of the whole global batch. */
static int fill(s2s_task *k, int split, const size_t *rows, double *chars, batch *out)
{
    const size_t base = k->p.split_begin[split];
    const int B = k->B;
    int T = 1;
    *chars = 0.0;
    for (int g = 0; g < k->G; g++)
        if (rows[g] != EXORDER_NONE)
            *chars += pairs_tgt_len(&k->p, base + rows[g]) + 1;
    for (int b = 0; b < B; b++) {
        size_t r = rows[k->first + b];
        if (r != EXORDER_NONE && (int)pair_steps(&k->p, base + r) > T)
            T = (int)pair_steps(&k->p, base + r);
    }
    for (int b = 0; b < B; b++) {
        size_t r = rows[k->first + b];
        const int32_t *s = NULL, *d = NULL;
        int ls = 1, lt = -1; /* a padding row: one source step, no target */
        if (r != EXORDER_NONE) {
            s = k->p.src + k->p.src_off[base + r];
            d = k->p.tgt + k->p.tgt_off[base + r];
            ls = pairs_src_len(&k->p, base + r);
            lt = pairs_tgt_len(&k->p, base + r);
        }
        k->len[b] = ls;
        for (int t = 0; t < T; t++) {
            const size_t at = (size_t)t * B + b;
            k->x[at] = s && t < ls ? s[t] : 0;
            k->y[at] = d && t < lt ? d[t] : SEQ2SEQ_EOS;
            k->mask[at] = t <= lt ? 1.0f : 0.0f;
        }
    }
    k->st.batch = B;
    model_state_reset(&k->st);
    *out = (batch){
        .T = T,
        .B = B,
        .x = k->x,
        .y = k->y,
        .mask = k->mask,
        .len = k->len,
        .carry = &k->st,
        .first_row = k->first,
        .rows_global = k->G,
    };
    return T;
}

static int s2s_next_batch(task *t, train_progress *prog, batch *out)
{
    s2s_task *k = s2s(t);
    const size_t *rows = task_examples_next(t, prog);
    fill(k, SPLIT_TRAIN, rows, &k->norm, out);
    k->chars_logged += k->norm;
    return 0;
}

static double s2s_loss_norm(task *t, const batch *b)
{
    (void)b;
    return s2s(t)->norm > 0 ? s2s(t)->norm : 1.0;
}

static void s2s_metrics(const task *t, double mean_loss, double seconds, int64_t steps,
                        task_metrics *out)
{
    s2s_task *k = s2s(t);
    (void)steps;
    out->bits = mean_loss / log(2.0);
    out->rate = seconds > 0 ? k->chars_logged / seconds : 0.0;
    out->unit = "tgt_chars";
    k->chars_logged = 0.0;
}

static int s2s_evaluate(task *t, const model *m, model_work *w, int64_t max_batches,
                        eval_result *out)
{
    s2s_task *k = s2s(t);
    const int keep = w->B;
    double sums[2] = {0.0, 0.0};
    uint64_t nb = k->val_order.batches_per_epoch;
    if (max_batches > 0 && (uint64_t)max_batches < nb)
        nb = (uint64_t)max_batches;
    for (uint64_t i = 0; i < nb; i++) {
        batch b;
        double chars;
        const size_t *rows = exorder_batch(&k->val_order, 0, i);
        fill(k, SPLIT_VAL, rows, &chars, &b);
        w->B = b.B;
        w->len = b.len;
        w->mask = b.mask;
        sums[0] += model_forward(m, w, b.carry, b.x, b.y, b.T, 0, 0);
        for (int j = 0; j < b.T * b.B; j++)
            sums[1] += b.mask[j];
    }
    w->B = keep;
    dist_allreduce_sum_f64(sums, 2);
    out->loss_sum = sums[0];
    out->tokens = (int64_t)llround(sums[1]);
    return 0;
}

/* The same global batch size continues exactly; another one keeps the
 * position within the epoch (the batch index scaled by the sizes). */
static void s2s_resume_agree(task *t, train_progress *prog)
{
    s2s_task *k = s2s(t);
    int64_t old_g;
    const char *path = task_examples_resume(t, prog, &old_g);
    if (!path)
        return;
    if (old_g == k->G)
        task_say(t, "resumed from '%s' at step %lld (epoch %lld, batch %llu)\n", path,
            (long long)prog->step, (long long)prog->epoch, (unsigned long long)prog->chunk);
    else
        task_say(t, "resumed from '%s' at step %lld with %d pairs per step (was %lld): the epoch "
               "continues at batch %llu in a new order\n",
            path, (long long)prog->step, k->G, (long long)old_g, (unsigned long long)prog->chunk);
}

/* --trace-every (rank 0): the teacher-forced trace of the first 16 validation
 * pairs (training pairs without a val split) at this step, one file a step:
 * trace_seq2seq-<step>.h5 in the run directory (translate.h's layout). */
static int s2s_trace_step(task *t, const model *m, const model_work *w, const char *dir,
                          int64_t step)
{
    s2s_task *k = s2s(t);
    (void)w;
    if (t->rank != 0)
        return 0;
    const int split = t->has_val ? SPLIT_VAL : SPLIT_TRAIN;
    const size_t b = k->p.split_begin[split];
    const size_t e = k->p.split_end[split] - b > 16 ? b + 16 : k->p.split_end[split];
    char path[CONFIG_PATH_MAX + 64], what[CONFIG_PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/trace_seq2seq-%08lld.h5", dir, (long long)step);
    snprintf(what, sizeof what, "training step %lld, %s pairs %zu..%zu of %s", (long long)step,
             split == SPLIT_VAL ? "val" : "train", b, e, k->cfg.data);
    return translate_trace_write(m, &k->p, b, e, 16, path, what);
}

static void s2s_print_header(const task *t, int64_t total_steps)
{
    const s2s_task *k = s2s(t);
    task_say(t, "pairs '%s': train %zu, val %zu, test %zu; source vocab %d, target vocab %d + BOS/EOS; "
           "attention %s; %d rank%s x %d pairs, up to %d steps, %llu batches per epoch, %lld "
           "steps, %d thread%s per rank\n",
        k->cfg.data, k->p.stats.n_split[0], k->p.stats.n_split[1], k->p.stats.n_split[2],
        k->cfg.model.vocab, k->tgt.size, seq2seq_attention_name(k->cfg.model.head.attention),
        t->nranks, t->nranks == 1 ? "" : "s", k->B, t->T,
        (unsigned long long)k->order.batches_per_epoch, (long long)total_steps,
        runtime_threads(), runtime_threads() == 1 ? "" : "s");
}

const task_ops task_seq2seq_ops = {
    .name = "seq2seq",
    .open = s2s_open,
    .close = s2s_close,
    .batches_per_epoch = task_examples_batches_per_epoch,
    .next_batch = s2s_next_batch,
    .loss_norm = s2s_loss_norm,
    .metrics = s2s_metrics,
    .evaluate = s2s_evaluate,
    .state_bytes = task_examples_state_bytes,
    .state_pack = task_examples_state_pack,
    .state_view = task_examples_state_view,
    .state_load = task_examples_state_load,
    .resume_agree = s2s_resume_agree,
    .trace_step = s2s_trace_step,
    .print_header = s2s_print_header,
};
