/* The flag parser. See flags.h. */
#include "charnn/flags.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/config.h"
#include "charnn/dist.h"

void flags_print_usage(FILE *f, const flag_table *t)
{
    fprintf(f, "usage: charnn %s%s%s\n\nflags:\n", t->cmd, t->synopsis[0] ? " " : "",
            t->synopsis);
    for (int i = 0; i < t->n; i++)
        fprintf(f, "  --%-18s %s\n", t->flags[i].name, t->flags[i].help);
    fprintf(f, "  --%-18s %s\n", "help", "show this screen");
}

int flags_usage_error(const flag_table *t, const char *fmt, ...)
{
    if (dist_rank() != 0) /* every rank of a launch parses the same flags: say it once */
        return FLAGS_EXIT_USAGE;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "charnn %s: ", t->cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    flags_print_usage(stderr, t);
    return FLAGS_EXIT_USAGE;
}

static int parse_number(const char *s, double *out, int integer)
{
    char *end;
    errno = 0;
    if (integer) {
        long long v = strtoll(s, &end, 10);
        if (errno || *s == '\0' || *end != '\0')
            return -1;
        *out = (double)v;
    } else {
        double v = strtod(s, &end);
        if (errno || *s == '\0' || *end != '\0' || !isfinite(v))
            return -1;
        *out = v;
    }
    return 0;
}

/* "bad value 'V' for --NAME: must be ..." for a number outside [f->min, f->max];
 * a bound of 1e18 or more is no bound. */
static int range_error(const flag_table *t, const flag_spec *f, const char *value, int integer)
{
    const char *fmt = integer ? "%.0f" : "%g";
    char lo[64], hi[64];
    snprintf(lo, sizeof lo, fmt, f->min);
    snprintf(hi, sizeof hi, fmt, f->max);
    if (f->max >= 1e18)
        return flags_usage_error(t, "bad value '%s' for --%s: must be at least %s", value,
                                 f->name, lo);
    return flags_usage_error(t, "bad value '%s' for --%s: must be between %s and %s", value,
                             f->name, lo, hi);
}

/* "bad value 'V' for --NAME: expected a, b or c" */
static int choice_error(const flag_table *t, const flag_spec *f, const char *value)
{
    char names[512] = "";
    size_t used = 0;
    for (int k = 0; f->choices[k].name && used < sizeof names; k++) {
        const char *sep = k == 0 ? "" : f->choices[k + 1].name ? ", " : " or ";
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", sep,
                                 f->choices[k].name);
    }
    return flags_usage_error(t, "bad value '%s' for --%s: expected %s", value, f->name, names);
}

/* Store `value` for flag f. 0, or the usage error's status. */
static int parse_value(const flag_table *t, const flag_spec *f, const char *value)
{
    double num = 0.0;
    switch (f->type) {
    case F_INT:
    case F_I64:
    case F_U64:
        if (parse_number(value, &num, 1) != 0)
            return flags_usage_error(t, "bad value '%s' for --%s: expected an integer", value,
                                     f->name);
        if (num < f->min || num > f->max)
            return range_error(t, f, value, 1);
        if (f->type == F_INT)
            *(int *)f->dst = (int)num;
        else if (f->type == F_I64)
            *(int64_t *)f->dst = (int64_t)strtoll(value, NULL, 10);
        else
            *(uint64_t *)f->dst = (uint64_t)strtoull(value, NULL, 10);
        return 0;
    case F_FLOAT:
    case F_DOUBLE:
        if (parse_number(value, &num, 0) != 0)
            return flags_usage_error(t, "bad value '%s' for --%s: expected a number", value,
                                     f->name);
        if (num < f->min || num > f->max)
            return range_error(t, f, value, 0);
        if (f->type == F_FLOAT)
            *(float *)f->dst = (float)num;
        else
            *(double *)f->dst = num;
        return 0;
    case F_STR:
        *(const char **)f->dst = value;
        return 0;
    case F_PATH:
        if (value[0] == '\0')
            return flags_usage_error(t, "bad value '' for --%s: expected a path", f->name);
        if (strlen(value) >= CONFIG_PATH_MAX)
            return flags_usage_error(t, "bad value '%.40s...' for --%s: longer than %d bytes",
                                     value, f->name, CONFIG_PATH_MAX - 1);
        snprintf((char *)f->dst, CONFIG_PATH_MAX, "%s", value);
        return 0;
    case F_CHOICE:
        CHARNN_ASSERT(f->choices && f->choices[0].name);
        for (int k = 0; f->choices[k].name; k++)
            if (strcmp(f->choices[k].name, value) == 0) {
                *(int *)f->dst = f->choices[k].value;
                return 0;
            }
        return choice_error(t, f, value);
    case F_CUSTOM:
        CHARNN_ASSERT(f->parse);
        if (f->parse(value, f->dst) != 0)
            return flags_usage_error(t, "%s", cn_errmsg());
        return 0;
    case F_BOOL: /* takes no value: flags_parse sets it */
        break;
    }
    CHARNN_ASSERT(f->type != F_BOOL);
    return FLAGS_EXIT_USAGE;
}

int flags_parse(const flag_table *t, int argc, char **argv, unsigned *given, int *help)
{
    *help = 0;
    if (t->n_positional)
        *t->n_positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *help = 1;
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0) {
            /* "-" alone is a positional (stdin), any other "-x" a mistyped flag */
            if ((arg[0] == '-' && arg[1] != '\0') || !t->n_positional ||
                *t->n_positional >= t->max_positional)
                return flags_usage_error(t, "unexpected argument '%s'", arg);
            t->positional[(*t->n_positional)++] = arg;
            continue;
        }
        const char *name = arg + 2, *value = NULL;
        char namebuf[64];
        const char *eq = strchr(name, '=');
        if (eq) {
            snprintf(namebuf, sizeof namebuf, "%.*s", (int)(eq - name), name);
            name = namebuf;
            value = eq + 1;
        }
        const flag_spec *f = NULL;
        for (int k = 0; k < t->n; k++)
            if (strcmp(t->flags[k].name, name) == 0)
                f = &t->flags[k];
        if (!f)
            return flags_usage_error(t, "unknown flag '--%s'", name);
        if (f->type == F_BOOL) {
            if (value)
                return flags_usage_error(t, "flag '--%s' takes no value", name);
            *(int *)f->dst = 1;
            *given |= f->given_bit;
            continue;
        }
        if (!value) {
            if (i + 1 >= argc)
                return flags_usage_error(t, "flag '--%s' needs a value", name);
            value = argv[++i];
        }
        int status = parse_value(t, f, value);
        if (status)
            return status;
        *given |= f->given_bit;
    }
    return 0;
}

int flags_parse_or_exit(const flag_table *t, int argc, char **argv, unsigned *given, int *status)
{
    int help = 0;
    *status = flags_parse(t, argc, argv, given, &help);
    if (*status)
        return 1;
    if (help && dist_rank() == 0)
        flags_print_usage(stdout, t);
    return help;
}
