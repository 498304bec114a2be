/* h5io: checked HDF5 helpers. See h5io.h. */
#include "charnn/h5io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/fsio.h"

static const uint8_t hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

void h5io_silence(void)
{
    /* per thread in a thread-safe build, global otherwise: both only ever
     * switch printing off */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* ---- the error stack -------------------------------------------------- */

typedef struct {
    int checksum;        /* some level reported a checksum failure */
    int truncated;       /* the file is shorter than its superblock says */
    char os_reason[128]; /* strerror text a failed system call left, if any */
} h5_stack;

static herr_t h5_stack_visit(unsigned n, const H5E_error2_t *e, void *data)
{
    h5_stack *st = data;
    (void)n;
    if (!e->desc)
        return 0;
    if (strstr(e->desc, "Fletcher32") || strstr(e->desc, "checksum"))
        st->checksum = 1;
    if (strstr(e->desc, "truncated file"))
        st->truncated = 1;
    /* the sec2 driver quotes errno's text: "..., error message = 'No space left on device', ..." */
    const char *m = strstr(e->desc, "error message = '");
    if (m && !st->os_reason[0]) {
        m += strlen("error message = '");
        const char *end = strchr(m, '\'');
        size_t len = end ? (size_t)(end - m) : strlen(m);
        if (len >= sizeof st->os_reason)
            len = sizeof st->os_reason - 1;
        memcpy(st->os_reason, m, len);
        st->os_reason[len] = '\0';
    }
    return 0;
}

/* What the last failed call left on the stack; the next API call clears it. */
static void h5_stack_get(h5_stack *st)
{
    memset(st, 0, sizeof *st);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5_stack_visit, st);
}

int h5io_read_fail(const char *path, const char *what)
{
    h5_stack st;
    h5_stack_get(&st);
    if (st.checksum)
        return cn_err("'%s' is damaged: checksum mismatch in %s", path, what);
    if (st.truncated)
        return cn_err("'%s' is damaged: the file is truncated", path);
    return cn_err("'%s' is damaged: cannot read %s", path, what);
}

int h5io_write_fail(const char *path, const char *what)
{
    h5_stack st;
    h5_stack_get(&st);
    if (st.os_reason[0])
        return cn_err("cannot write '%s': %s failed: %s", path, what, st.os_reason);
    return cn_err("cannot write '%s': %s failed", path, what);
}

/* ---- files ------------------------------------------------------------ */

int h5io_is_hdf5(const char *path)
{
    uint8_t buf[sizeof hdf5_signature];
    int found = 0;
    if (fsio_check_regular(path, NULL) < 0)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    for (long off = 0; !found && off <= (1L << 30); off = off ? 2 * off : 512) {
        if (fseek(f, off, SEEK_SET) != 0 || fread(buf, 1, sizeof buf, f) != sizeof buf)
            break;
        found = memcmp(buf, hdf5_signature, sizeof buf) == 0;
    }
    fclose(f);
    return found;
}

int h5io_starts_like_hdf5(const char *path)
{
    /* 0x89 is never the first byte of UTF-8 text */
    char head[4];
    if (fsio_check_regular(path, NULL) < 0)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    return (got == sizeof head && memcmp(head, hdf5_signature, sizeof head) == 0) ||
           h5io_is_hdf5(path);
}

hid_t h5io_file_open(const char *path, unsigned flags, hid_t fapl)
{
    uint64_t size = 0;
    hid_t fid = H5I_INVALID_HID;
    h5io_silence();
    if (fsio_check_regular(path, &size) < 0)
        return H5I_INVALID_HID;
    /* Ask the OS first, so an unreadable file gets errno's words. */
    FILE *f = fopen(path, flags == H5F_ACC_RDWR ? "r+b" : "rb");
    if (!f) {
        cn_err("cannot open '%s': %s", path, strerror(errno));
        return H5I_INVALID_HID;
    }
    fclose(f);
    if (size == 0) {
        cn_err("'%s' is damaged: the file is empty", path);
        return H5I_INVALID_HID;
    }
    if (!h5io_is_hdf5(path)) {
        if (h5io_starts_like_hdf5(path))
            cn_err("'%s' is damaged: its HDF5 signature is broken", path);
        else
            cn_err("'%s' is not an HDF5 file", path);
        return H5I_INVALID_HID;
    }
    if ((fid = H5Fopen(path, flags, fapl)) < 0) {
        h5_stack st;
        h5_stack_get(&st);
        if (st.truncated)
            cn_err("'%s' is damaged: the file is truncated", path);
        else if (st.checksum)
            cn_err("'%s' is damaged: checksum mismatch in the file's metadata", path);
        else
            cn_err("'%s' is damaged: HDF5 cannot open it", path);
    }
    return fid;
}

