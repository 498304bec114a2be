/* flags: the strict command-line flag parser shared by every subcommand: a
 * table of flag_spec per command, `--name value` or `--name=value`, numbers
 * range-checked, an unknown flag or a bad value answered with the usage screen
 * and exit status 2. */
#ifndef CHARNN_FLAGS_H
#define CHARNN_FLAGS_H

#include <stdio.h>

typedef enum { F_INT, F_I64, F_U64, F_FLOAT, F_DOUBLE, F_STR, F_PATH, F_BOOL, F_CELL, F_OPTIM,
               F_SCHED, F_SPLIT, F_ALLREDUCE } flag_type;

typedef struct {
    const char *name; /* without the leading "--" */
    flag_type type;
    void *dst;
    unsigned given_bit;
    const char *help;
    double min, max; /* numeric range, inclusive */
} flag_spec;

typedef struct {
    const char *cmd;
    const char *synopsis;
    const flag_spec *flags;
    int n;
} flag_table;


#define RANGE_POS 1, 1e18
#define RANGE_NONNEG 0, 1e18

/* Exit status for usage errors. */
#define FLAGS_EXIT_USAGE 2

void flags_print_usage(FILE *f, const flag_table *t);
/* Print "charnn CMD: <fmt with a, b>" and the usage to stderr; returns FLAGS_EXIT_USAGE. */
int flags_usage_error(const flag_table *t, const char *fmt, const char *a, const char *b);
/* Parse argv[0..argc) against t. 0 on success (*help set when --help was
 * given); otherwise the exit status to return. Bits of given flags are ORed
 * into *given. */
int flags_parse(const flag_table *t, int argc, char **argv, unsigned *given, int *help);
/* flags_parse for a command: after --help it prints the usage to stdout.
 * Returns 0 to go on, or 1 when the command should end with *status (0 after
 * --help, the usage error's status otherwise). */
int flags_parse_or_exit(const flag_table *t, int argc, char **argv, unsigned *given,
                        int *status);

#endif
