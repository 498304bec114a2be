/* The command table and the dispatch. See cli.h. */
#include "charnn/cli.h"

#include <stdio.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/data.h"
#include "charnn/dist.h"
#include "charnn/flags.h"
#include "charnn/kernels.h"
#include "charnn/runtime.h"

/* The commands in the order of the usage screen. Only commands that may run
 * on many ranks start MPI (about a second), and only when a launcher started
 * the process; the others run as plain processes, where dist_* calls are
 * no-ops. */
static const cli_command cli_commands[] = {
    {"prepare", cli_prepare, CLI_ONE_PROCESS, 0,
     "encode text files into an HDF5 corpus for training at any size"},
    {"train", cli_train, CLI_MANY_RANKS, 1,
     "train a model on a text file or prepared corpus (truncated BPTT)"},
    {"eval", cli_eval, CLI_MANY_RANKS, 0,
     "loss, bits per character and perplexity of a model on a text; a classifier's "
     "accuracy, F1 and confusion matrix; a translation model's chrF and exact match"},
    {"translate", cli_translate, CLI_ONE_PROCESS, 0,
     "translate lines with a seq2seq model (greedy or beam search)"},
    {"sample", cli_sample, CLI_ONE_PROCESS, 0, "generate text from a model"},
    {"predict", cli_predict, CLI_ONE_PROCESS, 0,
     "classify one example per line with a classifier (TSV or JSON lines)"},
    {"tag", cli_tag, CLI_ONE_PROCESS, 0,
     "tag each character of a text; restore or score the spaces of a spacing model"},
    {"inspect", cli_inspect, CLI_ONE_PROCESS, 0,
     "metadata, hyperparameters, progress and tensor norms of a checkpoint"},
    {"trace", cli_trace, CLI_ONE_RANK, 0,
     "record hidden states, gates and gradient flow over a text (HDF5)"},
    {"analyze", cli_analyze, CLI_ONE_PROCESS, 0,
     "find interpretable cells in a trace: saturation, feature correlations"},
    {"generate", cli_generate, CLI_ONE_PROCESS, 0,
     "write synthetic structured text (nested brackets, quotes) for tests"},
    {"report", cli_report, CLI_ONE_PROCESS, 0,
     "curves and summaries of training runs (text, JSON, an HTML page)"},
    {"version", cli_version, CLI_ONE_PROCESS, 0, "print the version"},
};
enum { CLI_N_COMMANDS = sizeof cli_commands / sizeof cli_commands[0] };

const flag_choice cli_split_choices[] = {{"train", SPLIT_TRAIN},
                                         {"val", SPLIT_VAL},
                                         {"test", SPLIT_TEST},
                                         {"all", SPLIT_ALL},
                                         {NULL, 0}};

const flag_choice cli_precision_choices[] = {{"f32", KERN_F32}, {"bf16", KERN_BF16}, {NULL, 0}};

int cli_set_precision(int precision)
{
    if (kern_set_precision((kern_precision)precision) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return CLI_EXIT_ERROR;
    }
    return 0;
}

static void print_main_usage(FILE *f)
{
    fprintf(f, "usage: charnn COMMAND [flags]\n\n"
               "Train, evaluate and sample character-level RNN, LSTM and GRU language models.\n\n"
               "commands:\n");
    int width = 0;
    for (int i = 0; i < CLI_N_COMMANDS; i++)
        if ((int)strlen(cli_commands[i].name) > width)
            width = (int)strlen(cli_commands[i].name);
    for (int i = 0; i < CLI_N_COMMANDS; i++)
        fprintf(f, "  %-*s %s\n", width, cli_commands[i].name, cli_commands[i].summary);
    fprintf(f, "\nRun 'charnn COMMAND --help' for the flags of a command.\n");
}

int cli_version(int argc, char **argv)
{
    unsigned given = 0;
    flag_table t = {"version", "", NULL, 0, NULL, 0, NULL};
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        return status;
    printf("charnn %s\n", runtime_version());
    return 0;
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        print_main_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    runtime_init();
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        print_main_usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0)
        name = "version";
    const cli_command *cmd = NULL;
    for (int i = 0; i < CLI_N_COMMANDS; i++)
        if (strcmp(cli_commands[i].name, name) == 0)
            cmd = &cli_commands[i];
    if (!cmd) {
        fprintf(stderr, "charnn: unknown command '%s'\n", name);
        print_main_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    /* Only train keeps OpenMP's spinning waits (its threads are busy all the
     * time); every other command runs with passive waits so that a short one
     * never spins against a loaded machine (runtime.h). */
    if (!cmd->spin_wait)
        runtime_exec_passive_wait(argv);
    const int parallel = cmd->ranks != CLI_ONE_PROCESS && dist_launched();
    if (parallel && dist_init(&argc, &argv) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return CLI_EXIT_ERROR;
    }
    int rc;
    if (cmd->ranks == CLI_ONE_RANK && dist_size() > 1) {
        if (dist_rank() == 0)
            fprintf(stderr, "charnn: %s runs as one process (started with %d ranks)\n",
                    cmd->name, dist_size());
        rc = CLI_EXIT_ERROR;
    } else {
        rc = cmd->fn(argc - 2, argv + 2);
    }
    if (parallel)
        dist_finalize();
    return rc;
}
