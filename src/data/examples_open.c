/* An examples file, or a small raw input prepared on the fly into a
 * temporary one. See examples.h (examples_open_input). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "charnn/common.h"
#include "charnn/examples.h"

int examples_open_input(examples_file *ex, const char *path, vocab *v, vocab_mode mode,
                        double val_frac, double test_frac, uint64_t seed, int tag, int *raw)
{
    *raw = 0;
    if (access(path, R_OK) != 0)
        return cn_err("cannot read '%s': %s", path, strerror(errno));
    if (examples_is_examples_file(path))
        return examples_open(ex, path, v);
    const char *dir = getenv("TMPDIR");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/charnn-classify-%ld-%d.h5", dir && dir[0] ? dir : "/tmp",
             (long)getpid(), tag);
    examples_prepare_options o;
    examples_prepare_options_init(&o);
    const char *inputs[1] = {path};
    o.inputs = inputs;
    o.n_inputs = 1;
    o.out_path = tmp;
    o.mode = mode;
    o.val_frac = val_frac;
    o.test_frac = test_frac;
    o.seed = seed;
    if (examples_prepare(&o) != 0)
        return -1;
    int rc = examples_open(ex, tmp, v);
    unlink(tmp); /* the open file stays readable */
    if (rc == 0)
        *raw = 1;
    return rc;
}
