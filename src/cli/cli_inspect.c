/* `charnn inspect`: a path and flags into inspect_options, then inspect_run.
 * See cli.h. */
#include "charnn/cli.h"

#include <stdio.h>

#include "charnn/flags.h"
#include "charnn/inspect.h"

int cli_inspect(int argc, char **argv)
{
    inspect_options o = {0};
    const char *path[1] = {NULL};
    int n_path = 0;
    const flag_spec flags[] = {
        FLAG("json", F_BOOL, &o.json, 0, "print one JSON object", 0, 0),
    };
    /* the path may come before or after the flags */
    flag_table t = {"inspect", "PATH [--json]", flags, (int)(sizeof flags / sizeof flags[0]),
                    path, 1, &n_path};
    unsigned given = 0;
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        return status;
    if (n_path == 0)
        return flags_usage_error(&t, "give the checkpoint to inspect");
    o.path = path[0];
    if (inspect_run(&o, stdout) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return CLI_EXIT_ERROR;
    }
    return CLI_EXIT_OK;
}
