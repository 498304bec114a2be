/* balance: splitting the streams of a step over ranks of unequal speed. See
 * balance.h. */
#include "charnn/balance.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/dist.h"

int balance_parse(const char *text, int R, balance_mode *mode, double **weights)
{
    *weights = NULL;
    if (strcmp(text, "off") == 0 || text[0] == '\0') {
        *mode = BALANCE_OFF;
        return 0;
    }
    if (strcmp(text, "auto") == 0) {
        *mode = BALANCE_AUTO;
        return 0;
    }
    double *w = cn_xcalloc((size_t)R, sizeof *w);
    const char *p = text;
    int n = 0;
    for (;;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno != 0 || !(v > 0.0) || !isfinite(v) || (*end != ',' && *end)) {
            free(w);
            return cn_err("--balance '%s': expected off, auto, or one positive weight per rank "
                          "separated by commas",
                          text);
        }
        if (n < R)
            w[n] = v;
        n++;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    if (n != R) {
        free(w);
        return cn_err("--balance '%s' gives %d weight%s for %d rank%s", text, n, n == 1 ? "" : "s",
                      R, R == 1 ? "" : "s");
    }
    *mode = BALANCE_WEIGHTS;
    *weights = w;
    return 0;
}

void balance_split(int R, int S, const double *w, int lo, int hi, int *counts)
{
    CHARNN_ASSERT(R >= 1 && lo >= 0 && lo <= hi && (long)R * lo <= S && S <= (long)R * hi);
    for (int r = 0; r < R; r++)
        counts[r] = lo;
    /* Greedy: each stream goes where the resulting time is smallest. Adding one
     * at a time in that order minimises the largest count / weight. */
    for (int left = S - R * lo; left > 0; left--) {
        int best = -1;
        double best_t = INFINITY;
        for (int r = 0; r < R; r++) {
            if (counts[r] >= hi)
                continue;
            double t = (counts[r] + 1) / w[r];
            if (t < best_t) {
                best_t = t;
                best = r;
            }
        }
        CHARNN_ASSERT(best >= 0);
        counts[best]++;
    }
}

double balance_step_time(int R, const int *counts, const double *speed)
{
    double t = 0.0;
    for (int r = 0; r < R; r++)
        if (counts[r] / speed[r] > t)
            t = counts[r] / speed[r];
    return t;
}

int balance_choose(int R, int S, const double *speed, const int *cur, int lo, int hi,
                   double min_gain, int *out)
{
    for (int r = 0; r < R; r++)
        if (!(speed[r] > 0.0) || !isfinite(speed[r])) {
            memcpy(out, cur, (size_t)R * sizeof *out);
            return 0;
        }
    balance_split(R, S, speed, lo, hi, out);
    int differs = memcmp(out, cur, (size_t)R * sizeof *out) != 0;
    if (differs && balance_step_time(R, out, speed) < (1.0 - min_gain) *
                                                          balance_step_time(R, cur, speed))
        return 1;
    memcpy(out, cur, (size_t)R * sizeof *out);
    return 0;
}

void balance_auto_init(balance_auto *a, int R, double window_seconds)
{
    memset(a, 0, sizeof *a);
    a->R = R;
    a->window_seconds = window_seconds;
    a->window_len = BALANCE_FIRST;
    a->speed = cn_xcalloc((size_t)R, sizeof *a->speed);
    a->jitter = cn_xcalloc((size_t)R, sizeof *a->jitter);
    a->var = cn_xcalloc((size_t)R, sizeof *a->var);
    a->pending = cn_xcalloc((size_t)R, sizeof *a->pending);
}

void balance_auto_free(balance_auto *a)
{
    free(a->speed);
    free(a->jitter);
    free(a->var);
    free(a->pending);
    memset(a, 0, sizeof *a);
}

int balance_auto_step(balance_auto *a, double seconds)
{
    if (++a->steps <= BALANCE_WARMUP)
        return 0;
    a->sum += seconds;
    a->sumsq += seconds * seconds;
    return ++a->in_window == a->window_len;
}

void balance_auto_window(balance_auto *a, int r, double *sums)
{
    memset(sums, 0, 2 * (size_t)a->R * sizeof *sums);
    sums[r] = a->sum;
    sums[a->R + r] = a->sumsq;
    a->sum = a->sumsq = 0.0;
    a->in_window = 0;
}

/* Relative variance of one step's time within the window, of n steps with
 * time sum s and square sum q. */
static double step_jitter(double s, double q, int n)
{
    if (n < 2)
        return 0.0;
    const double mean = s / n, v = (q - s * mean) / (n - 1);
    return v > 0.0 ? v / (mean * mean) : 0.0;
}

