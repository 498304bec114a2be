/* Setting up a training run: fresh or resumed from a checkpoint (the
 * checkpoint decides the model and the data encoding; the task takes over
 * its cursors and carried states), the model, the optimizer and the
 * workspace, the run directory and the header. See trainer.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/ckpt.h"
#include "charnn/dist.h"
#include "charnn/head.h"
#include "charnn/kernels.h"
#include "charnn/memplan.h"
#include "charnn/mlp.h"
#include "charnn/rundir.h"
#include "charnn/runtime.h"
#include "trainer.h"

static int check_resume_compatible(const trainer *t, const ckpt_data *d, const char *path)
{
    const run_config *c = &t->cfg;
    const model_config *a = &d->cfg.model;
    if ((c->given & CONFIG_GIVEN_TASK) && strcmp(c->task, d->task.task) != 0)
        return cn_err("checkpoint '%s' was trained for task %s, this run asks for --task %s", path,
                      d->task.task, c->task);
    if (!task_find(d->task.task))
        return cn_err("checkpoint '%s' was trained for task '%s', which this charnn does not know "
                      "(tasks: %s)",
                      path, d->task.task, task_names());
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
    if ((c->given & CONFIG_GIVEN_BIDIR) && c->model.bidirectional != a->bidirectional)
        return cn_err("checkpoint '%s' is unidirectional, this run asks for --bidirectional",
                      path);
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
    if ((c->given & CONFIG_GIVEN_FREEZE) && c->freeze_stack != d->cfg.freeze_stack)
        return cn_err("checkpoint '%s' was trained with --freeze-stack %lld, this run asks for "
                      "--freeze-stack %lld",
                      path, (long long)d->cfg.freeze_stack, (long long)c->freeze_stack);
    if ((c->given & CONFIG_GIVEN_POOL) && c->model.head.pool != a->head.pool)
        return cn_err("checkpoint '%s' pools with %s, this run asks for --pool %s", path,
                      head_pool_name(a->head.pool), head_pool_name(c->model.head.pool));
    if ((c->given & CONFIG_GIVEN_ACTIVATION) && c->model.mlp_act != a->mlp_act)
        return cn_err("checkpoint '%s' has activation %s, this run asks for --activation %s",
                      path, mlp_act_name(a->mlp_act), mlp_act_name(c->model.mlp_act));
    if ((c->given & CONFIG_GIVEN_PRECISION) && c->precision != d->cfg.precision)
        return cn_err("checkpoint '%s' was trained with --precision %s, this run asks for "
                      "--precision %s", path, kern_precision_name((kern_precision)d->cfg.precision),
                      kern_precision_name((kern_precision)c->precision));
    if (!d->has_opt)
        return cn_err("checkpoint '%s' holds no optimizer state and cannot be resumed", path);
    return 0;
}

/* The checkpoint to resume from into path ("" for a fresh run). */
static int resume_path(const trainer *t, char *path, size_t n)
{
    path[0] = '\0';
    if (strcmp(t->cfg.resume, "auto") == 0) {
        if (rundir_find_resumable(t->cfg.out, path, n) != 0)
            return -1;
        if (!path[0])
            train_say(t, "no checkpoint in '%s' to resume from: starting fresh\n", t->cfg.out);
    } else if (t->cfg.resume[0]) {
        snprintf(path, n, "%s", t->cfg.resume);
    }
    return 0;
}

/* Read the checkpoint at path into d and let it decide the model and the data
 * encoding. */
