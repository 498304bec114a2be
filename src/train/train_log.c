/* What the training loop reports and measures: rank 0's console lines and
 * metrics.jsonl, the progress bar, where the time goes (compute,
 * communication, idle), validation, --balance auto decisions and
 * --trace-every. See trainer.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "charnn/balance.h"
#include "charnn/dist.h"
#include "charnn/evaluate.h"
#include "trainer.h"

void train_say(const trainer *t, const char *fmt, ...)
{
    if (t->rank != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

void train_metrics_write(trainer *t, const char *fmt, ...)
{
    if (!t->log.metrics)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(t->log.metrics, fmt, ap);
    va_end(ap);
    fputc('\n', t->log.metrics);
    fflush(t->log.metrics);
}

/* Rank 0 appends to OUT/metrics.jsonl; every rank starts the clocks. */
void train_log_open(trainer *t)
{
    if (t->rank == 0) {
        char path[CONFIG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/metrics.jsonl", t->cfg.out);
        t->log.metrics = fopen(path, "a");
        if (!t->log.metrics)
            dist_abort(1, "cannot open '%s': %s", path, strerror(errno));
    }
    /* under mpirun stdout is a pseudo-terminal even when the job log is a file */
    t->log.bar = t->cfg.progress_bar < 0 ? (t->nranks == 1 && isatty(STDOUT_FILENO))
                                         : t->cfg.progress_bar;
    t->log.t_start = t->log.t_log = cn_now();
    t->log.val_acc = NAN;
    t->log.start_step = t->log.steps_at_log = t->prog.step;
}

void train_clock_lap(trainer *t, int what)
{
    const double now = cn_now(), dt = now - t->clock.mark;
    t->clock.mark = now;
    if (what == TRAIN_CLOCK_COMPUTE) {
        t->clock.compute += dt;
        t->clock.bal_compute += dt;
    } else if (what == TRAIN_CLOCK_COMM) {
        t->clock.comm += dt;
    }
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

double train_validate(trainer *t, int *improved)
{
    eval_result r;
    *improved = 0;
    if (!t->task.has_val)
        return NAN;
    if (t->task.ops->evaluate(&t->task, &t->m, &t->w, t->cfg.eval_chunks, &r) != 0)
        dist_abort(1, "%s", cn_errmsg());
    double loss = eval_mean(&r);
    t->prog.last_val = loss;
    char acc[48] = "";
    if (r.correct >= 0)
        snprintf(acc, sizeof acc, ",\"val_acc\":%.6f", eval_accuracy(&r));
    t->log.val_acc = eval_accuracy(&r);
    train_metrics_write(t, "{\"type\":\"val\",\"step\":%lld,\"val_loss\":%.6f,\"val_bpc\":%.6f,"
                           "\"val_ppl\":%.4f,\"tokens\":%lld%s}",
                        (long long)t->prog.step, loss, eval_bpc(&r), eval_perplexity(&r),
                        (long long)r.tokens, acc);
    if (loss < t->prog.best_val) {
        t->prog.best_val = loss;
        *improved = 1;
    }
    return loss;
}

/* The per-rank split of compute, communication and idle time of the interval. */
static void log_timing(trainer *t, double interval)
{
    double times[3] = {t->clock.compute, t->clock.comm,
                       interval - t->clock.compute - t->clock.comm};
    double *all = t->rank == 0 ? cn_xmalloc(sizeof times * (size_t)t->nranks) : NULL;
    dist_gather(times, sizeof times, all, 0);
    for (int r = 0; t->rank == 0 && r < t->nranks; r++)
        train_say(t, "  rank %d: compute %.3fs, communication %.3fs, idle %.3fs\n", r,
                  all[3 * r], all[3 * r + 1], all[3 * r + 2]);
    free(all);
}

static void log_line(trainer *t, double gnorm, float lr, double val)
{
    train_log *g = &t->log;
    const int64_t s = t->prog.step;
    const double now = cn_now();
    const double eta = (double)(t->total_steps - s) * (now - g->t_start) /
                       (double)(s - g->start_step);
    char etas[32], vals[64] = "";
    format_duration(etas, sizeof etas, eta);
    if (!isnan(val) && !isnan(t->log.val_acc))
        snprintf(vals, sizeof vals, " | val %.4f acc %.4f", val, t->log.val_acc);
    else if (!isnan(val))
        snprintf(vals, sizeof vals, " | val %.4f", val);
    const double mean = g->loss_n ? g->loss_acc / g->loss_n : NAN;
    task_metrics tm = {0};
    t->task.ops->metrics(&t->task, mean, now - g->t_log, s - g->steps_at_log, &tm);
    const double epoch = (double)t->prog.epoch +
                         (double)t->prog.chunk / (double)t->task.ops->batches_per_epoch(&t->task);
    train_say(t, "%sstep %lld/%lld | epoch %.2f | loss %.4f%s | gnorm %.3f | lr %.2e | %.0f "
                 "%s/s | ETA %s\n",
              g->bar ? "\r\033[K" : "", (long long)s, (long long)t->total_steps, epoch, mean,
              vals, gnorm, (double)lr, tm.rate, tm.unit, etas);
    train_metrics_write(t, "{\"type\":\"train\",\"step\":%lld,\"epoch\":%lld,\"loss\":%.6f,"
                           "\"bpc\":%.6f,\"grad_norm\":%.6g,\"lr\":%.6g,\"%s_per_s\":%.1f,"
                           "\"tokens_seen\":%lld,\"time\":%lld,\"elapsed\":%.3f%s}",
                        (long long)s, (long long)t->prog.epoch, mean, tm.bits, gnorm, (double)lr,
                        tm.unit, tm.rate, (long long)t->prog.tokens_seen, (long long)time(NULL),
                        now - g->t_start, tm.extra);
    if (t->cfg.timing)
        log_timing(t, now - g->t_log);
    t->clock.compute = t->clock.comm = 0.0;
    g->t_log = now;
    g->steps_at_log = s;
    g->loss_acc = 0.0;
    g->loss_n = 0;
}

static void progress_bar(const trainer *t)
{
    const int64_t s = t->prog.step;
    int width = 30, filled = (int)(width * (double)s / (double)t->total_steps);
    printf("\r\033[K[%.*s%*s] step %lld/%lld loss %.4f", filled,
           "##############################", width - filled, "", (long long)s,
           (long long)t->total_steps, t->prog.last_loss);
    fflush(stdout);
}

int train_log_step(trainer *t, double loss, double gnorm, float lr)
{
    const int64_t s = t->prog.step;
    if (isnan(loss)) {
        train_say(t, "step %lld: non-finite loss or gradient (norm %g), update skipped (%d in "
                     "a row)\n",
                  (long long)s, gnorm, t->bad_streak);
        train_metrics_write(t, "{\"type\":\"skip\",\"step\":%lld,\"grad_norm\":%g}",
                            (long long)s, gnorm);
        if (t->bad_streak >= t->cfg.max_bad_steps) {
            if (t->rank == 0)
                fprintf(stderr, "charnn: training diverged at step %lld: %d steps in a row had "
                                "a non-finite loss or gradient (try a lower --lr or --clip); "
                                "no model written\n",
                        (long long)s, t->bad_streak);
            return TRAIN_EXIT_DIVERGED;
        }
    } else {
        t->prog.last_loss = loss;
        t->log.loss_acc += loss;
        t->log.loss_n++;
    }
    const int at_end = s >= t->total_steps;
    double val = NAN;
    if (t->cfg.eval_every > 0 && s % t->cfg.eval_every == 0 && !at_end) {
        int improved;
        val = train_validate(t, &improved);
        if (improved)
            train_save_best(t);
    }
    if (t->cfg.log_every > 0 && (s % t->cfg.log_every == 0 || at_end || !isnan(val)))
        log_line(t, gnorm, lr, val);
    else if (t->log.bar && t->rank == 0)
        progress_bar(t);
    return TRAIN_EXIT_OK;
}

void train_rebalance(trainer *t)
{
    const int R = t->nranks;
    t->clock.bal_steps++;
    if (!t->task.ops->rebalance || t->prog.step % BALANCE_EVERY != 0)
        return;
    int *rows = cn_xmalloc((size_t)R * sizeof *rows);
    double *speed = cn_xmalloc((size_t)R * sizeof *speed);
    int moved = t->task.ops->rebalance(&t->task, t->clock.bal_compute, t->clock.bal_steps, rows,
                                       speed);
    if (moved >= 0) {
        t->clock.bal_compute = 0.0;
        t->clock.bal_steps = 0;
    }
    if (moved == 1) {
        if (t->log.metrics) {
            fprintf(t->log.metrics, "{\"type\":\"balance\",\"step\":%lld,\"streams\":[",
                    (long long)t->prog.step);
            for (int r = 0; r < R; r++)
                fprintf(t->log.metrics, "%s%d", r ? "," : "", rows[r]);
            fprintf(t->log.metrics, "],\"streams_per_s\":[");
            for (int r = 0; r < R; r++)
                fprintf(t->log.metrics, "%s%.1f", r ? "," : "", speed[r]);
            fprintf(t->log.metrics, "]}\n");
            fflush(t->log.metrics);
        }
        if (t->cfg.timing) {
            train_say(t, "balance at step %lld: streams per rank", (long long)t->prog.step);
            for (int r = 0; r < R; r++)
                train_say(t, " %d", rows[r]);
            train_say(t, "\n");
        }
    }
    free(speed);
    free(rows);
}

void train_trace_step(trainer *t)
{
    if (t->cfg.trace_every <= 0 || t->prog.step % t->cfg.trace_every != 0 ||
        !t->task.ops->trace_step)
        return;
    if (t->task.ops->trace_step(&t->task, &t->m, &t->w, t->cfg.out, t->prog.step) != 0)
        dist_abort(1, "%s", cn_errmsg());
}
