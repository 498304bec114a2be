/* cli: the `charnn` command line, the only code that sees argv or prints a
 * usage screen. Exit statuses: 0 ok, 1 error, 2 usage, 3 diverged, 75
 * stopped by a signal after checkpointing.
 *
 * src/cli/cli.c holds the command table; each command lives in its own file,
 * src/cli/cli_<command>.c, which turns the flags (flags.h) into the options
 * struct of a library entry point (train_run, eval_run, trace_run, ...),
 * calls it, and turns its status into an exit status and a one-line message.
 * Adding a command: write cli_<command>.c with its entry point, declare it
 * below, and add one row to the table in cli.c (the top-level usage screen
 * is drawn from the table).
 */
#ifndef CHARNN_CLI_H
#define CHARNN_CLI_H

#include "charnn/flags.h"

/* Exit statuses of every command; train adds TRAIN_EXIT_DIVERGED (3) and
 * TRAIN_EXIT_STOPPED (75), train.h. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_ERROR = 1, CLI_EXIT_USAGE = FLAGS_EXIT_USAGE };

/* How a command runs when a launcher (mpiexec, srun) started the process. */
typedef enum {
    CLI_ONE_PROCESS, /* MPI is never started: every launched process runs alone */
    CLI_ONE_RANK,    /* MPI is started to refuse a launch of more than one rank */
    CLI_MANY_RANKS   /* MPI is started and the command runs on every rank */
} cli_ranks;

/* A command's entry point: argv holds the arguments after the command name.
 * Returns the exit status. */
typedef int (*cli_command_fn)(int argc, char **argv);

typedef struct {
    const char *name;
    cli_command_fn fn;
    cli_ranks ranks; /* whether it may run on many ranks */
    int spin_wait;   /* 1: keep OpenMP's spinning waits (train); 0: passive waits */
    const char *summary; /* one line on the top-level usage screen */
} cli_command;

/* The program: argv[1] names the command. Returns the exit status. */
int cli_main(int argc, char **argv);
/* `charnn report` (src/cli/cli_report.c). */
int cli_report(int argc, char **argv);

/* The names of data.h's SPLIT_* for --split. */
extern const flag_choice cli_split_choices[];
/* The names of kernels.h's kern_precision for --precision. */
extern const flag_choice cli_precision_choices[];
/* Let the model's products run in `precision` (a kern_precision): 0, or the
 * one-line error on stderr and CLI_EXIT_ERROR (a CPU without AVX512_BF16). */
int cli_set_precision(int precision);

int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_sample(int argc, char **argv);
int cli_translate(int argc, char **argv);
int cli_predict(int argc, char **argv);
int cli_tag(int argc, char **argv);
int cli_prepare(int argc, char **argv);
int cli_inspect(int argc, char **argv);
int cli_trace(int argc, char **argv);
int cli_analyze(int argc, char **argv);
int cli_generate(int argc, char **argv);
int cli_version(int argc, char **argv);

#endif
