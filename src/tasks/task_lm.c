/* The character language model as a task: S streams over the training split,
 * each a contiguous stretch read chunk by chunk (data.h), the hidden state
 * carried from chunk to chunk, the next character as the target of every
 * position. An epoch is one pass of every stream; the state restarts from
 * zero at each epoch. The step's loss is normalised by T * S; the log reports
 * bits per character and characters per second. With --balance the S streams
 * are split unevenly over the ranks, and moved (with their carried states)
 * under --balance auto. See task.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "charnn/balance.h"
#include "charnn/corpus.h"
#include "charnn/data.h"
#include "charnn/dist.h"
#include "charnn/runtime.h"
#include "charnn/task.h"
#include "charnn/trace.h"

typedef struct {
    run_config cfg;
    data_source src;
    data_splits splits;
    batch_plan plan;     /* training streams of this rank */
    batch_plan val_plan; /* validation streams of this rank */
    balance_mode balance;
    balance_auto bal;    /* --balance auto's estimates */
    int *split;          /* (R) training streams per rank; this rank's is plan.n_streams */
    int stream_cap;      /* the most training streams this rank may hold */
    model_state st;      /* (L, plan.n_streams, H) carried from chunk to chunk */
    model_state val_st;
    int32_t *win, *scratch; /* (T + 1, rows_cap) token windows, (T + 1) */
    /* a resume, until the ranks agree on the carried states (resume_agree) */
    struct {
        int active, found, same_split, old_nranks, old_batch;
        char path[CONFIG_PATH_MAX + 64];
    } resume;
    trace_probe *probe; /* --trace-every, rank 0 */
    /* CHARNN_TEST_SLOWDOWN=r:f (bench/stragglers.sh): rank r sleeps before
     * each training batch f - 1 times what its rows took to compute on the
     * last step, as on a core 1/f as fast, whatever the machine's own load */
    struct {
        double factor, per_row, slept;
    } slow;
} lm_task;

static lm_task *lm(const task *t)
{
    return (lm_task *)t->impl;
}

static int open_data(lm_task *k, run_config *cfg, vocab *voc)
{
    if (corpus_open(&k->src, cfg->data, voc, cfg->vocab_mode, cfg->val_frac, cfg->test_frac,
                    &k->splits) != 0)
        return -1;
    cfg->vocab_mode = voc->mode;
    return 0;
}

/* The training plan for this rank under k->split. */
static int plan_streams(const task *t)
{
    lm_task *k = lm(t);
    const int first = balance_first(k->split, t->rank);
    return batch_plan_init(&k->plan, k->splits.begin[SPLIT_TRAIN], k->splits.end[SPLIT_TRAIN],
                           t->nranks * k->cfg.batch, first, k->split[t->rank], k->cfg.seq, 0,
                           "train");
}

