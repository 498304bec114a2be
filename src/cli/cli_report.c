/* `charnn report RUN_DIR... [--html OUT.html] [--json]`: flags into
 * report_options. See report.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/cli.h"
#include "charnn/common.h"
#include "charnn/config.h"
#include "charnn/flags.h"
#include "charnn/report.h"

int cli_report(int argc, char **argv)
{
    char html[CONFIG_PATH_MAX] = "";
    int json = 0, status = 0;
    unsigned given = 0;
    const flag_spec flags[] = {
        {"html", F_PATH, html, 0, "also write one self-contained page of curves (inline SVG)", 0,
         0},
        {"json", F_BOOL, &json, 0, "print one JSON object instead of the table", 0, 0},
    };
    flag_table t = {"report", "RUN_DIR... [--html OUT.html] [--json]", flags,
                    (int)(sizeof flags / sizeof flags[0])};
    /* run directories may come before, between or after the flags */
    const char **runs = cn_xmalloc((size_t)(argc ? argc : 1) * sizeof *runs);
    char **rest = cn_xmalloc((size_t)(argc ? argc : 1) * sizeof *rest);
    int n_runs = 0, n_rest = 0;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "-", 1) != 0) {
            runs[n_runs++] = argv[i];
            continue;
        }
        rest[n_rest++] = argv[i];
        if (strcmp(argv[i], "--html") == 0 && i + 1 < argc)
            rest[n_rest++] = argv[++i];
    }
    if (flags_parse_or_exit(&t, n_rest, rest, &given, &status))
        goto done;
    if (n_runs == 0) {
        status = flags_usage_error(&t, "give at least one run directory%s%s", "", "");
        goto done;
    }
    report_options o = {runs, n_runs, html[0] ? html : NULL, json, stdout};
    if (report_run(&o) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        status = 1;
    } else if (fflush(stdout) != 0) {
        fprintf(stderr, "charnn: cannot write the report to stdout\n");
        status = 1;
    }
done:
    free(runs);
    free(rest);
    return status;
}
