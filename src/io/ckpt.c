/* HDF5 checkpoints: the format. See ckpt.h for the layout and
 * docs/checkpoint-format.md for an h5dump of one.
 *
 * Every HDF5 call goes through h5io's checked helpers or is checked here
 * (ids start at H5I_INVALID_HID, one `done:` label closes them), and HDF5's
 * own error printing is off: the caller gets one line through cn_err, naming
 * the file and the field.
 *
 * A checkpoint is built as a file image in memory (h5compat, the HDF5 1.10
 * workaround) and written with plain write() + fsync() under a temporary
 * name, then committed by fsio (rename, fsync of the directory).
 *
 * Files are written with the 1.10 object formats (libver bounds V110), whose
 * superblock, object headers and chunk indexes all carry checksums; the data
 * itself is covered by the fletcher32 filter on every dataset. A flipped bit
 * anywhere therefore fails the open or the read instead of loading garbage.
 */
#include "charnn/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "charnn/cond.h"
#include "charnn/fsio.h"
#include "charnn/h5compat.h"
#include "charnn/h5io.h"
#include "charnn/head.h"
#include "charnn/seq2seq.h"
#include "charnn/kernels.h"
#include "charnn/mlp.h"

#ifndef CHARNN_VERSION
#define CHARNN_VERSION "unknown"
#endif

#define CKPT_MAX_RANKS 65536
#define CKPT_MAX_LABELS (1 << 20)

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
 * (cell, vocab_mode, optimizer, schedule, precision) are stored by name, separately.
 * resume, progress_bar, allreduce_blocking, timing and given belong to one
 * invocation and are not stored. */
