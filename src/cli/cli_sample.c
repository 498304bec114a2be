/* `charnn sample`: flags into sample_options, then sample_run. See cli.h. */
#include "charnn/cli.h"

#include <limits.h>
#include <stdio.h>

#include "charnn/config.h"
#include "charnn/flags.h"
#include "charnn/kernels.h"
#include "charnn/generate.h"
#include "charnn/sample.h"

int cli_sample(int argc, char **argv)
{
    sample_options o = {.length = 500, .temperature = 1.0, .top_k = 0, .prime = "", .seed = 123,
                        .threads = 1, .count = 1};
    sample_stats stats;
    int timing = 0;
    char model_path[CONFIG_PATH_MAX] = "";
    int precision = KERN_F32;
    /* a conditional generator's (generate.h) */
    char cond_vector[CONFIG_PATH_MAX] = "", data[CONFIG_PATH_MAX] = "";
    const char *cond = NULL;
    int unique = 0, novel = 0;
    const flag_spec flags[] = {
        FLAG("model", F_PATH, model_path, 0, "model file or checkpoint written by train (required)",
             0, 0),
        FLAG("length", F_I64, &o.length, 0, "characters to generate (default 500)", 0, 1e15),
        FLAG("temperature", F_DOUBLE, &o.temperature, 0,
             "sampling temperature, 0 = greedy (default 1)", 0, 1e6),
        FLAG("top-k", F_INT, &o.top_k, 0, "sample among the k most likely, 0 = all (default 0)", 0,
             INT_MAX),
        FLAG("prime", F_STR, &o.prime, 0, "text to start from (default: a random character)", 0, 0),
        FLAG("seed", F_U64, &o.seed, 0, "random seed (default 123)", RANGE_NONNEG),
        FLAG("threads", F_INT, &o.threads, 0, "OpenMP threads (default 1)", 0, 4096),
        FLAG("count", F_INT, &o.count, 0,
             "samples drawn together in one batch; sample i is the same whatever the count "
             "(default 1; a generator: samples, one a line)", 1, 1000000),
        FLAG("json", F_BOOL, &o.json, 0,
             "one JSON line per sample: {\"sample\":i,\"seed\":S,\"text\":\"...\"}", 0, 0),
        FLAG("timing", F_BOOL, &timing, 0,
             "print the generation speed (characters per second, all samples) to stderr", 0, 0),
        FLAG_CHOICE("precision", &precision, 0,
                    "f32 | bf16: the matrix products' operands (default f32)",
                    cli_precision_choices),
        FLAG("cond", F_STR, &cond, 0, "generator: the class to generate from, e.g. Russian", 0,
             0),
        FLAG("cond-vector", F_PATH, cond_vector, 0,
             "generator: a text file of the condition's D numbers", 0, 0),
        FLAG("unique", F_BOOL, &unique, 0, "generator: no sample twice", 0, 0),
        FLAG("novel", F_BOOL, &novel, 0,
             "generator: no training text (redrawn, and counted on stderr)", 0, 0),
        FLAG("data", F_PATH, data, 0,
             "generator: the examples file --novel reads (default: the model's training data)",
             0, 0),
    };
    flag_table t = {"sample", "--model PATH [--length N] [--temperature X] [--top-k K] "
                              "[--prime TEXT] [--seed S] [--count N] [--json]",
                    flags, (int)(sizeof flags / sizeof flags[0]), NULL, 0, NULL};
    unsigned given = 0;
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        return status;
    if (!model_path[0])
        return flags_usage_error(&t, "--model is required");
    o.model_path = model_path;
    o.stats = timing ? &stats : NULL;
    if (cli_set_precision(precision) != 0)
        return CLI_EXIT_ERROR;
    if (cond || cond_vector[0] || unique || novel) {
        gen_sample_options g = {
            .model_path = model_path,
            .cond = cond,
            .cond_vector = cond_vector[0] ? cond_vector : NULL,
            .count = o.count,
            .unique = unique,
            .novel = novel,
            .data = data[0] ? data : NULL,
            .length = o.length,
            .temperature = o.temperature,
            .top_k = o.top_k,
            .prime = o.prime,
            .seed = o.seed,
            .threads = o.threads,
            .report = stderr,
        };
        if (gen_sample_run(&g, stdout) != 0) {
            fprintf(stderr, "charnn: %s\n", cn_errmsg());
            return CLI_EXIT_ERROR;
        }
        return CLI_EXIT_OK;
    }
    if (sample_run(&o, stdout) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return CLI_EXIT_ERROR;
    }
    if (timing)
        fprintf(stderr, "charnn: sampled %lld characters in %d stream%s in %.3f s: %.0f chars/s\n",
                (long long)stats.symbols, o.count, o.count == 1 ? "" : "s", stats.seconds,
                stats.seconds > 0.0 ? (double)stats.symbols / stats.seconds : 0.0);
    return CLI_EXIT_OK;
}