static int resume_read(trainer *t, const char *path, ckpt_data *d)
{
    if (ckpt_verify(path, NULL) != 0 || ckpt_read(path, d) != 0)
        return -1;
    if (check_resume_compatible(t, d, path) != 0)
        return -1;
    snprintf(t->cfg.task, sizeof t->cfg.task, "%s", d->task.task);
    t->cfg.model = d->cfg.model;
    t->cfg.seq = d->cfg.seq;
    t->cfg.vocab_mode = d->voc.mode;
    t->cfg.optim.kind = d->cfg.optim.kind;
    /* --init-from was read at the run's step 0; its parameters are in the checkpoint now */
    if (t->cfg.init_from[0] && strcmp(t->cfg.init_from, d->cfg.init_from) != 0)
        train_say(t, "resuming from '%s': --init-from '%s' is read only by a fresh run\n", path,
                  t->cfg.init_from);
    memcpy(t->cfg.init_from, d->cfg.init_from, sizeof t->cfg.init_from);
    t->cfg.extend_vocab = d->cfg.extend_vocab;
    t->cfg.freeze_stack = d->cfg.freeze_stack;
    /* the example order's settings: the checkpoint's unless given */
    const run_config *was = &d->cfg;
    if (!(t->cfg.given & CONFIG_GIVEN_MAX_LEN))
        t->cfg.max_len = was->max_len;
    if (!(t->cfg.given & CONFIG_GIVEN_BUCKET))
        t->cfg.bucket_batches = was->bucket_batches;
    if (!(t->cfg.given & CONFIG_GIVEN_CLASS_WEIGHTS))
        t->cfg.class_weights = was->class_weights;
    if (!(t->cfg.given & CONFIG_GIVEN_BALANCED_SAMPLING))
        t->cfg.balanced_sampling = was->balanced_sampling;
    t->cfg.precision = d->cfg.precision;
    return vocab_from_symbols(&t->voc, d->voc.mode, d->voc.symbols, d->voc.size);
}

/* Set up a fresh or resumed trainer; returns 0, or -1 with a message (every
 * rank sees the same files, so every rank fails alike). No collectives. */
static int setup(trainer *t, const run_config *cfg)
{
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    t->rank = dist_rank();
    t->nranks = dist_size();
    t->cfg.nranks = t->nranks;
    t->prog.best_val = INFINITY;
    t->prog.last_val = NAN;
    t->prog.last_loss = NAN;
    t->prog.lr_factor = 1.0;

    char path[CONFIG_PATH_MAX + 64];
    ckpt_data d, init;
    memset(&d, 0, sizeof d);
    memset(&init, 0, sizeof init);
    int rc = -1;
    if (resume_path(t, path, sizeof path) != 0)
        return -1;
    const int from_init = !path[0] && t->cfg.init_from[0];
    if (path[0] && resume_read(t, path, &d) != 0)
        goto done;
    if (kern_set_precision((kern_precision)t->cfg.precision) != 0)
        goto done;
    if (from_init && train_init_read(t, &init) != 0)
        goto done;
    t->task.ops = task_find(t->cfg.task);
    if (!t->task.ops) {
        cn_err("unknown task '%s' (tasks: %s)", t->cfg.task, task_names());
        goto done;
    }
    if (t->task.ops->open(&t->task, &t->cfg, &t->voc, t->rank, t->nranks) != 0)
        goto done;

    if (memplan_check_train(&t->cfg.model, optim_state_count(t->cfg.optim.kind), t->task.T,
                            t->task.rows_cap) != 0)
        goto done;
    model_build(&t->m, &t->cfg.model);
    optim_init(&t->opt, &t->cfg.optim, t->m.n_params);
    if (path[0]) {
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
        if (from_init)
            train_init_copy(t, &init);
        if (t->task.ops->model_init)
            t->task.ops->model_init(&t->task, &t->m);
    }
    t->decay_mask = cn_xmalloc(t->m.n_params);
    model_fill_decay_mask(&t->m, t->decay_mask);
    model_work_init(&t->w, &t->m, t->task.T, t->task.rows_cap);

    /* every rank draws its own dropout masks */
    cn_rng_seed(&t->rng, cn_hash64(t->cfg.seed, 0x5eed0000u + (uint64_t)t->rank));
    if (path[0]) {
        if (d.nranks == t->nranks && d.ranks)
            t->rng = d.ranks[t->rank].rng;
        t->task.ops->state_load(&t->task, &d, &t->prog, path);
    }

    if (t->cfg.steps > 0)
        t->total_steps = t->cfg.steps;
    else
        t->total_steps =
            (int64_t)ceil(t->cfg.epochs * (double)t->task.ops->batches_per_epoch(&t->task));
    if (t->cfg.sched.total_steps <= 0)
        t->cfg.sched.total_steps = t->total_steps;
    rc = 0;
done:
    if (path[0])
        ckpt_data_free(&d);
    if (from_init)
        ckpt_data_free(&init);
    return rc;
}

