/* `charnn translate`: flags into translate_options, then translate_run. See
 * translate.h. */
#include "charnn/cli.h"

#include <stdio.h>

#include "charnn/config.h"
#include "charnn/flags.h"
#include "charnn/runtime.h"
#include "charnn/translate.h"

int cli_translate(int argc, char **argv)
{
    translate_options o = {.input = "-", .beam = 1, .rows = 64};
    char model_path[CONFIG_PATH_MAX] = "";
    int threads = 0, n_pos = 0;
    const char *pos[1] = {NULL};
    const flag_spec flags[] = {
        FLAG("model", F_PATH, model_path, 0, "a translation model written by train --task "
                                             "seq2seq (required); sources from FILE or stdin", 0, 0),
        FLAG("beam", F_INT, &o.beam, 0, "beams; 1 = greedy (default 1)", 1, 1000),
        FLAG("max-len", F_INT, &o.max_len, 0,
             "symbols per translation at most (default 0: twice the longest source + 10)", 0,
             1000000),
        FLAG("length-penalty", F_FLOAT, &o.length_penalty, 0,
             "alpha of the beam score log p / ((5 + n) / 6)^alpha (default 0: plain log p)", 0,
             10),
        FLAG("json", F_BOOL, &o.json, 0,
             "one JSON object a line: source, translation, score, logprob, finished", 0, 0),
        FLAG("attention", F_BOOL, &o.attention, 0,
             "with --json: the attention matrix (rows: emitted symbols and EOS, columns: the "
             "source)", 0, 0),
        FLAG("rows", F_INT, &o.rows, 0, "sources decoded together (default 64)", 1, 100000),
        FLAG("threads", F_INT, &threads, 0, "OpenMP threads (default all cores)", 0, 4096),
    };
    flag_table t = {"translate",
                    "--model PATH [FILE] [--beam K] [--max-len N] [--length-penalty A] "
                    "[--json [--attention]]",
                    flags, (int)(sizeof flags / sizeof flags[0]), pos, 1, &n_pos};
    unsigned given = 0;
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        return status;
    if (!model_path[0])
        return flags_usage_error(&t, "--model is required");
    if (o.attention && !o.json)
        return flags_usage_error(&t, "--attention goes with --json");
    if (n_pos == 1)
        o.input = pos[0];
    o.model_path = model_path;
    runtime_set_threads(threads);
    if (translate_run(&o) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return CLI_EXIT_ERROR;
    }
    return CLI_EXIT_OK;
}
