/* `charnn generate`: flags into textgen_options, then textgen_run. See cli.h. */
#include "charnn/cli.h"

#include <stdio.h>

#include "charnn/config.h"
#include "charnn/textgen.h"

static const flag_choice kind_choices[] = {{"structured", TEXTGEN_STRUCTURED}, {NULL, 0}};

int cli_generate(int argc, char **argv)
{
    textgen_options o = {.kind = TEXTGEN_STRUCTURED, .chars = 100000, .seed = 1};
    int kind = o.kind;
    char path[CONFIG_PATH_MAX] = "";
    const flag_spec flags[] = {
        FLAG_CHOICE("kind", &kind, 0,
                    "structured: nested (), [], {} and quoted words (default structured)",
                    kind_choices),
        FLAG("chars", F_I64, &o.chars, 0, "characters to write (default 100000)", 0, 1e15),
        FLAG("seed", F_U64, &o.seed, 0, "random seed (default 1)", RANGE_NONNEG),
        FLAG("out", F_PATH, path, 0, "file to write (default: standard output)", 0, 0),
    };
    flag_table t = {"generate", "[--kind structured] [--chars N] [--seed S] [--out FILE]", flags,
                    (int)(sizeof flags / sizeof flags[0]), NULL, 0, NULL};
    unsigned given = 0;
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        return status;
    o.kind = (textgen_kind)kind;
    o.path = path[0] ? path : NULL;
    if (textgen_run(&o, stdout) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return CLI_EXIT_ERROR;
    }
    return CLI_EXIT_OK;
}
