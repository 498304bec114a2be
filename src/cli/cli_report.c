/* `charnn report RUN_DIR... [--html OUT.html] [--json]`: run directories and
 * flags into report_options, then report_run. See report.h. */
#include "charnn/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "charnn/common.h"
#include "charnn/config.h"
#include "charnn/flags.h"
#include "charnn/report.h"

int cli_report(int argc, char **argv)
{
    char html[CONFIG_PATH_MAX] = "";
    int json = 0;
    const flag_spec flags[] = {
        FLAG("html", F_PATH, html, 0, "also write one self-contained page of curves (inline SVG)",
             0, 0),
        FLAG("json", F_BOOL, &json, 0, "print one JSON object instead of the table", 0, 0),
    };
    /* run directories may come before, between or after the flags */
    const char **runs = cn_xmalloc((size_t)(argc ? argc : 1) * sizeof *runs);
    int n_runs = 0;
    flag_table t = {"report", "RUN_DIR... [--html OUT.html] [--json]", flags,
                    (int)(sizeof flags / sizeof flags[0]), runs, argc, &n_runs};
    unsigned given = 0;
    int status = CLI_EXIT_OK;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        goto done;
    if (n_runs == 0) {
        status = flags_usage_error(&t, "give at least one run directory");
        goto done;
    }
    report_options o = {runs, n_runs, html[0] ? html : NULL, json, stdout};
    if (report_run(&o) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        status = CLI_EXIT_ERROR;
    } else if (fflush(stdout) != 0) {
        fprintf(stderr, "charnn: cannot write the report to stdout\n");
        status = CLI_EXIT_ERROR;
    }
done:
    free(runs);
    return status;
}
