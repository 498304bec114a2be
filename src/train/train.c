/* The training loop, top to bottom: next batch, forward, backward (gradient
 * buckets all-reduced as they finish), all-reduce, global norm, clip,
 * optimizer step, log, checkpoint. What the batch holds and how the loss is
 * normalised is the task's (task.h); what surrounds a step (logging, timing,
 * validation, rebalancing, checkpoints, signals, resume) lives beside this
 * file in train_*.c. See train.h. */
#include <math.h>

#include "charnn/dist.h"
#include "charnn/kernels.h"
#include "trainer.h"

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

/* This rank's summed loss over the batch's targets. */
static double forward(trainer *t, const batch *b)
{
    t->w.B = b->B;
    t->w.mask = b->mask;
    t->w.len = b->len;
    /* a batch with a condition holds whole rows: they start here */
    t->w.cond = b->cond;
    t->w.cond_first = 1;
    return model_forward(&t->m, &t->w, b->carry, b->x, b->y, b->T, 1, cn_rng_next(&t->rng));
}

/* Gradients of the global mean loss; with several ranks and overlap, each
 * bucket's all-reduce starts as soon as backward has finished it and is moved
 * on by progress calls between the cells' steps. */
static void backward(trainer *t, const batch *b, double norm)
{
    const int overlap = !t->cfg.allreduce_blocking && t->nranks > 1;
    model_zero_grads(&t->m);
    t->w.progress = overlap ? on_backward_progress : NULL;
    model_backward(&t->m, &t->w, b->x, b->y, (float)(1.0 / norm),
                   overlap ? on_bucket_done : NULL, t);
}

/* --freeze-stack N: the first N updates train the head alone (bucket 0, the
 * front of the slab); the stack and the input keep their values and their
 * optimizer state, and count their own updates from the first they get. */
static size_t trained_params(const trainer *t)
{
    return t->opt.t < t->cfg.freeze_stack ? t->m.bucket_size[0] : t->m.n_params;
}

static void update(trainer *t, float lr)
{
    const int64_t frozen = t->cfg.freeze_stack;
    if (frozen == 0) {
        optim_step(&t->opt, t->m.params, t->m.grads, lr, t->decay_mask);
        return;
    }
    optim *o = &t->opt;
    const size_t head = t->m.bucket_size[0];
    o->t++;
    optim_step_range(o, t->m.params, t->m.grads, lr, t->decay_mask, 0, head, o->t);
    if (o->t > frozen)
        optim_step_range(o, t->m.params, t->m.grads, lr, t->decay_mask, head, t->m.n_params,
                         o->t - frozen);
}

static void allreduce_gradients(trainer *t)
{
    if (t->cfg.allreduce_blocking)
        dist_allreduce_sum_f32(t->m.grads, t->m.n_params);
    else
        dist_wait_all();
}

int train_run(const run_config *cfg)
{
    trainer t;
    int rc = train_start(&t, cfg);
    if (rc != TRAIN_EXIT_OK)
        return rc;
    while (rc == TRAIN_EXIT_OK && !t.stop_early && t.prog.step < t.total_steps) {
        batch b;
        train_clock_lap(&t, TRAIN_CLOCK_START);
        if (t.task.ops->next_batch(&t.task, &t.prog, &b) != 0)
            dist_abort(1, "%s", cn_errmsg());
        const double norm = t.task.ops->loss_norm(&t.task, &b);
        double loss = forward(&t, &b);
        backward(&t, &b, norm);
        train_clock_lap(&t, TRAIN_CLOCK_COMPUTE);
        allreduce_gradients(&t);
        train_clock_lap(&t, TRAIN_CLOCK_COMM);
        dist_allreduce_sum_f64(&loss, 1);
        loss /= norm;
        const size_t n_trained = trained_params(&t);
        const double gnorm = sqrt(kern_sumsq(t.m.grads, n_trained));
        /* lr_factor is 1 (an exact product) until --lr-on-plateau cuts it */
        const float lr =
            (float)((double)sched_lr(&t.cfg.sched, t.prog.step, t.prog.epoch) * t.prog.lr_factor);
        const int ok = isfinite(loss) && isfinite(gnorm);
        if (ok) {
            t.bad_streak = 0;
            if (t.cfg.clip > 0.0f && gnorm > t.cfg.clip)
                kern_scale(t.m.grads, n_trained, (float)(t.cfg.clip / gnorm));
            update(&t, lr);
        } else {
            t.bad_streak++;
            t.prog.skipped++;
            /* the carried state may hold the non-finite values: start the rows afresh */
            model_state_reset(b.carry);
        }
        t.prog.step++;
        t.prog.tokens_seen += (int64_t)norm;
        train_clock_lap(&t, TRAIN_CLOCK_COMPUTE);
        train_trace_step(&t);
        train_rebalance(&t);
        rc = train_log_step(&t, ok ? loss : NAN, gnorm, lr);
        if (rc == TRAIN_EXIT_OK)
            rc = train_checkpoint_step(&t);
    }
    if (rc == TRAIN_EXIT_OK)
        train_save_final(&t);
    train_free(&t);
    return rc;
}
