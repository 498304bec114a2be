/* flags: the strict command-line flag parser shared by every command. A
 * command describes its flags in a flag_table (one flag_spec per flag, each
 * writing into a variable the command owns); `--name value` and
 * `--name=value` both work, numbers are range-checked, a choice takes one of
 * a fixed list of names, and anything else a command accepts goes through a
 * parse callback it provides. An unknown flag or a bad value is answered with
 * one line naming the flag and the value, the usage screen, and exit status 2.
 *
 * The parser knows no domain types: the commands (src/cli/cli_*.c) map names
 * to their enums with flag_choice lists or parse callbacks.
 *
 * Use:
 *     int status;
 *     if (flags_parse_or_exit(&table, argc, argv, &given, &status))
 *         return status; // --help was shown (0) or a usage error printed (2)
 */
#ifndef CHARNN_FLAGS_H
#define CHARNN_FLAGS_H

#include <stdio.h>

#include "charnn/common.h"

typedef enum {
    F_INT,    /* int, range [min, max] */
    F_I64,    /* int64_t, range [min, max] */
    F_U64,    /* uint64_t, range [min, max] */
    F_FLOAT,  /* float, range [min, max] */
    F_DOUBLE, /* double, range [min, max] */
    F_STR,    /* const char *, borrowed from argv */
    F_PATH,   /* char[CONFIG_PATH_MAX], not empty */
    F_BOOL,   /* int set to 1; takes no value */
    F_CHOICE, /* int: the value of the name given, out of flag_spec.choices */
    F_CUSTOM  /* flag_spec.parse(value, dst) */
} flag_type;

/* One name a choice flag accepts and the int it stores; lists end with {NULL, 0}. */
typedef struct {
    const char *name;
    int value;
} flag_choice;

/* The parser of an F_CUSTOM flag: store what `value` means into dst. 0, or -1
 * with a message through cn_err that names the flag and the value (it becomes
 * the usage error's line). Called once per occurrence, so a callback can
 * collect a repeated flag. */
typedef int (*flag_parse_fn)(const char *value, void *dst);

typedef struct {
    const char *name; /* without the leading "--" */
    flag_type type;
    void *dst;
    unsigned given_bit; /* ORed into *given when the flag is given */
    const char *help;
    double min, max;            /* numeric range, inclusive */
    const flag_choice *choices; /* F_CHOICE */
    flag_parse_fn parse;        /* F_CUSTOM */
} flag_spec;

typedef struct {
    const char *cmd;      /* "train": usage lines read "usage: charnn train ..." */
    const char *synopsis; /* what follows the command name in the usage line */
    const flag_spec *flags;
    int n;
    /* Arguments that are not flags (they must not start with '-', "-" alone
     * excepted: stdin by convention): up to
     * max_positional of them, in order, into positional[], their count into
     * *n_positional. max_positional 0: none are accepted. */
    const char **positional;
    int max_positional;
    int *n_positional;
} flag_table;

/* Table rows. FLAG(name, type, dst, given_bit, help, min, max) for numbers
 * (min, max: the inclusive range, or RANGE_*), strings, paths and switches
 * (range 0, 0); FLAG_CHOICE and FLAG_CUSTOM for the other two kinds. */
#define FLAG(...) {__VA_ARGS__, NULL, NULL}
#define FLAG_CHOICE(name, dst, given_bit, help, choices)                       \
    {(name), F_CHOICE, (dst), (given_bit), (help), 0, 0, (choices), NULL}
#define FLAG_CUSTOM(name, dst, given_bit, help, parse)                         \
    {(name), F_CUSTOM, (dst), (given_bit), (help), 0, 0, NULL, (parse)}

#define RANGE_POS 1, 1e18
#define RANGE_NONNEG 0, 1e18

/* Exit status for usage errors. */
#define FLAGS_EXIT_USAGE 2

void flags_print_usage(FILE *f, const flag_table *t);
/* Print "charnn CMD: <message>" and the usage to stderr (on rank 0 of a
 * launch; every rank parses the same flags); returns FLAGS_EXIT_USAGE. */
int flags_usage_error(const flag_table *t, const char *fmt, ...) CN_PRINTF(2, 3);
/* Parse argv[0..argc) against t. 0 on success (*help set when --help or -h
 * was given, and nothing after it is read); otherwise the usage error has been
 * printed and FLAGS_EXIT_USAGE is returned. Bits of given flags are ORed into
 * *given. */
int flags_parse(const flag_table *t, int argc, char **argv, unsigned *given, int *help);
/* flags_parse for a command: after --help it prints the usage to stdout.
 * Returns 0 to go on, or 1 when the command should end with *status (0 after
 * --help, the usage error's status otherwise). */
int flags_parse_or_exit(const flag_table *t, int argc, char **argv, unsigned *given,
                        int *status);

#endif
