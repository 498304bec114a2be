/* optim: optimizers and learning-rate schedules over the flat parameter slab.
 *
 * Update rules follow PyTorch's (torch.optim) except where noted:
 *   sgd     : buf = momentum * buf + g;           p -= lr * buf   (nesterov off)
 *   adam    : m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *             p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *             with weight_decay > 0 first p -= lr * wd * p on weights (AdamW)
 *   rmsprop : v = alpha v + (1-alpha) g^2;        p -= lr * g / (sqrt(v) + eps)
 *             (char-rnn's default; alpha 0.95)
 *   adagrad : v += g^2;                           p -= lr * g / sqrt(v + eps)
 *             (min-char-rnn's form, eps inside the root)
 * A schedule is a pure function of (step, epoch), so resuming needs only the
 * position. The optimizer owns its state arrays (each n long).
 */
#ifndef CHARNN_OPTIM_H
#define CHARNN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef enum { OPTIM_SGD = 0, OPTIM_ADAM = 1, OPTIM_RMSPROP = 2, OPTIM_ADAGRAD = 3 } optim_kind;

typedef struct {
    optim_kind kind;
    float momentum;     /* sgd, default 0.9 */
    float beta1, beta2; /* adam, default 0.9, 0.999 */
    float alpha;        /* rmsprop, default 0.95 */
    float eps;          /* default 1e-8 */
    float weight_decay; /* adam only (decoupled), default 0 */
} optim_config;

typedef struct {
    optim_config cfg;
    size_t n;
    int64_t t; /* updates applied so far */
    float *m;  /* (n) sgd momentum buffer / adam first moment, else NULL */
    float *v;  /* (n) adam second moment / rmsprop mean square / adagrad sum, else NULL */
} optim;

const char *optim_name(optim_kind kind);
int optim_parse(const char *name, optim_kind *out);
/* Defaults for a kind, as listed above. */
void optim_config_default(optim_config *cfg, optim_kind kind);
/* The number of state arrays a kind keeps (0, 1 or 2). */
int optim_state_count(optim_kind kind);

void optim_init(optim *o, const optim_config *cfg, size_t n);
void optim_free(optim *o);
/* One update of params (n) from grads (n) at learning rate lr. decay_mask (n)
 * marks the elements weight decay applies to (NULL: all). */
void optim_step(optim *o, float *params, const float *grads, float lr, const uint8_t *decay_mask);
/* Part of a step, for slabs whose parts do not all train every step
 * (--freeze-stack): update only the elements [begin, end) and their state, as
 * their `updates`-th update (Adam's bias correction counts the updates each
 * element received, as torch.optim's per-parameter step does). The rest and
 * o->t are untouched: the caller advances o->t once per step. optim_step is
 * ++o->t and then the range [0, n) at o->t. */
void optim_step_range(optim *o, float *params, const float *grads, float lr,
                      const uint8_t *decay_mask, size_t begin, size_t end, int64_t updates);

typedef enum {
    SCHED_CONSTANT = 0, /* lr */
    SCHED_STEP = 1,     /* lr * gamma^floor(step / step_size) */
    SCHED_EXP = 2,      /* lr * decay^max(0, epoch - decay_after): full rate through epoch
                           decay_after (epochs count from 0), then one more factor of
                           decay at the start of each later epoch (char-rnn's) */
    SCHED_COSINE = 3    /* linear warmup over `warmup` steps, then cosine from lr to
                           min_lr at total_steps */
} sched_kind;

typedef struct {
    sched_kind kind;
    float lr;
    int64_t step_size;
    float gamma;
    int64_t decay_after;
    float decay;
    int64_t warmup;
    int64_t total_steps;
    float min_lr;
} sched_config;

const char *sched_name(sched_kind kind);
int sched_parse(const char *name, sched_kind *out);
/* The learning rate for update number `step` (0-based) in epoch `epoch`. */
float sched_lr(const sched_config *s, int64_t step, int64_t epoch);

#endif