hid_t h5io_file_create(const char *path, hid_t fapl)
{
    h5io_silence();
    FILE *f = fopen(path, "ab");
    if (!f) {
        cn_err("cannot create '%s': %s", path, strerror(errno));
        return H5I_INVALID_HID;
    }
    fclose(f);
    hid_t fid = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fid < 0)
        h5io_write_fail(path, "creating the file");
    return fid;
}

int h5io_file_close(const char *path, hid_t fid)
{
    if (fid >= 0 && H5Fclose(fid) < 0)
        return h5io_write_fail(path, "closing the file");
    return 0;
}

/* ---- objects ---------------------------------------------------------- */

int h5io_exists(const char *path, hid_t loc, const char *name)
{
    char part[512];
    size_t len = strlen(name);
    if (len >= sizeof part)
        return cn_err("'%s': object name '%s' is too long", path, name);
    for (size_t i = 1; i <= len; i++) {
        if (name[i] != '/' && name[i] != '\0')
            continue;
        memcpy(part, name, i);
        part[i] = '\0';
        htri_t e = H5Lexists(loc, part, H5P_DEFAULT);
        if (e < 0)
            return h5io_read_fail(path, part);
        if (e == 0)
            return 0;
    }
    return 1;
}

int h5io_group_create(const char *path, hid_t loc, const char *name)
{
    char what[300];
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        snprintf(what, sizeof what, "creating group %s", name);
        return h5io_write_fail(path, what);
    }
    H5Gclose(g);
    return 0;
}

/* ---- attributes ------------------------------------------------------- */

