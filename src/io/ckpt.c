/* HDF5 checkpoints. See ckpt.h for the layout and docs/checkpoint-format.md
 * for an h5dump of one.
 *
 * Every public entry point runs its HDF5 calls inside one H5E_BEGIN_TRY, so
 * the library never prints its own error stack: the caller gets one line
 * through cn_err, naming the file and the field, with the innermost HDF5
 * message where it helps. Inside, each function starts its ids at
 * H5I_INVALID_HID, checks every call < 0 and closes everything at one `done:`
 * label (closing an invalid id there fails quietly).
 *
 * A checkpoint is built as a file image in memory (HDF5's core driver) and
 * written with plain write() + fsync() under a temporary name, then renamed
 * over the target.
 *
 * Files are written with the 1.10 object formats (libver bounds V110), whose
 * superblock, object headers and chunk indexes all carry checksums; the data
 * itself is covered by the fletcher32 filter on every dataset. A flipped bit
 * anywhere therefore fails the open or the read instead of loading garbage.
 */
#include "charnn/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CHARNN_VERSION
#define CHARNN_VERSION "unknown"
#endif

/* Chunks hold the whole dataset up to this many elements; larger datasets are
 * split along dim 0 so no chunk approaches HDF5's 4 GiB chunk limit. */
#define CKPT_CHUNK_ELEMS ((hsize_t)1 << 20)
#define CKPT_MAX_RANK 3
#define CKPT_MAX_RANKS 65536

/* ---- run_config <-> root attributes ---------------------------------- */

typedef enum { FIELD_INT, FIELD_I64, FIELD_U64, FIELD_FLOAT, FIELD_DOUBLE, FIELD_PATH } field_kind;

typedef struct {
    const char *name;
    field_kind kind;
    size_t offset;
    int required; /* the model cannot be rebuilt without it */
} config_field;

#define FIELD(name, kind, member, required) {name, kind, offsetof(run_config, member), required}

/* Every stored numeric and path field of run_config. The enum-valued ones
 * (cell, vocab_mode, optimizer, schedule) are stored by name, separately.
 * resume, progress_bar, allreduce_blocking, timing and given belong to one
 * invocation and are not stored. */
static const config_field config_fields[] = {
    FIELD("layers", FIELD_INT, model.layers, 1),
    FIELD("hidden", FIELD_INT, model.hidden, 1),
    FIELD("embed", FIELD_INT, model.embed, 1),
    FIELD("vocab_size", FIELD_INT, model.vocab, 1),
    FIELD("dropout", FIELD_FLOAT, model.dropout, 0),
    FIELD("seq", FIELD_INT, seq, 0),
    FIELD("batch", FIELD_INT, batch, 0),
    FIELD("nranks", FIELD_INT, nranks, 0),
    FIELD("steps", FIELD_I64, steps, 0),
    FIELD("epochs", FIELD_DOUBLE, epochs, 0),
    FIELD("seed", FIELD_U64, seed, 0),
    FIELD("threads", FIELD_INT, threads, 0),
    FIELD("momentum", FIELD_FLOAT, optim.momentum, 0),
    FIELD("beta1", FIELD_FLOAT, optim.beta1, 0),
    FIELD("beta2", FIELD_FLOAT, optim.beta2, 0),
    FIELD("alpha", FIELD_FLOAT, optim.alpha, 0),
    FIELD("eps", FIELD_FLOAT, optim.eps, 0),
    FIELD("weight_decay", FIELD_FLOAT, optim.weight_decay, 0),
    FIELD("lr", FIELD_FLOAT, sched.lr, 0),
    FIELD("step_size", FIELD_I64, sched.step_size, 0),
    FIELD("gamma", FIELD_FLOAT, sched.gamma, 0),
    FIELD("decay_after", FIELD_I64, sched.decay_after, 0),
    FIELD("decay", FIELD_FLOAT, sched.decay, 0),
    FIELD("warmup", FIELD_I64, sched.warmup, 0),
    FIELD("total_steps", FIELD_I64, sched.total_steps, 0),
    FIELD("min_lr", FIELD_FLOAT, sched.min_lr, 0),
    FIELD("clip", FIELD_FLOAT, clip, 0),
    FIELD("eval_every", FIELD_I64, eval_every, 0),
    FIELD("eval_chunks", FIELD_I64, eval_chunks, 0),
    FIELD("log_every", FIELD_I64, log_every, 0),
    FIELD("checkpoint_every", FIELD_I64, checkpoint_every, 0),
    FIELD("keep_last", FIELD_INT, keep_last, 0),
    FIELD("trace_every", FIELD_I64, trace_every, 0),
    FIELD("trace_probe_chars", FIELD_INT, trace_probe_chars, 0),
    FIELD("max_bad_steps", FIELD_INT, max_bad_steps, 0),
    FIELD("init_scale", FIELD_FLOAT, init_scale, 0),
    FIELD("forget_bias", FIELD_FLOAT, forget_bias, 0),
    FIELD("val_frac", FIELD_DOUBLE, val_frac, 0),
    FIELD("test_frac", FIELD_DOUBLE, test_frac, 0),
    FIELD("data", FIELD_PATH, data, 0),
    FIELD("out", FIELD_PATH, out, 0),
};
enum { N_CONFIG_FIELDS = sizeof config_fields / sizeof config_fields[0] };

static const char *vocab_mode_name(vocab_mode mode)
{
    return mode == VOCAB_BYTES ? "bytes" : "codepoints";
}

static int vocab_mode_parse(const char *name, vocab_mode *out)
{
    if (strcmp(name, "codepoints") == 0)
        *out = VOCAB_CODEPOINTS;
    else if (strcmp(name, "bytes") == 0)
        *out = VOCAB_BYTES;
    else
        return -1;
    return 0;
}

/* ---- HDF5 error stack ------------------------------------------------- */

typedef struct {
    char inner[256]; /* description of the innermost error */
    int checksum;    /* some level reported a checksum failure */
    int truncated;   /* the file is shorter than its superblock says */
} h5_stack;

static herr_t h5_stack_visit(unsigned n, const H5E_error2_t *e, void *data)
{
    h5_stack *st = data;
    (void)n;
    if (e->desc && e->desc[0]) {
        snprintf(st->inner, sizeof st->inner, "%s", e->desc);
        if (strstr(e->desc, "Fletcher32") || strstr(e->desc, "checksum"))
            st->checksum = 1;
        if (strstr(e->desc, "truncated file"))
            st->truncated = 1;
    }
    return 0;
}

/* What the last failed HDF5 call left on the error stack. Must run right
 * after the failure: the next API call clears the stack. */
static void h5_stack_get(h5_stack *st)
{
    memset(st, 0, sizeof *st);
    /* Downward walks from the API call to the innermost function. */
    if (H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5_stack_visit, st) < 0 || !st->inner[0])
        snprintf(st->inner, sizeof st->inner, "hdf5 error");
}

/* cn_err for a failed HDF5 call while writing `what`. */
static int write_fail(const char *path, const char *what)
{
    h5_stack st;
    h5_stack_get(&st);
    return cn_err("cannot write '%s': %s failed (%s)", path, what, st.inner);
}

/* cn_err for a failed HDF5 call while reading `what`. */
static int read_fail(const char *path, const char *what)
{
    h5_stack st;
    h5_stack_get(&st);
    if (st.checksum)
        return cn_err("'%s' is damaged: checksum mismatch in %s", path, what);
    return cn_err("'%s' is damaged: cannot read %s (%s)", path, what, st.inner);
}

/* ---- writing ---------------------------------------------------------- */