static void print_header(const trainer *t)
{
    const run_config *c = &t->cfg;
    if (c->model.layers == 0)
        train_say(t, "charnn %s: MLP (no recurrent stack), %d features -> %d %s -> %d classes, "
                     "%zu parameters\n",
                  runtime_version(), c->model.cond.dim, c->model.hidden,
                  mlp_act_name(c->model.mlp_act), c->model.head.classes, t->m.n_params);
    else
        train_say(t, "charnn %s: %s, %d layers x %d hidden, %s, vocab %d, %zu parameters\n",
                  runtime_version(), cell_name(c->model.cell), c->model.layers, c->model.hidden,
                  c->model.embed ? "embedding" : "one-hot input", c->model.vocab, t->m.n_params);
    t->task.ops->print_header(&t->task, t->total_steps);
    train_say(t, "optimizer %s, lr %.3g (%s schedule), clip %.3g; %s\n",
              optim_name(c->optim.kind), (double)c->sched.lr, sched_name(c->sched.kind),
              (double)c->clip, runtime_blas());
    const char *note = runtime_blas_note();
    if (note)
        train_say(t, "%s\n", note);
    if (c->model.layers > 0)
        train_say(t, "recurrent step products: %s\n", kern_packed_name());
    if (c->stop_by > 0.0)
        train_say(t, "time limit in %.0f s: a checkpoint and exit %d before it\n",
                  fmax(0.0, c->stop_by - cn_now()), TRAIN_EXIT_STOPPED);
    if (c->freeze_stack > 0)
        train_say(t, "--freeze-stack %lld: the head trains alone for %lld updates, then all\n",
                  (long long)c->freeze_stack, (long long)c->freeze_stack);
    train_say(t, "precision: %s\n",
              c->precision == KERN_BF16
                  ? "bf16 (bf16 operands, FP32 sums; weights, optimizer, gates, loss FP32)"
                  : "f32");
}

int train_start(trainer *t, const run_config *cfg)
{
    /* from the start: a stop asked for during set-up takes effect at the first step */
    train_install_signals();
    /* one run per --out, before anything in it is read or written */
    rundir_lock lock;
    if (rundir_lock_run(cfg->out, &lock) != 0) {
        if (dist_rank() == 0)
            fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return TRAIN_EXIT_ERROR;
    }
    int failed = setup(t, cfg) != 0;
    t->lock = lock;
    int n_failed = dist_allreduce_sum_int(failed);
    if (n_failed == dist_size()) {
        /* every rank met the same bad input: one message, a clean exit */
        if (dist_rank() == 0)
            fprintf(stderr, "charnn: %s\n", cn_errmsg());
        rundir_lock_abandon(&t->lock);
        train_free(t);
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
        rundir_lock_abandon(&t->lock);
        train_free(t);
        return TRAIN_EXIT_ERROR;
    }
    train_verify_same_parameters(t, "at start");
    t->task.ops->resume_agree(&t->task, &t->prog);
    if (t->rank == 0) {
        if (rundir_create(t->cfg.out) != 0)
            dist_abort(1, "%s", cn_errmsg());
        rundir_remove_stale_tmp(t->cfg.out);
    }
    train_log_open(t);
    if (t->rank == 0 && t->cfg.trace_every > 0 && t->task.ops->trace_open &&
        t->task.ops->trace_open(&t->task, &t->m, &t->voc, t->cfg.out, t->prog.step) != 0)
        dist_abort(1, "%s", cn_errmsg());
    dist_barrier();
    print_header(t);
    if (t->prog.step >= t->total_steps) {
        train_say(t, "already at step %lld of %lld: nothing to train\n", (long long)t->prog.step,
                  (long long)t->total_steps);
    } else if (train_patience_spent(t)) {
        t->stop_early = 1;
        train_say(t, "already stopped early at step %lld (no better validation loss in %lld "
                     "validations): nothing to train\n",
                  (long long)t->prog.step, (long long)t->prog.evals_since_best);
    }
    t->step_end = cn_now();
    return TRAIN_EXIT_OK;
}

void train_free(trainer *t)
{
    if (t->log.metrics)
        fclose(t->log.metrics);
    if (t->task.ops)
        t->task.ops->close(&t->task);
    free(t->decay_mask);
    model_work_free(&t->w);
    optim_free(&t->opt);
    model_free(&t->m);
    vocab_free(&t->voc);
    rundir_lock_release(&t->lock);
}