static int attr_write(const char *path, hid_t loc, const char *name, hid_t file_type,
                      hid_t mem_type, const void *value)
{
    hid_t space = H5I_INVALID_HID, attr = H5I_INVALID_HID;
    int rc = -1;
    char what[128];
    snprintf(what, sizeof what, "writing attribute %s", name);
    htri_t e = H5Aexists(loc, name);
    if (e < 0 || (e > 0 && H5Adelete(loc, name) < 0))
        goto error;
    if ((space = H5Screate(H5S_SCALAR)) < 0)
        goto error;
    if ((attr = H5Acreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        goto error;
    if (H5Awrite(attr, mem_type, value) < 0)
        goto error;
    rc = 0;
error:
    if (rc < 0)
        h5io_write_fail(path, what);
    H5Aclose(attr);
    H5Sclose(space);
    return rc;
}

int h5io_attr_write_i64(const char *path, hid_t loc, const char *name, int64_t v)
{
    h5io_silence();
    return attr_write(path, loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

int h5io_attr_write_u64(const char *path, hid_t loc, const char *name, uint64_t v)
{
    h5io_silence();
    return attr_write(path, loc, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}

int h5io_attr_write_f64(const char *path, hid_t loc, const char *name, double v)
{
    h5io_silence();
    return attr_write(path, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

/* A UTF-8 string type, variable length when size is H5T_VARIABLE. */
static hid_t string_type(size_t size)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    if (type < 0)
        return H5I_INVALID_HID;
    if (H5Tset_size(type, size) < 0 || H5Tset_cset(type, H5T_CSET_UTF8) < 0 ||
        (size != H5T_VARIABLE && H5Tset_strpad(type, H5T_STR_NULLTERM) < 0)) {
        H5Tclose(type);
        return H5I_INVALID_HID;
    }
    return type;
}

int h5io_attr_write_str(const char *path, hid_t loc, const char *name, const char *s)
{
    h5io_silence();
    hid_t type = string_type(H5T_VARIABLE);
    if (type < 0) {
        char what[128];
        snprintf(what, sizeof what, "writing attribute %s", name);
        return h5io_write_fail(path, what);
    }
    int rc = attr_write(path, loc, name, type, type, &s);
    H5Tclose(type);
    return rc;
}

int h5io_attr_write_fixed_str(const char *path, hid_t loc, const char *name, const char *s)
{
    h5io_silence();
    hid_t type = string_type(strlen(s) + 1);
    if (type < 0) {
        char what[128];
        snprintf(what, sizeof what, "writing attribute %s", name);
        return h5io_write_fail(path, what);
    }
    int rc = attr_write(path, loc, name, type, type, s);
    H5Tclose(type);
    return rc;
}

/* "attribute NAME" of the root group, or "OBJ attribute NAME". */
static void attr_label(char *out, size_t n, const char *obj, const char *name)
{
    if (obj[0])
        snprintf(out, n, "%s attribute %s", obj, name);
    else
        snprintf(out, n, "attribute %s", name);
}

int h5io_attr_read_num(const char *path, hid_t loc, const char *obj, const char *name,
                       hid_t mem_type, int want_int, void *out)
{
    char what[160];
    hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    int rc = -1;
    h5io_silence();
    attr_label(what, sizeof what, obj, name);
    htri_t e = H5Aexists(loc, name);
    if (e < 0)
        return h5io_read_fail(path, what);
    if (e == 0)
        return 0;
    if ((attr = H5Aopen(loc, name, H5P_DEFAULT)) < 0 || (type = H5Aget_type(attr)) < 0 ||
        (space = H5Aget_space(attr)) < 0) {
        h5io_read_fail(path, what);
        goto error;
    }
    H5T_class_t cls = H5Tget_class(type);
    if (cls != H5T_INTEGER && (want_int || cls != H5T_FLOAT)) {
        cn_err("'%s': %s is not %s", path, what, want_int ? "an integer" : "a number");
        goto error;
    }
    if (H5Sget_simple_extent_npoints(space) != 1) {
        cn_err("'%s': %s is not a single value", path, what);
        goto error;
    }
    if (H5Aread(attr, mem_type, out) < 0) {
        h5io_read_fail(path, what);
        goto error;
    }
    rc = 1;
error:
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

int h5io_attr_read_str(const char *path, hid_t loc, const char *obj, const char *name,
                       char *buf, size_t n)
{
    char what[160];
    hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID, mem = H5I_INVALID_HID;
    hid_t space = H5I_INVALID_HID;
    int rc = -1;
    h5io_silence();
    attr_label(what, sizeof what, obj, name);
    htri_t e = H5Aexists(loc, name);
    if (e < 0)
        return h5io_read_fail(path, what);
    if (e == 0)
        return 0;
    if ((attr = H5Aopen(loc, name, H5P_DEFAULT)) < 0 || (type = H5Aget_type(attr)) < 0 ||
        (space = H5Aget_space(attr)) < 0) {
        h5io_read_fail(path, what);
        goto error;
    }
    if (H5Tget_class(type) != H5T_STRING || H5Sget_simple_extent_npoints(space) != 1) {
        cn_err("'%s': %s is not a string", path, what);
        goto error;
    }
    /* HDF5 converts between ASCII and UTF-8 strings not at all: read in the file's cset. */
    htri_t var = H5Tis_variable_str(type);
    H5T_cset_t cset = H5Tget_cset(type);
    if (var < 0 || cset < 0 || (mem = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_cset(mem, cset) < 0) {
        h5io_read_fail(path, what);
        goto error;
    }
    if (var) {
        char *s = NULL;
        if (H5Tset_size(mem, H5T_VARIABLE) < 0 || H5Aread(attr, mem, &s) < 0) {
            h5io_read_fail(path, what);
            goto error;
        }
        size_t len = s ? strlen(s) : 0;
        if (len >= n) {
            H5free_memory(s);
            cn_err("'%s': %s is too long", path, what);
            goto error;
        }
        memcpy(buf, s ? s : "", len + 1);
        H5free_memory(s);
    } else {
        size_t size = H5Tget_size(type);
        if (size == 0 || size >= n) {
            cn_err("'%s': %s is too long", path, what);
            goto error;
        }
        if (H5Tset_size(mem, size + 1) < 0 || H5Tset_strpad(mem, H5T_STR_NULLTERM) < 0 ||
            H5Aread(attr, mem, buf) < 0) {
            h5io_read_fail(path, what);
            goto error;
        }
        buf[size] = 0;
    }
    rc = 1;
error:
    H5Tclose(mem);
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

/* ---- datasets --------------------------------------------------------- */

hid_t h5io_dataset_create(const char *path, hid_t loc, const char *name, hid_t file_type,
                          int rank, const hsize_t *dims, const hsize_t *chunk, unsigned flags)
{
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, lcpl = H5I_INVALID_HID;
    hid_t dset = H5I_INVALID_HID;
    hsize_t cur[H5IO_MAX_RANK], max[H5IO_MAX_RANK], ch[H5IO_MAX_RANK];
    char what[300];
    h5io_silence();
    CHARNN_ASSERT(rank >= 1 && rank <= H5IO_MAX_RANK);
    snprintf(what, sizeof what, "creating %s", name);
    hsize_t row = 1;
    for (int i = 0; i < rank; i++) {
        cur[i] = dims[i];
        max[i] = i == 0 && (flags & H5IO_GROWABLE) ? H5S_UNLIMITED : dims[i];
        if (i > 0)
            row *= dims[i] ? dims[i] : 1;
    }
    if (chunk) {
        memcpy(ch, chunk, (size_t)rank * sizeof *ch);
    } else {
        hsize_t rows = H5IO_CHUNK_ELEMS / row;
        ch[0] = rows < 1 ? 1 : rows < dims[0] ? rows : dims[0] ? dims[0] : 1;
        for (int i = 1; i < rank; i++)
            ch[i] = dims[i] ? dims[i] : 1;
    }
    if ((space = H5Screate_simple(rank, cur, max)) < 0 ||
        (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 || H5Pset_chunk(dcpl, rank, ch) < 0)
        goto error;
    if ((flags & H5IO_COMPRESS) && (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, 4) < 0))
        goto error;
    /* last in the pipeline: the checksum covers the bytes on disk */
    if (H5Pset_fletcher32(dcpl) < 0)
        goto error;
    if ((flags & H5IO_NO_FILL) && H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0)
        goto error;
    if ((lcpl = H5Pcreate(H5P_LINK_CREATE)) < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0)
        goto error;
    dset = H5Dcreate2(loc, name, file_type, space, lcpl, dcpl, H5P_DEFAULT);
error:
    if (dset < 0)
        h5io_write_fail(path, what);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
    return dset;
}

int h5io_dataset_write(const char *path, hid_t loc, const char *name, hid_t file_type,
                       hid_t mem_type, int rank, const hsize_t *dims, const void *data)
{
    hid_t space = H5I_INVALID_HID, dset = H5I_INVALID_HID;
    hsize_t total = 1;
    char what[300];
    int rc = -1;
    h5io_silence();
    CHARNN_ASSERT(rank >= 1 && rank <= H5IO_MAX_RANK);
    for (int i = 0; i < rank; i++)
        total *= dims[i];
    snprintf(what, sizeof what, "writing %s", name);
    if (total == 0) {
        if ((space = H5Screate_simple(rank, dims, NULL)) < 0 ||
            (dset = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT,
                               H5P_DEFAULT)) < 0) {
            h5io_write_fail(path, what);
            goto error;
        }
    } else {
        if ((dset = h5io_dataset_create(path, loc, name, file_type, rank, dims, NULL, 0)) < 0)
            goto error;
        if (H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
            h5io_write_fail(path, what);
            goto error;
        }
    }
    rc = 0;
error:
    H5Dclose(dset);
    H5Sclose(space);
    return rc;
}

int h5io_dataset_write_strings(const char *path, hid_t loc, const char *name,
                               const char *const *s, size_t n)
{
    size_t width = 1;
    for (size_t i = 0; i < n; i++)
        if (strlen(s[i]) + 1 > width)
            width = strlen(s[i]) + 1;
    char *buf = cn_xcalloc(n ? n : 1, width);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + i * width, s[i], strlen(s[i]));
    h5io_silence();
    hid_t type = string_type(width);
    int rc = -1;
    hsize_t dims[1] = {(hsize_t)n};
    if (type < 0) {
        char what[300];
        snprintf(what, sizeof what, "writing %s", name);
        h5io_write_fail(path, what);
    } else {
        rc = h5io_dataset_write(path, loc, name, type, type, 1, dims, buf);
    }
    H5Tclose(type);
    free(buf);
    return rc;
}

int h5io_dataset_write_box(const char *path, const char *name, hid_t dset, hid_t mem_type,
                           int rank, const hsize_t *start, const hsize_t *count, hid_t mem,
                           hid_t dxpl, const void *buf)
{
    hid_t fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    int rc = -1, empty = 0;
    char what[300];
    snprintf(what, sizeof what, "writing %s", name);
    for (int i = 0; i < rank; i++)
        empty |= count[i] == 0;
    if ((fspace = H5Dget_space(dset)) < 0)
        goto error;
    if (empty) {
        hsize_t one = 1;
        if (H5Sselect_none(fspace) < 0 || (mspace = H5Screate_simple(1, &one, NULL)) < 0 ||
            H5Sselect_none(mspace) < 0)
            goto error;
    } else {
        if (H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0)
            goto error;
        if (mem < 0 && (mspace = H5Screate_simple(rank, count, NULL)) < 0)
            goto error;
    }
    if (H5Dwrite(dset, mem_type, mspace >= 0 ? mspace : mem, fspace, dxpl, buf) < 0)
        goto error;
    rc = 0;
error:
    if (rc < 0)
        h5io_write_fail(path, what);
    H5Sclose(mspace);
    H5Sclose(fspace);
    return rc;
}

int h5io_dataset_set_rows(const char *path, const char *name, hid_t dset, hsize_t rows)
{
    hid_t space = H5I_INVALID_HID;
    hsize_t dims[H5IO_MAX_RANK];
    char what[300];
    int rc = -1;
    snprintf(what, sizeof what, "extending %s", name);
    if ((space = H5Dget_space(dset)) < 0)
        goto error;
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 1 || rank > H5IO_MAX_RANK || H5Sget_simple_extent_dims(space, dims, NULL) < 0)
        goto error;
    if (dims[0] != rows) {
        dims[0] = rows;
        if (H5Dset_extent(dset, dims) < 0)
            goto error;
    }
    rc = 0;
error:
    if (rc < 0)
        h5io_write_fail(path, what);
    H5Sclose(space);
    return rc;
}

int h5io_dataset_append_1d(const char *path, const char *name, hid_t dset, hid_t mem_type,
                           hsize_t at, hsize_t n, const void *buf)
{
    if (h5io_dataset_set_rows(path, name, dset, at + n) < 0)
        return -1;
    return h5io_dataset_write_box(path, name, dset, mem_type, 1, &at, &n, H5I_INVALID_HID,
                                  H5P_DEFAULT, buf);
}

static void shape_str(char *out, size_t n, int rank, const hsize_t *dims, const int64_t *want)
{
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < rank && used < n; i++) {
        int w;
        if (want && want[i] < 0)
            w = snprintf(out + used, n - used, "%s*", i ? "x" : "");
        else
            w = snprintf(out + used, n - used, "%s%llu", i ? "x" : "",
                         (unsigned long long)(want ? (hsize_t)want[i] : dims[i]));
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

hid_t h5io_dataset_open(const char *path, hid_t loc, const char *name, hid_t dapl, int rank,
                        const int64_t *want, int64_t *dims_out)
{
    hid_t dset = H5I_INVALID_HID, space = H5I_INVALID_HID;
    hsize_t dims[H5IO_MAX_RANK];
    h5io_silence();
    int e = h5io_exists(path, loc, name);
    if (e <= 0) {
        if (e == 0)
            cn_err("'%s' is damaged: missing %s", path, name);
        return H5I_INVALID_HID;
    }
    if ((dset = H5Dopen2(loc, name, dapl)) < 0 || (space = H5Dget_space(dset)) < 0) {
        h5io_read_fail(path, name);
        goto error;
    }
    int got = H5Sget_simple_extent_ndims(space);
    if (got != rank) {
        cn_err("'%s': %s has %d dimension%s, expected %d", path, name, got, got == 1 ? "" : "s",
               rank);
        goto error;
    }
    if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        h5io_read_fail(path, name);
        goto error;
    }
    for (int i = 0; i < rank; i++) {
        if (want && want[i] >= 0 && (int64_t)dims[i] != want[i]) {
            char shape[96], expect[96];
            shape_str(shape, sizeof shape, rank, dims, NULL);
            shape_str(expect, sizeof expect, rank, dims, want);
            cn_err("'%s': %s has shape %s, expected %s", path, name, shape, expect);
            goto error;
        }
        if (dims_out)
            dims_out[i] = (int64_t)dims[i];
    }
    H5Sclose(space);
    return dset;
error:
    H5Sclose(space);
    H5Dclose(dset);
    return H5I_INVALID_HID;
}

int h5io_dataset_shape(const char *path, hid_t loc, const char *name, int *rank, hsize_t *dims)
{
    hid_t dset = H5I_INVALID_HID, space = H5I_INVALID_HID;
    int rc = -1;
    h5io_silence();
    int e = h5io_exists(path, loc, name);
    if (e <= 0)
        return e < 0 ? -1 : cn_err("'%s' is damaged: missing %s", path, name);
    if ((dset = H5Dopen2(loc, name, H5P_DEFAULT)) < 0 || (space = H5Dget_space(dset)) < 0) {
        h5io_read_fail(path, name);
        goto error;
    }
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd < 1 || nd > H5IO_MAX_RANK) {
        cn_err("'%s': %s has %d dimensions, expected 1 to %d", path, name, nd, H5IO_MAX_RANK);
        goto error;
    }
    if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        h5io_read_fail(path, name);
        goto error;
    }
    *rank = nd;
    rc = 0;
error:
    H5Sclose(space);
    H5Dclose(dset);
    return rc;
}

int h5io_dataset_read(const char *path, hid_t loc, const char *name, hid_t mem_type,
                      H5T_class_t cls, int rank, const hsize_t *dims, void *buf)
{
    hid_t dset = H5I_INVALID_HID, type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    hsize_t got[H5IO_MAX_RANK];
    int rc = -1;
    h5io_silence();
    int e = h5io_exists(path, loc, name);
    if (e <= 0)
        return e < 0 ? -1 : cn_err("'%s' is damaged: missing %s", path, name);
    if ((dset = H5Dopen2(loc, name, H5P_DEFAULT)) < 0 || (type = H5Dget_type(dset)) < 0 ||
        (space = H5Dget_space(dset)) < 0) {
        h5io_read_fail(path, name);
        goto error;
    }
    if (H5Tget_class(type) != cls) {
        cn_err("'%s': %s is not %s", path, name,
               cls == H5T_FLOAT ? "floating point" : "an integer array");
        goto error;
    }
    int nd = H5Sget_simple_extent_ndims(space);
    int same = nd == rank;
    if (nd >= 1 && nd <= H5IO_MAX_RANK && H5Sget_simple_extent_dims(space, got, NULL) < 0) {
        h5io_read_fail(path, name);
        goto error;
    }
    for (int i = 0; same && i < rank; i++)
        same = got[i] == dims[i];
    if (!same) {
        char want_s[64], got_s[64];
        shape_str(want_s, sizeof want_s, rank, dims, NULL);
        if (nd >= 1 && nd <= H5IO_MAX_RANK)
            shape_str(got_s, sizeof got_s, nd, got, NULL);
        else
            snprintf(got_s, sizeof got_s, "of %d dimensions", nd);
        cn_err("'%s': %s has shape %s, expected %s", path, name, got_s, want_s);
        goto error;
    }
    hsize_t total = 1;
    for (int i = 0; i < rank; i++)
        total *= dims[i];
    if (total > 0 && H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        h5io_read_fail(path, name);
        goto error;
    }
    rc = 0;
error:
    H5Sclose(space);
    H5Tclose(type);
    H5Dclose(dset);
    return rc;
}

int h5io_dataset_read_box(const char *path, const char *name, hid_t dset, hid_t mem_type,
                          int rank, const hsize_t *start, const hsize_t *count, hid_t dxpl,
                          void *buf)
{
    hid_t fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    int rc = -1;
    hsize_t total = 1;
    for (int i = 0; i < rank; i++)
        total *= count[i];
    if (total == 0)
        return 0;
    h5io_silence();
    if ((fspace = H5Dget_space(dset)) < 0 ||
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        (mspace = H5Screate_simple(1, &total, NULL)) < 0 ||
        H5Dread(dset, mem_type, mspace, fspace, dxpl, buf) < 0) {
        h5io_read_fail(path, name);
        goto error;
    }
    rc = 0;
error:
    H5Sclose(mspace);
    H5Sclose(fspace);
    return rc;
}

int h5io_dataset_read_strings(const char *path, hid_t loc, const char *name, char ***out,
                              size_t *n)
{
    hid_t dset = H5I_INVALID_HID, type = H5I_INVALID_HID, mem = H5I_INVALID_HID;
    int64_t len = 0;
    char *fixed = NULL;
    char **var = NULL, **s = NULL;
    int rc = -1;
    *out = NULL;
    *n = 0;
    if ((dset = h5io_dataset_open(path, loc, name, H5P_DEFAULT, 1, NULL, &len)) < 0)
        return -1;
    if ((type = H5Dget_type(dset)) < 0) {
        h5io_read_fail(path, name);
        goto error;
    }
    if (H5Tget_class(type) != H5T_STRING) {
        cn_err("'%s': %s is not a list of strings", path, name);
        goto error;
    }
    htri_t is_var = H5Tis_variable_str(type);
    H5T_cset_t cset = H5Tget_cset(type);
    size_t width = H5Tget_size(type);
    if (is_var < 0 || cset < 0 || (mem = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_cset(mem, cset) < 0 ||
        H5Tset_size(mem, is_var ? H5T_VARIABLE : width + 1) < 0 ||
        (!is_var && H5Tset_strpad(mem, H5T_STR_NULLTERM) < 0)) {
        h5io_read_fail(path, name);
        goto error;
    }
    s = cn_xcalloc(len ? (size_t)len : 1, sizeof *s);
    if (is_var) {
        var = cn_xcalloc(len ? (size_t)len : 1, sizeof *var);
        if (len > 0 && H5Dread(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, var) < 0) {
            h5io_read_fail(path, name);
            goto error;
        }
        for (int64_t i = 0; i < len; i++) {
            s[i] = cn_xstrdup(var[i] ? var[i] : "");
            H5free_memory(var[i]);
        }
    } else {
        fixed = cn_xcalloc(len ? (size_t)len : 1, width + 1);
        if (len > 0 && H5Dread(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, fixed) < 0) {
            h5io_read_fail(path, name);
            goto error;
        }
        for (int64_t i = 0; i < len; i++)
            s[i] = cn_xstrdup(fixed + (size_t)i * (width + 1));
    }
    *out = s;
    *n = (size_t)len;
    s = NULL;
    rc = 0;
error:
    h5io_strings_free(s, 0);
    free(var);
    free(fixed);
    H5Tclose(mem);
    H5Tclose(type);
    H5Dclose(dset);
    return rc;
}

void h5io_strings_free(char **s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        free(s[i]);
    free(s);
}