static const config_field config_fields[] = {
    FIELD("layers", FIELD_INT, model.layers, 1),
    FIELD("hidden", FIELD_INT, model.hidden, 1),
    FIELD("embed", FIELD_INT, model.embed, 1),
    FIELD("vocab_size", FIELD_INT, model.vocab, 1),
    FIELD("dropout", FIELD_FLOAT, model.dropout, 0),
    FIELD("bidirectional", FIELD_INT, model.bidirectional, 0),
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
    FIELD("patience", FIELD_INT, patience, 0),
    FIELD("lr_on_plateau", FIELD_DOUBLE, lr_on_plateau, 0),
    FIELD("max_len", FIELD_INT, max_len, 0),
    FIELD("bucket_batches", FIELD_INT, bucket_batches, 0),
    FIELD("class_weights", FIELD_INT, class_weights, 0),
    FIELD("balanced_sampling", FIELD_INT, balanced_sampling, 0),
    FIELD("init_scale", FIELD_FLOAT, init_scale, 0),
    FIELD("forget_bias", FIELD_FLOAT, forget_bias, 0),
    FIELD("val_frac", FIELD_DOUBLE, val_frac, 0),
    FIELD("test_frac", FIELD_DOUBLE, test_frac, 0),
    FIELD("data", FIELD_PATH, data, 0),
    FIELD("out", FIELD_PATH, out, 0),
    FIELD("init_from", FIELD_PATH, init_from, 0),
    FIELD("extend_vocab", FIELD_INT, extend_vocab, 0),
    FIELD("freeze_stack", FIELD_I64, freeze_stack, 0),
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

/* ---- writing ---------------------------------------------------------- */

static int write_config_attrs(const char *path, hid_t root, const run_config *cfg)
{
    for (int i = 0; i < N_CONFIG_FIELDS; i++) {
        const config_field *f = &config_fields[i];
        const char *p = (const char *)cfg + f->offset;
        int rc = 0;
        switch (f->kind) {
        case FIELD_INT:
            rc = h5io_attr_write_i64(path, root, f->name, *(const int *)p);
            break;
        case FIELD_I64:
            rc = h5io_attr_write_i64(path, root, f->name, *(const int64_t *)p);
            break;
        case FIELD_U64:
            rc = h5io_attr_write_u64(path, root, f->name, *(const uint64_t *)p);
            break;
        case FIELD_FLOAT:
            rc = h5io_attr_write_f64(path, root, f->name, (double)*(const float *)p);
            break;
        case FIELD_DOUBLE:
            rc = h5io_attr_write_f64(path, root, f->name, *(const double *)p);
            break;
        case FIELD_PATH:
            rc = h5io_attr_write_str(path, root, f->name, p);
            break;
        }
        if (rc < 0)
            return -1;
    }
    if (h5io_attr_write_str(path, root, "cell", cell_name(cfg->model.cell)) < 0 ||
        h5io_attr_write_str(path, root, "vocab_mode", vocab_mode_name(cfg->vocab_mode)) < 0 ||
        h5io_attr_write_str(path, root, "optimizer", optim_name(cfg->optim.kind)) < 0 ||
        h5io_attr_write_str(path, root, "schedule", sched_name(cfg->sched.kind)) < 0 ||
        h5io_attr_write_str(path, root, "head_pool", head_pool_name(cfg->model.head.pool)) < 0 ||
        (cfg->model.head.kind == HEAD_SEQ2SEQ &&
         h5io_attr_write_str(path, root, "attention",
                             seq2seq_attention_name(cfg->model.head.attention)) < 0) ||
        h5io_attr_write_str(path, root, "precision",
                            kern_precision_name((kern_precision)cfg->precision)) < 0)
        return -1;
    /* only conditional models carry the condition (cond.h): an unconditioned
     * model's file is the same as before conditioning existed */
    if (cfg->model.cond.mode != COND_NONE &&
        (h5io_attr_write_str(path, root, "cond_mode", cond_mode_name(cfg->model.cond.mode)) < 0 ||
         h5io_attr_write_i64(path, root, "cond_dim", cfg->model.cond.dim) < 0 ||
         h5io_attr_write_i64(path, root, "cond_standardize", cfg->model.cond.standardize) < 0))
        return -1;
    /* only the MLP of layers 0 (mlp.h) has an activation to record */
    if (cfg->model.layers == 0 &&
        h5io_attr_write_str(path, root, "activation", mlp_act_name(cfg->model.mlp_act)) < 0)
        return -1;
    return 0;
}

static int write_root_attrs(const char *path, hid_t root, const ckpt_task *task,
                            const run_config *cfg, const model *m, const train_progress *prog)
{
    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(created, sizeof created, "unknown");
    train_progress none = {.best_val = INFINITY, .last_val = NAN, .last_loss = NAN,
                           .lr_factor = 1.0};
    if (!prog)
        prog = &none;
    if (h5io_attr_write_str(path, root, "format", CKPT_FORMAT_NAME) < 0 ||
        h5io_attr_write_i64(path, root, "format_version", CKPT_FORMAT_VERSION) < 0 ||
        h5io_attr_write_str(path, root, "task", task->task) < 0 ||
        h5io_attr_write_str(path, root, "head", task->head) < 0 ||
        h5io_attr_write_str(path, root, "charnn_version", CHARNN_VERSION) < 0 ||
        h5io_attr_write_str(path, root, "created", created) < 0 ||
        h5io_attr_write_i64(path, root, "n_params", (int64_t)m->n_params) < 0 ||
        h5io_attr_write_i64(path, root, "step", prog->step) < 0 ||
        h5io_attr_write_i64(path, root, "epoch", prog->epoch) < 0 ||
        h5io_attr_write_u64(path, root, "chunk", prog->chunk) < 0 ||
        h5io_attr_write_i64(path, root, "tokens_seen", prog->tokens_seen) < 0 ||
        h5io_attr_write_i64(path, root, "skipped", prog->skipped) < 0 ||
        h5io_attr_write_f64(path, root, "best_val_loss", prog->best_val) < 0 ||
        h5io_attr_write_f64(path, root, "last_val_loss", prog->last_val) < 0 ||
        h5io_attr_write_f64(path, root, "last_loss", prog->last_loss) < 0 ||
        h5io_attr_write_i64(path, root, "best_step", prog->best_step) < 0 ||
        h5io_attr_write_i64(path, root, "evals_since_best", prog->evals_since_best) < 0 ||
        h5io_attr_write_f64(path, root, "lr_factor",
                            prog->lr_factor > 0.0 ? prog->lr_factor : 1.0) < 0)
        return -1;
    return write_config_attrs(path, root, cfg);
}

static int write_vocab(const char *path, hid_t fid, const vocab *voc)
{
    hid_t dset = H5I_INVALID_HID;
    hsize_t dims[1] = {(hsize_t)voc->size};
    if (h5io_dataset_write(path, fid, "/vocab", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, dims,
                      voc->symbols) < 0)
        return -1;
    if ((dset = H5Dopen2(fid, "/vocab", H5P_DEFAULT)) < 0)
        return h5io_write_fail(path, "opening /vocab");
    int rc = h5io_attr_write_str(path, dset, "mode", vocab_mode_name(voc->mode));
    H5Dclose(dset);
    return rc;
}

/* /model: every tensor under its PyTorch name and shape. */
static int write_model(const char *path, hid_t fid, const model *m)
{
    if (h5io_group_create(path, fid, "/model") < 0)
        return -1;
    for (int i = 0; i < m->n_tensors; i++) {
        const model_tensor *t = &m->tensor[i];
        char name[64];
        hsize_t dims[H5IO_MAX_RANK] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1], 1};
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
        int rc = h5io_dataset_write(path, fid, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t->ndim, dims,
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
    if (h5io_group_create(path, fid, "/optimizer") < 0)
        return -1;
    if ((g = H5Gopen2(fid, "/optimizer", H5P_DEFAULT)) < 0) {
        h5io_write_fail(path, "opening /optimizer");
        goto done;
    }
    if (h5io_attr_write_str(path, g, "kind", optim_name(opt->cfg.kind)) < 0 ||
        h5io_attr_write_i64(path, g, "t", opt->t) < 0)
        goto done;
    for (int i = 0; i < optim_state_count(opt->cfg.kind); i++) {
        char name[32];
        hsize_t dims[1] = {(hsize_t)n_params};
        snprintf(name, sizeof name, "/optimizer/state%d", i);
        if (h5io_dataset_write(path, fid, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, dims,
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
    if (h5io_group_create(path, fid, "/ranks") < 0)
        return -1;
    for (int r = 0; r < nranks; r++) {
        const ckpt_rank *k = &ranks[r];
        char name[64];
        CHARNN_ASSERT(k->layers == m->cfg.layers && k->hidden == m->cfg.hidden && k->batch >= 0);
        hsize_t d_rng[1] = {4}, d_cur[1] = {(hsize_t)k->batch};
        hsize_t d_h[3] = {(hsize_t)k->layers, (hsize_t)k->batch, (hsize_t)k->hidden};
        snprintf(name, sizeof name, "/ranks/rank%d", r);
        if (h5io_group_create(path, fid, name) < 0)
            return -1;
        snprintf(name, sizeof name, "/ranks/rank%d/rng", r);
        if (h5io_dataset_write(path, fid, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, d_rng,
                          k->rng.s) < 0)
            return -1;
        snprintf(name, sizeof name, "/ranks/rank%d/cursor", r);
        if (h5io_dataset_write(path, fid, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, d_cur,
                          k->cursor) < 0)
            return -1;
        snprintf(name, sizeof name, "/ranks/rank%d/h", r);
        if (h5io_dataset_write(path, fid, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, d_h, k->h) < 0)
            return -1;
        if (k->c) {
            snprintf(name, sizeof name, "/ranks/rank%d/c", r);
            if (h5io_dataset_write(path, fid, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, d_h, k->c) <
                0)
                return -1;
        }
    }
    return 0;
}

/* The label set, when the head's outputs are not the vocabulary. */
static int write_labels(const char *path, hid_t fid, const ckpt_task *task)
{
    if (task->n_labels == 0)
        return 0;
    return h5io_dataset_write_strings(path, fid, "/labels", (const char *const *)task->labels,
                                      (size_t)task->n_labels);
}

/* Everything a checkpoint write needs, for the image builder. */
typedef struct {
    const char *path;
    const ckpt_task *task;
    const run_config *cfg;
    const vocab *voc;
    const model *m;
    const optim *opt;
    const train_progress *prog;
    int nranks;
    const ckpt_rank *ranks;
} ckpt_contents;

static int write_contents(hid_t fid, void *ctx)
{
    const ckpt_contents *c = ctx;
    const char *path = c->path;
    hid_t root = H5Gopen2(fid, "/", H5P_DEFAULT);
    int rc = -1;
    if (root < 0)
        return h5io_write_fail(path, "opening /");
    if (write_root_attrs(path, root, c->task, c->cfg, c->m, c->prog) < 0 ||
        write_vocab(path, fid, c->voc) < 0 || write_model(path, fid, c->m) < 0 ||
        (c->opt && write_optim(path, fid, c->opt, c->m->n_params) < 0) ||
        (c->nranks > 0 && write_ranks(path, fid, c->nranks, c->ranks, c->m) < 0) ||
        write_labels(path, fid, c->task) < 0)
        goto done;
    rc = 0;
done:
    H5Gclose(root);
    return rc;
}

void ckpt_task_lm(ckpt_task *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->task, sizeof t->task, "%s", CKPT_TASK_LM);
    snprintf(t->head, sizeof t->head, "%s", CKPT_HEAD_LM);
}

/* A task or head name: 1 to CKPT_NAME_MAX - 1 of [a-z0-9_]. */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= CKPT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

int ckpt_write_task_atomic(const char *path, const ckpt_task *task, const run_config *cfg,
                           const vocab *voc, const model *m, const optim *opt,
                           const train_progress *prog, int nranks, const ckpt_rank *ranks)
{
    char tmp[4096];
    void *image = NULL;
    size_t size = 0;
    CHARNN_ASSERT(nranks >= 0 && (nranks == 0 || ranks != NULL));
    CHARNN_ASSERT(voc->size == m->cfg.vocab);
    CHARNN_ASSERT(name_ok(task->task) && name_ok(task->head) && task->n_labels >= 0 &&
                  (task->n_labels == 0 || task->labels != NULL));
    /* the task and head named are the ones the run and the model have */
    CHARNN_ASSERT(strcmp(task->task, cfg->task) == 0 &&
                  head_parse(task->head) == (int)m->cfg.head.kind &&
                  (m->cfg.head.kind == HEAD_LM || task->n_labels == m->cfg.head.classes));
    if (fsio_tmp_path(tmp, sizeof tmp, path) < 0)
        return -1;
    /* Create the temporary first, so a missing directory or a denied
     * permission fails before any work, in errno's words. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return cn_err("cannot write '%s': %s", path, strerror(errno));
    /* Grow the in-memory file in steps of the parameters' size (at least 1 MiB):
     * a few reallocations, which move no data for blocks this large. */
    size_t increment = m->n_params * sizeof(float);
    increment = increment < ((size_t)1 << 20) ? (size_t)1 << 20 : increment;
    ckpt_contents c = {path, task, cfg, voc, m, opt, prog, nranks, ranks};
    int rc = h5compat_build_image(path, tmp, write_contents, &c, increment, &image, &size);
    if (rc == 0 && (fsio_write_all(fd, image, size) < 0 || fsync(fd) < 0))
        rc = cn_err("cannot write '%s': %s", path, strerror(errno));
    free(image);
    if (close(fd) < 0 && rc == 0)
        rc = cn_err("cannot write '%s': %s", path, strerror(errno));
    if (rc < 0) {
        unlink(tmp);
        return -1;
    }
    return fsio_commit(tmp, path, 0);
}

int ckpt_write_atomic(const char *path, const run_config *cfg, const vocab *voc, const model *m,
                      const optim *opt, const train_progress *prog, int nranks,
                      const ckpt_rank *ranks)
{
    ckpt_task lm;
    ckpt_task_lm(&lm);
    return ckpt_write_task_atomic(path, &lm, cfg, voc, m, opt, prog, nranks, ranks);
}

/* ---- reading ---------------------------------------------------------- */

/* "attribute NAME" of the root group, or "OBJ attribute NAME". */
static void attr_label(char *out, size_t n, const char *obj, const char *name)
{
    if (obj[0])
        snprintf(out, n, "%s attribute %s", obj, name);
    else
        snprintf(out, n, "attribute %s", name);
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
    int rc = h5io_attr_read_num(path, root, "", name, H5T_NATIVE_INT64, 1, out);
    return rc == 0 ? missing_attr(path, "", name) : rc < 0 ? -1 : 0;
}

static int root_u64(const char *path, hid_t root, const char *name, uint64_t *out)
{
    int rc = h5io_attr_read_num(path, root, "", name, H5T_NATIVE_UINT64, 1, out);
    return rc == 0 ? missing_attr(path, "", name) : rc < 0 ? -1 : 0;
}

static int root_f64(const char *path, hid_t root, const char *name, double *out)
{
    int rc = h5io_attr_read_num(path, root, "", name, H5T_NATIVE_DOUBLE, 0, out);
    return rc == 0 ? missing_attr(path, "", name) : rc < 0 ? -1 : 0;
}

static int root_str(const char *path, hid_t root, const char *name, char *buf, size_t n)
{
    int rc = h5io_attr_read_str(path, root, "", name, buf, n);
    return rc == 0 ? missing_attr(path, "", name) : rc < 0 ? -1 : 0;
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
            rc = h5io_attr_read_num(path, root, "", f->name, H5T_NATIVE_INT64, 1, &i64);
            if (rc > 0) {
                if (i64 < INT_MIN || i64 > INT_MAX)
                    return cn_err("'%s': attribute %s is out of range (%lld)", path, f->name,
                                  (long long)i64);
                *(int *)p = (int)i64;
            }
            break;
        case FIELD_I64:
            rc = h5io_attr_read_num(path, root, "", f->name, H5T_NATIVE_INT64, 1, p);
            break;
        case FIELD_U64:
            rc = h5io_attr_read_num(path, root, "", f->name, H5T_NATIVE_UINT64, 1, p);
            break;
        case FIELD_FLOAT:
            rc = h5io_attr_read_num(path, root, "", f->name, H5T_NATIVE_DOUBLE, 0, &f64);
            if (rc > 0)
                *(float *)p = (float)f64;
            break;
        case FIELD_DOUBLE:
            rc = h5io_attr_read_num(path, root, "", f->name, H5T_NATIVE_DOUBLE, 0, p);
            break;
        case FIELD_PATH:
            rc = h5io_attr_read_str(path, root, "", f->name, p, CONFIG_PATH_MAX);
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
    int rc = h5io_attr_read_str(path, root, "", "optimizer", s, sizeof s);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        optim_kind kind;
        if (optim_parse(s, &kind) < 0)
            return cn_err("'%s': unknown optimizer '%s'", path, s);
        cfg->optim.kind = kind;
    }
    rc = h5io_attr_read_str(path, root, "", "schedule", s, sizeof s);
    if (rc < 0)
        return -1;
    if (rc > 0 && sched_parse(s, &cfg->sched.kind) < 0)
        return cn_err("'%s': unknown schedule '%s'", path, s);
    rc = h5io_attr_read_str(path, root, "", "head_pool", s, sizeof s);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        int pool = head_pool_parse(s);
        if (pool < 0)
            return cn_err("'%s': unknown head_pool '%s'", path, s);
        cfg->model.head.pool = (head_pool)pool;
    }
    rc = h5io_attr_read_str(path, root, "", "attention", s, sizeof s);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        int attention = seq2seq_attention_parse(s);
        if (attention < 0)
            return cn_err("'%s': unknown attention '%s'", path, s);
        cfg->model.head.attention = attention;
    }
    /* absent in files from before --precision: f32 */
    rc = h5io_attr_read_str(path, root, "", "precision", s, sizeof s);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        kern_precision prec;
        if (kern_precision_parse(s, &prec) < 0)
            return cn_err("'%s': unknown precision '%s'", path, s);
        cfg->precision = prec;
    }
    rc = h5io_attr_read_str(path, root, "", "cond_mode", s, sizeof s);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        int mode = cond_mode_parse(s);
        if (mode < 0)
            return cn_err("'%s': unknown cond_mode '%s'", path, s);
        cfg->model.cond.mode = (cond_mode)mode;
        int64_t dim = 0;
        if (root_i64(path, root, "cond_dim", &dim) < 0)
            return -1;
        if (dim < 1 || dim > 65536)
            return cn_err("'%s' is damaged: attribute cond_dim is %lld", path, (long long)dim);
        cfg->model.cond.dim = (int)dim;
        int64_t standardize = 0;
        rc = h5io_attr_read_num(path, root, "", "cond_standardize", H5T_NATIVE_INT64, 1,
                                &standardize);
        if (rc < 0)
            return -1;
        cfg->model.cond.standardize = standardize != 0;
    }
    rc = h5io_attr_read_str(path, root, "", "activation", s, sizeof s);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        int act = mlp_act_parse(s);
        if (act < 0)
            return cn_err("'%s': unknown activation '%s'", path, s);
        cfg->model.mlp_act = (mlp_activation)act;
    }
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
    /* early-stopping state: absent from files written before it existed, which
     * get the state of a run without it */
    p->best_step = 0;
    p->evals_since_best = 0;
    p->lr_factor = 1.0;
    if (h5io_attr_read_num(path, root, "", "best_step", H5T_NATIVE_INT64, 1, &p->best_step) < 0 ||
        h5io_attr_read_num(path, root, "", "evals_since_best", H5T_NATIVE_INT64, 1,
                           &p->evals_since_best) < 0 ||
        h5io_attr_read_num(path, root, "", "lr_factor", H5T_NATIVE_DOUBLE, 0, &p->lr_factor) < 0)
        return -1;
    if (p->evals_since_best < 0 || !(p->lr_factor > 0.0 && p->lr_factor <= 1.0))
        return cn_err("'%s': evals_since_best %lld or lr_factor %g is out of range", path,
                      (long long)p->evals_since_best, p->lr_factor);
    return 0;
}

