/* `charnn eval`: flags into eval_options, then eval_run. See cli.h. */
#include "charnn/cli.h"

#include <stdio.h>

#include "charnn/config.h"
#include "charnn/data.h"
#include "charnn/dist.h"
#include "charnn/evaluate.h"
#include "charnn/flags.h"
#include "charnn/kernels.h"
#include "charnn/runtime.h"
#include "charnn/translate.h"

int cli_eval(int argc, char **argv)
{
    eval_options o = {.split = SPLIT_ALL};
    char model_path[CONFIG_PATH_MAX] = "", data[CONFIG_PATH_MAX] = "", html[CONFIG_PATH_MAX] = "";
    /* a translation model's options */
    translate_eval_options to = {.beam = 1, .rows = 64, .samples = 20};
    enum { GIVEN_SPLIT = 1u << 0 };
    int precision = KERN_F32;
    char cond_vectors[CONFIG_PATH_MAX] = "";
    const flag_spec flags[] = {
        FLAG("model", F_PATH, model_path, 0, "model file or checkpoint written by train (required)",
             0, 0),
        FLAG("data", F_PATH, data, 0,
             "text file or prepared corpus; for a classifier an examples file, for a translation "
             "model a pairs file (required)", 0, 0),
        FLAG_CHOICE("split", &o.split, GIVEN_SPLIT,
                    "train | val | test | all (default all; a translation model: test)",
                    cli_split_choices),
        FLAG("batch", F_INT, &o.batch, 0, "streams (classifier: examples) per batch, 0 = the "
             "model's (default 0)", 0, 1000000),
        FLAG("seq", F_INT, &o.seq, 0, "chunk length, 0 = the model's (default 0)", 0, 100000),
        FLAG("threads", F_INT, &o.threads, 0, "OpenMP threads (default all cores)", 0, 4096),
        FLAG_CHOICE("precision", &precision, 0,
                    "f32 | bf16: the matrix products' operands (default f32)",
                    cli_precision_choices),
        FLAG("json", F_BOOL, &o.json, 0,
             "print one JSON object: loss, bpc, perplexity, tokens (classifier: loss, accuracy, "
             "macro-F1, per-class numbers, confusion matrix; translation: loss, exact match, chrF)",
             0, 0),
        FLAG("html", F_PATH, html, 0,
             "classifier: also write a page with the confusion-matrix heatmap here; translation: "
             "a page of sample translations with attention heatmaps; generator on classes: the "
             "loss and 10 samples per class", 0, 0),
        FLAG("max-len", F_INT, &o.max_len, 0,
             "classifier: cut examples to this many characters, 0 = the model's; translation: "
             "symbols per translation at most, 0 = 2 x source + 10 (default 0)", 0, 100000000),
        FLAG("beam", F_INT, &to.beam, 0, "translation: beams, 1 = greedy (default 1)", 1, 1000),
        FLAG("length-penalty", F_FLOAT, &to.length_penalty, 0,
             "translation: beam length penalty alpha (default 0)", 0, 10),
        FLAG("samples", F_INT, &to.samples, 0, "translation: pairs on the page (default 20)", 1,
             100000),
        FLAG("cond-vectors", F_PATH, cond_vectors, 0,
             "generator on vectors: the HDF5 file of /features for --data's examples", 0, 0),
    };
    flag_table t = {"eval", "--model PATH --data PATH [--split S] [--json] [--html OUT]", flags,
                    (int)(sizeof flags / sizeof flags[0]), NULL, 0, NULL};
    unsigned given = 0;
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        return status;
    if (!model_path[0] || !data[0])
        return flags_usage_error(&t, "--model and --data are required");
    o.model_path = model_path;
    o.data_path = data;
    o.html_path = html[0] ? html : NULL;
    o.cond_vectors = cond_vectors[0] ? cond_vectors : NULL;
    runtime_set_threads(o.threads);
    if (cli_set_precision(precision) != 0)
        return CLI_EXIT_ERROR;
    if (translate_is_model(model_path) == 1) {
        /* one process does it all; other ranks of an MPI launch have nothing to add */
        if (dist_rank() != 0)
            return 0;
        to.model_path = model_path;
        to.data_path = data;
        to.split = given & GIVEN_SPLIT ? o.split : SPLIT_TEST;
        to.json = o.json;
        to.html_path = html[0] ? html : NULL;
        to.max_len = o.max_len;
        if (o.batch > 0)
            to.rows = o.batch;
        if (translate_eval_run(&to) != 0) {
            fprintf(stderr, "charnn: %s\n", cn_errmsg());
            return CLI_EXIT_ERROR;
        }
        return 0;
    }
    if (eval_run(&o) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return CLI_EXIT_ERROR;
    }
    return 0;
}
