/* Learning-rate schedules: pure functions of (step, epoch), computed in double.
 * See optim.h. */
#include <math.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/optim.h"

/* M_PI is not part of ISO C. */
static const double CN_PI = 3.14159265358979323846;

static const char *const sched_names[] = {"constant", "step", "exp", "cosine"};
enum { SCHED_KINDS = sizeof sched_names / sizeof sched_names[0] };

const char *sched_name(sched_kind kind)
{
    if ((unsigned)kind >= SCHED_KINDS)
        return "unknown";
    return sched_names[kind];
}

int sched_parse(const char *name, sched_kind *out)
{
    for (unsigned k = 0; k < SCHED_KINDS; k++) {
        if (strcmp(name, sched_names[k]) == 0) {
            *out = (sched_kind)k;
            return 0;
        }
    }
    return cn_err("unknown schedule '%s' (expected constant, step, exp or cosine)", name);
}

static double sched_cosine(const sched_config *s, int64_t step)
{
    double lr = s->lr, min_lr = s->min_lr;
    if (step < s->warmup)
        return lr * (double)(step + 1) / (double)s->warmup;
    int64_t span = s->total_steps - s->warmup;
    double progress = (double)(step - s->warmup) / (double)(span > 1 ? span : 1);
    if (progress < 0.0)
        progress = 0.0;
    if (progress > 1.0)
        progress = 1.0;
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + cos(CN_PI * progress));
}

float sched_lr(const sched_config *s, int64_t step, int64_t epoch)
{
    CHARNN_ASSERT(step >= 0 && epoch >= 0);
    double lr = s->lr;
    switch (s->kind) {
    case SCHED_CONSTANT:
        return (float)lr;
    case SCHED_STEP:
        if (s->step_size <= 0)
            return (float)lr;
        return (float)(lr * pow((double)s->gamma, (double)(step / s->step_size)));
    case SCHED_EXP: {
        int64_t k = epoch - s->decay_after;
        return (float)(k > 0 ? lr * pow((double)s->decay, (double)k) : lr);
    }
    case SCHED_COSINE:
        return (float)sched_cosine(s, step);
    }
    CHARNN_ASSERT(!"unknown schedule kind");
    return (float)lr;
}
