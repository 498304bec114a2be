/* `charnn analyze`: a trace and flags into analyze_options, then
 * analyze_run and the report's writers. See cli.h. */
#include "charnn/cli.h"

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/analyze.h"
#include "charnn/config.h"

/* --feature NAME=REGEX, repeatable: the specs given so far. */
typedef struct {
    analyze_feature_spec spec[ANALYZE_MAX_USER_FEATURES];
    int n;
} feature_list;

static int parse_feature(const char *value, void *dst)
{
    feature_list *fl = dst;
    if (fl->n == ANALYZE_MAX_USER_FEATURES)
        return cn_err("too many --feature flags (at most %d)", ANALYZE_MAX_USER_FEATURES);
    if (analyze_feature_parse(value, &fl->spec[fl->n]) != 0)
        return -1;
    for (int k = 0; k < fl->n; k++)
        if (strcmp(fl->spec[k].name, fl->spec[fl->n].name) == 0)
            return cn_err("--feature '%s' is given twice", fl->spec[k].name);
    fl->n++;
    return 0;
}

/* --unit "L:U" or "L:U:h" / "L:U:c" into analyze_options. */
static int parse_unit(const char *value, void *dst)
{
    analyze_options *o = dst;
    char *end;
    errno = 0;
    long l = strtol(value, &end, 10);
    if (errno || end == value || *end != ':' || l < 0 || l > 1000000)
        goto bad;
    const char *u0 = end + 1;
    long u = strtol(u0, &end, 10);
    if (errno || end == u0 || u < 0 || u > 100000000)
        goto bad;
    int state = 0;
    if (*end == ':') {
        if (strcmp(end + 1, "h") == 0)
            state = 0;
        else if (strcmp(end + 1, "c") == 0)
            state = 1;
        else
            goto bad;
    } else if (*end) {
        goto bad;
    }
    o->unit_layer = (int)l;
    o->unit_index = (int)u;
    o->unit_state = state;
    return 0;
bad:
    return cn_err("--unit '%s' is not LAYER:UNIT (e.g. 0:17, or 0:17:c for the LSTM cell state)",
                  value);
}

/* Check the regexes and run the analysis in a UTF-8 locale, so that '.' and
 * bracket expressions take whole characters. 0, or the exit status after a
 * one-line message. */
static int run_utf8(const analyze_options *o, analyze_report *r)
{
    char *saved = setlocale(LC_CTYPE, NULL);
    saved = saved ? cn_xstrdup(saved) : NULL;
    if (!setlocale(LC_CTYPE, "C.UTF-8"))
        setlocale(LC_CTYPE, "C.utf8");
    int rc = 0;
    for (int j = 0; j < o->n_user && rc == 0; j++)
        if (analyze_feature_check(&o->user[j]) != 0) {
            fprintf(stderr, "charnn analyze: %s\n", cn_errmsg());
            rc = CLI_EXIT_USAGE;
        }
    if (rc == 0) {
        int arc = analyze_run(o, r);
        if (arc != 0) {
            fprintf(stderr, "charnn analyze: %s\n", cn_errmsg());
            rc = arc == ANALYZE_BAD_UNIT ? CLI_EXIT_USAGE : CLI_EXIT_ERROR;
        }
    }
    if (saved) {
        setlocale(LC_CTYPE, saved);
        free(saved);
    }
    return rc;
}

int cli_analyze(int argc, char **argv)
{
    analyze_options o = {.top_k = 5, .unit_layer = -1, .excerpt = 3000};
    char probe[CONFIG_PATH_MAX] = "", html[CONFIG_PATH_MAX] = "";
    feature_list *features = cn_xcalloc(1, sizeof *features);
    const char *trace[1] = {NULL};
    int json = 0, n_trace = 0;
    const flag_spec flags[] = {
        FLAG("json", F_BOOL, &json, 0, "print one JSON object instead of the table", 0, 0),
        FLAG("html", F_PATH, html, 0,
             "also write a self-contained page (text coloured by a unit, "
             "saturation and gradient plots)", 0, 0),
        FLAG_CUSTOM("unit", &o, 0,
                    "L:U[:h|c] the unit to show and follow over training "
                    "(default: the best find on the page, the unit with the highest |r| over "
                    "all features; each feature's best unit over training)", parse_unit),
        FLAG("top", F_INT, &o.top_k, 0, "units listed per feature (default 5)", 1, 100000),
        FLAG_CUSTOM("feature", features, 0,
                    "NAME=REGEX a feature that is 1 inside matches (POSIX extended; repeatable)",
                    parse_feature),
        FLAG("probe", F_PATH, probe, 0,
             "probe trace of training (train --trace-every) for the correlation over training",
             0, 0),
        FLAG("excerpt", F_INT, &o.excerpt, 0, "characters of text on the page (default 3000)", 1,
             1000000),
    };
    flag_table t = {"analyze", "TRACE [--json] [--html OUT.html] [--unit L:U] [--top K] "
                               "[--feature NAME=REGEX ...] [--probe PROBE.h5]",
                    flags, (int)(sizeof flags / sizeof flags[0]), trace, 1, &n_trace};
    unsigned given = 0;
    int rc;
    if (flags_parse_or_exit(&t, argc, argv, &given, &rc))
        goto done;
    if (n_trace == 0) {
        rc = flags_usage_error(&t, "give the trace to analyze");
        goto done;
    }
    o.trace = trace[0];
    /* a classifier's, tagger's, generator's or vector classifier's trace: its own report (the text analysis's flags do not apply) */
    if (!html[0] && !probe[0] && features->n == 0 && o.unit_layer < 0) {
        int crc = analyze_classify_run(o.trace, o.top_k, json, stdout);
        if (crc == 1) /* not a classifier's: a tagger's? */
            crc = analyze_tag_run(o.trace, o.top_k, json, stdout);
        if (crc == 1) /* nor a tagger's: a generator's or a vector classifier's? */
            crc = analyze_cond_run(o.trace, o.top_k, json, stdout);
        if (crc < 0) {
            fprintf(stderr, "charnn analyze: %s\n", cn_errmsg());
            rc = CLI_EXIT_ERROR;
            goto done;
        }
        if (crc == 0) {
            rc = CLI_EXIT_OK;
            goto done;
        }
    }
    o.user = features->spec;
    o.n_user = features->n;
    o.probe = probe[0] ? probe : NULL;
    analyze_report r;
    if ((rc = run_utf8(&o, &r)) != 0)
        goto done;
    if (json)
        analyze_write_json(stdout, &r);
    else
        analyze_write_table(stdout, &r);
    if (html[0]) {
        if (analyze_write_html(html, &r) != 0) {
            fprintf(stderr, "charnn analyze: %s\n", cn_errmsg());
            rc = CLI_EXIT_ERROR;
        } else if (!json) {
            printf("\nwrote '%s'\n", html);
        }
    }
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "charnn analyze: cannot write the report: %s\n", strerror(errno));
        rc = CLI_EXIT_ERROR;
    }
    analyze_report_free(&r);
done:
    free(features);
    return rc;
}