static int attr_write(const char *path, hid_t loc, const char *name, hid_t file_type,
                      hid_t mem_type, const void *value)
{
    hid_t space = H5I_INVALID_HID, attr = H5I_INVALID_HID;
    int rc = -1;
    char what[96];
    snprintf(what, sizeof what, "writing attribute %s", name);
    if ((space = H5Screate(H5S_SCALAR)) < 0)
        goto fail;
    if ((attr = H5Acreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        goto fail;
    if (H5Awrite(attr, mem_type, value) < 0)
        goto fail;
    rc = 0;
    goto done;
fail:
    write_fail(path, what);
done:
    H5Aclose(attr);
    H5Sclose(space);
    return rc;
}

static int attr_write_i64(const char *path, hid_t loc, const char *name, int64_t v)
{
    return attr_write(path, loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

static int attr_write_u64(const char *path, hid_t loc, const char *name, uint64_t v)
{
    return attr_write(path, loc, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}

static int attr_write_f64(const char *path, hid_t loc, const char *name, double v)
{
    return attr_write(path, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

/* Strings are variable-length UTF-8 (what h5py reads back as str). */
static int attr_write_str(const char *path, hid_t loc, const char *name, const char *s)
{
    hid_t type = H5I_INVALID_HID;
    int rc = -1;
    if ((type = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(type, H5T_VARIABLE) < 0 ||
        H5Tset_cset(type, H5T_CSET_UTF8) < 0) {
        char what[96];
        snprintf(what, sizeof what, "writing attribute %s", name);
        write_fail(path, what);
        goto done;
    }
    rc = attr_write(path, loc, name, type, type, &s);
done:
    H5Tclose(type);
    return rc;
}

/* Create dataset `name` (an absolute path) of the given shape, chunked with
 * fletcher32, and write `data` into it. A dataset with no elements is left
 * contiguous and unwritten: chunks cannot be empty and there is nothing to
 * checksum. */
static int dataset_write(const char *path, hid_t fid, const char *name, hid_t file_type,
                         hid_t mem_type, int rank, const hsize_t *dims, const void *data)
{
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, dset = H5I_INVALID_HID;
    hsize_t chunk[CKPT_MAX_RANK], total = 1, row = 1;
    int rc = -1;
    char what[96];
    snprintf(what, sizeof what, "writing %s", name);
    CHARNN_ASSERT(rank >= 1 && rank <= CKPT_MAX_RANK);
    for (int i = 0; i < rank; i++) {
        total *= dims[i];
        if (i > 0)
            row *= dims[i];
    }
    if ((space = H5Screate_simple(rank, dims, NULL)) < 0)
        goto fail;
    if ((dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0)
        goto fail;
    if (total > 0) {
        hsize_t rows = CKPT_CHUNK_ELEMS / row;
        chunk[0] = rows < 1 ? 1 : rows < dims[0] ? rows : dims[0];
        for (int i = 1; i < rank; i++)
            chunk[i] = dims[i];
        if (H5Pset_chunk(dcpl, rank, chunk) < 0 || H5Pset_fletcher32(dcpl) < 0)
            goto fail;
    }
    if ((dset = H5Dcreate2(fid, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0)
        goto fail;
    if (total > 0 && H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        goto fail;
    rc = 0;
    goto done;
fail:
    write_fail(path, what);
done:
    H5Dclose(dset);
    H5Pclose(dcpl);
    H5Sclose(space);
    return rc;
}

static int group_create(const char *path, hid_t fid, const char *name)
{
    hid_t g = H5Gcreate2(fid, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        char what[96];
        snprintf(what, sizeof what, "creating group %s", name);
        return write_fail(path, what);
    }
    H5Gclose(g);
    return 0;
}

static int write_config_attrs(const char *path, hid_t root, const run_config *cfg)
{
    for (int i = 0; i < N_CONFIG_FIELDS; i++) {
        const config_field *f = &config_fields[i];
        const char *p = (const char *)cfg + f->offset;
        int rc = 0;
        switch (f->kind) {
        case FIELD_INT:
            rc = attr_write_i64(path, root, f->name, *(const int *)p);
            break;
        case FIELD_I64:
            rc = attr_write_i64(path, root, f->name, *(const int64_t *)p);
            break;
        case FIELD_U64:
            rc = attr_write_u64(path, root, f->name, *(const uint64_t *)p);
            break;
        case FIELD_FLOAT:
            rc = attr_write_f64(path, root, f->name, (double)*(const float *)p);
            break;
        case FIELD_DOUBLE:
            rc = attr_write_f64(path, root, f->name, *(const double *)p);
            break;
        case FIELD_PATH:
            rc = attr_write_str(path, root, f->name, p);
            break;
        }
        if (rc < 0)
            return -1;
    }
    if (attr_write_str(path, root, "cell", cell_name(cfg->model.cell)) < 0 ||
        attr_write_str(path, root, "vocab_mode", vocab_mode_name(cfg->vocab_mode)) < 0 ||
        attr_write_str(path, root, "optimizer", optim_name(cfg->optim.kind)) < 0 ||
        attr_write_str(path, root, "schedule", sched_name(cfg->sched.kind)) < 0)
        return -1;
    return 0;
}

static int write_root_attrs(const char *path, hid_t root, const run_config *cfg, const model *m,
                            const train_progress *prog)
{
    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(created, sizeof created, "unknown");
    train_progress none = {0, 0, 0, 0, 0, INFINITY, NAN, NAN};
    if (!prog)
        prog = &none;
    if (attr_write_str(path, root, "format", CKPT_FORMAT_NAME) < 0 ||
        attr_write_i64(path, root, "format_version", CKPT_FORMAT_VERSION) < 0 ||
        attr_write_str(path, root, "charnn_version", CHARNN_VERSION) < 0 ||
        attr_write_str(path, root, "created", created) < 0 ||
        attr_write_i64(path, root, "n_params", (int64_t)m->n_params) < 0 ||
        attr_write_i64(path, root, "step", prog->step) < 0 ||
        attr_write_i64(path, root, "epoch", prog->epoch) < 0 ||
        attr_write_u64(path, root, "chunk", prog->chunk) < 0 ||
        attr_write_i64(path, root, "tokens_seen", prog->tokens_seen) < 0 ||
        attr_write_i64(path, root, "skipped", prog->skipped) < 0 ||
        attr_write_f64(path, root, "best_val_loss", prog->best_val) < 0 ||
        attr_write_f64(path, root, "last_val_loss", prog->last_val) < 0 ||
        attr_write_f64(path, root, "last_loss", prog->last_loss) < 0)
        return -1;
    return write_config_attrs(path, root, cfg);
}

static int write_vocab(const char *path, hid_t fid, const vocab *voc)
{
    hid_t dset = H5I_INVALID_HID;
    hsize_t dims[1] = {(hsize_t)voc->size};
    if (dataset_write(path, fid, "/vocab", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, dims,
                      voc->symbols) < 0)
        return -1;
    if ((dset = H5Dopen2(fid, "/vocab", H5P_DEFAULT)) < 0)
        return write_fail(path, "opening /vocab");
    int rc = attr_write_str(path, dset, "mode", vocab_mode_name(voc->mode));
    H5Dclose(dset);
    return rc;
}

/* /model: every tensor under its PyTorch name and shape. */
static int write_model(const char *path, hid_t fid, const model *m)
{
    if (group_create(path, fid, "/model") < 0)
        return -1;
    for (int i = 0; i < m->n_tensors; i++) {
        const model_tensor *t = &m->tensor[i];
        char name[64];
        hsize_t dims[CKPT_MAX_RANK] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1], 1};
        const float *src = m->params + t->offset;
        float *exported = NULL;
        snprintf(name, sizeof name, "/model/%s", t->name);
        if (t->transposed) {
            /* slab (C, R) -> exported (R, C) */
            const size_t R = (size_t)t->shape[0], C = (size_t)t->shape[1];
            exported = cn_xmalloc(t->size * sizeof *exported);
            for (size_t c = 0; c < C; c++)
                for (size_t r = 0; r < R; r++)
                    exported[r * C + c] = src[c * R + r];
            src = exported;
        }
        int rc = dataset_write(path, fid, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t->ndim, dims,
                               src);
        free(exported);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Adam keeps (m, v), sgd m, rmsprop and adagrad v: state i in that order. */
static float *optim_state(const optim *o, int i)
{
    if (o->cfg.kind == OPTIM_ADAM)
        return i == 0 ? o->m : o->v;
    return o->cfg.kind == OPTIM_SGD ? o->m : o->v;
}

static int write_optim(const char *path, hid_t fid, const optim *opt, size_t n_params)
{
    hid_t g = H5I_INVALID_HID;
    int rc = -1;
    CHARNN_ASSERT(opt->n == n_params);
    if (group_create(path, fid, "/optimizer") < 0)
        return -1;
    if ((g = H5Gopen2(fid, "/optimizer", H5P_DEFAULT)) < 0) {
        write_fail(path, "opening /optimizer");
        goto done;
    }
    if (attr_write_str(path, g, "kind", optim_name(opt->cfg.kind)) < 0 ||
        attr_write_i64(path, g, "t", opt->t) < 0)
        goto done;
    for (int i = 0; i < optim_state_count(opt->cfg.kind); i++) {
        char name[32];
        hsize_t dims[1] = {(hsize_t)n_params};
        snprintf(name, sizeof name, "/optimizer/state%d", i);
        if (dataset_write(path, fid, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, dims,
                          optim_state(opt, i)) < 0)
            goto done;
    }
    rc = 0;
done:
    H5Gclose(g);
    return rc;
}

static int write_ranks(const char *path, hid_t fid, int nranks, const ckpt_rank *ranks,
                       const model *m)
{
    if (group_create(path, fid, "/ranks") < 0)
        return -1;
    for (int r = 0; r < nranks; r++) {
        const ckpt_rank *k = &ranks[r];
        char name[64];
        CHARNN_ASSERT(k->layers == m->cfg.layers && k->hidden == m->cfg.hidden && k->batch >= 0);
        hsize_t d_rng[1] = {4}, d_cur[1] = {(hsize_t)k->batch};
        hsize_t d_h[3] = {(hsize_t)k->layers, (hsize_t)k->batch, (hsize_t)k->hidden};
        snprintf(name, sizeof name, "/ranks/rank%d", r);
        if (group_create(path, fid, name) < 0)
            return -1;
        snprintf(name, sizeof name, "/ranks/rank%d/rng", r);
        if (dataset_write(path, fid, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, d_rng,
                          k->rng.s) < 0)
            return -1;
        snprintf(name, sizeof name, "/ranks/rank%d/cursor", r);
        if (dataset_write(path, fid, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, d_cur,
                          k->cursor) < 0)
            return -1;
        snprintf(name, sizeof name, "/ranks/rank%d/h", r);
        if (dataset_write(path, fid, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, d_h, k->h) < 0)
            return -1;
        if (k->c) {
            snprintf(name, sizeof name, "/ranks/rank%d/c", r);
            if (dataset_write(path, fid, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, d_h, k->c) <
                0)
                return -1;
        }
    }
    return 0;
}

/* The core driver's memory goes through these callbacks, so that on close
 * the finished image is handed to us instead of being freed: no second copy
 * (H5Fget_file_image would copy it, doubling the write's memory). */
typedef struct {
    void *image; /* the core driver's buffer, once the file is closed */
} image_capture;

static void *image_cb_malloc(size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)op, (void)udata;
    return malloc(size);
}

static void *image_cb_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op,
                             void *udata)
{
    (void)op, (void)udata;
    return memcpy(dest, src, size);
}

static void *image_cb_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)op, (void)udata;
    return realloc(ptr, size);
}

static herr_t image_cb_free(void *ptr, H5FD_file_image_op_t op, void *udata)
{
    image_capture *cap = udata;
    if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE && cap && !cap->image)
        cap->image = ptr;
    else
        free(ptr);
    return 0;
}

/* the property list copies udata by reference: one capture per write */
static void *image_cb_udata_copy(void *udata)
{
    return udata;
}

static herr_t image_cb_udata_free(void *udata)
{
    (void)udata;
    return 0;
}

/* The whole checkpoint as an HDF5 file image in memory (*image, malloc'd,
 * *size bytes).
 *
 * HDF5 works on its in-memory core driver and never touches the disk; we
 * write the image ourselves. With a file on disk, a failed write inside
 * HDF5 1.10 (a full disk) leaves the library holding a half-closed file that
 * crashes it at exit, whichever driver does the writing. */
static int build_image(const char *path, const char *name, const run_config *cfg,
                       const vocab *voc, const model *m, const optim *opt,
                       const train_progress *prog, int nranks, const ckpt_rank *ranks,
                       void **image, size_t *size)
{
    hid_t fapl = H5I_INVALID_HID, fid = H5I_INVALID_HID, root = H5I_INVALID_HID;
    int rc = -1;
    image_capture cap = {NULL};
    H5FD_file_image_callbacks_t cb = {image_cb_malloc, image_cb_memcpy,     image_cb_realloc,
                                      image_cb_free,   image_cb_udata_copy, image_cb_udata_free,
                                      &cap};
    /* Grow the in-memory file in steps of the parameters' size (at least 1 MiB):
     * a few reallocations, which move no data for blocks this large. */
    size_t increment = m->n_params * sizeof(float);
    increment = increment < ((size_t)1 << 20) ? (size_t)1 << 20 : increment;
    ssize_t len = -1;
    *image = NULL;
    *size = 0;
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 || H5Pset_fapl_core(fapl, increment, 0) < 0 ||
        H5Pset_file_image_callbacks(fapl, &cb) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) < 0 ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_SEMI) < 0) {
        write_fail(path, "setting up file access");
        goto done;
    }
    /* `name` only identifies the file inside HDF5; nothing is created under it. */
    if ((fid = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0) {
        write_fail(path, "creating the file");
        goto done;
    }
    if ((root = H5Gopen2(fid, "/", H5P_DEFAULT)) < 0) {
        write_fail(path, "opening /");
        goto done;
    }
    if (write_root_attrs(path, root, cfg, m, prog) < 0 || write_vocab(path, fid, voc) < 0 ||
        write_model(path, fid, m) < 0 || (opt && write_optim(path, fid, opt, m->n_params) < 0) ||
        (nranks > 0 && write_ranks(path, fid, nranks, ranks, m) < 0))
        goto done;
    H5Gclose(root);
    root = H5I_INVALID_HID;
    if (H5Fflush(fid, H5F_SCOPE_GLOBAL) < 0) {
        write_fail(path, "flushing the file");
        goto done;
    }
    /* the file's length (its end of allocation); the buffer is rounded up to
     * the increment */
    if ((len = H5Fget_file_image(fid, NULL, 0)) <= 0) {
        write_fail(path, "sizing the file image");
        goto done;
    }
    /* closing writes the final superblock into the buffer and hands it over */
    herr_t closed = H5Fclose(fid);
    fid = H5I_INVALID_HID;
    if (closed < 0 || !cap.image) {
        write_fail(path, "closing the file image");
        goto done;
    }
    *image = cap.image;
    *size = (size_t)len;
    cap.image = NULL;
    rc = 0;
done:
    H5Gclose(root);
    H5Fclose(fid);
    H5Pclose(fapl);
    free(cap.image); /* a failed build's buffer */
    return rc;
}

static const uint8_t hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

#define LOOKUP3_ROT(x, k) (((x) << (k)) ^ ((x) >> (32 - (k))))

/* Bob Jenkins' lookup3 hashlittle (initval 0), read byte by byte: the
 * checksum HDF5 puts on its metadata. */
static uint32_t lookup3(const uint8_t *k, size_t length)
{
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)length;
    while (length > 12) {
        a += k[0] | (uint32_t)k[1] << 8 | (uint32_t)k[2] << 16 | (uint32_t)k[3] << 24;
        b += k[4] | (uint32_t)k[5] << 8 | (uint32_t)k[6] << 16 | (uint32_t)k[7] << 24;
        c += k[8] | (uint32_t)k[9] << 8 | (uint32_t)k[10] << 16 | (uint32_t)k[11] << 24;
        a -= c, a ^= LOOKUP3_ROT(c, 4), c += b;
        b -= a, b ^= LOOKUP3_ROT(a, 6), a += c;
        c -= b, c ^= LOOKUP3_ROT(b, 8), b += a;
        a -= c, a ^= LOOKUP3_ROT(c, 16), c += b;
        b -= a, b ^= LOOKUP3_ROT(a, 19), a += c;
        c -= b, c ^= LOOKUP3_ROT(b, 4), b += a;
        length -= 12;
        k += 12;
    }
    if (length == 0)
        return c;
    uint32_t w[3] = {0, 0, 0};
    for (size_t i = 0; i < length; i++)
        w[i / 4] |= (uint32_t)k[i] << (8 * (i % 4));
    a += w[0];
    b += w[1];
    c += w[2];
    c ^= b, c -= LOOKUP3_ROT(b, 14);
    a ^= c, a -= LOOKUP3_ROT(c, 11);
    b ^= a, b -= LOOKUP3_ROT(a, 25);
    c ^= b, c -= LOOKUP3_ROT(b, 16);
    a ^= c, a -= LOOKUP3_ROT(c, 4);
    b ^= a, b -= LOOKUP3_ROT(a, 14);
    c ^= b, c -= LOOKUP3_ROT(b, 24);
    return c;
}

/* H5Fget_file_image clears the "open for writing" flags in the image's
 * superblock but, before HDF5 2.0 (HDFGroup/hdf5#1915), leaves the checksum
 * of the old flags, so the image would not open. Recompute it (a no-op where
 * HDF5 has the fix). Superblock versions 2 and 3 are: signature (8), version,
 * size of offsets, size of lengths, flags, four addresses, checksum (4). */
static void image_fix_superblock(uint8_t *img, size_t n)
{
    if (n < 12 || memcmp(img, hdf5_signature, 8) != 0 || img[8] < 2)
        return;
    size_t len = 12 + 4 * (size_t)img[9];
    if (len + 4 > n)
        return;
    uint32_t c = lookup3(img, len);
    for (int i = 0; i < 4; i++)
        img[len + (size_t)i] = (uint8_t)(c >> (8 * i));
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The directory part of path ("." when there is none). */
static void path_dir(char *out, size_t n, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, n, ".");
    else if (slash == path)
        snprintf(out, n, "/");
    else
        snprintf(out, n, "%.*s", (int)(slash - path), path);
}

static const char *path_base(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int fsync_path(const char *p, int directory)
{
    int fd = open(p, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    /* Some file systems cannot sync a directory; the rename is as durable as they allow. */
    if (rc < 0 && directory && (errno == EINVAL || errno == ENOTSUP))
        rc = 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Move the complete `tmp` over `path` (syncing tmp first unless the caller
 * has), then sync the directory. On failure before the rename, tmp is
 * removed and path untouched. */
static int commit_file(const char *tmp, const char *path, int sync_tmp)
{
    char dir[4096];
    if (sync_tmp && fsync_path(tmp, 0) < 0) {
        int e = errno;
        unlink(tmp);
        return cn_err("cannot write '%s': %s", path, strerror(e));
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return cn_err("cannot write '%s': %s", path, strerror(e));
    }
    path_dir(dir, sizeof dir, path);
    if (fsync_path(dir, 1) < 0)
        return cn_err("cannot sync directory '%s' after writing '%s': %s", dir, path,
                      strerror(errno));
    return 0;
}

/* "<path>.tmp.<pid>": same directory, so rename() is atomic; the pid keeps
 * two processes from writing the same temporary. */
static int tmp_path(char *out, size_t n, const char *path)
{
    int len = snprintf(out, n, "%s.tmp.%ld", path, (long)getpid());
    if (len < 0 || (size_t)len >= n)
        return cn_err("cannot write '%s': path too long", path);
    return 0;
}

int ckpt_write_atomic(const char *path, const run_config *cfg, const vocab *voc, const model *m,
                      const optim *opt, const train_progress *prog, int nranks,
                      const ckpt_rank *ranks)
{
    char tmp[4096];
    void *image = NULL;
    size_t size = 0;
    int rc;
    CHARNN_ASSERT(nranks >= 0 && (nranks == 0 || ranks != NULL));
    CHARNN_ASSERT(voc->size == m->cfg.vocab);
    if (tmp_path(tmp, sizeof tmp, path) < 0)
        return -1;
    /* Create the temporary first, so a missing directory or a denied
     * permission fails before any work, in errno's words. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return cn_err("cannot write '%s': %s", path, strerror(errno));
    H5E_BEGIN_TRY
    {
        rc = build_image(path, tmp, cfg, voc, m, opt, prog, nranks, ranks, &image, &size);
    }
    H5E_END_TRY;
    if (rc == 0) {
        image_fix_superblock(image, size);
        if (write_all(fd, image, size) < 0 || fsync(fd) < 0)
            rc = cn_err("cannot write '%s': %s", path, strerror(errno));
    }
    free(image);
    if (close(fd) < 0 && rc == 0)
        rc = cn_err("cannot write '%s': %s", path, strerror(errno));
    if (rc < 0) {
        unlink(tmp);
        return -1;
    }
    return commit_file(tmp, path, 0);
}

/* ---- reading ---------------------------------------------------------- */

static void shape_str(char *out, size_t n, int rank, const hsize_t *dims)
{
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < rank && used < n; i++) {
        int w = snprintf(out + used, n - used, "%s%llu", i ? "x" : "", (unsigned long long)dims[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* 1 if the link `name` exists, 0 if not, -1 (message set) if that cannot be told. */
static int link_exists(const char *path, hid_t fid, const char *name)
{
    htri_t e = H5Lexists(fid, name, H5P_DEFAULT);
    if (e < 0)
        return read_fail(path, name);
    return e > 0;
}

/* "attribute NAME" of the root group, or "OBJ attribute NAME". */
static void attr_label(char *out, size_t n, const char *obj, const char *name)
{
    if (obj[0])
        snprintf(out, n, "%s attribute %s", obj, name);
    else
        snprintf(out, n, "attribute %s", name);
}

/* Numeric attribute `name` of `loc` (the object named obj, "" for the root).
 * 1 read, 0 absent, -1 error. */
static int attr_read_num(const char *path, hid_t loc, const char *obj, const char *name,
                         hid_t mem_type, int want_int, void *out)
{
    char what[128];
    attr_label(what, sizeof what, obj, name);
    hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    int rc = -1;
    htri_t e = H5Aexists(loc, name);
    if (e < 0)
        return read_fail(path, what);
    if (e == 0)
        return 0;
    if ((attr = H5Aopen(loc, name, H5P_DEFAULT)) < 0 || (type = H5Aget_type(attr)) < 0 ||
        (space = H5Aget_space(attr)) < 0) {
        read_fail(path, what);
        goto done;
    }
    H5T_class_t cls = H5Tget_class(type);
    if (cls != H5T_INTEGER && (want_int || cls != H5T_FLOAT)) {
        cn_err("'%s': %s is not %s", path, what, want_int ? "an integer" : "a number");
        goto done;
    }
    if (H5Sget_simple_extent_npoints(space) != 1) {
        cn_err("'%s': %s is not a single value", path, what);
        goto done;
    }
    if (H5Aread(attr, mem_type, out) < 0) {
        read_fail(path, what);
        goto done;
    }
    rc = 1;
done:
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

/* String attribute, variable- or fixed-length. 1 read, 0 absent, -1 error. */
static int attr_read_str(const char *path, hid_t loc, const char *obj, const char *name,
                         char *buf, size_t n)
{
    char what[128];
    attr_label(what, sizeof what, obj, name);
    hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID, mem = H5I_INVALID_HID;
    hid_t space = H5I_INVALID_HID;
    int rc = -1;
    htri_t e = H5Aexists(loc, name);
    if (e < 0)
        return read_fail(path, what);
    if (e == 0)
        return 0;
    if ((attr = H5Aopen(loc, name, H5P_DEFAULT)) < 0 || (type = H5Aget_type(attr)) < 0 ||
        (space = H5Aget_space(attr)) < 0) {
        read_fail(path, what);
        goto done;
    }
    if (H5Tget_class(type) != H5T_STRING || H5Sget_simple_extent_npoints(space) != 1) {
        cn_err("'%s': %s is not a string", path, what);
        goto done;
    }
    /* HDF5 converts between ASCII and UTF-8 strings not at all: read in the file's cset. */
    htri_t var = H5Tis_variable_str(type);
    H5T_cset_t cset = H5Tget_cset(type);
    if (var < 0 || cset < 0 || (mem = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_cset(mem, cset) < 0) {
        read_fail(path, what);
        goto done;
    }
    if (var) {
        char *s = NULL;
        if (H5Tset_size(mem, H5T_VARIABLE) < 0 || H5Aread(attr, mem, &s) < 0) {
            read_fail(path, what);
            goto done;
        }
        size_t len = s ? strlen(s) : 0;
        if (len >= n) {
            H5free_memory(s);
            cn_err("'%s': %s is too long", path, what);
            goto done;
        }
        memcpy(buf, s ? s : "", len + 1);
        H5free_memory(s);
    } else {
        size_t size = H5Tget_size(type);
        if (size == 0 || size >= n) {
            cn_err("'%s': %s is too long", path, what);
            goto done;
        }
        if (H5Tset_size(mem, size + 1) < 0 || H5Tset_strpad(mem, H5T_STR_NULLTERM) < 0 ||
            H5Aread(attr, mem, buf) < 0) {
            read_fail(path, what);
            goto done;
        }
        buf[size] = 0;
    }
    rc = 1;
done:
    H5Tclose(mem);
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

static int missing(const char *path, const char *what)
{
    return cn_err("'%s' is damaged: missing %s", path, what);
}

static int missing_attr(const char *path, const char *obj, const char *name)
{
    char what[128];
    attr_label(what, sizeof what, obj, name);
    return missing(path, what);
}

/* Required root attributes: absent is an error. */
static int root_i64(const char *path, hid_t root, const char *name, int64_t *out)
{
    int rc = attr_read_num(path, root, "", name, H5T_NATIVE_INT64, 1, out);
    return rc == 0 ? missing_attr(path, "", name) : rc < 0 ? -1 : 0;
}

static int root_u64(const char *path, hid_t root, const char *name, uint64_t *out)
{
    int rc = attr_read_num(path, root, "", name, H5T_NATIVE_UINT64, 1, out);
    return rc == 0 ? missing_attr(path, "", name) : rc < 0 ? -1 : 0;
}

static int root_f64(const char *path, hid_t root, const char *name, double *out)
{
    int rc = attr_read_num(path, root, "", name, H5T_NATIVE_DOUBLE, 0, out);
    return rc == 0 ? missing_attr(path, "", name) : rc < 0 ? -1 : 0;
}

static int root_str(const char *path, hid_t root, const char *name, char *buf, size_t n)
{
    int rc = attr_read_str(path, root, "", name, buf, n);
    return rc == 0 ? missing_attr(path, "", name) : rc < 0 ? -1 : 0;
}

/* Shape of dataset `name` (rank <= CKPT_MAX_RANK). */
static int dataset_shape(const char *path, hid_t fid, const char *name, int *rank, hsize_t *dims)
{
    hid_t dset = H5I_INVALID_HID, space = H5I_INVALID_HID;
    int rc = -1;
    int e = link_exists(path, fid, name);
    if (e <= 0)
        return e < 0 ? -1 : missing(path, name);
    if ((dset = H5Dopen2(fid, name, H5P_DEFAULT)) < 0 || (space = H5Dget_space(dset)) < 0) {
        read_fail(path, name);
        goto done;
    }
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd < 1 || nd > CKPT_MAX_RANK) {
        cn_err("'%s': %s has %d dimensions, expected 1 to %d", path, name, nd, CKPT_MAX_RANK);
        goto done;
    }
    if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        read_fail(path, name);
        goto done;
    }
    *rank = nd;
    rc = 0;
done:
    H5Sclose(space);
    H5Dclose(dset);
    return rc;
}

/* Read dataset `name` (an absolute path) into buf after checking that its
 * type is of class `cls` and its shape is exactly (dims). */
static int dataset_read(const char *path, hid_t fid, const char *name, hid_t mem_type,
                        H5T_class_t cls, int rank, const hsize_t *dims, void *buf)
{
    hid_t dset = H5I_INVALID_HID, type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    hsize_t got[CKPT_MAX_RANK];
    int rc = -1;
    int e = link_exists(path, fid, name);
    if (e <= 0)
        return e < 0 ? -1 : missing(path, name);
    if ((dset = H5Dopen2(fid, name, H5P_DEFAULT)) < 0 || (type = H5Dget_type(dset)) < 0 ||
        (space = H5Dget_space(dset)) < 0) {
        read_fail(path, name);
        goto done;
    }
    if (H5Tget_class(type) != cls) {
        cn_err("'%s': %s is not %s", path, name,
               cls == H5T_FLOAT ? "floating point" : "an integer array");
        goto done;
    }
    int nd = H5Sget_simple_extent_ndims(space);
    int same = nd == rank;
    if (nd >= 1 && nd <= CKPT_MAX_RANK && H5Sget_simple_extent_dims(space, got, NULL) < 0) {
        read_fail(path, name);
        goto done;
    }
    for (int i = 0; same && i < rank; i++)
        same = got[i] == dims[i];
    if (!same) {
        char want_s[64], got_s[64];
        shape_str(want_s, sizeof want_s, rank, dims);
        if (nd >= 1 && nd <= CKPT_MAX_RANK)
            shape_str(got_s, sizeof got_s, nd, got);
        else
            snprintf(got_s, sizeof got_s, "of %d dimensions", nd);
        cn_err("'%s': %s has shape %s, expected %s", path, name, got_s, want_s);
        goto done;
    }
    hsize_t total = 1;
    for (int i = 0; i < rank; i++)
        total *= dims[i];
    if (total > 0 && H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        read_fail(path, name);
        goto done;
    }
    rc = 0;
done:
    H5Sclose(space);
    H5Tclose(type);
    H5Dclose(dset);
    return rc;
}

/* Root attributes -> run_config: config_default, then every stored field. */
static int read_config(const char *path, hid_t root, run_config *cfg)
{
    char s[CONFIG_PATH_MAX];
    config_default(cfg);
    for (int i = 0; i < N_CONFIG_FIELDS; i++) {
        const config_field *f = &config_fields[i];
        char *p = (char *)cfg + f->offset;
        int64_t i64 = 0;
        double f64 = 0.0;
        int rc = 0;
        switch (f->kind) {
        case FIELD_INT:
            rc = attr_read_num(path, root, "", f->name, H5T_NATIVE_INT64, 1, &i64);
            if (rc > 0) {
                if (i64 < INT_MIN || i64 > INT_MAX)
                    return cn_err("'%s': attribute %s is out of range (%lld)", path, f->name,
                                  (long long)i64);
                *(int *)p = (int)i64;
            }
            break;
        case FIELD_I64:
            rc = attr_read_num(path, root, "", f->name, H5T_NATIVE_INT64, 1, p);
            break;
        case FIELD_U64:
            rc = attr_read_num(path, root, "", f->name, H5T_NATIVE_UINT64, 1, p);
            break;
        case FIELD_FLOAT:
            rc = attr_read_num(path, root, "", f->name, H5T_NATIVE_DOUBLE, 0, &f64);
            if (rc > 0)
                *(float *)p = (float)f64;
            break;
        case FIELD_DOUBLE:
            rc = attr_read_num(path, root, "", f->name, H5T_NATIVE_DOUBLE, 0, p);
            break;
        case FIELD_PATH:
            rc = attr_read_str(path, root, "", f->name, p, CONFIG_PATH_MAX);
            break;
        }
        if (rc < 0)
            return -1;
        if (rc == 0 && f->required)
            return missing_attr(path, "", f->name);
    }
    if (root_str(path, root, "cell", s, sizeof s) < 0)
        return -1;
    if (cell_parse(s, &cfg->model.cell) < 0)
        return cn_err("'%s': unknown cell '%s'", path, s);
    if (root_str(path, root, "vocab_mode", s, sizeof s) < 0)
        return -1;
    if (vocab_mode_parse(s, &cfg->vocab_mode) < 0)
        return cn_err("'%s': unknown vocab_mode '%s'", path, s);
    int rc = attr_read_str(path, root, "", "optimizer", s, sizeof s);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        optim_kind kind;
        if (optim_parse(s, &kind) < 0)
            return cn_err("'%s': unknown optimizer '%s'", path, s);
        cfg->optim.kind = kind;
    }
    rc = attr_read_str(path, root, "", "schedule", s, sizeof s);
    if (rc < 0)
        return -1;
    if (rc > 0 && sched_parse(s, &cfg->sched.kind) < 0)
        return cn_err("'%s': unknown schedule '%s'", path, s);
    return 0;
}

static int read_progress(const char *path, hid_t root, train_progress *p)
{
    if (root_i64(path, root, "step", &p->step) < 0 || root_i64(path, root, "epoch", &p->epoch) < 0 ||
        root_u64(path, root, "chunk", &p->chunk) < 0 ||
        root_i64(path, root, "tokens_seen", &p->tokens_seen) < 0 ||
        root_i64(path, root, "skipped", &p->skipped) < 0 ||
        root_f64(path, root, "best_val_loss", &p->best_val) < 0 ||
        root_f64(path, root, "last_val_loss", &p->last_val) < 0 ||
        root_f64(path, root, "last_loss", &p->last_loss) < 0)
        return -1;
    return 0;
}

static int read_vocab(const char *path, hid_t fid, vocab_mode mode_default, vocab *voc)
{
    hsize_t dims[CKPT_MAX_RANK];
    hid_t dset = H5I_INVALID_HID;
    int rank = 0, rc = -1;
    uint32_t *symbols = NULL;
    char s[32];
    vocab_mode mode = mode_default;
    if (dataset_shape(path, fid, "/vocab", &rank, dims) < 0)
        return -1;
    if (rank != 1 || dims[0] < 1 || dims[0] > (hsize_t)VOCAB_MAX_CODEPOINT + 1)
        return cn_err("'%s': /vocab has an invalid shape", path);
    if ((dset = H5Dopen2(fid, "/vocab", H5P_DEFAULT)) < 0)
        return read_fail(path, "/vocab");
    int got = attr_read_str(path, dset, "/vocab", "mode", s, sizeof s);
    H5Dclose(dset);
    if (got < 0)
        return -1;
    if (got > 0 && vocab_mode_parse(s, &mode) < 0)
        return cn_err("'%s': unknown /vocab mode '%s'", path, s);
    symbols = cn_xmalloc((size_t)dims[0] * sizeof *symbols);
    if (dataset_read(path, fid, "/vocab", H5T_NATIVE_UINT32, H5T_INTEGER, 1, dims, symbols) < 0)
        goto done;
    if (vocab_from_symbols(voc, mode, symbols, (int)dims[0]) < 0) {
        cn_err_context("'%s': /vocab", path);
        goto done;
    }
    rc = 0;
done:
    free(symbols);
    return rc;
}

static int read_model(const char *path, hid_t fid, model *m)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const model_tensor *t = &m->tensor[i];
        char name[64];
        hsize_t dims[CKPT_MAX_RANK] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1], 1};
        float *dst = m->params + t->offset;
        float *buf = t->transposed ? cn_xmalloc(t->size * sizeof *buf) : dst;
        snprintf(name, sizeof name, "/model/%s", t->name);
        int rc = dataset_read(path, fid, name, H5T_NATIVE_FLOAT, H5T_FLOAT, t->ndim, dims, buf);
        if (rc == 0 && t->transposed) {
            /* exported (R, C) -> slab (C, R) */
            const size_t R = (size_t)t->shape[0], C = (size_t)t->shape[1];
            for (size_t r = 0; r < R; r++)
                for (size_t c = 0; c < C; c++)
                    dst[c * R + r] = buf[r * C + c];
        }
        if (t->transposed)
            free(buf);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int read_optim(const char *path, hid_t fid, ckpt_data *d)
{
    hid_t g = H5I_INVALID_HID;
    char kind_s[32];
    int64_t t = 0;
    int rc = -1;
    if ((g = H5Gopen2(fid, "/optimizer", H5P_DEFAULT)) < 0)
        return read_fail(path, "/optimizer");
    int got = attr_read_str(path, g, "/optimizer", "kind", kind_s, sizeof kind_s);
    if (got <= 0) {
        if (got == 0)
            missing_attr(path, "/optimizer", "kind");
        goto done;
    }
    got = attr_read_num(path, g, "/optimizer", "t", H5T_NATIVE_INT64, 1, &t);
    if (got <= 0) {
        if (got == 0)
            missing_attr(path, "/optimizer", "t");
        goto done;
    }
    optim_config oc = d->cfg.optim;
    if (optim_parse(kind_s, &oc.kind) < 0) {
        cn_err("'%s': unknown optimizer '%s' in /optimizer", path, kind_s);
        goto done;
    }
    optim_init(&d->opt, &oc, d->m.n_params);
    d->has_opt = 1;
    d->opt.t = t;
    for (int i = 0; i < optim_state_count(oc.kind); i++) {
        char name[32];
        hsize_t dims[1] = {(hsize_t)d->m.n_params};
        snprintf(name, sizeof name, "/optimizer/state%d", i);
        if (dataset_read(path, fid, name, H5T_NATIVE_FLOAT, H5T_FLOAT, 1, dims,
                         optim_state(&d->opt, i)) < 0)
            goto done;
    }
    rc = 0;
done:
    H5Gclose(g);
    return rc;
}

static int read_rank(const char *path, hid_t fid, int r, const model_config *mc, ckpt_rank *k)
{
    char name[64];
    hsize_t dims[CKPT_MAX_RANK];
    int rank = 0;
    snprintf(name, sizeof name, "/ranks/rank%d", r);
    int e = link_exists(path, fid, name);
    if (e <= 0)
        return e < 0 ? -1 : missing(path, name);
    snprintf(name, sizeof name, "/ranks/rank%d/cursor", r);
    if (dataset_shape(path, fid, name, &rank, dims) < 0)
        return -1;
    if (rank != 1 || dims[0] > INT_MAX)
        return cn_err("'%s': %s has an invalid shape", path, name);
    k->batch = (int)dims[0];
    k->layers = mc->layers;
    k->hidden = mc->hidden;
    size_t n_state = (size_t)k->layers * (size_t)k->batch * (size_t)k->hidden;
    k->cursor = cn_xcalloc((size_t)k->batch, sizeof *k->cursor);
    k->h = cn_xcalloc(n_state, sizeof *k->h);
    if (mc->cell == CELL_LSTM)
        k->c = cn_xcalloc(n_state, sizeof *k->c);
    if (dataset_read(path, fid, name, H5T_NATIVE_UINT64, H5T_INTEGER, 1, dims, k->cursor) < 0)
        return -1;
    hsize_t d_rng[1] = {4};
    snprintf(name, sizeof name, "/ranks/rank%d/rng", r);
    if (dataset_read(path, fid, name, H5T_NATIVE_UINT64, H5T_INTEGER, 1, d_rng, k->rng.s) < 0)
        return -1;
    hsize_t d_h[3] = {(hsize_t)k->layers, (hsize_t)k->batch, (hsize_t)k->hidden};
    snprintf(name, sizeof name, "/ranks/rank%d/h", r);
    if (dataset_read(path, fid, name, H5T_NATIVE_FLOAT, H5T_FLOAT, 3, d_h, k->h) < 0)
        return -1;
    if (k->c) {
        snprintf(name, sizeof name, "/ranks/rank%d/c", r);
        if (dataset_read(path, fid, name, H5T_NATIVE_FLOAT, H5T_FLOAT, 3, d_h, k->c) < 0)
            return -1;
    }
    return 0;
}

static int read_ranks(const char *path, hid_t fid, ckpt_data *d)
{
    hid_t g = H5I_INVALID_HID;
    H5G_info_t info;
    if ((g = H5Gopen2(fid, "/ranks", H5P_DEFAULT)) < 0)
        return read_fail(path, "/ranks");
    herr_t st = H5Gget_info(g, &info);
    if (st < 0)
        read_fail(path, "/ranks");
    H5Gclose(g);
    if (st < 0)
        return -1;
    if (info.nlinks > CKPT_MAX_RANKS)
        return cn_err("'%s': /ranks holds %llu entries, at most %d expected", path,
                      (unsigned long long)info.nlinks, CKPT_MAX_RANKS);
    d->nranks = (int)info.nlinks;
    d->ranks = cn_xcalloc((size_t)d->nranks, sizeof *d->ranks);
    for (int r = 0; r < d->nranks; r++)
        if (read_rank(path, fid, r, &d->cfg.model, &d->ranks[r]) < 0)
            return -1;
    return 0;
}

/* Everything after the file is open and known to be a charnn checkpoint. */
static int read_contents(const char *path, hid_t fid, hid_t root, ckpt_data *d)
{
    int64_t n_params = 0;
    if (read_config(path, root, &d->cfg) < 0 || read_progress(path, root, &d->prog) < 0)
        return -1;
    if (read_vocab(path, fid, d->cfg.vocab_mode, &d->voc) < 0)
        return -1;
    if (d->voc.size != d->cfg.model.vocab)
        return cn_err("'%s' is damaged: /vocab holds %d symbols, attribute vocab_size says %d",
                      path, d->voc.size, d->cfg.model.vocab);
    if (model_config_check(&d->cfg.model) < 0)
        return cn_err_context("'%s' is damaged", path);
    if (root_i64(path, root, "n_params", &n_params) < 0)
        return -1;
    model_build(&d->m, &d->cfg.model);
    if ((uint64_t)n_params != (uint64_t)d->m.n_params)
        return cn_err("'%s' is damaged: attribute n_params is %lld, the model it describes has %zu",
                      path, (long long)n_params, d->m.n_params);
    if (read_model(path, fid, &d->m) < 0)
        return -1;
    int e = link_exists(path, fid, "/optimizer");
    if (e < 0 || (e > 0 && read_optim(path, fid, d) < 0))
        return -1;
    e = link_exists(path, fid, "/ranks");
    if (e < 0 || (e > 0 && read_ranks(path, fid, d) < 0))
        return -1;
    return 0;
}

/* Whether the file starts with HDF5's signature (at 0, or after a user block
 * of 512, 1024, 2048, ... bytes). Checked here rather than with H5Fis_hdf5,
 * which in 1.10 also fails on a damaged HDF5 file. */
static int has_hdf5_signature(const char *path)
{
    uint8_t buf[8];
    int found = 0;
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

static int read_file(const char *path, ckpt_data *d)
{
    hid_t fid = H5I_INVALID_HID, root = H5I_INVALID_HID;
    char format[64];
    int64_t version = 0;
    int rc = -1;
    if (!has_hdf5_signature(path))
        return cn_err("'%s' is not a charnn checkpoint (not an HDF5 file)", path);
    /* Strong close: a read that fails halfway must not leave objects open,
     * or the library complains again when the process exits. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        H5Pclose(fapl);
        return cn_err("cannot read '%s': HDF5 property setup failed", path);
    }
    fid = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (fid < 0) {
        /* read the error stack before any other HDF5 call clears it */
        h5_stack st;
        h5_stack_get(&st);
        H5Pclose(fapl);
        if (st.truncated)
            return cn_err("'%s' is damaged: the file is truncated", path);
        return cn_err("'%s' is damaged: %s", path, st.inner);
    }
    H5Pclose(fapl);
    if ((root = H5Gopen2(fid, "/", H5P_DEFAULT)) < 0) {
        read_fail(path, "/");
        goto done;
    }
    int got = attr_read_str(path, root, "", "format", format, sizeof format);
    if (got < 0)
        goto done;
    if (got == 0 || strcmp(format, CKPT_FORMAT_NAME) != 0) {
        cn_err("'%s' is not a charnn checkpoint", path);
        goto done;
    }
    if (root_i64(path, root, "format_version", &version) < 0)
        goto done;
    if (version != CKPT_FORMAT_VERSION) {
        cn_err("'%s' has format version %lld, this charnn reads %d", path, (long long)version,
               CKPT_FORMAT_VERSION);
        goto done;
    }
    rc = read_contents(path, fid, root, d);
done:
    H5Gclose(root);
    H5Fclose(fid);
    return rc;
}

int ckpt_read(const char *path, ckpt_data *out)
{
    struct stat sb;
    int rc;
    memset(out, 0, sizeof *out);
    /* Ask the OS first, so a missing or unreadable file gets errno's words. */
    if (stat(path, &sb) < 0)
        return cn_err("cannot open '%s': %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return cn_err("cannot open '%s': %s", path, strerror(EISDIR));
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return cn_err("cannot open '%s': %s", path, strerror(errno));
    close(fd);
    if (sb.st_size == 0)
        return cn_err("'%s' is damaged: the file is empty", path);
    H5E_BEGIN_TRY
    {
        rc = read_file(path, out);
    }
    H5E_END_TRY;
    if (rc < 0)
        ckpt_data_free(out);
    return rc;
}

void ckpt_data_free(ckpt_data *d)
{
    vocab_free(&d->voc);
    model_free(&d->m);
    if (d->has_opt)
        optim_free(&d->opt);
    for (int r = 0; r < d->nranks; r++) {
        free(d->ranks[r].cursor);
        free(d->ranks[r].h);
        free(d->ranks[r].c);
    }
    free(d->ranks);
    memset(d, 0, sizeof *d);
}

/* ---- run directory ---------------------------------------------------- */

void ckpt_step_path(char *out, size_t n, const char *dir, int64_t step)
{
    snprintf(out, n, "%s/ckpt-%08lld.h5", dir, (long long)step);
}

int ckpt_update_latest(const char *dir, const char *ckpt_path)
{
    char path[4096], tmp[4096];
    const char *base = path_base(ckpt_path);
    snprintf(path, sizeof path, "%s/latest", dir);
    if (tmp_path(tmp, sizeof tmp, path) < 0)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return cn_err("cannot write '%s': %s", path, strerror(errno));
    int ok = fprintf(f, "%s\n", base) >= 0 && fflush(f) == 0;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        unlink(tmp);
        return cn_err("cannot write '%s': %s", path, strerror(e));
    }
    return commit_file(tmp, path, 1);
}

/* The step of a file named ckpt-<digits>.h5, or -1. */
static int64_t ckpt_name_step(const char *name)
{
    const char *p = name + 5;
    int64_t step = 0;
    if (strncmp(name, "ckpt-", 5) != 0 || *p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (step > (INT64_MAX - 9) / 10)
            return -1;
        step = step * 10 + (*p - '0');
    }
    return strcmp(p, ".h5") == 0 ? step : -1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Steps of every ckpt-*.h5 in dir, ascending. *steps is NULL when there are none. */
static int list_steps(const char *dir, int64_t **steps, size_t *n)
{
    size_t cap = 0;
    *steps = NULL;
    *n = 0;
    DIR *dp = opendir(dir);
    if (!dp)
        return cn_err("cannot open '%s': %s", dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        int64_t step = ckpt_name_step(de->d_name);
        if (step < 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *steps = cn_xrealloc(*steps, cap * sizeof **steps);
        }
        (*steps)[(*n)++] = step;
    }
    closedir(dp);
    if (*n > 1)
        qsort(*steps, *n, sizeof **steps, cmp_i64);
    return 0;
}

int ckpt_prune(const char *dir, int keep_last)
{
    int64_t *steps;
    size_t n;
    int rc = 0;
    if (keep_last <= 0)
        return 0;
    if (list_steps(dir, &steps, &n) < 0)
        return -1;
    for (size_t i = 0; i + (size_t)keep_last < n; i++) {
        char path[4096];
        ckpt_step_path(path, sizeof path, dir, steps[i]);
        if (unlink(path) < 0 && errno != ENOENT)
            rc = cn_err("cannot remove '%s': %s", path, strerror(errno));
    }
    free(steps);
    return rc;
}

/* Try one candidate; 1 if it verifies, else warn on stderr and return 0. */
int ckpt_verify(const char *path, int64_t *step)
{
    /* HDF5 1.10 cannot release a file whose metadata failed its checksum:
     * at shutdown (exit, or MPI_Finalize in a parallel build) it then prints
     * "infinite loop closing library" under our message. So a damaged file
     * is only ever opened in a child process that reports back. */
    int fds[2];
    if (pipe(fds) != 0)
        return cn_err("cannot check '%s': pipe: %s", path, strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return cn_err("cannot check '%s': fork: %s", path, strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        ckpt_data d;
        int64_t got = -1;
        int ok = ckpt_read(path, &d) == 0;
        if (ok)
            got = d.prog.step;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ok ? "" : cn_errmsg());
        ssize_t w1 = write(fds[1], &got, sizeof got);
        ssize_t w2 = write(fds[1], msg, strlen(msg) + 1);
        (void)w1;
        (void)w2;
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    int64_t got = -1;
    char msg[1024] = "";
    size_t have = 0;
    ssize_t r = read(fds[0], &got, sizeof got);
    while (r == (ssize_t)sizeof got && have < sizeof msg - 1) {
        ssize_t m = read(fds[0], msg + have, sizeof msg - 1 - have);
        if (m <= 0)
            break;
        have += (size_t)m;
    }
    msg[have < sizeof msg ? have : sizeof msg - 1] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && r == (ssize_t)sizeof got) {
        if (step)
            *step = got;
        return 0;
    }
    if (msg[0])
        return cn_err("%s", msg);
    return cn_err("'%s' is damaged: the reader failed", path);
}

/* 1 and the step if path verifies; 0 (with a warning on stderr) if not. */
static int try_candidate(const char *path, int64_t *step)
{
    if (access(path, F_OK) != 0)
        return 0;
    if (ckpt_verify(path, step) == 0)
        return 1;
    /* The message usually starts "'<path>' is damaged: "; keep only the reason. */
    const char *msg = cn_errmsg();
    size_t plen = strlen(path);
    if (msg[0] == '\'' && strncmp(msg + 1, path, plen) == 0 && msg[1 + plen] == '\'') {
        const char *rest = msg + 2 + plen;
        if (strncmp(rest, " is damaged: ", 13) == 0)
            msg = rest + 13;
        else if (strncmp(rest, ": ", 2) == 0)
            msg = rest + 2;
        else if (rest[0] == ' ')
            msg = rest + 1;
    }
    fprintf(stderr, "charnn: warning: skipping damaged checkpoint '%s': %s\n", path, msg);
    return 0;
}

/* The file name written in dir/latest, or "" when there is none usable. */
static void read_latest(const char *dir, char *name, size_t n)
{
    char path[4096];
    name[0] = 0;
    snprintf(path, sizeof path, "%s/latest", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (!fgets(name, (int)n, f))
        name[0] = 0;
    fclose(f);
    name[strcspn(name, "\r\n")] = 0;
    /* Only a plain file name in dir is accepted. */
    if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        name[0] = 0;
}

int ckpt_find_resumable(const char *dir, char *out, size_t n)
{
    char latest[256], path[4096], latest_path[4096] = "", best_path[4096] = "";
    int64_t *steps = NULL, step = 0, best_step = -1;
    size_t n_steps = 0;
    struct stat sb;
    out[0] = 0;
    if (stat(dir, &sb) < 0 && errno == ENOENT)
        return 0;
    if (list_steps(dir, &steps, &n_steps) < 0)
        return -1;
    /* Every candidate that verifies competes on its step, so a damaged or
     * missing newest file falls back to the newest good one, whichever it is. */
    read_latest(dir, latest, sizeof latest);
    if (latest[0]) {
        snprintf(latest_path, sizeof latest_path, "%s/%s", dir, latest);
        if (access(latest_path, F_OK) != 0)
            fprintf(stderr, "charnn: warning: '%s/latest' names '%s', which does not exist\n",
                    dir, latest);
        else if (try_candidate(latest_path, &step)) {
            best_step = step;
            snprintf(best_path, sizeof best_path, "%s", latest_path);
        }
    }
    for (size_t i = n_steps; i-- > 0;) {
        ckpt_step_path(path, sizeof path, dir, steps[i]);
        if (strcmp(path, latest_path) != 0 && steps[i] > best_step &&
            try_candidate(path, &step) && step > best_step) {
            best_step = step;
            snprintf(best_path, sizeof best_path, "%s", path);
        }
    }
    snprintf(path, sizeof path, "%s/model.h5", dir);
    if (strcmp(path, latest_path) != 0 && try_candidate(path, &step) && step > best_step) {
        best_step = step;
        snprintf(best_path, sizeof best_path, "%s", path);
    }
    free(steps);
    if (best_step < 0)
        return 0;
    if (strlen(best_path) >= n)
        return cn_err("checkpoint path '%s' is too long", best_path);
    snprintf(out, n, "%s", best_path);
    return 0;
}

int ckpt_remove_stale_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        const char *tag = strstr(e->d_name, ".h5.tmp.");
        if (!tag)
            continue;
        char *end;
        long pid = strtol(tag + 8, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        /* a writer that is gone (killed mid-write) left it behind */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0)
            fprintf(stderr, "charnn: removed '%s', left by an interrupted checkpoint write\n", path);
    }
    closedir(d);
    return 0;
}
