/* `charnn tag`: flags into tag_options, then tag_run. See tagger.h. */
#include "charnn/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "charnn/config.h"
#include "charnn/flags.h"
#include "charnn/tagger.h"

int cli_tag(int argc, char **argv)
{
    tag_options o = {.input = "-", .threads = 1};
    char model_path[CONFIG_PATH_MAX] = "", html[CONFIG_PATH_MAX] = "";
    const flag_spec flags[] = {
        FLAG("model", F_PATH, model_path, 0, "a tagger written by train --task tag (required)", 0,
             0),
        FLAG("apply", F_BOOL, &o.apply, 0,
             "spacing models: print the text with the spaces restored", 0, 0),
        FLAG("eval", F_BOOL, &o.eval, 0,
             "spacing models: score against the input's own spaces (accuracy, space P/R/F1, "
             "words restored)", 0, 0),
        FLAG("json", F_BOOL, &o.json, 0, "--eval: print one JSON object", 0, 0),
        FLAG("html", F_PATH, html, 0, "--eval: write a page with wrong spaces marked", 0, 0),
        FLAG("min-space-rate", F_DOUBLE, &o.min_space_rate, 0,
             "--eval: skip lines with fewer spaces per character (as prepare)", 0, 1),
        FLAG("threads", F_INT, &o.threads, 0, "OpenMP threads (default 1)", 0, 4096),
    };
    const char **inputs = cn_xcalloc((size_t)argc + 1, sizeof *inputs);
    int n_inputs = 0, status;
    flag_table t = {"tag", "--model PATH [--apply | --eval [--json] [--html FILE]] [FILE|-]",
                    flags, (int)(sizeof flags / sizeof flags[0]), inputs, argc, &n_inputs};
    unsigned given = 0;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        goto done;
    status = CLI_EXIT_USAGE;
    if (!model_path[0]) {
        flags_usage_error(&t, "--model is required");
        goto done;
    }
    if (n_inputs > 1 || (o.apply && o.eval) || ((o.json || html[0]) && !o.eval)) {
        flags_usage_error(&t, "give at most one input, and --json/--html only with --eval, "
                              "--apply or --eval");
        goto done;
    }
    o.model_path = model_path;
    o.input = n_inputs ? inputs[0] : "-";
    o.html_path = html[0] ? html : NULL;
    status = CLI_EXIT_OK;
    if (tag_run(&o, stdout) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        status = CLI_EXIT_ERROR;
    }
done:
    free(inputs);
    return status;
}