static int lm_open(task *t, run_config *cfg, vocab *voc, int rank, int nranks)
{
    lm_task *k = cn_xcalloc(1, sizeof *k);
    t->impl = k;
    t->rank = rank;
    t->nranks = nranks;
    if (cfg->model.bidirectional)
        return cn_err("--bidirectional does not apply to --task lm: a language model predicts "
                      "the next character and carries its state across chunks, so it cannot "
                      "read ahead (use it with --task classify or tag)");
    if (open_data(k, cfg, voc) != 0)
        return -1;
    cfg->model.vocab = voc->size;
    cfg->model.head = (head_config){.kind = HEAD_LM};
    if (model_config_check(&cfg->model) != 0)
        return -1;
    if (cfg->seq < 1 || cfg->batch < 1)
        return cn_err("--seq and --batch must be at least 1");
    k->cfg = *cfg;

    const int T = cfg->seq, B = cfg->batch, R = nranks;
    double *weights = NULL;
    if (balance_parse(cfg->balance, R, &k->balance, &weights) != 0)
        return -1;
    if (R == 1)
        k->balance = BALANCE_OFF; /* one rank holds every stream */
    k->split = cn_xmalloc((size_t)R * sizeof *k->split);
    k->stream_cap = B;
    if (k->balance == BALANCE_WEIGHTS) {
        balance_split(R, R * B, weights, 1, R * B - (R - 1), k->split);
        for (int r = 0; r < R; r++)
            if (k->split[r] > k->stream_cap)
                k->stream_cap = k->split[r];
    } else {
        for (int r = 0; r < R; r++)
            k->split[r] = B;
        /* auto moves up to half of B more streams onto a rank: enough to
         * make up for a rank at half speed beside equal ones */
        if (k->balance == BALANCE_AUTO) {
            k->stream_cap = B + (B + 1) / 2;
            balance_auto_init(&k->bal, R, cfg->balance_min_seconds);
        }
    }
    free(weights);
    const char *slow = getenv("CHARNN_TEST_SLOWDOWN");
    if (slow && *slow) {
        int slow_rank, used = 0;
        double slow_factor;
        if (sscanf(slow, "%d:%lf%n", &slow_rank, &slow_factor, &used) != 2 || slow[used] ||
            !(slow_factor >= 1.0 && slow_factor <= 100.0))
            return cn_err("CHARNN_TEST_SLOWDOWN '%s': expected RANK:FACTOR with FACTOR in "
                          "[1, 100]",
                          slow);
        if (slow_rank == rank)
            k->slow.factor = slow_factor;
    }
    if (plan_streams(t) != 0)
        return cn_err_context("'%s'", cfg->data);
    size_t nval = k->splits.end[SPLIT_VAL] - k->splits.begin[SPLIT_VAL];
    if (nval > 1) {
        int bv = eval_streams_per_rank(nval, T, B, nranks);
        if (batch_plan_init(&k->val_plan, k->splits.begin[SPLIT_VAL], k->splits.end[SPLIT_VAL],
                            nranks * bv, rank * bv, bv, T, 1, "val") == 0)
            t->has_val = 1;
    }
    if (!t->has_val)
        task_say(t, "warning: the validation split is too small to evaluate; no validation loss\n");

    t->T = T;
    t->rows_cap = k->stream_cap > k->val_plan.n_streams ? k->stream_cap : k->val_plan.n_streams;
    model_state_init(&k->st, &cfg->model, k->plan.n_streams);
    if (t->has_val)
        model_state_init(&k->val_st, &cfg->model, k->val_plan.n_streams);
    k->win = cn_xmalloc((size_t)(T + 1) * t->rows_cap * sizeof(int32_t));
    k->scratch = cn_xmalloc((size_t)(T + 1) * sizeof(int32_t));
    return 0;
}

static void lm_close(task *t)
{
    lm_task *k = lm(t);
    if (!k)
        return;
    trace_probe_close(k->probe);
    free(k->win);
    free(k->scratch);
    free(k->split);
    balance_auto_free(&k->bal);
    if (k->st.h)
        model_state_free(&k->st);
    if (t->has_val)
        model_state_free(&k->val_st);
    data_source_close(&k->src);
    free(k);
    t->impl = NULL;
}

static uint64_t lm_batches_per_epoch(const task *t)
{
    return lm(t)->plan.n_chunks;
}

static int lm_next_batch(task *t, train_progress *prog, batch *out)
{
    lm_task *k = lm(t);
    if (prog->chunk >= k->plan.n_chunks) {
        prog->epoch++;
        prog->chunk = 0;
        model_state_reset(&k->st);
    }
    if (batch_read_window(&k->plan, &k->src, prog->chunk, k->win, k->scratch) != 0)
        return -1;
    prog->chunk++;
    if (k->slow.factor > 1.0 && k->slow.per_row > 0.0) {
        k->slow.slept = (k->slow.factor - 1.0) * k->slow.per_row * k->plan.n_streams;
        const double whole = floor(k->slow.slept);
        nanosleep(&(struct timespec){(time_t)whole, (long)((k->slow.slept - whole) * 1e9)}, NULL);
    }
    /* time-major windows of T + 1 tokens: the targets are the inputs one row on */
    *out = (batch){
        .T = k->cfg.seq,
        .B = k->plan.n_streams,
        .x = k->win,
        .y = k->win + k->plan.n_streams,
        .carry = &k->st,
        .first_row = k->plan.first_stream,
        .rows_global = k->plan.streams_global,
    };
    return 0;
}

