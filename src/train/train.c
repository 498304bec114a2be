/* The training loop. One step = one chunk of T steps on every stream:
 * forward, backward (gradient buckets all-reduced as they finish), global
 * norm, non-finite check, clipping, optimizer update. Around it: validation,
 * logging, checkpoints, signals and resume. See train.h. */
#include "charnn/train.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "charnn/balance.h"
#include "charnn/ckpt.h"
#include "charnn/corpus.h"
#include "charnn/data.h"
#include "charnn/dist.h"
#include "charnn/evaluate.h"
#include "charnn/kernels.h"
#include "charnn/memplan.h"
#include "charnn/model.h"
#include "charnn/optim.h"
#include "charnn/runtime.h"
#include "charnn/trace.h"

typedef struct {
    run_config cfg;
    int rank, nranks;
    vocab voc;
    data_source src;
    data_splits splits;
    batch_plan plan;     /* training streams of this rank */
    balance_mode balance;
    int *split;          /* (R) training streams per rank; this rank's is plan.n_streams */
    int stream_cap;      /* the most streams this rank may hold: the buffers' size */
    double bal_compute;  /* auto balance: compute seconds and steps since the last check */
    int bal_steps;
    /* a resume, until the ranks agree on the carried states (finish_resume) */
    struct {
        int active, found, same_split, old_nranks, old_batch;
        char path[CONFIG_PATH_MAX + 64];
    } resume;
    batch_plan val_plan; /* validation streams of this rank */
    int has_val;
    model m;
    optim opt;
    uint8_t *decay_mask;
    model_state st, val_st;
    model_work w; /* also evaluates: validation uses at most B streams */
    int32_t *x, *y, *scratch;
    train_progress prog;
    cn_rng rng;
    int64_t total_steps;
    FILE *metrics;
    int bad_streak;
    trace_probe *probe; /* --trace-every, rank 0 */
    /* timing of the current log interval */
    double t_compute, t_comm, t_other;
    int blocking;
} trainer;

static volatile sig_atomic_t train_stop_signal = 0;

