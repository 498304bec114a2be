/* The command line: a table of flags per subcommand, parsed strictly (an
 * unknown flag or a bad value prints usage and exits 2). See cli.h. */
#include "charnn/cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/config.h"
#include "charnn/corpus.h"
#include "charnn/data.h"
#include "charnn/dist.h"
#include "charnn/evaluate.h"
#include "charnn/flags.h"
#include "charnn/inspect.h"
#include "charnn/runtime.h"
#include "charnn/sample.h"
#include "charnn/trace.h"
#include "charnn/analyze.h"
#include "charnn/textgen.h"
#include "charnn/train.h"

static int cmd_train(int argc, char **argv)
{
    run_config c;
    config_default(&c);
    snprintf(c.out, sizeof c.out, "%s", "runs/charnn");
    int bytes = 0, no_progress = 0, progress = 0;
    optim_kind okind = c.optim.kind;
    (void)okind;
    const flag_spec flags[] = {
        {"data", F_PATH, c.data, 0, "text file or prepared corpus (required)", 0, 0},
        {"out", F_PATH, c.out, 0, "run directory for model.h5, checkpoints, metrics.jsonl "
                                  "(default runs/charnn)", 0, 0},
        {"cell", F_CELL, &c.model.cell, CONFIG_GIVEN_CELL, "rnn | lstm | gru (default lstm)", 0, 0},
        {"layers", F_INT, &c.model.layers, CONFIG_GIVEN_LAYERS, "stacked layers (default 2)", 1,
         MODEL_MAX_LAYERS},
        {"hidden", F_INT, &c.model.hidden, CONFIG_GIVEN_HIDDEN, "hidden size (default 128)", 1,
         65536},
        {"embed", F_INT, &c.model.embed, CONFIG_GIVEN_EMBED,
         "input embedding size, 0 = one-hot input (default 0)", 0, 65536},
        {"dropout", F_FLOAT, &c.model.dropout, 0, "dropout between layers (default 0)", 0, 0.99},
        {"seq", F_INT, &c.seq, CONFIG_GIVEN_SEQ, "BPTT chunk length T (default 50)", 1, 100000},
        {"batch", F_INT, &c.batch, CONFIG_GIVEN_BATCH, "streams per rank B (default 50)", 1,
         1000000},
        {"lr", F_FLOAT, &c.sched.lr, 0, "learning rate (default 2e-3)", 0, 1e6},
        {"steps", F_I64, &c.steps, 0, "optimizer steps (default: from --epochs)", RANGE_NONNEG},
        {"epochs", F_DOUBLE, &c.epochs, 0, "epochs when --steps is not given (default 1)", 0,
         1e9},
        {"seed", F_U64, &c.seed, 0, "random seed (default 123)", RANGE_NONNEG},
        {"threads", F_INT, &c.threads, 0, "OpenMP threads per rank (default OMP_NUM_THREADS "
                                          "or all cores)", 0, 4096},
        {"optim", F_OPTIM, &c.optim, CONFIG_GIVEN_OPTIM, "adam | sgd | rmsprop | adagrad "
                                                         "(default adam)", 0, 0},
        {"momentum", F_FLOAT, &c.optim.momentum, 0, "sgd momentum (default 0.9)", 0, 1},
        {"beta1", F_FLOAT, &c.optim.beta1, 0, "adam beta1 (default 0.9)", 0, 1},
        {"beta2", F_FLOAT, &c.optim.beta2, 0, "adam beta2 (default 0.999)", 0, 1},
        {"alpha", F_FLOAT, &c.optim.alpha, 0, "rmsprop decay (default 0.95)", 0, 1},
        {"eps", F_FLOAT, &c.optim.eps, 0, "optimizer epsilon (default 1e-8)", 0, 1},
        {"weight-decay", F_FLOAT, &c.optim.weight_decay, 0,
         "adam decoupled weight decay (default 0)", 0, 1e3},
        {"schedule", F_SCHED, &c.sched.kind, 0, "constant | step | exp | cosine (default "
                                                "constant)", 0, 0},
        {"step-size", F_I64, &c.sched.step_size, 0, "step schedule: steps per decay (1000)",
         RANGE_POS},
        {"gamma", F_FLOAT, &c.sched.gamma, 0, "step schedule: factor (default 0.5)", 0, 1e3},
        {"decay-after", F_I64, &c.sched.decay_after, 0,
         "exp schedule: epochs at full rate (default 10)", RANGE_NONNEG},
        {"decay", F_FLOAT, &c.sched.decay, 0, "exp schedule: factor per epoch (default 0.97)", 0,
         1e3},
        {"warmup", F_I64, &c.sched.warmup, 0, "cosine schedule: warmup steps (default 0)",
         RANGE_NONNEG},
        {"min-lr", F_FLOAT, &c.sched.min_lr, 0, "cosine schedule: final rate (default 0)", 0, 1e6},
        {"clip", F_FLOAT, &c.clip, 0, "global gradient-norm clip, 0 = off (default 5)", 0, 1e12},
        {"init-scale", F_FLOAT, &c.init_scale, 0, "uniform init range (default 0.08)", 0, 100},
        {"forget-bias", F_FLOAT, &c.forget_bias, 0, "LSTM forget-gate bias (default: uniform "
                                                    "init)", -100, 100},
        {"val-frac", F_DOUBLE, &c.val_frac, 0, "validation fraction (default 0.05)", 0, 1},
        {"test-frac", F_DOUBLE, &c.test_frac, 0, "test fraction (default 0.05)", 0, 1},
        {"bytes", F_BOOL, &bytes, CONFIG_GIVEN_BYTES, "tokens are raw bytes, not UTF-8 code "
                                                      "points", 0, 0},
        {"eval-every", F_I64, &c.eval_every, 0, "steps between validations (default 1000)",
         RANGE_NONNEG},
        {"eval-chunks", F_I64, &c.eval_chunks, 0, "validation chunks per evaluation, 0 = all",
         RANGE_NONNEG},
        {"log-every", F_I64, &c.log_every, 0, "steps between progress lines (default 10)",
         RANGE_POS},
        {"checkpoint-every", F_I64, &c.checkpoint_every, 0,
         "steps between checkpoints, 0 = end only (default 1000)", RANGE_NONNEG},
        {"keep-last", F_INT, &c.keep_last, 0, "step checkpoints to keep, 0 = all (default 3)", 0,
         1000000},
        {"trace-every", F_I64, &c.trace_every, 0, "steps between hidden-state traces into "
                                                  "trace_probe.h5 and trace_streams.h5, 0 = off "
                                                  "(default 0)", RANGE_NONNEG},
        {"trace-probe-chars", F_INT, &c.trace_probe_chars, 0,
         "characters of validation text the probe trace runs over (default 500)", 1, 100000000},
        {"max-bad-steps", F_INT, &c.max_bad_steps, 0,
         "non-finite steps in a row before giving up (default 5)", 1, 1000000},
        {"resume", F_PATH, c.resume, 0, "checkpoint to resume from, or 'auto' (newest valid one "
                                        "in --out)", 0, 0},
        {"allreduce", F_ALLREDUCE, &c.allreduce_blocking, 0,
         "overlap | blocking gradient all-reduce (default overlap)", 0, 0},
        {"balance", F_PATH, c.balance, 0,
         "off | auto | w0,w1,...: split the R x B streams of a step over the ranks evenly, by "
         "measured speed (moving streams while training), or by fixed weights (default off)",
         0, 0},
        {"timing", F_BOOL, &c.timing, 0, "print per-rank compute/communication/idle time", 0, 0},
        {"progress", F_BOOL, &progress, 0, "always draw the progress bar", 0, 0},
        {"no-progress", F_BOOL, &no_progress, 0, "never draw the progress bar", 0, 0},
    };
    flag_table t = {"train", "--data PATH [--out DIR] [flags]", flags,
                    (int)(sizeof flags / sizeof flags[0])};
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &c.given, &status))
        return status;
    if (!c.data[0])
        return flags_usage_error(&t, "--data is required%s%s", "", "");
    if (c.val_frac + c.test_frac >= 1.0)
        return flags_usage_error(&t, "--val-frac + --test-frac must be below 1%s%s", "", "");
    c.vocab_mode = bytes ? VOCAB_BYTES : VOCAB_CODEPOINTS;
    c.progress_bar = no_progress ? 0 : progress ? 1 : -1;
    runtime_set_threads(c.threads);
    return train_run(&c);
}

