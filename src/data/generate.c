/* The data side of conditional generation: the vocabulary with its boundary
 * symbol and the vector conditions. See generate.h. */
#include "charnn/generate.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/h5io.h"

int gen_vocab(const vocab *ex, vocab *out)
{
    if (vocab_id(ex, GEN_BOUNDARY) >= 0)
        return cn_err("the texts hold newlines, which generation uses to begin and end a text");
    uint32_t *sym = cn_xmalloc(((size_t)ex->size + 1) * sizeof *sym);
    int n = 0, put = 0;
    for (int i = 0; i < ex->size; i++) {
        if (!put && ex->symbols[i] > GEN_BOUNDARY) {
            sym[n++] = GEN_BOUNDARY;
            put = 1;
        }
        sym[n++] = ex->symbols[i];
    }
    if (!put)
        sym[n++] = GEN_BOUNDARY;
    int rc = vocab_from_symbols(out, ex->mode, sym, n);
    free(sym);
    return rc;
}

int gen_features_read(const char *path, size_t n, const char *what, int *dim, float **out)
{
    hid_t fid = H5I_INVALID_HID;
    hsize_t dims[H5IO_MAX_RANK];
    int rank = 0, rc = -1;
    float *buf = NULL;
    *out = NULL;
    if ((fid = h5io_file_open(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        return -1;
    if (h5io_dataset_shape(path, fid, "/features", &rank, dims) < 0)
        goto error;
    if (rank != 2) {
        cn_err("'%s': /features must be 2-dimensional (N, D), it has %d dimension%s", path, rank,
               rank == 1 ? "" : "s");
        goto error;
    }
    if (dims[0] != (hsize_t)n) {
        cn_err("'%s': /features has %llu rows, %s has %zu examples", path,
               (unsigned long long)dims[0], what, n);
        goto error;
    }
    if (dims[1] < 1 || dims[1] > 65536) {
        cn_err("'%s': /features has width %llu, expected 1 to 65536", path,
               (unsigned long long)dims[1]);
        goto error;
    }
    buf = cn_xmalloc((size_t)(dims[0] * dims[1] + 1) * sizeof *buf);
    if (h5io_dataset_read(path, fid, "/features", H5T_NATIVE_FLOAT, H5T_FLOAT, 2, dims, buf) < 0)
        goto error;
    for (size_t i = 0; i < (size_t)(dims[0] * dims[1]); i++)
        if (!(buf[i] == buf[i]) || buf[i] > 3e38f || buf[i] < -3e38f) {
            cn_err("'%s': /features row %zu holds a value that is not finite", path,
                   i / (size_t)dims[1]);
            goto error;
        }
    *dim = (int)dims[1];
    *out = buf;
    buf = NULL;
    rc = 0;
error:
    free(buf);
    if (fid >= 0 && h5io_file_close(path, fid) < 0)
        rc = -1;
    return rc;
}

int gen_vector_read_text(const char *path, int dim, float *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cn_err("cannot open '%s': %s", path, strerror(errno));
    int n = 0, rc = 0;
    char word[128];
    while (fscanf(f, "%127s", word) == 1) {
        char *end = NULL;
        errno = 0;
        float v = strtof(word, &end);
        if (*end || errno || !(v == v)) {
            rc = cn_err("'%s': '%s' is not a number", path, word);
            break;
        }
        if (n < dim)
            out[n] = v;
        n++;
    }
    fclose(f);
    if (rc == 0 && n != dim)
        rc = cn_err("'%s' holds %d numbers, the model's condition has width %d", path, n, dim);
    return rc;
}