static int read_vocab(const char *path, hid_t fid, vocab_mode mode_default, vocab *voc)
{
    hsize_t dims[H5IO_MAX_RANK];
    hid_t dset = H5I_INVALID_HID;
    int rank = 0, rc = -1;
    uint32_t *symbols = NULL;
    char s[32];
    vocab_mode mode = mode_default;
    if (h5io_dataset_shape(path, fid, "/vocab", &rank, dims) < 0)
        return -1;
    if (rank != 1 || dims[0] < 1 || dims[0] > (hsize_t)VOCAB_MAX_CODEPOINT + 1)
        return cn_err("'%s': /vocab has an invalid shape", path);
    if ((dset = H5Dopen2(fid, "/vocab", H5P_DEFAULT)) < 0)
        return h5io_read_fail(path, "/vocab");
    int got = h5io_attr_read_str(path, dset, "/vocab", "mode", s, sizeof s);
    H5Dclose(dset);
    if (got < 0)
        return -1;
    if (got > 0 && vocab_mode_parse(s, &mode) < 0)
        return cn_err("'%s': unknown /vocab mode '%s'", path, s);
    symbols = cn_xmalloc((size_t)dims[0] * sizeof *symbols);
    if (h5io_dataset_read(path, fid, "/vocab", H5T_NATIVE_UINT32, H5T_INTEGER, 1, dims, symbols) < 0)
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
        hsize_t dims[H5IO_MAX_RANK] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1], 1};
        float *dst = m->params + t->offset;
        float *buf = t->transposed ? cn_xmalloc(t->size * sizeof *buf) : dst;
        snprintf(name, sizeof name, "/model/%s", t->name);
        int rc = h5io_dataset_read(path, fid, name, H5T_NATIVE_FLOAT, H5T_FLOAT, t->ndim, dims, buf);
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
        return h5io_read_fail(path, "/optimizer");
    int got = h5io_attr_read_str(path, g, "/optimizer", "kind", kind_s, sizeof kind_s);
    if (got <= 0) {
        if (got == 0)
            missing_attr(path, "/optimizer", "kind");
        goto done;
    }
    got = h5io_attr_read_num(path, g, "/optimizer", "t", H5T_NATIVE_INT64, 1, &t);
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
        if (h5io_dataset_read(path, fid, name, H5T_NATIVE_FLOAT, H5T_FLOAT, 1, dims,
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
    hsize_t dims[H5IO_MAX_RANK];
    int rank = 0;
    snprintf(name, sizeof name, "/ranks/rank%d", r);
    int e = h5io_exists(path, fid, name);
    if (e <= 0)
        return e < 0 ? -1 : missing(path, name);
    snprintf(name, sizeof name, "/ranks/rank%d/cursor", r);
    if (h5io_dataset_shape(path, fid, name, &rank, dims) < 0)
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
    if (h5io_dataset_read(path, fid, name, H5T_NATIVE_UINT64, H5T_INTEGER, 1, dims, k->cursor) < 0)
        return -1;
    hsize_t d_rng[1] = {4};
    snprintf(name, sizeof name, "/ranks/rank%d/rng", r);
    if (h5io_dataset_read(path, fid, name, H5T_NATIVE_UINT64, H5T_INTEGER, 1, d_rng, k->rng.s) < 0)
        return -1;
    hsize_t d_h[3] = {(hsize_t)k->layers, (hsize_t)k->batch, (hsize_t)k->hidden};
    snprintf(name, sizeof name, "/ranks/rank%d/h", r);
    if (h5io_dataset_read(path, fid, name, H5T_NATIVE_FLOAT, H5T_FLOAT, 3, d_h, k->h) < 0)
        return -1;
    if (k->c) {
        snprintf(name, sizeof name, "/ranks/rank%d/c", r);
        if (h5io_dataset_read(path, fid, name, H5T_NATIVE_FLOAT, H5T_FLOAT, 3, d_h, k->c) < 0)
            return -1;
    }
    return 0;
}

static int read_ranks(const char *path, hid_t fid, ckpt_data *d)
{
    hid_t g = H5I_INVALID_HID;
    H5G_info_t info;
    if ((g = H5Gopen2(fid, "/ranks", H5P_DEFAULT)) < 0)
        return h5io_read_fail(path, "/ranks");
    herr_t st = H5Gget_info(g, &info);
    if (st < 0)
        h5io_read_fail(path, "/ranks");
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

/* v2: task, head and the label set; a v1 file is a language model. */
static int read_task(const char *path, hid_t fid, hid_t root, ckpt_data *d)
{
    ckpt_task *t = &d->task;
    ckpt_task_lm(t);
    if (d->format_version < 2)
        return 0;
    if (root_str(path, root, "task", t->task, sizeof t->task) < 0 ||
        root_str(path, root, "head", t->head, sizeof t->head) < 0)
        return -1;
    if (!name_ok(t->task))
        return cn_err("'%s' is damaged: attribute task '%s' is not a task name", path, t->task);
    if (!name_ok(t->head))
        return cn_err("'%s' is damaged: attribute head '%s' is not a head name", path, t->head);
    int e = h5io_exists(path, fid, "/labels");
    if (e <= 0)
        return e;
    size_t n = 0;
    char **labels = NULL;
    if (h5io_dataset_read_strings(path, fid, "/labels", &labels, &n) < 0)
        return -1;
    if (n > CKPT_MAX_LABELS) {
        h5io_strings_free(labels, n);
        return cn_err("'%s': /labels holds %zu labels, at most %d expected", path, n,
                      CKPT_MAX_LABELS);
    }
    t->labels = labels;
    t->n_labels = (int)n;
    return 0;
}

/* The head's configuration: its kind from the head's name, its classes from
 * the label set (read_config read the pooling). */
static int read_head(const char *path, ckpt_data *d)
{
    snprintf(d->cfg.task, sizeof d->cfg.task, "%s", d->task.task);
    int kind = head_parse(d->task.head);
    if (kind < 0)
        return cn_err("'%s' has head '%s', which this charnn does not know (a newer charnn's?)",
                      path, d->task.head);
    head_config *h = &d->cfg.model.head;
    h->kind = (head_kind)kind;
    h->classes = h->kind == HEAD_LM ? 0 : d->task.n_labels;
    return 0;
}

/* Everything after the file is open and known to be a charnn checkpoint. */
static int read_contents(const char *path, hid_t fid, hid_t root, ckpt_data *d)
{
    int64_t n_params = 0;
    if (read_task(path, fid, root, d) < 0)
        return -1;
    if (read_config(path, root, &d->cfg) < 0 || read_progress(path, root, &d->prog) < 0)
        return -1;
    if (read_head(path, d) < 0)
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
    int e = h5io_exists(path, fid, "/optimizer");
    if (e < 0 || (e > 0 && read_optim(path, fid, d) < 0))
        return -1;
    e = h5io_exists(path, fid, "/ranks");
    if (e < 0 || (e > 0 && read_ranks(path, fid, d) < 0))
        return -1;
    return 0;
}

static int read_file(const char *path, ckpt_data *d)
{
    hid_t fid = H5I_INVALID_HID, root = H5I_INVALID_HID;
    char format[64];
    int64_t version = 0;
    int rc = -1;
    /* Strong close: a read that fails halfway must not leave objects open,
     * or the library complains again when the process exits. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        H5Pclose(fapl);
        return cn_err("cannot read '%s': HDF5 property setup failed", path);
    }
    fid = h5io_file_open(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (fid < 0) {
        /* "'X' is not an HDF5 file" says too little here */
        size_t plen = strlen(path);
        const char *msg = cn_errmsg();
        if (msg[0] == '\'' && strncmp(msg + 1, path, plen) == 0 &&
            strcmp(msg + 1 + plen, "' is not an HDF5 file") == 0)
            cn_err("'%s' is not a charnn checkpoint (not an HDF5 file)", path);
        return -1;
    }
    if ((root = H5Gopen2(fid, "/", H5P_DEFAULT)) < 0) {
        h5io_read_fail(path, "/");
        goto done;
    }
    int got = h5io_attr_read_str(path, root, "", "format", format, sizeof format);
    if (got < 0)
        goto done;
    if (got == 0 || strcmp(format, CKPT_FORMAT_NAME) != 0) {
        cn_err("'%s' is not a charnn checkpoint", path);
        goto done;
    }
    if (root_i64(path, root, "format_version", &version) < 0)
        goto done;
    if (version < CKPT_FORMAT_VERSION_MIN || version > CKPT_FORMAT_VERSION) {
        cn_err("'%s' has format version %lld, this charnn reads %d to %d", path,
               (long long)version, CKPT_FORMAT_VERSION_MIN, CKPT_FORMAT_VERSION);
        goto done;
    }
    d->format_version = (int)version;
    rc = read_contents(path, fid, root, d);
done:
    H5Gclose(root);
    H5Fclose(fid);
    return rc;
}

int ckpt_read(const char *path, ckpt_data *out)
{
    memset(out, 0, sizeof *out);
    h5io_silence();
    int rc = read_file(path, out);
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
    h5io_strings_free(d->task.labels, (size_t)d->task.n_labels);
    memset(d, 0, sizeof *d);
}

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

int ckpt_require_task(const ckpt_data *d, const char *path, const char *task,
                      const char *command)
{
    if (strcmp(d->task.task, task) == 0)
        return 0;
    return cn_err("'%s' is a %s model: %s needs a %s model", path, d->task.task, command, task);
}