static int cmd_eval(int argc, char **argv)
{
    eval_options o = {.split = SPLIT_ALL};
    char model_path[CONFIG_PATH_MAX] = "", data[CONFIG_PATH_MAX] = "";
    int threads = 0;
    unsigned given = 0;
    const flag_spec flags[] = {
        {"model", F_PATH, model_path, 0, "model file or checkpoint written by train (required)", 0, 0},
        {"data", F_PATH, data, 0, "text file (required)", 0, 0},
        {"split", F_SPLIT, &o.split, 0, "train | val | test | all (default all)", 0, 0},
        {"batch", F_INT, &o.batch, 0, "streams, 0 = the model's (default 0)", 0, 1000000},
        {"seq", F_INT, &o.seq, 0, "chunk length, 0 = the model's (default 0)", 0, 100000},
        {"threads", F_INT, &threads, 0, "OpenMP threads (default all cores)", 0, 4096},
        {"json", F_BOOL, &o.json, 0, "print one JSON object: loss, bpc, perplexity, tokens", 0,
         0},
    };
    flag_table t = {"eval", "--model PATH --data PATH [--split S] [--json]", flags,
                    (int)(sizeof flags / sizeof flags[0])};
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        return status;
    if (!model_path[0] || !data[0])
        return flags_usage_error(&t, "--model and --data are required%s%s", "", "");
    o.model_path = model_path;
    o.data_path = data;
    runtime_set_threads(threads);
    if (eval_run(&o) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return TRAIN_EXIT_ERROR;
    }
    return 0;
}

