/* `charnn prepare`: text files and flags into corpus_prepare. See cli.h. */
#include "charnn/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "charnn/config.h"
#include "charnn/corpus.h"
#include "charnn/flags.h"

int cli_prepare(int argc, char **argv)
{
    char out[CONFIG_PATH_MAX] = "";
    double val_frac = 0.05, test_frac = 0.05;
    int bytes = 0, n_inputs = 0;
    const flag_spec flags[] = {
        FLAG("out", F_PATH, out, 0, "HDF5 corpus to write (required)", 0, 0),
        FLAG("val-frac", F_DOUBLE, &val_frac, 0, "validation fraction (default 0.05)", 0, 1),
        FLAG("test-frac", F_DOUBLE, &test_frac, 0, "test fraction (default 0.05)", 0, 1),
        FLAG("bytes", F_BOOL, &bytes, 0, "tokens are raw bytes, not UTF-8 code points", 0, 0),
    };
    const char **inputs = cn_xcalloc((size_t)argc + 1, sizeof *inputs);
    flag_table t = {"prepare", "TEXT... --out corpus.h5 [--val-frac X] [--test-frac X] [--bytes]",
                    flags, (int)(sizeof flags / sizeof flags[0]), inputs, argc, &n_inputs};
    unsigned given = 0;
    int status;
    if (flags_parse_or_exit(&t, argc, argv, &given, &status))
        goto done;
    status = CLI_EXIT_USAGE;
    if (n_inputs == 0 || !out[0]) {
        flags_usage_error(&t, "give at least one text file and --out");
        goto done;
    }
    if (val_frac + test_frac >= 1.0) {
        flags_usage_error(&t, "--val-frac + --test-frac must be below 1");
        goto done;
    }
    double t0 = cn_now();
    if (corpus_prepare(inputs, n_inputs, out, bytes ? VOCAB_BYTES : VOCAB_CODEPOINTS, val_frac,
                       test_frac, CORPUS_DEFAULT_BUFFER_BYTES) != 0) {
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
