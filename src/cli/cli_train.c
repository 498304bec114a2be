/* `charnn train`: flags into a run_config, then train_run. See cli.h. */
#include "charnn/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "charnn/balance.h"
#include "charnn/config.h"
#include "charnn/dist.h"
#include "charnn/flags.h"
#include "charnn/runtime.h"
#include "charnn/seq2seq.h"
#include "charnn/slurm.h"
#include "charnn/task.h"
#include "charnn/train.h"

static const flag_choice cell_choices[] = {
    {"rnn", CELL_RNN}, {"lstm", CELL_LSTM}, {"gru", CELL_GRU}, {NULL, 0}};
static const flag_choice optim_choices[] = {{"adam", OPTIM_ADAM},
                                            {"sgd", OPTIM_SGD},
                                            {"rmsprop", OPTIM_RMSPROP},
                                            {"adagrad", OPTIM_ADAGRAD},
                                            {NULL, 0}};
static const flag_choice sched_choices[] = {{"constant", SCHED_CONSTANT},
                                            {"step", SCHED_STEP},
                                            {"exp", SCHED_EXP},
                                            {"cosine", SCHED_COSINE},
                                            {NULL, 0}};

/* --task into run_config.task: a name from the task table (task.h). */
static int parse_task(const char *value, void *dst)
{
    if (!task_find(value))
        return cn_err("unknown task '%s' for --task (tasks: %s)", value, task_names());
    snprintf((char *)dst, CONFIG_NAME_MAX, "%s", value);
    return 0;
}

static const flag_choice cond_choices[] = {
    {"init", COND_INIT}, {"input", COND_INPUT}, {"every", COND_EVERY}, {NULL, 0}};
static const flag_choice pool_choices[] = {
    {"last", HEAD_POOL_LAST}, {"mean", HEAD_POOL_MEAN}, {"max", HEAD_POOL_MAX}, {NULL, 0}};
static const flag_choice activation_choices[] = {
    {"tanh", MLP_TANH}, {"relu", MLP_RELU}, {NULL, 0}};
static const flag_choice class_weight_choices[] = {
    {"none", CONFIG_CLASS_WEIGHTS_NONE}, {"balanced", CONFIG_CLASS_WEIGHTS_BALANCED}, {NULL, 0}};
static const flag_choice attention_choices[] = {{"none", SEQ2SEQ_ATTN_NONE},
                                                {"dot", SEQ2SEQ_ATTN_DOT},
                                                {"general", SEQ2SEQ_ATTN_GENERAL},
                                                {"additive", SEQ2SEQ_ATTN_ADDITIVE},
                                                {NULL, 0}};

static const flag_choice allreduce_choices[] = {{"overlap", 0}, {"blocking", 1}, {NULL, 0}};

/* --balance into run_config.balance (char[CONFIG_PATH_MAX]), checked against
 * the ranks of this launch so that a bad value is a usage error here and not
 * a failure after the data is read. */
static int parse_balance(const char *value, void *dst)
{
    balance_mode mode;
    double *weights;
    if (balance_parse(value, dist_size(), &mode, &weights) != 0)
        return -1;
    free(weights);
    if (strlen(value) >= CONFIG_PATH_MAX)
        return cn_err("--balance '%.40s...' is longer than %d bytes", value,
                      CONFIG_PATH_MAX - 1);
    snprintf((char *)dst, CONFIG_PATH_MAX, "%s", value);
    return 0;
}

/* --time-limit into seconds (double) */
static int parse_time_limit(const char *value, void *dst)
{
    return slurm_parse_duration(value, "--time-limit", (double *)dst);
}

/* cfg->stop_by from --time-limit (seconds, 0 = not given), else from the
 * Slurm job's end, which only rank 0 (the one that decides) asks for; an end
 * that cannot be read is a warning. */
static void set_stop_by(run_config *c, double limit)
{
    const double now = cn_now();
    if (limit > 0.0) {
        c->stop_by = now + limit;
        return;
    }
    if (dist_rank() != 0)
        return;
    double end;
    int rc = slurm_job_end_time(&end);
    if (rc < 0)
        fprintf(stderr, "charnn: warning: %s; training without a time limit\n", cn_errmsg());
    else if (rc > 0)
        c->stop_by = now + (end - (double)time(NULL));
}