/* One rank's estimate after a window's speed x (of n steps). */
static void auto_update(balance_auto *a, int r, double x, int n)
{
    const double d = x / a->speed[r] - 1.0;
    /* d's variance: the window's own noise plus the estimate's */
    const double dvar = a->jitter[r] / n + a->var[r];
    if (d * d > BALANCE_JUMP * BALANCE_JUMP * dvar) {
        if (a->pending[r] * d > 0.0) { /* confirmed: a new speed, start from it */
            a->speed[r] = x;
            a->var[r] = a->jitter[r] / n;
            a->pending[r] = 0.0;
            return;
        }
        if (a->pending[r] != 0.0) /* the other way: the last one was noise */
            a->jitter[r] += BALANCE_BETA * (a->pending[r] * a->pending[r] * n - a->jitter[r]);
        a->pending[r] = d;
        return;
    }
    if (a->pending[r] != 0.0) { /* the last window was an outlier: count it as noise */
        a->jitter[r] += BALANCE_BETA * (a->pending[r] * a->pending[r] * n - a->jitter[r]);
        a->pending[r] = 0.0;
    }
    /* E d^2 = jitter / n + var, and var settles at jitter / n * alpha / (2 - alpha) */
    const double seen = d * d * n * (1.0 - 0.5 * BALANCE_ALPHA);
    a->jitter[r] += BALANCE_BETA * (seen - a->jitter[r]);
    a->speed[r] += BALANCE_ALPHA * (x - a->speed[r]);
    a->var[r] = (1.0 - BALANCE_ALPHA) * (1.0 - BALANCE_ALPHA) * a->var[r] +
                BALANCE_ALPHA * BALANCE_ALPHA * a->jitter[r] / n;
}

int balance_auto_decide(balance_auto *a, int S, const int *cur, int lo, int hi,
                        const double *sums, int *out)
{
    const int R = a->R, n = a->window_len;
    memcpy(out, cur, (size_t)R * sizeof *out);
    a->gain = 0.0;
    double slowest = 0.0;
    for (int r = 0; r < R; r++) {
        if (!(sums[r] > 0.0) || !isfinite(sums[r]) || !isfinite(sums[R + r]))
            return 0; /* nothing measured: keep the split and the window */
        slowest = fmax(slowest, sums[r] / n);
    }
    if (a->windows == 0) {
        /* the first window: jitter pooled over ranks, with the prior */
        double q = BALANCE_PRIOR_DOF * BALANCE_PRIOR_SD * BALANCE_PRIOR_SD;
        for (int r = 0; r < R; r++)
            q += (n - 1) * step_jitter(sums[r], sums[R + r], n);
        q /= BALANCE_PRIOR_DOF + R * (n - 1);
        for (int r = 0; r < R; r++) {
            a->speed[r] = cur[r] * n / sums[r];
            a->jitter[r] = q;
            a->var[r] = q / n;
        }
    } else {
        for (int r = 0; r < R; r++)
            auto_update(a, r, cur[r] * n / sums[r], n);
    }
    a->windows++;
    const double want = ceil(a->window_seconds / slowest);
    a->window_len = want < BALANCE_EVERY_MIN   ? BALANCE_EVERY_MIN
                    : want > BALANCE_EVERY_MAX ? BALANCE_EVERY_MAX
                                               : (int)want;
    double v = 0.0;
    for (int r = 0; r < R; r++)
        v += a->var[r];
    a->threshold = BALANCE_MIN_GAIN +
                   (BALANCE_NOISE_Z + sqrt(2.0 * log(R > 1 ? R : 2))) * sqrt(v / R);
    if (a->threshold >= 1.0)
        return 0;
    balance_split(R, S, a->speed, lo, hi, out);
    a->gain = 1.0 - balance_step_time(R, out, a->speed) / balance_step_time(R, cur, a->speed);
    return balance_choose(R, S, a->speed, cur, lo, hi, a->threshold, out);
}

int balance_first(const int *counts, int r)
{
    int first = 0;
    for (int q = 0; q < r; q++)
        first += counts[q];
    return first;
}

/* (L, S, H) <- this rank's rows, zeros elsewhere, summed over ranks. */
static float *gather_global(const float *mine, int L, int S, int H, int first, int n)
{
    float *all = cn_xcalloc((size_t)L * S * H, sizeof *all);
    for (int l = 0; l < L; l++)
        memcpy(all + ((size_t)l * S + first) * H, mine + (size_t)l * n * H,
               (size_t)n * H * sizeof *all);
    dist_allreduce_sum_f32(all, (size_t)L * S * H);
    return all;
}

static float *take_rows(const float *all, int L, int S, int H, int first, int n)
{
    float *mine = cn_xmalloc((size_t)L * n * H * sizeof *mine);
    for (int l = 0; l < L; l++)
        memcpy(mine + (size_t)l * n * H, all + ((size_t)l * S + first) * H,
               (size_t)n * H * sizeof *mine);
    return mine;
}

void balance_move_states(model_state *st, int R, int r, const int *from, const int *to)
{
    const int L = st->layers, H = st->hidden, S = balance_first(from, R);
    CHARNN_ASSERT(st->batch == from[r] && balance_first(to, R) == S);
    const int f0 = balance_first(from, r), f1 = balance_first(to, r);
    float *all = gather_global(st->h, L, S, H, f0, from[r]);
    free(st->h);
    st->h = take_rows(all, L, S, H, f1, to[r]);
    free(all);
    if (st->c) {
        all = gather_global(st->c, L, S, H, f0, from[r]);
        free(st->c);
        st->c = take_rows(all, L, S, H, f1, to[r]);
        free(all);
    }
    st->batch = to[r];
}