static double lm_loss_norm(task *t, const batch *b)
{
    return (double)b->T * lm(t)->plan.streams_global;
}

static void lm_metrics(const task *t, double mean_loss, double seconds, int64_t steps,
                       task_metrics *out)
{
    const lm_task *k = lm(t);
    out->bits = mean_loss / log(2.0);
    out->rate = (double)steps * ((double)k->cfg.seq * k->plan.streams_global) / seconds;
    out->unit = "chars";
}

static int lm_evaluate(task *t, const model *m, model_work *w, int64_t max_batches,
                       eval_result *out)
{
    lm_task *k = lm(t);
    /* the workspace holds T x rows_cap; validation runs T x (B' <= rows_cap) in it */
    const int keep = w->B;
    w->B = k->val_plan.n_streams;
    int rc = eval_plan(m, w, &k->val_st, &k->val_plan, &k->src, max_batches, k->win,
                       k->scratch, out);
    w->B = keep;
    return rc;
}

/* A record: its stream count, the cursors, then h and c as (L, n, H), sized
 * for the most streams this rank may hold. */
static size_t lm_state_bytes(const task *t)
{
    const lm_task *k = lm(t);
    const int cap = k->stream_cap, L = k->cfg.model.layers, H = k->cfg.model.hidden;
    const size_t cap_state = (size_t)L * cap * H;
    return sizeof(int64_t) + (size_t)cap * sizeof(uint64_t) +
           cap_state * sizeof(float) * (k->st.c ? 2 : 1);
}

static void lm_state_pack(const task *t, const train_progress *prog, void *rec)
{
    const lm_task *k = lm(t);
    const int n = k->plan.n_streams, cap = k->stream_cap, L = k->cfg.model.layers,
              H = k->cfg.model.hidden;
    const size_t cap_state = (size_t)L * cap * H, nstate = (size_t)L * n * H;
    char *p = rec;
    const int64_t n64 = n;
    memcpy(p, &n64, sizeof n64);
    p += sizeof n64;
    /* at an epoch's end the next chunk is the first of the next epoch */
    const size_t next_chunk = prog->chunk < k->plan.n_chunks ? prog->chunk : 0;
    for (int b = 0; b < n; b++) {
        uint64_t off = batch_offset(&k->plan, b, next_chunk);
        memcpy(p + (size_t)b * sizeof(uint64_t), &off, sizeof off);
    }
    p += (size_t)cap * sizeof(uint64_t);
    memcpy(p, k->st.h, nstate * sizeof(float));
    if (k->st.c)
        memcpy(p + cap_state * sizeof(float), k->st.c, nstate * sizeof(float));
}

static void lm_state_view(const task *t, void *rec, ckpt_rank *out)
{
    const lm_task *k = lm(t);
    const int cap = k->stream_cap, L = k->cfg.model.layers, H = k->cfg.model.hidden;
    const size_t cap_state = (size_t)L * cap * H;
    char *q = rec;
    int64_t nr;
    memcpy(&nr, q, sizeof nr);
    q += sizeof nr;
    out->batch = (int)nr;
    out->layers = L;
    out->hidden = H;
    out->cursor = (uint64_t *)(void *)q;
    q += (size_t)cap * sizeof(uint64_t);
    out->h = (float *)(void *)q;
    out->c = k->st.c ? (float *)(void *)(q + cap_state * sizeof(float)) : NULL;
}

/* Carried states from a checkpoint, by global stream: exact whenever it holds
 * the same S streams at the same cursors, whatever the ranks and their split.
 * Returns 1 when this rank's streams were all found. */
