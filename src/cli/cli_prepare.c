/* `charnn prepare`: text files into a prepared corpus (corpus_prepare, the
 * language model's), or labelled examples into an examples file
 * (examples_prepare, --task classify). See cli.h. */
#include "charnn/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "charnn/config.h"
#include "charnn/corpus.h"
#include "charnn/examples.h"
#include "charnn/flags.h"
#include "charnn/pairs.h"

enum { PREPARE_LM = 0, PREPARE_CLASSIFY = 1, PREPARE_SEQ2SEQ = 2, PREPARE_TAG = 3 };
enum { DERIVE_NONE = 0, DERIVE_SPACING = 1 };

static const flag_choice prepare_task_choices[] = {{"lm", PREPARE_LM},
                                                   {"classify", PREPARE_CLASSIFY},
                                                   {"seq2seq", PREPARE_SEQ2SEQ},
                                                   {"tag", PREPARE_TAG},
                                                   {NULL, 0}};
static const flag_choice prepare_derive_choices[] = {
    {"none", DERIVE_NONE}, {"spacing", DERIVE_SPACING}, {NULL, 0}};
static const flag_choice prepare_format_choices[] = {
    {"auto", EXAMPLES_INPUT_AUTO}, {"tsv", EXAMPLES_INPUT_TSV}, {"csv", EXAMPLES_INPUT_CSV},
    {"jsonl", EXAMPLES_INPUT_JSONL}, {"dir", EXAMPLES_INPUT_DIR}, {NULL, 0}};

static int prepare_classify(const char **inputs, int n_inputs, const char *out,
                            const char *val_path, const char *test_path, int format,
                            const char *text_col, const char *label_col, int bytes,
                            double val_frac, double test_frac, uint64_t seed, int dedup)
{
    examples_stats st;
    examples_prepare_options o;
    examples_prepare_options_init(&o);
    o.inputs = inputs;
    o.n_inputs = n_inputs;
    o.val_path = val_path[0] ? val_path : NULL;
    o.test_path = test_path[0] ? test_path : NULL;
    o.out_path = out;
    o.format = (examples_input_format)format;
    o.text_col = text_col;
    o.label_col = label_col;
    o.mode = bytes ? VOCAB_BYTES : VOCAB_CODEPOINTS;
    /* a split given as a file takes no share of the inputs unless asked to */
    o.val_frac = val_frac >= 0 ? val_frac : o.val_path ? 0.0 : 0.05;
    o.test_frac = test_frac >= 0 ? test_frac : o.test_path ? 0.0 : 0.1;
    o.seed = seed;
    o.dedup = dedup;
    o.stats = &st;
    double t0 = cn_now();
    if (examples_prepare(&o) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return CLI_EXIT_ERROR;
    }
    examples_stats_print(&st, stdout);
    printf("prepared '%s' in %.1fs\n", out, cn_now() - t0);
    return CLI_EXIT_OK;
}

static int prepare_seq2seq(const char *in, const char *out, int src_col, int tgt_col,
                           int reverse, int max_len, int64_t limit, double val_frac,
                           double test_frac, uint64_t seed)
{
    pairs_stats st;
    pairs_prepare_options o;
    pairs_prepare_options_init(&o);
    o.in_path = in;
    o.out_path = out;
    o.src_col = src_col;
    o.tgt_col = tgt_col;
    o.reverse = reverse;
    o.max_len = max_len;
    o.limit = (size_t)limit;
    if (val_frac >= 0)
        o.val_frac = val_frac;
    if (test_frac >= 0)
        o.test_frac = test_frac;
    o.seed = seed;
    o.stats = &st;
    double t0 = cn_now();
    if (pairs_prepare(&o) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return CLI_EXIT_ERROR;
    }
    pairs_stats_print(&st, stdout);
    printf("prepared '%s' in %.1fs\n", out, cn_now() - t0);
    return CLI_EXIT_OK;
}