static int cmd_sample(int argc, char **argv)
{
    sample_options o = {.length = 500, .temperature = 1.0, .top_k = 0, .prime = "", .seed = 123,
                        .threads = 1};
    char model_path[CONFIG_PATH_MAX] = "";
    unsigned given = 0;
    const flag_spec flags[] = {
        {"model", F_PATH, model_path, 0, "model file or checkpoint written by train (required)", 0, 0},
        {"length", F_I64, &o.length, 0, "characters to generate (default 500)", 0, 1e15},
        {"temperature", F_DOUBLE, &o.temperature, 0,
         "sampling temperature, 0 = greedy (default 1)", 0, 1e6},
        {"top-k", F_INT, &o.top_k, 0, "sample among the k most likely, 0 = all (default 0)", 0,
         INT_MAX},
        {"prime", F_STR, &o.prime, 0, "text to start from (default: a random character)", 0, 0},
        {"seed", F_U64, &o.seed, 0, "random seed (default 123)", RANGE_NONNEG},
        {"threads", F_INT, &o.threads, 0, "OpenMP threads (default 1)", 0, 4096},
    };
    flag_table t = {"sample", "--model PATH [--length N] [--temperature X] [--top-k K] "
                              "[--prime TEXT] [--seed S]", flags,
                    (int)(sizeof flags / sizeof flags[0])};
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        return status;
    if (!model_path[0])
        return flags_usage_error(&t, "--model is required%s%s", "", "");
    o.model_path = model_path;
    if (sample_run(&o, stdout) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return TRAIN_EXIT_ERROR;
    }
    return 0;
}

static int cmd_prepare(int argc, char **argv)
{
    char out[CONFIG_PATH_MAX] = "";
    double val_frac = 0.05, test_frac = 0.05;
    int bytes = 0;
    unsigned given = 0;
    const flag_spec flags[] = {
        {"out", F_PATH, out, 0, "HDF5 corpus to write (required)", 0, 0},
        {"val-frac", F_DOUBLE, &val_frac, 0, "validation fraction (default 0.05)", 0, 1},
        {"test-frac", F_DOUBLE, &test_frac, 0, "test fraction (default 0.05)", 0, 1},
        {"bytes", F_BOOL, &bytes, 0, "tokens are raw bytes, not UTF-8 code points", 0, 0},
    };
    flag_table t = {"prepare", "TEXT... --out corpus.h5 [--val-frac X] [--test-frac X] [--bytes]",
                    flags, (int)(sizeof flags / sizeof flags[0])};
    /* the text files come first, the flags after them */
    int n_inputs = 0;
    while (n_inputs < argc && strncmp(argv[n_inputs], "--", 2) != 0)
        n_inputs++;
    int status;
    if (flags_parse_or_exit(&t, argc - n_inputs, argv + n_inputs, &given, &status))
        return status;
    if (n_inputs == 0 || !out[0])
        return flags_usage_error(&t, "give at least one text file and --out%s%s", "", "");
    if (val_frac + test_frac >= 1.0)
        return flags_usage_error(&t, "--val-frac + --test-frac must be below 1%s%s", "", "");
    double t0 = cn_now();
    if (corpus_prepare((const char *const *)argv, n_inputs, out,
                       bytes ? VOCAB_BYTES : VOCAB_CODEPOINTS, val_frac, test_frac,
                       CORPUS_DEFAULT_BUFFER_BYTES) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return TRAIN_EXIT_ERROR;
    }
    printf("prepared '%s' from %d file%s in %.1fs\n", out, n_inputs, n_inputs == 1 ? "" : "s",
           cn_now() - t0);
    return 0;
}