static int restore_streams(lm_task *k, const ckpt_data *d, const train_progress *prog)
{
    const int L = k->cfg.model.layers, H = k->cfg.model.hidden, n = k->plan.n_streams;
    if (!d->ranks || d->nranks < 1)
        return 0;
    int64_t total = 0;
    for (int q = 0; q < d->nranks; q++) {
        const ckpt_rank *r = &d->ranks[q];
        if (r->layers != L || r->hidden != H || r->batch < 0 || (k->st.c && !r->c))
            return 0;
        total += r->batch;
    }
    if (total != k->plan.streams_global)
        return 0;
    const size_t next_chunk = prog->chunk < k->plan.n_chunks ? prog->chunk : 0;
    for (int b = 0; b < n; b++) {
        int j = k->plan.first_stream + b, q = 0; /* owner rank q, its stream j */
        while (j >= d->ranks[q].batch)
            j -= d->ranks[q++].batch;
        const ckpt_rank *r = &d->ranks[q];
        if (r->cursor[j] != batch_offset(&k->plan, b, next_chunk))
            return 0;
        for (int l = 0; l < L; l++) {
            const size_t src = ((size_t)l * r->batch + j) * H, dst = ((size_t)l * n + b) * H;
            memcpy(k->st.h + dst, r->h + src, (size_t)H * sizeof(float));
            if (k->st.c)
                memcpy(k->st.c + dst, r->c + src, (size_t)H * sizeof(float));
        }
    }
    return 1;
}

static void lm_state_load(task *t, const ckpt_data *d, const train_progress *prog,
                          const char *path)
{
    lm_task *k = lm(t);
    k->resume.active = 1;
    k->resume.found = restore_streams(k, d, prog);
    k->resume.same_split = d->nranks == t->nranks && d->ranks != NULL;
    for (int r = 0; k->resume.same_split && r < t->nranks; r++)
        k->resume.same_split = d->ranks[r].batch == k->split[r];
    k->resume.old_nranks = d->cfg.nranks;
    k->resume.old_batch = d->cfg.batch;
    snprintf(k->resume.path, sizeof k->resume.path, "%s", path);
}

/* The ranks agree whether the checkpoint's carried states were all found; if
 * not, every rank starts its streams from zero and the data position is
 * re-derived from the tokens seen. */
static void lm_resume_agree(task *t, train_progress *prog)
{
    lm_task *k = lm(t);
    if (!k->resume.active)
        return;
    const int found = dist_allreduce_sum_int(k->resume.found) == t->nranks;
    if (found && k->resume.same_split) {
        task_say(t, "resumed from '%s' at step %lld (epoch %lld)\n", k->resume.path,
            (long long)prog->step, (long long)prog->epoch);
    } else if (found) {
        task_say(t, "resumed from '%s' at step %lld (epoch %lld): its %d streams now split over %d "
               "rank%s, carried states kept\n",
            k->resume.path, (long long)prog->step, (long long)prog->epoch,
            k->plan.streams_global, t->nranks, t->nranks == 1 ? "" : "s");
    } else {
        /* another layout of streams: keep the position within the epoch */
        model_state_reset(&k->st);
        uint64_t old_streams = (uint64_t)k->resume.old_nranks * (uint64_t)k->resume.old_batch;
        uint64_t new_streams = (uint64_t)k->plan.streams_global;
        prog->chunk = old_streams ? prog->chunk * old_streams / new_streams : 0;
        task_say(t, "resumed from '%s' at step %lld with %d ranks x %d streams (was %d x %d): "
               "data cursors re-derived from tokens seen (chunk %llu of epoch %lld), "
               "carried states restart from zero\n",
            k->resume.path, (long long)prog->step, t->nranks, k->cfg.batch,
            k->resume.old_nranks, k->resume.old_batch, (unsigned long long)prog->chunk,
            (long long)prog->epoch);
    }
    k->resume.active = 0;
}

/* --balance auto: at the end of each window compare the ranks' smoothed
 * streams per second of compute (waiting for others excluded) and move
 * streams, with their carried states, when the step is predicted to get
 * shorter by more than the estimates' noise explains (balance.h). */
