/* `charnn trace`: flags into trace_options, then trace_run. See cli.h. */
#include "charnn/cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "charnn/data.h"
#include "charnn/flags.h"
#include "charnn/kernels.h"
#include "charnn/runtime.h"
#include "charnn/trace.h"
#include "charnn/translate.h"

/* Do two paths name the same existing file? */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

int cli_trace(int argc, char **argv)
{
    trace_options o;
    memset(&o, 0, sizeof o);
    o.split = SPLIT_ALL;
    o.block = 1000;
    o.grad_len = 100;
    o.grad_chunks = 20;
    int threads = 0, precision = KERN_F32;
    enum { GIVEN_SPLIT = 1u << 0, GIVEN_GRAD_SHAPE = 1u << 1 };
    const flag_spec flags[] = {
        FLAG("model", F_PATH, o.model, 0, "model file or checkpoint written by train (required)", 0,
             0),
        FLAG("data", F_PATH, o.data, 0,
             "text file or prepared corpus; a classifier's examples, a tagger's tag file or "
             "text (default: the model's training data, with --split)",
             0, 0),
        FLAG_CHOICE("split", &o.split, GIVEN_SPLIT, "train | val | test | all (default all)",
                    cli_split_choices),
        FLAG("out", F_PATH, o.out, 0, "HDF5 trace to write (required)", 0, 0),
        FLAG("max-chars", F_I64, &o.max_chars, 0,
             "steps to trace (a translation model: pairs; a vector classifier: examples), 0 = the "
             "whole split (default 0)",
             RANGE_NONNEG),
        FLAG("block", F_INT, &o.block, 0,
             "steps held in memory and appended per write (default "
             "1000); results do not depend on it", 1, 10000000),
        FLAG("grads", F_BOOL, &o.grads, 0, "also record gradient flow: |dL/dh_t| against distance",
             0, 0),
        FLAG("grad-chunk", F_INT, &o.grad_len, GIVEN_GRAD_SHAPE,
             "--grads: steps per chunk (default 100)", 1, 1000000),
        FLAG("grad-chunks", F_INT, &o.grad_chunks, GIVEN_GRAD_SHAPE, "--grads: chunks (default 20)",
             1, 1000000),
        FLAG("lstmvis", F_BOOL, &o.lstmvis, 0, "also write an LSTMVis project beside the trace", 0,
             0),
        FLAG("cond-vectors", F_PATH, o.cond_vectors, 0,
             "generator on vectors: the HDF5 file of /features for --data's examples", 0, 0),
        FLAG("threads", F_INT, &threads, 0, "OpenMP threads (default all cores)", 0, 4096),
        FLAG_CHOICE("precision", &precision, 0,
                    "f32 | bf16: the matrix products' operands (default f32)",
                    cli_precision_choices),
    };
    flag_table t = {"trace", "--model PATH (--data FILE | --split S) --out trace.h5 [flags]",
                    flags, (int)(sizeof flags / sizeof flags[0]), NULL, 0, NULL};
    unsigned given = 0;
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        return status;
    if (!o.model[0] || !o.out[0])
        return flags_usage_error(&t, "--model and --out are required");
    if (!o.data[0] && !(given & GIVEN_SPLIT))
        return flags_usage_error(&t, "give --data FILE, or --split to trace the model's own "
                                     "training data");
    if ((given & GIVEN_GRAD_SHAPE) && !o.grads)
        return flags_usage_error(&t, "--grad-chunk and --grad-chunks need --grads");
    const char *dot = strrchr(o.out, '.');
    if (o.lstmvis && !(dot && (strcmp(dot, ".h5") == 0 || strcmp(dot, ".hdf5") == 0)))
        return flags_usage_error(&t, "--lstmvis needs --out ending in .h5 or .hdf5 (LSTMVis "
                                     "opens no other HDF5 names), got '%s'", o.out);
    if (same_file(o.out, o.model) || (o.data[0] && same_file(o.out, o.data)))
        return flags_usage_error(&t, "--out '%s' would overwrite an input", o.out);
    runtime_set_threads(threads);
    if (cli_set_precision(precision) != 0)
        return CLI_EXIT_ERROR;
    if (translate_is_model(o.model) == 1) {
        /* a translation model: per pair, encoder and decoder states and attention */
        if (!o.data[0] || o.grads || o.lstmvis)
            return flags_usage_error(&t, "a translation model is traced over --data PAIRS.h5, "
                                         "without --grads and --lstmvis");
        translate_trace_options to = {o.model, o.data, o.out,
                                      given & GIVEN_SPLIT ? o.split : SPLIT_TEST, o.max_chars, 64};
        if (translate_trace_run(&to) != 0) {
            fprintf(stderr, "charnn: %s\n", cn_errmsg());
            return CLI_EXIT_ERROR;
        }
        return CLI_EXIT_OK;
    }
    if (trace_run(&o) != 0) {
        fprintf(stderr, "charnn: %s\n", cn_errmsg());
        return CLI_EXIT_ERROR;
    }
    return CLI_EXIT_OK;
}
