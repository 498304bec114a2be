/* `charnn predict`: flags into predict_options, then predict_run. See cli.h. */
#include "charnn/cli.h"

#include <stdio.h>

#include "charnn/config.h"
#include "charnn/flags.h"
#include "charnn/predict.h"
#include "charnn/runtime.h"

int cli_predict(int argc, char **argv)
{
    predict_options o = {.top_k = 1, .batch = 64};
    char model_path[CONFIG_PATH_MAX] = "";
    int threads = 0;
    const flag_spec flags[] = {
        FLAG("model", F_PATH, model_path, 0, "classifier written by train --task classify "
             "(required)", 0, 0),
        FLAG("top-k", F_INT, &o.top_k, 0, "label/probability pairs per line (default 1)", 1,
             65536),
        FLAG("batch", F_INT, &o.batch, 0, "lines per forward pass (default 64)", 1, 1000000),
        FLAG("max-len", F_INT, &o.max_len, 0, "cut lines to this many characters, 0 = the "
             "model's (default 0)", 0, 100000000),
        FLAG("json", F_BOOL, &o.json, 0, "one JSON object per line instead of TSV", 0, 0),
        FLAG("threads", F_INT, &threads, 0, "OpenMP threads (default all cores)", 0, 4096),
    };
    const char *positional[1] = {NULL};
    int n_positional = 0;
    flag_table t = {"predict", "--model PATH [FILE|-] [--top-k K] [--json]", flags,
                    (int)(sizeof flags / sizeof flags[0]), positional, 1, &n_positional};
    unsigned given = 0;
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        return status;
    if (!model_path[0])
        return flags_usage_error(&t, "--model is required");
    o.model_path = model_path;
    o.input = n_positional == 1 ? positional[0] : NULL;
    runtime_set_threads(threads);
    if (predict_run(&o, stdout) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return CLI_EXIT_ERROR;
    }
    return 0;
}
