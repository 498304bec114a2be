/* Checkpoints of a training run: every rank's part gathered into one file on
 * rank 0, the schedule (--checkpoint-every, best.h5 on a better validation
 * loss, model.h5 at the end) and the stop on SIGTERM, SIGUSR1 or SIGINT
 * (checkpoint, then exit 75). See trainer.h. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "charnn/ckpt.h"
#include "charnn/dist.h"
#include "charnn/head.h"
#include "charnn/rundir.h"
#include "trainer.h"

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

void train_install_signals(void)
{
    train_stop_signal = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* Every rank must hold the same parameters: compare a hash of the slab with
 * rank 0's and end the job on a mismatch rather than train diverging copies. */
void train_verify_same_parameters(const trainer *t, const char *when)
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

/* Collect every rank's record (its dropout RNG, then the task's state) on
 * rank 0 and write one checkpoint. Collective. */
void train_save(trainer *t, const char *path)
{
    train_verify_same_parameters(t, "at a checkpoint");
    const size_t bytes = sizeof(cn_rng) + t->task.ops->state_bytes(&t->task);
    char *mine = cn_xcalloc(1, bytes);
    memcpy(mine, &t->rng, sizeof(cn_rng));
    t->task.ops->state_pack(&t->task, &t->prog, mine + sizeof(cn_rng));
    char *all = t->rank == 0 ? cn_xmalloc(bytes * (size_t)t->nranks) : NULL;
    dist_gather(mine, bytes, all, 0);
    int rc = 0;
    if (t->rank == 0) {
        /* the file is built in memory first; let it take the activations' pages */
        model_work_release(&t->w);
        ckpt_rank *ranks = cn_xcalloc((size_t)t->nranks, sizeof *ranks);
        for (int r = 0; r < t->nranks; r++) {
            char *rec = all + bytes * (size_t)r;
            memcpy(&ranks[r].rng, rec, sizeof(cn_rng));
            t->task.ops->state_view(&t->task, rec + sizeof(cn_rng), &ranks[r]);
        }
        ckpt_task what = {.n_labels = t->task.n_labels, .labels = t->task.labels};
        snprintf(what.task, sizeof what.task, "%s", t->cfg.task);
        snprintf(what.head, sizeof what.head, "%s", head_name(t->cfg.model.head.kind));
        rc = ckpt_write_task_atomic(path, &what, &t->cfg, &t->voc, &t->m, &t->opt, &t->prog,
                                    t->nranks, ranks);
        free(ranks);
    }
    free(all);
    free(mine);
    if (rc != 0)
        dist_abort(1, "cannot write checkpoint: %s", cn_errmsg());
}

void train_save_best(trainer *t)
{
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/best.h5", t->cfg.out);
    train_save(t, path);
}

static void save_step_checkpoint(trainer *t)
{
    char path[CONFIG_PATH_MAX + 32];
    rundir_step_path(path, sizeof path, t->cfg.out, t->prog.step);
    train_save(t, path);
    if (t->rank == 0) {
        if (rundir_update_latest(t->cfg.out, path) != 0 ||
            rundir_prune(t->cfg.out, t->cfg.keep_last) != 0)
            dist_abort(1, "%s", cn_errmsg());
    }
    train_say(t, "checkpoint %s\n", path);
}

int train_checkpoint_step(trainer *t)
{
    const int64_t s = t->prog.step;
    const int at_end = s >= t->total_steps;
    if (t->cfg.checkpoint_every > 0 && s % t->cfg.checkpoint_every == 0 && !at_end)
        save_step_checkpoint(t);
    int stop = dist_allreduce_max_int((int)train_stop_signal);
    if (stop && !at_end) {
        train_say(t, "signal %d: checkpointing at step %lld and stopping\n", stop, (long long)s);
        save_step_checkpoint(t);
        train_metrics_write(t, "{\"type\":\"stop\",\"step\":%lld,\"signal\":%d}",
                            (long long)s, stop);
        return TRAIN_EXIT_STOPPED;
    }
    return TRAIN_EXIT_OK;
}

/* model.h5 first: a failure while writing best.h5 must not cost the final
 * model. Both record the final validation loss. */
void train_save_final(trainer *t)
{
    int improved;
    double val = train_validate(t, &improved);
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/model.h5", t->cfg.out);
    train_save(t, path);
    if (t->rank == 0 && rundir_update_latest(t->cfg.out, path) != 0)
        dist_abort(1, "%s", cn_errmsg());
    if (improved)
        train_save_best(t);
    if (isnan(val))
        train_say(t, "done: step %lld, model written to %s\n", (long long)t->prog.step, path);
    else if (!isnan(t->log.val_acc))
        train_say(t, "done: step %lld, validation loss %.4f nats per example, accuracy %.4f, "
                     "model written to %s\n",
                  (long long)t->prog.step, val, t->log.val_acc, path);
    else
        train_say(t, "done: step %lld, validation loss %.4f nats/char (%.4f bpc, perplexity "
                     "%.2f), model written to %s\n",
                  (long long)t->prog.step, val, val / log(2.0), exp(val), path);
}
