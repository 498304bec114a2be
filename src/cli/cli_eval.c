/* `charnn eval`: flags into eval_options, then eval_run. See cli.h. */
#include "charnn/cli.h"

#include <stdio.h>

#include "charnn/config.h"
#include "charnn/data.h"
#include "charnn/evaluate.h"
#include "charnn/flags.h"
#include "charnn/runtime.h"

int cli_eval(int argc, char **argv)
{
    eval_options o = {.split = SPLIT_ALL};
    char model_path[CONFIG_PATH_MAX] = "", data[CONFIG_PATH_MAX] = "";
    char cond_vectors[CONFIG_PATH_MAX] = "", html[CONFIG_PATH_MAX] = "";
    const flag_spec flags[] = {
        FLAG("model", F_PATH, model_path, 0, "model file or checkpoint written by train (required)",
             0, 0),
        FLAG("data", F_PATH, data, 0, "text file or prepared corpus (required)", 0, 0),
        FLAG_CHOICE("split", &o.split, 0, "train | val | test | all (default all)",
                    cli_split_choices),
        FLAG("batch", F_INT, &o.batch, 0, "streams, 0 = the model's (default 0)", 0, 1000000),
        FLAG("seq", F_INT, &o.seq, 0, "chunk length, 0 = the model's (default 0)", 0, 100000),
        FLAG("threads", F_INT, &o.threads, 0, "OpenMP threads (default all cores)", 0, 4096),
        FLAG("json", F_BOOL, &o.json, 0, "print one JSON object: loss, bpc, perplexity, tokens", 0,
             0),
        FLAG("cond-vectors", F_PATH, cond_vectors, 0,
             "generator on vectors: the HDF5 file of /features for --data's examples", 0, 0),
        FLAG("html", F_PATH, html, 0,
             "generator on classes: write a page of the loss and 10 samples per class", 0, 0),
    };
    flag_table t = {"eval", "--model PATH --data PATH [--split S] [--json]", flags,
                    (int)(sizeof flags / sizeof flags[0]), NULL, 0, NULL};
    unsigned given = 0;
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        return status;
    if (!model_path[0] || !data[0])
        return flags_usage_error(&t, "--model and --data are required");
    o.model_path = model_path;
    o.data_path = data;
    o.cond_vectors = cond_vectors[0] ? cond_vectors : NULL;
    o.html = html[0] ? html : NULL;
    runtime_set_threads(o.threads);
    if (eval_run(&o) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return CLI_EXIT_ERROR;
    }
    return 0;
}
