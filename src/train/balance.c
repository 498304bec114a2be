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