int cli_train(int argc, char **argv)
{
    run_config c;
    config_default(&c);
    snprintf(c.out, sizeof c.out, "%s", "runs/charnn");
    int bytes = 0, no_progress = 0, progress = 0;
    double time_limit = 0.0;
    int cond_id = COND_NONE;
    int cell_id = c.model.cell, optim_id = c.optim.kind, sched_id = c.sched.kind;
    int pool_id = c.model.head.pool;
    int act_id = c.model.mlp_act;
    /* bits of this file's own, above the CONFIG_GIVEN_* bits of run_config.given */
    enum { GIVEN_STEPS = 1u << 24, GIVEN_EPOCHS = 1u << 25, GIVEN_ATTENTION = 1u << 26 };
    const flag_spec flags[] = {
        FLAG_CUSTOM("task", c.task, CONFIG_GIVEN_TASK,
                    "what to learn: lm, the next character (default); classify, the class of "
                    "each labelled example; seq2seq, translation of prepared pairs; generate, "
                    "texts from a condition (an examples file's class or --cond-vectors); a "
                    "resumed run keeps its checkpoint's",
                    parse_task),
        FLAG_CHOICE("attention", &c.model.head.attention, GIVEN_ATTENTION,
                    "seq2seq: none | dot | general (Luong) | additive (Bahdanau) (default none)",
                    attention_choices),
        FLAG_CHOICE("cond-mode", &cond_id, 0,
                    "generate: init | input | every: the condition sets h0 (and c0), enters "
                    "the first step's input, or every step's (default init)",
                    cond_choices),
        FLAG("cond-vectors", F_PATH, c.cond_vectors, 0,
             "generate: HDF5 file whose /features (N, D) float32 row i conditions example i "
             "(default: the example's class)", 0, 0),
        FLAG("features", F_PATH, c.features, 0,
             "classify: one numeric vector per example, no sequence: HDF5 /features (N, D) + "
             "/labels (N), or a CSV with a 'label' column (then --data is not needed)", 0, 0),
        FLAG("data", F_PATH, c.data, 0,
             "text file or prepared corpus; classify, generate: examples file (classify also a "
             "small TSV/CSV/JSON lines file or class folder); seq2seq: pairs file (required)",
             0, 0),
        FLAG("out", F_PATH, c.out, 0,
             "run directory for model.h5, checkpoints, metrics.jsonl (default runs/charnn)", 0, 0),
        FLAG_CHOICE("cell", &cell_id, CONFIG_GIVEN_CELL, "rnn | lstm | gru (default lstm)",
                    cell_choices),
        FLAG("layers", F_INT, &c.model.layers, CONFIG_GIVEN_LAYERS,
             "stacked layers (default 2); 0: no recurrent stack, a plain MLP (--features only)",
             0, MODEL_MAX_LAYERS),
        FLAG_CHOICE("activation", &act_id, CONFIG_GIVEN_ACTIVATION,
                    "--layers 0: tanh | relu, the MLP's hidden layer (default tanh)",
                    activation_choices),
        FLAG("hidden", F_INT, &c.model.hidden, CONFIG_GIVEN_HIDDEN, "hidden size (default 128)", 1,
             65536),
        FLAG("embed", F_INT, &c.model.embed, CONFIG_GIVEN_EMBED,
             "input embedding size, 0 = one-hot input (default 0)", 0, 65536),
        FLAG("dropout", F_FLOAT, &c.model.dropout, 0, "dropout between layers (default 0)", 0,
             0.99),
        FLAG("bidirectional", F_BOOL, &c.model.bidirectional, CONFIG_GIVEN_BIDIR,
             "every layer also reads each example backwards (classify, tag; not lm)", 0, 0),
        FLAG("seq", F_INT, &c.seq, CONFIG_GIVEN_SEQ, "BPTT chunk length T (default 50)", 1, 100000),
        FLAG("batch", F_INT, &c.batch, CONFIG_GIVEN_BATCH,
             "streams (classify: examples) per rank B (default 50)", 1, 1000000),
        FLAG_CHOICE("pool", &pool_id, CONFIG_GIVEN_POOL,
                    "classify: last | mean | max of the top states over each example "
                    "(default last)",
                    pool_choices),
        FLAG("max-len", F_INT, &c.max_len, CONFIG_GIVEN_MAX_LEN,
             "classify: characters an example is cut to, 0 = none (default 0)", 0, 100000000),
        FLAG("bucket", F_INT, &c.bucket_batches, CONFIG_GIVEN_BUCKET,
             "classify: sort by length within windows of this many steps' examples, 0 = off "
             "(default 50)",
             0, 1000000),
        FLAG_CHOICE("class-weights", &c.class_weights, CONFIG_GIVEN_CLASS_WEIGHTS,
                    "classify: none | balanced (loss weighted by inverse class frequency; "
                    "default none)",
                    class_weight_choices),
        FLAG("balanced-sampling", F_BOOL, &c.balanced_sampling, CONFIG_GIVEN_BALANCED_SAMPLING,
             "classify: draw every class equally often (with replacement)", 0, 0),
        FLAG("lr", F_FLOAT, &c.sched.lr, 0, "learning rate (default 2e-3)", 0, 1e6),
        FLAG("steps", F_I64, &c.steps, GIVEN_STEPS, "optimizer steps (default: from --epochs)",
             RANGE_POS),
        FLAG("epochs", F_DOUBLE, &c.epochs, GIVEN_EPOCHS,
             "epochs when --steps is not given (default 1)", 0, 1e9),
        FLAG("seed", F_U64, &c.seed, 0, "random seed (default 123)", RANGE_NONNEG),
        FLAG("threads", F_INT, &c.threads, 0,
             "OpenMP threads per rank (default OMP_NUM_THREADS or all cores)", 0, 4096),
        FLAG_CHOICE("optim", &optim_id, CONFIG_GIVEN_OPTIM,
                    "adam | sgd | rmsprop | adagrad (default adam)", optim_choices),
        FLAG("momentum", F_FLOAT, &c.optim.momentum, 0, "sgd momentum (default 0.9)", 0, 1),
        FLAG("beta1", F_FLOAT, &c.optim.beta1, 0, "adam beta1 (default 0.9)", 0, 1),
        FLAG("beta2", F_FLOAT, &c.optim.beta2, 0, "adam beta2 (default 0.999)", 0, 1),
        FLAG("alpha", F_FLOAT, &c.optim.alpha, 0, "rmsprop decay (default 0.95)", 0, 1),
        FLAG("eps", F_FLOAT, &c.optim.eps, 0, "optimizer epsilon (default 1e-8)", 0, 1),
        FLAG("weight-decay", F_FLOAT, &c.optim.weight_decay, 0,
             "adam decoupled weight decay (default 0)", 0, 1e3),
        FLAG_CHOICE("schedule", &sched_id, 0, "constant | step | exp | cosine (default constant)",
                    sched_choices),
        FLAG("step-size", F_I64, &c.sched.step_size, 0, "step schedule: steps per decay (1000)",
             RANGE_POS),
        FLAG("gamma", F_FLOAT, &c.sched.gamma, 0, "step schedule: factor (default 0.5)", 0, 1e3),
        FLAG("decay-after", F_I64, &c.sched.decay_after, 0,
             "exp schedule: epochs at full rate (default 10)", RANGE_NONNEG),
        FLAG("decay", F_FLOAT, &c.sched.decay, 0, "exp schedule: factor per epoch (default 0.97)",
             0, 1e3),
        FLAG("warmup", F_I64, &c.sched.warmup, 0, "cosine schedule: warmup steps (default 0)",
             RANGE_NONNEG),
        FLAG("min-lr", F_FLOAT, &c.sched.min_lr, 0,
             "cosine schedule: final rate; --lr-on-plateau: lowest rate (default 0)", 0,
             1e6),
        FLAG("clip", F_FLOAT, &c.clip, 0, "global gradient-norm clip, 0 = off (default 5)", 0,
             1e12),
        FLAG("init-scale", F_FLOAT, &c.init_scale, 0, "uniform init range (default 0.08)", 0, 100),
        FLAG("forget-bias", F_FLOAT, &c.forget_bias, 0,
             "LSTM forget-gate bias (default: uniform init)", -100, 100),
        FLAG("val-frac", F_DOUBLE, &c.val_frac, 0, "validation fraction (default 0.05)", 0, 1),
        FLAG("test-frac", F_DOUBLE, &c.test_frac, 0, "test fraction (default 0.05)", 0, 1),
        FLAG("bytes", F_BOOL, &bytes, CONFIG_GIVEN_BYTES,
             "tokens are raw bytes, not UTF-8 code points", 0, 0),
        FLAG("eval-every", F_I64, &c.eval_every, 0, "steps between validations (default 1000)",
             RANGE_NONNEG),
        FLAG("eval-chunks", F_I64, &c.eval_chunks, 0, "validation chunks per evaluation, 0 = all",
             RANGE_NONNEG),
        FLAG("log-every", F_I64, &c.log_every, 0, "steps between progress lines (default 10)",
             RANGE_POS),
        FLAG("checkpoint-every", F_I64, &c.checkpoint_every, 0,
             "steps between checkpoints, 0 = end only (default 1000)", RANGE_NONNEG),
        FLAG("keep-last", F_INT, &c.keep_last, 0, "step checkpoints to keep, 0 = all (default 3)",
             0, 1000000),
        FLAG("trace-every", F_I64, &c.trace_every, 0,
             "steps between hidden-state traces into trace_probe.h5 and trace_streams.h5, 0 = off "
             "(default 0)", RANGE_NONNEG),
        FLAG("trace-probe-chars", F_INT, &c.trace_probe_chars, 0,
             "characters of validation text the probe trace runs over (default 500)", 1, 100000000),
        FLAG_CHOICE("precision", &c.precision, CONFIG_GIVEN_PRECISION,
                    "f32 | bf16: the matrix products' operands; bf16 needs AVX512_BF16, sums, "
                    "weights and optimizer state stay FP32 (default f32; a resumed run keeps "
                    "its checkpoint's)",
                    cli_precision_choices),
        FLAG("max-bad-steps", F_INT, &c.max_bad_steps, 0,
             "non-finite steps in a row before giving up (default 5)", 1, 1000000),
        FLAG("patience", F_INT, &c.patience, 0,
             "stop after N validations without a better validation loss (model.h5 and best.h5 "
             "written, exit 0), 0 = off (default 0)", 0, 1000000000),
        FLAG("lr-on-plateau", F_DOUBLE, &c.lr_on_plateau, 0,
             "with --patience: multiply the rate by F (0 < F < 1) instead, down to --min-lr, "
             "then stop (default off)", 0, 1),
        FLAG_CUSTOM("time-limit", &time_limit, 0,
                    "stop with a checkpoint (exit 75) before this much time has passed: 3h50m, "
                    "45m, 90s or seconds (default: the Slurm job's end when known)",
                    parse_time_limit),
        FLAG("time-margin", F_DOUBLE, &c.time_margin, 0,
             "seconds kept before the time limit on top of twice the longest step and twice the "
             "checkpoint write (default 10)", 0, 1e9),
        FLAG("init-from", F_PATH, c.init_from, 0,
             "start a fresh run (step 0, new optimizer state) from this model's parameters and "
             "vocabulary; a resumed run continues from its checkpoint and does not read it", 0, 0),
        FLAG("extend-vocab", F_BOOL, &c.extend_vocab, 0,
             "with --init-from: add the data's characters the model lacks, with fresh rows", 0, 0),
        FLAG("freeze-stack", F_I64, &c.freeze_stack, CONFIG_GIVEN_FREEZE,
             "train only the head for the first N updates, then everything (default 0)",
             RANGE_NONNEG),
        FLAG("resume", F_PATH, c.resume, 0,
             "checkpoint to resume from, or 'auto' (newest valid one in --out)", 0, 0),
        FLAG_CHOICE("allreduce", &c.allreduce_blocking, 0,
                    "overlap | blocking gradient all-reduce (default overlap)", allreduce_choices),
        FLAG_CUSTOM(
            "balance", c.balance, 0,
            "off | auto | w0,w1,...: split the R x B streams of a step over the ranks evenly, by "
            "measured speed (moving streams while training), or by fixed weights (default off)",
            parse_balance),
        FLAG("timing", F_BOOL, &c.timing, 0, "print per-rank compute/communication/idle time", 0,
             0),
        FLAG("progress", F_BOOL, &progress, 0, "always draw the progress bar", 0, 0),
        FLAG("no-progress", F_BOOL, &no_progress, 0, "never draw the progress bar", 0, 0),
    };
    flag_table t = {"train", "--data PATH [--out DIR] [flags]", flags,
                    (int)(sizeof flags / sizeof flags[0]), NULL, 0, NULL};
    unsigned given = 0;
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        return status;
    if (c.features[0]) {
        if (strcmp(c.task, "classify") != 0 && strcmp(c.task, "classify_features") != 0)
            return flags_usage_error(&t, "--features needs --task classify");
        /* the one-to-one classifier is a task of its own (task_features.c) */
        snprintf(c.task, sizeof c.task, "%s", "classify_features");
        if (!c.data[0])
            snprintf(c.data, sizeof c.data, "%s", c.features);
    }
    if (!c.data[0])
        return flags_usage_error(&t, "--data is required");
    if ((given & GIVEN_STEPS) && (given & GIVEN_EPOCHS))
        return flags_usage_error(&t, "give --steps or --epochs, not both");
    if ((given & GIVEN_ATTENTION) && strcmp(c.task, "seq2seq") != 0)
        return flags_usage_error(&t, "--attention goes with --task seq2seq");
    if (!(c.epochs > 0.0))
        return flags_usage_error(&t, "bad value '%g' for --epochs: must be above 0", c.epochs);
    if (c.val_frac + c.test_frac >= 1.0)
        return flags_usage_error(&t, "--val-frac + --test-frac must be below 1");
    if (c.lr_on_plateau != 0.0) {
        if (!(c.lr_on_plateau > 0.0 && c.lr_on_plateau < 1.0))
            return flags_usage_error(&t, "bad value '%g' for --lr-on-plateau: must be above 0 "
                                         "and below 1", c.lr_on_plateau);
        if (c.patience <= 0)
            return flags_usage_error(&t, "--lr-on-plateau needs --patience N: the validations "
                                         "without improvement before each cut");
        if (!(c.sched.min_lr > 0.0f && c.sched.min_lr < c.sched.lr))
            return flags_usage_error(&t, "--lr-on-plateau needs --min-lr above 0 and below "
                                         "--lr: the rate where the cuts end and --patience "
                                         "stops the run");
    }
    if (c.extend_vocab && !c.init_from[0])
        return flags_usage_error(&t, "--extend-vocab needs --init-from");
    c.given = given & ~(unsigned)(GIVEN_STEPS | GIVEN_EPOCHS | GIVEN_ATTENTION);
    c.model.cell = (cell_kind)cell_id;
    c.model.cond.mode = (cond_mode)cond_id;
    if ((c.model.cond.mode != COND_NONE || c.cond_vectors[0]) && strcmp(c.task, "generate") != 0)
        return flags_usage_error(&t, "--cond-mode and --cond-vectors need --task generate");
    c.optim.kind = (optim_kind)optim_id;
    c.sched.kind = (sched_kind)sched_id;
    c.model.head.pool = (head_pool)pool_id;
    c.model.mlp_act = (mlp_activation)act_id;
    c.vocab_mode = bytes ? VOCAB_BYTES : VOCAB_CODEPOINTS;
    c.progress_bar = no_progress ? 0 : progress ? 1 : -1;
    set_stop_by(&c, time_limit);
    runtime_set_threads(c.threads);
    return train_run(&c);
}