static int lm_rebalance(task *t, double step_seconds, int *rows, double *speed)
{
    lm_task *k = lm(t);
    const int R = t->nranks;
    if (k->slow.factor > 1.0) {
        k->slow.per_row = (step_seconds - k->slow.slept) / k->plan.n_streams;
        k->slow.slept = 0.0;
    }
    if (k->balance != BALANCE_AUTO || !balance_auto_step(&k->bal, step_seconds))
        return -1;
    double *sums = cn_xmalloc(2 * (size_t)R * sizeof *sums);
    balance_auto_window(&k->bal, t->rank, sums);
    dist_allreduce_sum_f64(sums, 2 * (size_t)R);
    int moved = balance_auto_decide(&k->bal, k->plan.streams_global, k->split, 1, k->stream_cap,
                                    sums, rows);
    free(sums);
    memcpy(speed, k->bal.speed, (size_t)R * sizeof *speed);
    if (moved) {
        balance_move_states(&k->st, R, t->rank, k->split, rows);
        memcpy(k->split, rows, (size_t)R * sizeof *rows);
        if (plan_streams(t) != 0)
            dist_abort(1, "%s", cn_errmsg());
    }
    return moved;
}

/* --trace-every: rank 0's probe trace over the first trace_probe_chars tokens
 * of the validation split (the training split when there is none). A fresh
 * run starts both trace files anew; a resumed one appends to them. */
static int lm_trace_open(task *t, const model *m, const vocab *voc, const char *dir,
                         int64_t step)
{
    lm_task *k = lm(t);
    char path[CONFIG_PATH_MAX + 32];
    int split = k->splits.end[SPLIT_VAL] - k->splits.begin[SPLIT_VAL] >= 2 ? SPLIT_VAL
                                                                         : SPLIT_TRAIN;
    size_t n = k->splits.end[split] - k->splits.begin[split];
    if (n > (size_t)k->cfg.trace_probe_chars + 1)
        n = (size_t)k->cfg.trace_probe_chars + 1;
    for (int i = 0; i < 2 && step == 0; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, i ? "trace_probe.h5" : "trace_streams.h5");
        if (unlink(path) != 0 && errno != ENOENT)
            return cn_err("cannot remove '%s': %s", path, strerror(errno));
    }
    snprintf(path, sizeof path, "%s/trace_probe.h5", dir);
    int32_t *tokens = cn_xmalloc(n * sizeof *tokens);
    int rc = k->src.read(&k->src, k->splits.begin[split], n, tokens);
    if (rc == 0)
        rc = trace_probe_open(&k->probe, path, m, voc, tokens, (int64_t)n);
    free(tokens);
    return rc;
}

static int lm_trace_step(task *t, const model *m, const model_work *w, const char *dir,
                         int64_t step)
{
    lm_task *k = lm(t);
    char path[CONFIG_PATH_MAX + 32];
    if (k->probe && trace_probe_append(k->probe, m, step) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/trace_streams.h5", dir);
    return trace_streams_write(path, m, w, k->plan.first_stream, k->plan.streams_global, step);
}

static void lm_print_header(const task *t, int64_t total_steps)
{
    const lm_task *k = lm(t);
    const run_config *c = &k->cfg;
    task_say(t, "data '%s': %zu tokens (train %zu, val %zu, test %zu), %d rank%s x %d streams x %d "
           "steps, %llu chunks per epoch, %lld steps, %d thread%s per rank\n",
        c->data, k->src.n_tokens, k->splits.end[0] - k->splits.begin[0],
        k->splits.end[1] - k->splits.begin[1], k->splits.end[2] - k->splits.begin[2], t->nranks,
        t->nranks == 1 ? "" : "s", c->batch, c->seq, (unsigned long long)k->plan.n_chunks,
        (long long)total_steps, runtime_threads(), runtime_threads() == 1 ? "" : "s");
}

const task_ops task_lm_ops = {
    .name = "lm",
    .open = lm_open,
    .close = lm_close,
    .batches_per_epoch = lm_batches_per_epoch,
    .next_batch = lm_next_batch,
    .loss_norm = lm_loss_norm,
    .metrics = lm_metrics,
    .evaluate = lm_evaluate,
    .state_bytes = lm_state_bytes,
    .state_pack = lm_state_pack,
    .state_view = lm_state_view,
    .state_load = lm_state_load,
    .resume_agree = lm_resume_agree,
    .rebalance = lm_rebalance,
    .trace_open = lm_trace_open,
    .trace_step = lm_trace_step,
    .print_header = lm_print_header,
};