static int prepare_tag(const char **inputs, int n_inputs, const char *out, const char *val_path,
                       const char *test_path, const char *tag_set, int derive,
                       const char *text_col, double min_space_rate, int bytes, double val_frac,
                       double test_frac, uint64_t seed)
{
    examples_stats st;
    examples_tag_options o = {
        .inputs = inputs,
        .n_inputs = n_inputs,
        .val_path = val_path[0] ? val_path : NULL,
        .test_path = test_path[0] ? test_path : NULL,
        .out_path = out,
        .tag_set = tag_set,
        .derive_spacing = derive == DERIVE_SPACING,
        .text_col = text_col,
        .min_space_rate = min_space_rate,
        .mode = bytes ? VOCAB_BYTES : VOCAB_CODEPOINTS,
        .seed = seed,
        .stats = &st,
    };
    o.val_frac = val_frac >= 0 ? val_frac : o.val_path ? 0.0 : 0.05;
    o.test_frac = test_frac >= 0 ? test_frac : o.test_path ? 0.0 : 0.1;
    double t0 = cn_now();
    if (examples_prepare_tag(&o) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return CLI_EXIT_ERROR;
    }
    static const char *const from[3] = {"inputs", "val file", "test file"};
    for (int k = 0; k < 3; k++)
        if (st.n_read[k] || st.n_duplicates[k])
            printf("%s: %zu examples kept, %zu lines dropped (empty%s)\n", from[k],
                   st.n_read[k], st.n_duplicates[k],
                   min_space_rate > 0 ? " or below --min-space-rate" : "");
    printf("splits: train %zu, val %zu, test %zu examples; %zu characters, %d symbols, %d tags\n",
           st.n_split[0], st.n_split[1], st.n_split[2], st.n_tokens, st.vocab_size,
           st.n_classes);
    printf("prepared '%s' in %.1fs\n", out, cn_now() - t0);
    return CLI_EXIT_OK;
}