static int cmd_inspect(int argc, char **argv)
{
    int json = 0;
    unsigned given = 0;
    const flag_spec flags[] = {
        {"json", F_BOOL, &json, 0, "print one JSON object", 0, 0},
    };
    flag_table t = {"inspect", "PATH [--json]", flags, (int)(sizeof flags / sizeof flags[0])};
    /* the path may come before or after the flags */
    const char *path = NULL;
    char *rest[8];
    int n_rest = 0;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "-", 1) != 0 && !path)
            path = argv[i];
        else if (n_rest < 8)
            rest[n_rest++] = argv[i];
        else
            return flags_usage_error(&t, "too many arguments%s%s", "", "");
    }
    int status;
    if (flags_parse_or_exit(&t, n_rest, rest, &given, &status))
        return status;
    if (!path)
        return flags_usage_error(&t, "give the checkpoint to inspect%s%s", "", "");
    if (inspect_run(path, json, stdout) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return TRAIN_EXIT_ERROR;
    }
    return 0;
}

static void print_main_usage(FILE *f)
{
    fprintf(f,
            "usage: %s COMMAND [flags]\n\n"
            "Train, evaluate and sample character-level RNN, LSTM and GRU language models.\n\n"
            "commands:\n"
            "  prepare  encode text files into an HDF5 corpus for training at any size\n"
            "  train    train a model on a text file or prepared corpus (truncated BPTT)\n"
            "  eval     loss, bits per character and perplexity of a model on a text\n"
            "  sample   generate text from a model\n"
            "  inspect  metadata, hyperparameters, progress and tensor norms of a checkpoint\n"
            "  trace    record hidden states, gates and gradient flow over a text (HDF5)\n"
            "  analyze  find interpretable cells in a trace: saturation, feature correlations\n"
            "  generate write synthetic structured text (nested brackets, quotes) for tests\n"
            "  version  print the version\n\n"
            "Run '%s COMMAND --help' for the flags of a command.\n",
            "charnn", "charnn");
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        print_main_usage(stderr);
        return TRAIN_EXIT_USAGE;
    }
    runtime_init();
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_main_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("charnn %s\n", runtime_version());
        return 0;
    }
    int (*fn)(int, char **) = NULL;
    if (strcmp(cmd, "train") == 0)
        fn = cmd_train;
    else if (strcmp(cmd, "eval") == 0)
        fn = cmd_eval;
    else if (strcmp(cmd, "sample") == 0)
        fn = cmd_sample;
    else if (strcmp(cmd, "prepare") == 0)
        fn = cmd_prepare;
    else if (strcmp(cmd, "inspect") == 0)
        fn = cmd_inspect;
    else if (strcmp(cmd, "trace") == 0)
        fn = trace_main;
    else if (strcmp(cmd, "analyze") == 0)
        fn = analyze_main;
    else if (strcmp(cmd, "generate") == 0)
        fn = textgen_main;
    if (!fn) {
        fprintf(stderr, "charnn: unknown command '%s'\n", cmd);
        print_main_usage(stderr);
        return TRAIN_EXIT_USAGE;
    }
    if (fn != cmd_train)
        runtime_exec_passive_wait(argv);
    /* Only the commands that can run on many ranks start MPI (about a second),
     * and only when a launcher started them; otherwise they run as plain
     * processes, where dist_* calls are no-ops. */
    int parallel = (fn == cmd_train || fn == cmd_eval || fn == trace_main) && dist_launched();
    if (parallel && dist_init(&argc, &argv) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return TRAIN_EXIT_ERROR;
    }
    int rc = fn(argc - 2, argv + 2);
    if (parallel)
        dist_finalize();
    return rc;
}