static void on_stop_signal(int sig)
{
    if (sig == SIGINT && train_stop_signal == SIGINT) {
        static const char msg[] = "\ncharnn: second interrupt, exiting now\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(130);
    }
    train_stop_signal = sig;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* rank 0 prints */
static void say(const trainer *t, const char *fmt, ...) CN_PRINTF(2, 3);
static void say(const trainer *t, const char *fmt, ...)
{
    if (t->rank != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void format_duration(char *out, size_t n, double s)
{
    if (!isfinite(s) || s < 0)
        snprintf(out, n, "?");
    else if (s < 60)
        snprintf(out, n, "%.0fs", s);
    else if (s < 3600)
        snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(out, n, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
}

/* mkdir -p */
static int ensure_dir(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) == 0)
        return S_ISDIR(sb.st_mode) ? 0 : cn_err("--out '%s' exists and is not a directory", dir);
    char path[CONFIG_PATH_MAX];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return cn_err("cannot create --out directory '%s': %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return cn_err("cannot create --out directory '%s': %s", dir, strerror(errno));
    return 0;
}

/* Every rank must hold the same parameters: compare a hash of the slab with
 * rank 0's and end the job on a mismatch rather than train diverging copies. */
static void verify_same_parameters(const trainer *t, const char *when)
{
    uint64_t mine[2] = {(uint64_t)t->m.n_params, cn_hash_bytes(t->m.params,
                                                                t->m.n_params * sizeof(float))};
    uint64_t root[2] = {mine[0], mine[1]};
    dist_bcast(root, sizeof root, 0);
    if (root[0] != mine[0] || root[1] != mine[1])
        dist_abort(1, "parameters differ from rank 0's %s (%llu parameters, checksum %016llx; "
                      "rank 0 has %llu, %016llx): were the ranks started with the same flags "
                      "and data?",
                   when, (unsigned long long)mine[0], (unsigned long long)mine[1],
                   (unsigned long long)root[0], (unsigned long long)root[1]);
}

/* Collect every rank's stream state on rank 0 and write one checkpoint. Each
 * rank sends a record sized for stream_cap streams: rng, its stream count, the
 * cursors, then h and c as (L, n, H). */
static void save_checkpoint(trainer *t, const char *path)
{
    verify_same_parameters(t, "at a checkpoint");
    const int n = t->plan.n_streams, cap = t->stream_cap, L = t->m.cfg.layers,
              H = t->m.cfg.hidden;
    const int has_c = t->st.c != NULL;
    const size_t cap_state = (size_t)L * cap * H, nstate = (size_t)L * n * H;
    const size_t head = sizeof(cn_rng) + sizeof(int64_t);
    const size_t bytes = head + (size_t)cap * sizeof(uint64_t) +
                         cap_state * sizeof(float) * (has_c ? 2 : 1);
    char *mine = cn_xcalloc(1, bytes);
    char *p = mine;
    memcpy(p, &t->rng, sizeof(cn_rng));
    const int64_t n64 = n;
    memcpy(p + sizeof(cn_rng), &n64, sizeof n64);
    p += head;
    /* at an epoch's end the next chunk is the first of the next epoch */
    const size_t next_chunk = t->prog.chunk < t->plan.n_chunks ? t->prog.chunk : 0;
    for (int b = 0; b < n; b++) {
        uint64_t off = batch_offset(&t->plan, b, next_chunk);
        memcpy(p + (size_t)b * sizeof(uint64_t), &off, sizeof off);
    }
    p += (size_t)cap * sizeof(uint64_t);
    memcpy(p, t->st.h, nstate * sizeof(float));
    if (has_c)
        memcpy(p + cap_state * sizeof(float), t->st.c, nstate * sizeof(float));
    char *all = t->rank == 0 ? cn_xmalloc(bytes * (size_t)t->nranks) : NULL;
    dist_gather(mine, bytes, all, 0);
    int rc = 0;
    if (t->rank == 0) {
        /* the file is built in memory first; let it take the activations' pages */
        model_work_release(&t->w);
        ckpt_rank *ranks = cn_xcalloc((size_t)t->nranks, sizeof *ranks);
        for (int r = 0; r < t->nranks; r++) {
            char *q = all + bytes * (size_t)r;
            int64_t nr;
            memcpy(&ranks[r].rng, q, sizeof(cn_rng));
            memcpy(&nr, q + sizeof(cn_rng), sizeof nr);
            q += head;
            ranks[r].batch = (int)nr;
            ranks[r].layers = L;
            ranks[r].hidden = H;
            ranks[r].cursor = (uint64_t *)(void *)q;
            q += (size_t)cap * sizeof(uint64_t);
            ranks[r].h = (float *)(void *)q;
            ranks[r].c = has_c ? (float *)(void *)(q + cap_state * sizeof(float)) : NULL;
        }
        rc = ckpt_write_atomic(path, &t->cfg, &t->voc, &t->m, &t->opt, &t->prog, t->nranks,
                               ranks);
        free(ranks);
    }
    free(all);
    free(mine);
    if (rc != 0)
        dist_abort(1, "cannot write checkpoint: %s", cn_errmsg());
}

static void save_step_checkpoint(trainer *t)
{
    char path[CONFIG_PATH_MAX + 32];
    ckpt_step_path(path, sizeof path, t->cfg.out, t->prog.step);
    save_checkpoint(t, path);
    if (t->rank == 0) {
        if (ckpt_update_latest(t->cfg.out, path) != 0 || ckpt_prune(t->cfg.out, t->cfg.keep_last) != 0)
            dist_abort(1, "%s", cn_errmsg());
    }
    say(t, "checkpoint %s\n", path);
}

static void metrics_write(trainer *t, const char *fmt, ...) CN_PRINTF(2, 3);
static void metrics_write(trainer *t, const char *fmt, ...)
{
    if (!t->metrics)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(t->metrics, fmt, ap);
    va_end(ap);
    fputc('\n', t->metrics);
    fflush(t->metrics);
}

static double validate(trainer *t)
{
    eval_result r;
    if (!t->has_val)
        return NAN;
    /* the training workspace holds T x B; validation runs T x (B' <= B) in it */
    const int train_batch = t->w.B;
    t->w.B = t->val_plan.n_streams;
    int rc = eval_plan(&t->m, &t->w, &t->val_st, &t->val_plan, &t->src, t->cfg.eval_chunks, t->x,
                       t->y, t->scratch, &r);
    t->w.B = train_batch;
    if (rc != 0)
        dist_abort(1, "%s", cn_errmsg());
    double loss = eval_mean(&r);
    t->prog.last_val = loss;
    metrics_write(t, "{\"type\":\"val\",\"step\":%lld,\"val_loss\":%.6f,\"val_bpc\":%.6f,"
                     "\"val_ppl\":%.4f,\"tokens\":%lld}",
                  (long long)t->prog.step, loss, eval_bpc(&r), eval_perplexity(&r),
                  (long long)r.tokens);
    if (loss < t->prog.best_val) {
        t->prog.best_val = loss;
        char path[CONFIG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/best.h5", t->cfg.out);
        save_checkpoint(t, path);
    }
    return loss;
}

static void on_bucket_done(void *ctx, int bucket)
{
    trainer *t = ctx;
    dist_iallreduce_sum_f32(t->m.grads + t->m.bucket_offset[bucket], t->m.bucket_size[bucket]);
}

static void on_backward_progress(void *ctx)
{
    (void)ctx;
    dist_progress();
}

/* One training step; returns the global mean loss (NaN if the step was skipped). */
static double train_step(trainer *t, double *grad_norm, float *lr_out)
{
    const int T = t->cfg.seq;
    double t0 = cn_now();
    if (batch_fill(&t->plan, &t->src, t->prog.chunk, t->x, t->y, t->scratch) != 0)
        dist_abort(1, "%s", cn_errmsg());
    uint64_t key = cn_rng_next(&t->rng);
    double local_loss = model_forward(&t->m, &t->w, &t->st, t->x, t->y, T, 1, key);
    model_zero_grads(&t->m);
    const double global_tokens = (double)T * t->plan.streams_global;
    const int overlap = !t->blocking && t->nranks > 1;
    /* the buckets' all-reduces run during the rest of backward, moved on by
     * progress calls between the cells' steps */
    t->w.progress = overlap ? on_backward_progress : NULL;
    model_backward(&t->m, &t->w, t->x, t->y, (float)(1.0 / global_tokens),
                   overlap ? on_bucket_done : NULL, t);
    double t1 = cn_now();
    double waited;
    if (t->blocking) {
        dist_allreduce_sum_f32(t->m.grads, t->m.n_params);
        waited = cn_now() - t1;
    } else {
        waited = dist_wait_all();
    }
    double t2 = cn_now();
    dist_allreduce_sum_f64(&local_loss, 1);
    double loss = local_loss / global_tokens;
    double norm = sqrt(kern_sumsq(t->m.grads, t->m.n_params));
    *grad_norm = norm;
    float lr = sched_lr(&t->cfg.sched, t->prog.step, t->prog.epoch);
    *lr_out = lr;
    int ok = isfinite(loss) && isfinite(norm);
    if (ok) {
        t->bad_streak = 0;
        if (t->cfg.clip > 0.0f && norm > t->cfg.clip)
            kern_scale(t->m.grads, t->m.n_params, (float)(t->cfg.clip / norm));
        optim_step(&t->opt, t->m.params, t->m.grads, lr, t->decay_mask);
    } else {
        t->bad_streak++;
        t->prog.skipped++;
        /* the carried state may hold the non-finite values: start the streams afresh */
        model_state_reset(&t->st);
    }
    t->prog.step++;
    t->prog.chunk++;
    t->prog.tokens_seen += (int64_t)global_tokens;
    double t3 = cn_now();
    t->t_compute += (t1 - t0) + (t3 - t2);
    t->bal_compute += (t1 - t0) + (t3 - t2);
    t->bal_steps++;
    t->t_comm += waited + (t2 - t1 - waited);
    return ok ? loss : NAN;
}

/* The training plan for this rank under t->split. */
static int plan_streams(trainer *t)
{
    const int first = balance_first(t->split, t->rank);
    return batch_plan_init(&t->plan, t->splits.begin[SPLIT_TRAIN], t->splits.end[SPLIT_TRAIN],
                           t->nranks * t->cfg.batch, first, t->split[t->rank], t->cfg.seq, 0,
                           "train");
}

/* --balance auto, every BALANCE_EVERY steps: compare the ranks' streams per
 * second of compute (waiting for others excluded) and move streams, with their
 * carried states, when the step is predicted to get shorter. Collective. */
static void rebalance(trainer *t)
{
    const int R = t->nranks;
    /* speeds of every rank, then their measured seconds */
    double *speed = cn_xcalloc(2 * (size_t)R, sizeof *speed);
    if (t->bal_compute > 0.0)
        speed[t->rank] = (double)t->plan.n_streams * t->bal_steps / t->bal_compute;
    speed[R + t->rank] = t->bal_compute;
    dist_allreduce_sum_f64(speed, 2 * (size_t)R);
    for (int r = 0; r < R; r++)
        if (speed[R + r] < t->cfg.balance_min_seconds) { /* too short to judge: measure on */
            free(speed);
            return;
        }
    t->bal_compute = 0.0;
    t->bal_steps = 0;
    int *next = cn_xmalloc((size_t)R * sizeof *next);
    if (balance_choose(R, t->plan.streams_global, speed, t->split, 1, t->stream_cap,
                       BALANCE_MIN_GAIN, next)) {
        balance_move_states(&t->st, R, t->rank, t->split, next);
        memcpy(t->split, next, (size_t)R * sizeof *next);
        if (plan_streams(t) != 0)
            dist_abort(1, "%s", cn_errmsg());
        t->w.B = t->plan.n_streams;
        if (t->rank == 0 && t->metrics) {
            fprintf(t->metrics, "{\"type\":\"balance\",\"step\":%lld,\"streams\":[",
                    (long long)t->prog.step);
            for (int r = 0; r < R; r++)
                fprintf(t->metrics, "%s%d", r ? "," : "", next[r]);
            fprintf(t->metrics, "],\"streams_per_s\":[");
            for (int r = 0; r < R; r++)
                fprintf(t->metrics, "%s%.1f", r ? "," : "", speed[r]);
            fprintf(t->metrics, "]}\n");
            fflush(t->metrics);
        }
        if (t->cfg.timing) {
            say(t, "balance at step %lld: streams per rank", (long long)t->prog.step);
            for (int r = 0; r < R; r++)
                say(t, " %d", next[r]);
            say(t, "\n");
        }
    }
    free(next);
    free(speed);
}

/* Carried states from a checkpoint, by global stream: exact whenever it holds
 * the same S streams at the same cursors, whatever the ranks and their split.
 * Returns 1 when this rank's streams were all found; the ranks then agree in
 * agree_on_streams (set-up must stay free of collectives). */
static int restore_streams(trainer *t, const ckpt_data *d)
{
    const int L = t->m.cfg.layers, H = t->m.cfg.hidden, n = t->plan.n_streams;
    if (!d->ranks || d->nranks < 1)
        return 0;
    int64_t total = 0;
    for (int q = 0; q < d->nranks; q++) {
        const ckpt_rank *k = &d->ranks[q];
        if (k->layers != L || k->hidden != H || k->batch < 0 || (t->st.c && !k->c))
            return 0;
        total += k->batch;
    }
    if (total != t->plan.streams_global)
        return 0;
    const size_t next_chunk = t->prog.chunk < t->plan.n_chunks ? t->prog.chunk : 0;
    for (int b = 0; b < n; b++) {
        int j = t->plan.first_stream + b, q = 0; /* owner rank q, its stream j */
        while (j >= d->ranks[q].batch)
            j -= d->ranks[q++].batch;
        const ckpt_rank *k = &d->ranks[q];
        if (k->cursor[j] != batch_offset(&t->plan, b, next_chunk))
            return 0;
        for (int l = 0; l < L; l++) {
            const size_t src = ((size_t)l * k->batch + j) * H, dst = ((size_t)l * n + b) * H;
            memcpy(t->st.h + dst, k->h + src, (size_t)H * sizeof(float));
            if (t->st.c)
                memcpy(t->st.c + dst, k->c + src, (size_t)H * sizeof(float));
        }
    }
    return 1;
}

/* --trace-every: rank 0's probe trace over the first trace_probe_chars tokens
 * of the validation split (the training split when there is none). A fresh
 * run starts both trace files anew; a resumed one appends to them. */
static int open_probe_trace(trainer *t)
{
    char path[CONFIG_PATH_MAX + 32];
    int split = t->splits.end[SPLIT_VAL] - t->splits.begin[SPLIT_VAL] >= 2 ? SPLIT_VAL
                                                                         : SPLIT_TRAIN;
    size_t n = t->splits.end[split] - t->splits.begin[split];
    if (n > (size_t)t->cfg.trace_probe_chars + 1)
        n = (size_t)t->cfg.trace_probe_chars + 1;
    for (int i = 0; i < 2 && t->prog.step == 0; i++) {
        snprintf(path, sizeof path, "%s/%s", t->cfg.out,
                 i ? "trace_probe.h5" : "trace_streams.h5");
        if (unlink(path) != 0 && errno != ENOENT)
            return cn_err("cannot remove '%s': %s", path, strerror(errno));
    }
    snprintf(path, sizeof path, "%s/trace_probe.h5", t->cfg.out);
    int32_t *tokens = cn_xmalloc(n * sizeof *tokens);
    int rc = t->src.read(&t->src, t->splits.begin[split], n, tokens);
    if (rc == 0)
        rc = trace_probe_open(&t->probe, path, &t->m, &t->voc, tokens, (int64_t)n);
    free(tokens);
    return rc;
}

/* --trace-every, right after a step while t->w still holds its forward. */
static void trace_training_step(trainer *t)
{
    char path[CONFIG_PATH_MAX + 32];
    if (t->probe && trace_probe_append(t->probe, &t->m, t->prog.step) != 0)
        dist_abort(1, "%s", cn_errmsg());
    snprintf(path, sizeof path, "%s/trace_streams.h5", t->cfg.out);
    if (trace_streams_write(path, &t->m, &t->w, t->plan.first_stream, t->plan.streams_global,
                            t->prog.step) != 0)
        dist_abort(1, "%s", cn_errmsg());
}

static int open_data(trainer *t)
{
    if (corpus_is_prepared(t->cfg.data)) {
        /* a prepared corpus carries its own vocabulary and splits */
        if (data_source_open_prepared(&t->src, t->cfg.data, &t->voc, &t->splits) != 0)
            return -1;
        t->cfg.vocab_mode = t->voc.mode;
        return 0;
    }
    if (data_source_open_text(&t->src, t->cfg.data, &t->voc, t->cfg.vocab_mode) != 0)
        return -1;
    if (data_splits_init(&t->splits, t->src.n_tokens, t->cfg.val_frac, t->cfg.test_frac) != 0)
        return -1;
    return 0;
}

static int check_resume_compatible(const trainer *t, const ckpt_data *d, const char *path)
{
    const run_config *c = &t->cfg;
    const model_config *a = &d->cfg.model;
    if ((c->given & CONFIG_GIVEN_CELL) && c->model.cell != a->cell)
        return cn_err("checkpoint '%s' has cell %s, this run asks for --cell %s", path,
                      cell_name(a->cell), cell_name(c->model.cell));
    if ((c->given & CONFIG_GIVEN_LAYERS) && c->model.layers != a->layers)
        return cn_err("checkpoint '%s' has %d layers, this run asks for --layers %d", path,
                      a->layers, c->model.layers);
    if ((c->given & CONFIG_GIVEN_HIDDEN) && c->model.hidden != a->hidden)
        return cn_err("checkpoint '%s' has hidden size %d, this run asks for --hidden %d", path,
                      a->hidden, c->model.hidden);
    if ((c->given & CONFIG_GIVEN_EMBED) && c->model.embed != a->embed)
        return cn_err("checkpoint '%s' has embedding size %d, this run asks for --embed %d",
                      path, a->embed, c->model.embed);
    if ((c->given & CONFIG_GIVEN_SEQ) && c->seq != d->cfg.seq)
        return cn_err("checkpoint '%s' was trained with --seq %d, this run asks for --seq %d",
                      path, d->cfg.seq, c->seq);
    if ((c->given & CONFIG_GIVEN_OPTIM) && c->optim.kind != d->cfg.optim.kind)
        return cn_err("checkpoint '%s' has optimizer %s, this run asks for --optim %s", path,
                      optim_name(d->cfg.optim.kind), optim_name(c->optim.kind));
    if ((c->given & CONFIG_GIVEN_BYTES) && c->vocab_mode != d->voc.mode)
        return cn_err("checkpoint '%s' has a %s vocabulary, this run asks for %s", path,
                      d->voc.mode == VOCAB_BYTES ? "byte" : "code-point",
                      c->vocab_mode == VOCAB_BYTES ? "--bytes" : "code points");
    if (!d->has_opt)
        return cn_err("checkpoint '%s' holds no optimizer state and cannot be resumed", path);
    return 0;
}

/* Set up a fresh or resumed trainer; returns 0, or -1 with a message (every
 * rank sees the same files, so every rank fails alike). */
static int trainer_setup(trainer *t, const run_config *cfg)
{
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    t->rank = dist_rank();
    t->nranks = dist_size();
    t->cfg.nranks = t->nranks;
    t->blocking = cfg->allreduce_blocking;
    t->prog.best_val = INFINITY;
    t->prog.last_val = NAN;
    t->prog.last_loss = NAN;

    char resume_path[CONFIG_PATH_MAX + 64] = "";
    if (strcmp(cfg->resume, "auto") == 0) {
        if (ckpt_find_resumable(cfg->out, resume_path, sizeof resume_path) != 0)
            return -1;
        if (!resume_path[0])
            say(t, "no checkpoint in '%s' to resume from: starting fresh\n", cfg->out);
    } else if (cfg->resume[0]) {
        snprintf(resume_path, sizeof resume_path, "%s", cfg->resume);
    }

    ckpt_data d;
    int resumed = 0;
    memset(&d, 0, sizeof d);
    if (resume_path[0]) {
        if (ckpt_verify(resume_path, NULL) != 0 || ckpt_read(resume_path, &d) != 0)
            return -1;
        if (check_resume_compatible(t, &d, resume_path) != 0) {
            ckpt_data_free(&d);
            return -1;
        }
        /* the checkpoint decides the model and the data encoding */
        t->cfg.model = d.cfg.model;
        t->cfg.seq = d.cfg.seq;
        t->cfg.vocab_mode = d.voc.mode;
        t->cfg.optim.kind = d.cfg.optim.kind;
        if (vocab_from_symbols(&t->voc, d.voc.mode, d.voc.symbols, d.voc.size) != 0) {
            ckpt_data_free(&d);
            return -1;
        }
        resumed = 1;
    }

    if (open_data(t) != 0) {
        if (resumed)
            ckpt_data_free(&d);
        return -1;
    }
    t->cfg.model.vocab = t->voc.size;
    if (model_config_check(&t->cfg.model) != 0)
        return -1;
    if (t->cfg.seq < 1 || t->cfg.batch < 1)
        return cn_err("--seq and --batch must be at least 1");

    const int T = t->cfg.seq, B = t->cfg.batch, R = t->nranks;
    double *weights = NULL;
    if (balance_parse(t->cfg.balance, R, &t->balance, &weights) != 0)
        return -1;
    if (R == 1)
        t->balance = BALANCE_OFF; /* one rank holds every stream */
    t->split = cn_xmalloc((size_t)R * sizeof *t->split);
    t->stream_cap = B;
    if (t->balance == BALANCE_WEIGHTS) {
        balance_split(R, R * B, weights, 1, R * B - (R - 1), t->split);
        for (int r = 0; r < R; r++)
            if (t->split[r] > t->stream_cap)
                t->stream_cap = t->split[r];
    } else {
        for (int r = 0; r < R; r++)
            t->split[r] = B;
        /* auto moves up to a quarter of B more streams onto a rank */
        if (t->balance == BALANCE_AUTO)
            t->stream_cap = B + (B + 3) / 4;
    }
    free(weights);
    if (plan_streams(t) != 0)
        return cn_err_context("'%s'", t->cfg.data);
    size_t nval = t->splits.end[SPLIT_VAL] - t->splits.begin[SPLIT_VAL];
    if (nval > 1) {
        int bv = eval_streams_per_rank(nval, T, B, t->nranks);
        if (batch_plan_init(&t->val_plan, t->splits.begin[SPLIT_VAL], t->splits.end[SPLIT_VAL],
                            t->nranks * bv, t->rank * bv, bv, T, 1, "val") == 0)
            t->has_val = 1;
    }
    if (!t->has_val)
        say(t, "warning: the validation split is too small to evaluate; no validation loss\n");

    int n_states = optim_state_count(t->cfg.optim.kind);
    if (memplan_check_train(&t->cfg.model, n_states, T, t->stream_cap) != 0)
        return -1;
    model_build(&t->m, &t->cfg.model);
    optim_init(&t->opt, &t->cfg.optim, t->m.n_params);
    if (resumed) {
        memcpy(t->m.params, d.m.params, t->m.n_params * sizeof(float));
        int ns = optim_state_count(t->opt.cfg.kind);
        if (ns >= 1 && t->opt.m && d.opt.m)
            memcpy(t->opt.m, d.opt.m, t->m.n_params * sizeof(float));
        if (t->opt.v && d.opt.v)
            memcpy(t->opt.v, d.opt.v, t->m.n_params * sizeof(float));
        t->opt.t = d.opt.t;
        t->prog = d.prog;
    } else {
        model_init_uniform(&t->m, t->cfg.init_scale, t->cfg.seed, t->cfg.forget_bias);
    }
    t->decay_mask = cn_xmalloc(t->m.n_params);
    model_fill_decay_mask(&t->m, t->decay_mask);
    model_state_init(&t->st, &t->cfg.model, t->plan.n_streams);
    model_work_init(&t->w, &t->m, T, t->stream_cap);
    t->w.B = t->plan.n_streams;
    if (t->has_val) {
        model_state_init(&t->val_st, &t->cfg.model, t->val_plan.n_streams);
    }
    int bmax = t->stream_cap > t->val_plan.n_streams ? t->stream_cap : t->val_plan.n_streams;
    t->x = cn_xmalloc((size_t)T * bmax * sizeof(int32_t));
    t->y = cn_xmalloc((size_t)T * bmax * sizeof(int32_t));
    t->scratch = cn_xmalloc((size_t)(T + 1) * sizeof(int32_t));

    /* every rank draws its own dropout masks */
    cn_rng_seed(&t->rng, cn_hash64(t->cfg.seed, 0x5eed0000u + (uint64_t)t->rank));
    if (resumed) {
        if (d.nranks == t->nranks && d.ranks)
            t->rng = d.ranks[t->rank].rng;
        t->resume.active = 1;
        t->resume.found = restore_streams(t, &d);
        t->resume.same_split = d.nranks == t->nranks && d.ranks != NULL;
        for (int r = 0; t->resume.same_split && r < R; r++)
            t->resume.same_split = d.ranks[r].batch == t->split[r];
        t->resume.old_nranks = d.cfg.nranks;
        t->resume.old_batch = d.cfg.batch;
        snprintf(t->resume.path, sizeof t->resume.path, "%s", resume_path);
        ckpt_data_free(&d);
    }

    if (t->cfg.steps > 0)
        t->total_steps = t->cfg.steps;
    else
        t->total_steps = (int64_t)ceil(t->cfg.epochs * (double)t->plan.n_chunks);
    if (t->cfg.sched.total_steps <= 0)
        t->cfg.sched.total_steps = t->total_steps;
    return 0;
}

/* After set-up: the ranks agree whether the checkpoint's carried states were
 * all found; if not, every rank starts its streams from zero and the data
 * position is re-derived from the tokens seen. */
static void finish_resume(trainer *t)
{
    if (!t->resume.active)
        return;
    const int found = dist_allreduce_sum_int(t->resume.found) == t->nranks;
    if (found && t->resume.same_split) {
        say(t, "resumed from '%s' at step %lld (epoch %lld)\n", t->resume.path,
            (long long)t->prog.step, (long long)t->prog.epoch);
    } else if (found) {
        say(t, "resumed from '%s' at step %lld (epoch %lld): its %d streams now split over %d "
               "rank%s, carried states kept\n",
            t->resume.path, (long long)t->prog.step, (long long)t->prog.epoch,
            t->plan.streams_global, t->nranks, t->nranks == 1 ? "" : "s");
    } else {
        /* another layout of streams: keep the position within the epoch */
        model_state_reset(&t->st);
        uint64_t old_streams = (uint64_t)t->resume.old_nranks * (uint64_t)t->resume.old_batch;
        uint64_t new_streams = (uint64_t)t->plan.streams_global;
        t->prog.chunk = old_streams ? t->prog.chunk * old_streams / new_streams : 0;
        say(t, "resumed from '%s' at step %lld with %d ranks x %d streams (was %d x %d): "
               "data cursors re-derived from tokens seen (chunk %llu of epoch %lld), "
               "carried states restart from zero\n",
            t->resume.path, (long long)t->prog.step, t->nranks, t->cfg.batch,
            t->resume.old_nranks, t->resume.old_batch, (unsigned long long)t->prog.chunk,
            (long long)t->prog.epoch);
    }
    t->resume.active = 0;
}

static void trainer_free(trainer *t)
{
    trace_probe_close(t->probe);
    if (t->metrics)
        fclose(t->metrics);
    free(t->x);
    free(t->y);
    free(t->scratch);
    free(t->decay_mask);
    free(t->split);
    model_work_free(&t->w);
    model_state_free(&t->st);
    if (t->has_val) {
        model_state_free(&t->val_st);
    }
    optim_free(&t->opt);
    model_free(&t->m);
    data_source_close(&t->src);
    vocab_free(&t->voc);
}

static void print_header(const trainer *t)
{
    const run_config *c = &t->cfg;
    say(t, "charnn %s: %s, %d layers x %d hidden, %s, vocab %d, %zu parameters\n",
        runtime_version(), cell_name(c->model.cell), c->model.layers, c->model.hidden,
        c->model.embed ? "embedding" : "one-hot input", c->model.vocab, t->m.n_params);
    say(t, "data '%s': %zu tokens (train %zu, val %zu, test %zu), %d rank%s x %d streams x %d "
           "steps, %llu chunks per epoch, %lld steps, %d thread%s per rank\n",
        c->data, t->src.n_tokens, t->splits.end[0] - t->splits.begin[0],
        t->splits.end[1] - t->splits.begin[1], t->splits.end[2] - t->splits.begin[2], t->nranks,
        t->nranks == 1 ? "" : "s", c->batch, c->seq, (unsigned long long)t->plan.n_chunks,
        (long long)t->total_steps, runtime_threads(), runtime_threads() == 1 ? "" : "s");
    say(t, "optimizer %s, lr %.3g (%s schedule), clip %.3g; %s\n", optim_name(c->optim.kind),
        (double)c->sched.lr, sched_name(c->sched.kind), (double)c->clip, runtime_blas());
    const char *note = runtime_blas_note();
    if (note)
        say(t, "%s\n", note);
}

int train_run(const run_config *cfg)
{
    trainer t;
    train_stop_signal = 0;
    /* from the start: a stop asked for during set-up takes effect at the first step */
    install_signals();
    int failed = trainer_setup(&t, cfg) != 0;
    int n_failed = dist_allreduce_sum_int(failed);
    if (n_failed == dist_size()) {
        /* every rank met the same bad input: one message, a clean exit */
        if (dist_rank() == 0)
            fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return TRAIN_EXIT_ERROR;
    }
    if (n_failed) {
        /* Every rank is alive and knows: the failing ones say why, and the job
         * ends cleanly. MPI_Abort here could kill a rank before its message
         * got out; it stays for errors one rank meets alone later on. */
        if (failed) {
            fprintf(stderr, "charnn: rank %d: %s\n", dist_rank(), cn_errmsg());
            fflush(stderr);
        }
        dist_barrier();
        return TRAIN_EXIT_ERROR;
    }
    verify_same_parameters(&t, "at start");
    finish_resume(&t);
    int rc = TRAIN_EXIT_OK;
    if (t.rank == 0) {
        if (ensure_dir(t.cfg.out) != 0)
            dist_abort(1, "%s", cn_errmsg());
        ckpt_remove_stale_tmp(t.cfg.out);
        char path[CONFIG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/metrics.jsonl", t.cfg.out);
        t.metrics = fopen(path, "a");
        if (!t.metrics)
            dist_abort(1, "cannot open '%s': %s", path, strerror(errno));
        if (t.cfg.trace_every > 0 && open_probe_trace(&t) != 0)
            dist_abort(1, "%s", cn_errmsg());
    }
    dist_barrier();
    print_header(&t);

    /* under mpirun stdout is a pseudo-terminal even when the job log is a file */
    int bar = t.cfg.progress_bar < 0 ? (t.nranks == 1 && isatty(STDOUT_FILENO)) : t.cfg.progress_bar;
    const double step_tokens = (double)t.cfg.seq * t.plan.streams_global;
    double t_start = cn_now(), t_log = t_start;
    int64_t steps_at_log = t.prog.step, start_step = t.prog.step;
    double loss_acc = 0.0;
    int loss_n = 0;
    if (t.prog.step >= t.total_steps)
        say(&t, "already at step %lld of %lld: nothing to train\n", (long long)t.prog.step,
            (long long)t.total_steps);

    while (t.prog.step < t.total_steps) {
        if (t.prog.chunk >= t.plan.n_chunks) {
            t.prog.epoch++;
            t.prog.chunk = 0;
            model_state_reset(&t.st);
        }
        double gnorm;
        float lr;
        double loss = train_step(&t, &gnorm, &lr);
        if (t.cfg.trace_every > 0 && t.prog.step % t.cfg.trace_every == 0)
            trace_training_step(&t);
        if (t.balance == BALANCE_AUTO && t.prog.step % BALANCE_EVERY == 0)
            rebalance(&t);
        if (isnan(loss)) {
            say(&t, "step %lld: non-finite loss or gradient (norm %g), update skipped (%d in a "
                    "row)\n",
                (long long)t.prog.step, gnorm, t.bad_streak);
            metrics_write(&t, "{\"type\":\"skip\",\"step\":%lld,\"grad_norm\":%g}",
                          (long long)t.prog.step, gnorm);
            if (t.bad_streak >= t.cfg.max_bad_steps) {
                if (t.rank == 0)
                    fprintf(stderr, "charnn: training diverged at step %lld: %d steps in a row had "
                                    "a non-finite loss or gradient (try a lower --lr or --clip); "
                                    "no model written\n",
                            (long long)t.prog.step, t.bad_streak);
                rc = TRAIN_EXIT_DIVERGED;
                break;
            }
        } else {
            t.prog.last_loss = loss;
            loss_acc += loss;
            loss_n++;
        }
        int64_t s = t.prog.step;
        int at_end = s >= t.total_steps;
        double val = NAN;
        if (t.cfg.eval_every > 0 && s % t.cfg.eval_every == 0 && !at_end)
            val = validate(&t);
        if (t.cfg.log_every > 0 && (s % t.cfg.log_every == 0 || at_end || !isnan(val))) {
            double now = cn_now();
            double cps = (double)(s - steps_at_log) * step_tokens / (now - t_log);
            double eta = (double)(t.total_steps - s) * (now - t_start) / (double)(s - start_step);
            char etas[32], vals[48] = "";
            format_duration(etas, sizeof etas, eta);
            if (!isnan(val))
                snprintf(vals, sizeof vals, " | val %.4f", val);
            double mean = loss_n ? loss_acc / loss_n : NAN;
            say(&t, "%sstep %lld/%lld | epoch %.2f | loss %.4f%s | gnorm %.3f | lr %.2e | %.0f "
                    "chars/s | ETA %s\n",
                bar ? "\r\033[K" : "", (long long)s, (long long)t.total_steps,
                (double)t.prog.epoch + (double)t.prog.chunk / (double)t.plan.n_chunks, mean,
                vals, gnorm, (double)lr, cps, etas);
            metrics_write(&t, "{\"type\":\"train\",\"step\":%lld,\"epoch\":%lld,\"loss\":%.6f,"
                              "\"bpc\":%.6f,\"grad_norm\":%.6g,\"lr\":%.6g,\"chars_per_s\":%.1f,"
                              "\"tokens_seen\":%lld}",
                          (long long)s, (long long)t.prog.epoch, mean, mean / log(2.0), gnorm,
                          (double)lr, cps, (long long)t.prog.tokens_seen);
            if (t.cfg.timing) {
                double times[3] = {t.t_compute, t.t_comm, (now - t_log) - t.t_compute - t.t_comm};
                double *all = t.rank == 0 ? cn_xmalloc(sizeof times * (size_t)t.nranks) : NULL;
                dist_gather(times, sizeof times, all, 0);
                for (int r = 0; t.rank == 0 && r < t.nranks; r++)
                    say(&t, "  rank %d: compute %.3fs, communication %.3fs, idle %.3fs\n", r,
                        all[3 * r], all[3 * r + 1], all[3 * r + 2]);
                free(all);
            }
            t.t_compute = t.t_comm = 0.0;
            t_log = now;
            steps_at_log = s;
            loss_acc = 0.0;
            loss_n = 0;
        } else if (bar && t.rank == 0) {
            int width = 30, filled = (int)(width * (double)s / (double)t.total_steps);
            printf("\r\033[K[%.*s%*s] step %lld/%lld loss %.4f", filled,
                   "##############################", width - filled, "", (long long)s,
                   (long long)t.total_steps, t.prog.last_loss);
            fflush(stdout);
        }
        if (t.cfg.checkpoint_every > 0 && s % t.cfg.checkpoint_every == 0 && !at_end)
            save_step_checkpoint(&t);
        int stop = dist_allreduce_max_int((int)train_stop_signal);
        if (stop && !at_end) {
            say(&t, "signal %d: checkpointing at step %lld and stopping\n", stop, (long long)s);
            save_step_checkpoint(&t);
            metrics_write(&t, "{\"type\":\"stop\",\"step\":%lld,\"signal\":%d}", (long long)s,
                          stop);
            rc = TRAIN_EXIT_STOPPED;
            break;
        }
    }

    if (rc == TRAIN_EXIT_OK) {
        double val = validate(&t);
        char path[CONFIG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/model.h5", t.cfg.out);
        save_checkpoint(&t, path);
        if (t.rank == 0 && ckpt_update_latest(t.cfg.out, path) != 0)
            dist_abort(1, "%s", cn_errmsg());
        if (isnan(val))
            say(&t, "done: step %lld, model written to %s\n", (long long)t.prog.step, path);
        else
            say(&t, "done: step %lld, validation loss %.4f nats/char (%.4f bpc, perplexity %.2f), "
                    "model written to %s\n",
                (long long)t.prog.step, val, val / log(2.0), exp(val), path);
    }
    trainer_free(&t);
    return rc;
}
