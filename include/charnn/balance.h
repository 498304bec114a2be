/* balance: how the S streams of a training step are split over the ranks.
 *
 * Rank r holds the contiguous streams [first_r, first_r + n_r), n_0 + ... +
 * n_{R-1} = S. By default S = R x B and every rank holds B. The gradient is a
 * sum over all S streams whichever rank adds which, so any split trains the
 * same model (up to the order of float additions). A synchronous step waits
 * for its slowest rank; on cores of unequal speed (a busy neighbour, a slower
 * node) --balance gives the faster ones more streams:
 *
 *   --balance off        R x B, every run bit-for-bit repeatable (the default)
 *   --balance 3,5,...    one positive weight per rank: S split in proportion,
 *                        fixed for the run
 *   --balance auto       after the first few steps and then about every
 *                        second (see below) the ranks compare their smoothed
 *                        streams per second of compute and move streams (and
 *                        their carried states) from slow to fast ranks when
 *                        that is predicted to shorten the step by more than
 *                        the estimates' noise can explain. The split then depends on
 *                        timing, so two runs no longer add in the same order
 *                        and are not bit-for-bit alike.
 */
#ifndef CHARNN_BALANCE_H
#define CHARNN_BALANCE_H

#include <stdint.h>

#include "charnn/model.h"

typedef enum { BALANCE_OFF = 0, BALANCE_WEIGHTS, BALANCE_AUTO } balance_mode;

/* Auto mode's cadence: the first BALANCE_WARMUP steps (cold caches, first
 * touches) are not measured; the first decision follows BALANCE_FIRST
 * measured steps; after that a window lasts about `window_seconds` of the
 * slowest rank's compute (BALANCE_WINDOW_SECONDS unless a test lowers it),
 * and between BALANCE_EVERY_MIN and BALANCE_EVERY_MAX steps. */
#define BALANCE_WARMUP 1
#define BALANCE_FIRST 2
#define BALANCE_EVERY_MIN 5
#define BALANCE_EVERY_MAX 50
#define BALANCE_WINDOW_SECONDS 1.0
/* Smoothing: estimates move by BALANCE_ALPHA of a window's deviation, the
 * noise estimate by BALANCE_BETA; a deviation beyond BALANCE_JUMP noise
 * sigmas is a speed change once the next window confirms it (then the
 * estimate restarts from the new level), an outlier otherwise. */
#define BALANCE_ALPHA 0.5
#define BALANCE_BETA 0.3
#define BALANCE_JUMP 4.0
/* Until windows have been compared, the per-step jitter is the measured one
 * pooled over ranks with a prior of BALANCE_PRIOR_SD (relative standard
 * deviation) worth BALANCE_PRIOR_DOF steps. */
#define BALANCE_PRIOR_SD 0.05
#define BALANCE_PRIOR_DOF 4
/* Hysteresis: a move must promise a step shorter by BALANCE_MIN_GAIN plus
 * (BALANCE_NOISE_Z + sqrt(2 ln R)) standard deviations of the speed
 * estimates' relative error (sqrt(2 ln R): how far the slowest of R noisy
 * estimates falls below their mean). */
#define BALANCE_MIN_GAIN 0.01
#define BALANCE_NOISE_Z 3.0

/* Auto mode's memory, the same on every rank: all of it is computed from
 * all-reduced window sums (each summed with zeros only, so exact everywhere).
 * balance_auto_step and balance_auto_window are this rank's; decide is a
 * pure function of the all-reduced sums. */
typedef struct {
    int R;
    double window_seconds;
    int64_t steps;       /* steps seen, warm-up included */
    int window_len;      /* steps in the current window */
    int in_window;       /* steps measured in it so far */
    double sum, sumsq;   /* this rank's compute seconds per step in it, and their squares */
    int windows;         /* windows decided on */
    double *speed;       /* (R) smoothed rows per second */
    double *jitter;      /* (R) relative variance of one step's time as the windows show it */
    double *var;         /* (R) relative variance of speed's error */
    double *pending;     /* (R) a large deviation awaiting confirmation, else 0 */
    double gain, threshold; /* the last decision's predicted gain and the bar it had to clear */
} balance_auto;

void balance_auto_init(balance_auto *a, int R, double window_seconds);
void balance_auto_free(balance_auto *a);
/* After every step, this rank's compute seconds of it; 1 when the window
 * ends with this step (then call balance_auto_window and decide; the same
 * on every rank, as it counts steps only). */
int balance_auto_step(balance_auto *a, double seconds);
/* This rank's (r) window sums into slots r and R + r of sums (2R, zeros
 * elsewhere), to be all-reduced. Starts the next window. */
void balance_auto_window(balance_auto *a, int r, double *sums);
/* From the all-reduced window sums (2R: per rank the sum of its step times,
 * then of their squares) under split cur: update the estimates and the next
 * window's length, and choose the split for S rows into out (each in
 * [lo, hi]); 1 when it moves rows (out differs from cur), else 0 (out =
 * cur). */
int balance_auto_decide(balance_auto *a, int S, const int *cur, int lo, int hi,
                        const double *sums, int *out);

/* Parse --balance for R ranks: "off", "auto", or R positive weights separated
 * by commas; for weights *weights gets a malloc'd array of R. 0, or -1 with a
 * message naming the flag. */
int balance_parse(const char *text, int R, balance_mode *mode, double **weights);

/* Split S streams over R ranks so that max_r counts[r] / w[r] is smallest, each
 * count within [lo, hi] (R*lo <= S <= R*hi); ties go to the lower rank. */
void balance_split(int R, int S, const double *w, int lo, int hi, int *counts);

/* max_r counts[r] / speed[r]: the step time of a split at these speeds. */
double balance_step_time(int R, const int *counts, const double *speed);

/* Auto mode: the split for the measured speeds (streams per second, > 0) into
 * out; returns 1 when it differs from cur and its predicted step time is more
 * than min_gain (a fraction) below cur's, else 0 (out then equals cur). */
int balance_choose(int R, int S, const double *speed, const int *cur, int lo, int hi,
                   double min_gain, int *out);

/* The first stream of rank r under counts. */
int balance_first(const int *counts, int r);

/* Collective over the R ranks: this rank (r) holds st for the streams of split
 * `from`; afterwards st holds (reallocated) the states of its streams under
 * `to`. The states travel exactly (each value is summed with zeros only). */
void balance_move_states(model_state *st, int R, int r, const int *from, const int *to);

#endif
