/* Run defaults: char-rnn's where it has one (2 x 128 LSTM, seq 50, batch 50,
 * lr 2e-3, clip 5, init 0.08, val/test 0.05 each), Adam as the optimizer. */
#include "charnn/config.h"

#include <math.h>
#include <string.h>

#include "charnn/balance.h"

void config_default(run_config *c)
{
    memset(c, 0, sizeof *c);
    memcpy(c->task, "lm", sizeof "lm");
    c->vocab_mode = VOCAB_CODEPOINTS;
    c->val_frac = 0.05;
    c->test_frac = 0.05;
    c->model.cell = CELL_LSTM;
    c->model.layers = 2;
    c->model.hidden = 128;
    c->model.embed = 0;
    c->model.dropout = 0.0f;
    c->init_scale = 0.08f;
    c->forget_bias = NAN;
    c->seq = 50;
    c->batch = 50;
    c->steps = 0;
    c->epochs = 1.0;
    c->seed = 123;
    c->threads = 0;
    optim_config_default(&c->optim, OPTIM_ADAM);
    c->sched.kind = SCHED_CONSTANT;
    c->sched.lr = 2e-3f;
    c->sched.step_size = 1000;
    c->sched.gamma = 0.5f;
    c->sched.decay_after = 10;
    c->sched.decay = 0.97f;
    c->sched.warmup = 0;
    c->sched.min_lr = 0.0f;
    c->clip = 5.0f;
    c->eval_every = 1000;
    c->eval_chunks = 0;
    c->log_every = 10;
    c->checkpoint_every = 1000;
    c->keep_last = 3;
    c->trace_every = 0;
    c->trace_probe_chars = 500;
    c->max_bad_steps = 5;
    c->nranks = 1;
    c->max_len = 0;
    c->bucket_batches = 50;
    c->class_weights = CONFIG_CLASS_WEIGHTS_NONE;
    c->balanced_sampling = 0;
    c->progress_bar = -1;
    c->balance_min_seconds = BALANCE_MIN_SECONDS;
}
