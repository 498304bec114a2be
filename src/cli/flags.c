/* The flag parser. See flags.h. */
#include "charnn/flags.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/config.h"
#include "charnn/data.h"
#include "charnn/optim.h"

void flags_print_usage(FILE *f, const flag_table *t)
{
    fprintf(f, "usage: %s %s %s\n\nflags:\n", "charnn", t->cmd, t->synopsis);
    for (int i = 0; i < t->n; i++)
        fprintf(f, "  --%-18s %s\n", t->flags[i].name, t->flags[i].help);
    fprintf(f, "  --%-18s %s\n", "help", "show this screen");
}

int flags_usage_error(const flag_table *t, const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "%s %s: ", "charnn", t->cmd);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
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

/* 0 ok; otherwise the exit status to return. *help set when --help was given. */
int flags_parse(const flag_table *t, int argc, char **argv, unsigned *given, int *help)
{
    *help = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *help = 1;
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0)
            return flags_usage_error(t, "unexpected argument '%s'%s", arg, "");
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
            return flags_usage_error(t, "unknown flag '--%s'%s", name, "");
        if (f->type == F_BOOL) {
            if (value)
                return flags_usage_error(t, "flag '--%s' takes no value%s", name, "");
            *(int *)f->dst = 1;
            *given |= f->given_bit;
            continue;
        }
        if (!value) {
            if (i + 1 >= argc)
                return flags_usage_error(t, "flag '--%s' needs a value%s", name, "");
            value = argv[++i];
        }
        double num = 0.0;
        int bad = 0;
        switch (f->type) {
        case F_INT:
        case F_I64:
        case F_U64:
            bad = parse_number(value, &num, 1) != 0 || num < f->min || num > f->max;
            if (!bad && f->type == F_INT)
                *(int *)f->dst = (int)num;
            else if (!bad && f->type == F_I64)
                *(int64_t *)f->dst = (int64_t)strtoll(value, NULL, 10);
            else if (!bad)
                *(uint64_t *)f->dst = (uint64_t)strtoull(value, NULL, 10);
            break;
        case F_FLOAT:
        case F_DOUBLE:
            bad = parse_number(value, &num, 0) != 0 || num < f->min || num > f->max;
            if (!bad && f->type == F_FLOAT)
                *(float *)f->dst = (float)num;
            else if (!bad)
                *(double *)f->dst = num;
            break;
        case F_STR:
            *(const char **)f->dst = value;
            break;
        case F_PATH:
            bad = strlen(value) >= CONFIG_PATH_MAX || value[0] == '\0';
            if (!bad)
                snprintf((char *)f->dst, CONFIG_PATH_MAX, "%s", value);
            break;
        case F_CELL:
            bad = cell_parse(value, (cell_kind *)f->dst) != 0;
            break;
        case F_OPTIM: {
            optim_kind k;
            bad = optim_parse(value, &k) != 0;
            if (!bad) {
                optim_config *oc = f->dst;
                float wd = oc->weight_decay;
                optim_config_default(oc, k);
                oc->weight_decay = wd;
            }
            break;
        }
        case F_SCHED:
            bad = sched_parse(value, (sched_kind *)f->dst) != 0;
            break;
        case F_SPLIT: {
            int s = data_split_parse(value);
            bad = s < 0;
            if (!bad)
                *(int *)f->dst = s;
            break;
        }
        case F_ALLREDUCE:
            if (strcmp(value, "overlap") == 0)
                *(int *)f->dst = 0;
            else if (strcmp(value, "blocking") == 0)
                *(int *)f->dst = 1;
            else
                bad = 1;
            break;
        case F_BOOL:
            break;
        }
        if (bad)
            return flags_usage_error(t, "bad value '%s' for --%s", value, name);
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
    if (help)
        flags_print_usage(stdout, t);
    return help;
}
