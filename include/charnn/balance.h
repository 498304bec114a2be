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
 *   --balance auto       now and then (see below) the ranks compare their
 *                        measured streams per second of compute and move
 *                        streams (and their carried states) from slow to fast
 *                        ranks when that is predicted to shorten the step by
 *                        more than BALANCE_MIN_GAIN. The split then depends on
 *                        timing, so two runs no longer add in the same order
 *                        and are not bit-for-bit alike.
 */
#ifndef CHARNN_BALANCE_H
#define CHARNN_BALANCE_H

#include "charnn/model.h"

typedef enum { BALANCE_OFF = 0, BALANCE_WEIGHTS, BALANCE_AUTO } balance_mode;

/* Auto mode: the ranks compare speeds every BALANCE_EVERY steps once each has
 * measured at least BALANCE_MIN_SECONDS of compute since the last decision
 * (short windows of small models are mostly noise), and a move must promise a
 * step BALANCE_MIN_GAIN shorter. */
#define BALANCE_EVERY 10
#define BALANCE_MIN_SECONDS 1.0
#define BALANCE_MIN_GAIN 0.01

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