int cli_prepare(int argc, char **argv)
{
    char out[CONFIG_PATH_MAX] = "", val_path[CONFIG_PATH_MAX] = "",
         test_path[CONFIG_PATH_MAX] = "";
    const char *text_col = NULL, *label_col = "label", *tag_set = NULL;
    double min_space_rate = 0.0;
    int derive = DERIVE_NONE;
    double val_frac = -1.0, test_frac = -1.0;
    uint64_t seed = 1;
    int bytes = 0, n_inputs = 0, task = PREPARE_LM, format = EXAMPLES_INPUT_AUTO, dedup = 0;
    int src_col = 1, tgt_col = 2, reverse = 0, max_len = 0;
    int64_t limit = 0;
    const flag_spec flags[] = {
        FLAG("out", F_PATH, out, 0, "HDF5 corpus or examples file to write (required)", 0, 0),
        FLAG_CHOICE("task", &task, 0,
                    "lm: a text corpus (default); classify: labelled examples; seq2seq: "
                    "tab-separated sentence pairs; tag: a tag per character",
                    prepare_task_choices),
        FLAG("tag-set", F_STR, &tag_set, 0,
             "tag: the tags in id order, e.g. BI (default: a first line text<TAB>tags:BI)", 0, 0),
        FLAG_CHOICE("derive", &derive, 0,
                    "tag: spacing = tag plain text (or --text-col of a TSV) B before a space, "
                    "else I, spaces removed", prepare_derive_choices),
        FLAG("min-space-rate", F_DOUBLE, &min_space_rate, 0,
             "tag --derive spacing: drop lines with fewer spaces per character (e.g. 0.125)", 0,
             1),
        FLAG("val-frac", F_DOUBLE, &val_frac, 0,
             "validation fraction (default 0.05; classify: 0 with --val)", 0, 1),
        FLAG("test-frac", F_DOUBLE, &test_frac, 0,
             "test fraction (default 0.05; classify: 0.1, or 0 with --test)", 0, 1),
        FLAG("bytes", F_BOOL, &bytes, 0, "tokens are raw bytes, not UTF-8 code points", 0, 0),
        FLAG_CHOICE("format", &format, 0,
                    "classify: tsv | csv | jsonl | dir (one file per class) | auto (default, "
                    "by the name)", prepare_format_choices),
        FLAG("text-col", F_STR, &text_col, 0,
             "classify: the text column (default text); tag --derive: a TSV column", 0, 0),
        FLAG("label-col", F_STR, &label_col, 0, "classify: the label column (default label)", 0,
             0),
        FLAG("val", F_PATH, val_path, 0, "classify, tag: the validation examples as a file", 0,
             0),
        FLAG("test", F_PATH, test_path, 0, "classify: the test examples as a file (e.g. NSMC's "
                                           "test.tsv)", 0, 0),
        FLAG("seed", F_U64, &seed, 0, "classify: the seed of the stratified split (default 1)",
             RANGE_NONNEG),
        FLAG("dedup", F_BOOL, &dedup, 0,
             "classify: drop exact duplicate texts, within and across splits", 0, 0),
        FLAG("src-col", F_INT, &src_col, 0, "seq2seq: the source column, from 1 (default 1)", 1,
             1000000),
        FLAG("tgt-col", F_INT, &tgt_col, 0, "seq2seq: the target column, from 1 (default 2)", 1,
             1000000),
        FLAG("reverse", F_BOOL, &reverse, 0, "seq2seq: swap source and target", 0, 0),
        FLAG("max-len", F_INT, &max_len, 0,
             "seq2seq: drop pairs with a side longer than this many characters (0: none)", 0,
             1000000),
        FLAG("limit", F_I64, &limit, 0, "seq2seq: keep only the first N pairs (0: all)", 0,
             1e15),
    };
    const char **inputs = cn_xcalloc((size_t)argc + 1, sizeof *inputs);
    flag_table t = {"prepare",
                    "INPUT... --out FILE.h5 [--task lm|classify|seq2seq|tag] [--val-frac X] [--test-frac X] "
                    "[--bytes] [classify: --format F --text-col C --label-col C --val FILE "
                    "--test FILE --seed S --dedup] [seq2seq: --src-col N --tgt-col N --reverse "
                    "--max-len N --limit N --seed S] [tag: --tag-set BI | --derive spacing "
                    "--text-col C --min-space-rate R; --val FILE --test FILE --seed S]",
                    flags, (int)(sizeof flags / sizeof flags[0]), inputs, argc, &n_inputs};
    unsigned given = 0;
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        goto done;
    status = CLI_EXIT_USAGE;
    if (n_inputs == 0 || !out[0]) {
        flags_usage_error(&t, "give at least one input file and --out");
        goto done;
    }
    if ((val_frac > 0 ? val_frac : 0) + (test_frac > 0 ? test_frac : 0) >= 1.0) {
        flags_usage_error(&t, "--val-frac + --test-frac must be below 1");
        goto done;
    }
    if (task != PREPARE_TAG && (tag_set || derive != DERIVE_NONE || min_space_rate > 0)) {
        flags_usage_error(&t, "--tag-set, --derive and --min-space-rate go with --task tag");
        goto done;
    }
    if (task == PREPARE_SEQ2SEQ) {
        if (n_inputs != 1) {
            flags_usage_error(&t, "--task seq2seq reads one file of pairs");
            goto done;
        }
        status = prepare_seq2seq(inputs[0], out, src_col, tgt_col, reverse, max_len, limit,
                                 val_frac, test_frac, seed);
        goto done;
    }
    if (task == PREPARE_TAG) {
        if (dedup || format != EXAMPLES_INPUT_AUTO) {
            flags_usage_error(&t, "--dedup and --format go with --task classify");
            goto done;
        }
        if (text_col && derive != DERIVE_SPACING) {
            flags_usage_error(&t, "--text-col goes with --derive spacing for --task tag");
            goto done;
        }
        status = prepare_tag(inputs, n_inputs, out, val_path, test_path, tag_set, derive,
                             text_col, min_space_rate, bytes, val_frac, test_frac, seed);
        goto done;
    }
    if (task == PREPARE_CLASSIFY) {
        status = prepare_classify(inputs, n_inputs, out, val_path, test_path, format,
                                  text_col ? text_col : "text",
                                  label_col, bytes, val_frac, test_frac, seed, dedup);
        goto done;
    }
    if (val_path[0] || test_path[0] || dedup) {
        flags_usage_error(&t, "--val, --test and --dedup go with --task classify");
        goto done;
    }
    double t0 = cn_now();
    if (corpus_prepare(inputs, n_inputs, out, bytes ? VOCAB_BYTES : VOCAB_CODEPOINTS,
                       val_frac >= 0 ? val_frac : 0.05, test_frac >= 0 ? test_frac : 0.05,
                       CORPUS_DEFAULT_BUFFER_BYTES) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        status = CLI_EXIT_ERROR;
        goto done;
    }
    printf("prepared '%s' from %d file%s in %.1fs\n", out, n_inputs, n_inputs == 1 ? "" : "s",
           cn_now() - t0);
    status = CLI_EXIT_OK;
done:
    free(inputs);
    return status;
}
