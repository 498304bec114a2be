/* Tests for ckpt: bit-exact round trips, PyTorch's layout on disk, damaged
 * and foreign files (one clear message, nothing from HDF5 on stderr), atomic
 * writes that leave the previous file intact, and the run-directory helpers
 * (latest, prune, find_resumable). */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "charnn/ckpt.h"
#include "charnn/common.h"
#include "charnn/config.h"
#include "charnn/fsio.h"
#include "charnn/rundir.h"
#include "testlib.h"

/* Newline, space, letters, é, 한 (U+D55C) and 😀 (U+1F600): one-, two-,
 * three- and four-byte UTF-8. */
static const uint32_t test_symbols[] = {0x0A, 0x20, 0x61, 0x62, 0x7A, 0xE9, 0xD55C, 0x1F600};
enum { TEST_V = sizeof test_symbols / sizeof test_symbols[0], TEST_B = 3, TEST_NRANKS = 2 };

/* Everything one checkpoint holds, owned here. */
typedef struct {
    run_config cfg;
    vocab voc;
    model m;
    optim opt;
    train_progress prog;
    ckpt_rank ranks[TEST_NRANKS];
} fixture;

static int errmsg_has(const char *needle)
{
    if (strstr(cn_errmsg(), needle))
        return 1;
    fprintf(stderr, "\n  message '%s' lacks '%s'\n", cn_errmsg(), needle);
    return 0;
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* The whole file in a malloc'd buffer (NUL-terminated); *n its size. */
static char *file_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_EQUAL_FATAL(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    buf[len] = 0;
    if (n)
        *n = (size_t)len;
    return buf;
}

/* stderr into a file between capture_begin and capture_end. */
static int saved_stderr = -1;

static void capture_begin(void)
{
    fflush(stderr);
    saved_stderr = dup(2);
    int fd = open("ckpt_stderr.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(saved_stderr >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
}

/* Returns what was printed (malloc'd). */
static char *capture_end(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
    return file_slurp("ckpt_stderr.txt", NULL);
}

static void fixture_init(fixture *f, cell_kind cell, int layers, int hidden, int embed,
                         optim_kind okind, unsigned long long seed)
{
    memset(f, 0, sizeof *f);
    config_default(&f->cfg);
    /* Values unlike the defaults, so a field that is not stored shows. */
    snprintf(f->cfg.data, sizeof f->cfg.data, "data/한국어 text.txt");
    snprintf(f->cfg.out, sizeof f->cfg.out, "runs/r1");
    f->cfg.vocab_mode = VOCAB_CODEPOINTS;
    f->cfg.val_frac = 0.125;
    f->cfg.test_frac = 0.0625;
    f->cfg.model.cell = cell;
    f->cfg.model.vocab = TEST_V;
    f->cfg.model.layers = layers;
    f->cfg.model.hidden = hidden;
    f->cfg.model.embed = embed;
    f->cfg.model.dropout = 0.25f;
    f->cfg.init_scale = 0.1f;
    f->cfg.forget_bias = cell == CELL_LSTM ? 1.0f : NAN;
    f->cfg.seq = 17;
    f->cfg.batch = TEST_B;
    f->cfg.steps = 12345;
    f->cfg.epochs = 2.5;
    f->cfg.seed = 0xFEDCBA9876543210ull;
    f->cfg.threads = 3;
    optim_config_default(&f->cfg.optim, okind);
    f->cfg.optim.momentum = 0.8f;
    f->cfg.optim.beta1 = 0.85f;
    f->cfg.optim.beta2 = 0.995f;
    f->cfg.optim.alpha = 0.9f;
    f->cfg.optim.eps = 1e-6f;
    f->cfg.optim.weight_decay = 0.01f;
    f->cfg.sched.kind = SCHED_COSINE;
    f->cfg.sched.lr = 3e-3f;
    f->cfg.sched.step_size = 77;
    f->cfg.sched.gamma = 0.3f;
    f->cfg.sched.decay_after = 4;
    f->cfg.sched.decay = 0.9f;
    f->cfg.sched.warmup = 100;
    f->cfg.sched.total_steps = 12345;
    f->cfg.sched.min_lr = 1e-5f;
    f->cfg.clip = 1.5f;
    f->cfg.eval_every = 250;
    f->cfg.eval_chunks = 9;
    f->cfg.log_every = 5;
    f->cfg.checkpoint_every = 500;
    f->cfg.keep_last = 4;
    f->cfg.max_bad_steps = 7;
    f->cfg.nranks = TEST_NRANKS;

    CU_ASSERT_EQUAL_FATAL(vocab_from_symbols(&f->voc, VOCAB_CODEPOINTS, test_symbols, TEST_V), 0);
    model_build(&f->m, &f->cfg.model);
    testlib_fill_uniform(f->m.params, f->m.n_params, 0.5f, seed);

    optim_init(&f->opt, &f->cfg.optim, f->m.n_params);
    if (f->opt.m)
        testlib_fill_uniform(f->opt.m, f->m.n_params, 0.01f, seed + 1);
    if (f->opt.v)
        testlib_fill_uniform(f->opt.v, f->m.n_params, 0.001f, seed + 2);
    f->opt.t = 7;

    f->prog = (train_progress){.step = 700,
                               .epoch = 2,
                               .chunk = 0x1234567890ull,
                               .tokens_seen = 700LL * 17 * 3 * 2,
                               .skipped = 1,
                               .best_val = 1.25,
                               .last_val = 1.375,
                               .last_loss = NAN,
                               .best_step = 600,
                               .evals_since_best = 2,
                               .lr_factor = 0.25};

    size_t n_state = (size_t)layers * TEST_B * hidden;
    for (int r = 0; r < TEST_NRANKS; r++) {
        ckpt_rank *k = &f->ranks[r];
        cn_rng_seed(&k->rng, seed + 10 + (unsigned)r);
        k->batch = TEST_B;
        k->layers = layers;
        k->hidden = hidden;
        k->cursor = calloc(TEST_B, sizeof *k->cursor);
        for (int b = 0; b < TEST_B; b++)
            k->cursor[b] = 1000000007ull * (unsigned)(r + 1) + (unsigned)b * 0x100000000ull;
        k->h = calloc(n_state, sizeof *k->h);
        testlib_fill_uniform(k->h, n_state, 1.0f, seed + 20 + (unsigned)r);
        if (cell == CELL_LSTM) {
            k->c = calloc(n_state, sizeof *k->c);
            testlib_fill_uniform(k->c, n_state, 3.0f, seed + 30 + (unsigned)r);
        }
    }
}

static void fixture_free(fixture *f)
{
    vocab_free(&f->voc);
    model_free(&f->m);
    optim_free(&f->opt);
    for (int r = 0; r < TEST_NRANKS; r++) {
        free(f->ranks[r].cursor);
        free(f->ranks[r].h);
        free(f->ranks[r].c);
    }
}

static int fixture_write(const fixture *f, const char *path)
{
    return ckpt_write_atomic(path, &f->cfg, &f->voc, &f->m, &f->opt, &f->prog, TEST_NRANKS,
                             f->ranks);
}

static void write_ok(const fixture *f, const char *path)
{
    int rc = fixture_write(f, path);
    if (rc != 0)
        fprintf(stderr, "\n  write '%s': %s\n", path, cn_errmsg());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
}

static void assert_config_equal(const run_config *a, const run_config *b)
{
    CU_ASSERT_STRING_EQUAL(a->data, b->data);
    CU_ASSERT_STRING_EQUAL(a->out, b->out);
    CU_ASSERT_EQUAL(a->model.cell, b->model.cell);
    CU_ASSERT_EQUAL(a->model.vocab, b->model.vocab);
    CU_ASSERT_EQUAL(a->model.layers, b->model.layers);
    CU_ASSERT_EQUAL(a->model.hidden, b->model.hidden);
    CU_ASSERT_EQUAL(a->model.embed, b->model.embed);
    CU_ASSERT_EQUAL(a->model.head.kind, b->model.head.kind);
    CU_ASSERT_EQUAL(a->model.head.classes, b->model.head.classes);
    CU_ASSERT_EQUAL(a->model.head.pool, b->model.head.pool);
    CU_ASSERT_STRING_EQUAL(a->task, b->task);
    CU_ASSERT_EQUAL(a->seed, b->seed);
    CU_ASSERT_EQUAL(a->optim.kind, b->optim.kind);
    CU_ASSERT_EQUAL(a->sched.kind, b->sched.kind);
    CU_ASSERT_EQUAL(a->sched.total_steps, b->sched.total_steps);
    CU_ASSERT_EQUAL(a->nranks, b->nranks);
    /* Both start from config_default (memset), so every byte must agree,
     * NaN forget_bias included. */
    CU_ASSERT(memcmp(a, b, sizeof *a) == 0);
}

static void assert_roundtrip(const fixture *f, const ckpt_data *d, int with_state)
{
    assert_config_equal(&f->cfg, &d->cfg);
    CU_ASSERT(vocab_equal(&f->voc, &d->voc));
    CU_ASSERT_EQUAL(vocab_id(&d->voc, 0xD55C), 6);
    CU_ASSERT_EQUAL(vocab_id(&d->voc, 0x1F600), 7);
    CU_ASSERT_EQUAL_FATAL(d->m.n_params, f->m.n_params);
    CU_ASSERT(memcmp(d->m.params, f->m.params, f->m.n_params * sizeof(float)) == 0);
    CU_ASSERT(memcmp(&d->prog, &f->prog, sizeof f->prog) == 0);
    if (!with_state) {
        CU_ASSERT_EQUAL(d->has_opt, 0);
        CU_ASSERT_EQUAL(d->nranks, 0);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(d->has_opt, 1);
    CU_ASSERT_EQUAL(d->opt.cfg.kind, f->opt.cfg.kind);
    CU_ASSERT_EQUAL(d->opt.t, 7);
    CU_ASSERT_EQUAL(d->opt.n, f->m.n_params);
    CU_ASSERT_EQUAL(d->opt.m == NULL, f->opt.m == NULL);
    CU_ASSERT_EQUAL(d->opt.v == NULL, f->opt.v == NULL);
    if (f->opt.m && d->opt.m)
        CU_ASSERT(memcmp(d->opt.m, f->opt.m, f->m.n_params * sizeof(float)) == 0);
    if (f->opt.v && d->opt.v)
        CU_ASSERT(memcmp(d->opt.v, f->opt.v, f->m.n_params * sizeof(float)) == 0);
    CU_ASSERT_EQUAL_FATAL(d->nranks, TEST_NRANKS);
    for (int r = 0; r < TEST_NRANKS; r++) {
        const ckpt_rank *a = &f->ranks[r], *b = &d->ranks[r];
        size_t n_state = (size_t)a->layers * a->batch * a->hidden;
        CU_ASSERT_EQUAL_FATAL(b->batch, a->batch);
        CU_ASSERT_EQUAL_FATAL(b->layers, a->layers);
        CU_ASSERT_EQUAL_FATAL(b->hidden, a->hidden);
        CU_ASSERT(memcmp(&b->rng, &a->rng, sizeof a->rng) == 0);
        CU_ASSERT(memcmp(b->cursor, a->cursor, (size_t)a->batch * sizeof *a->cursor) == 0);
        CU_ASSERT(memcmp(b->h, a->h, n_state * sizeof(float)) == 0);
        CU_ASSERT_EQUAL(b->c == NULL, a->c == NULL);
        if (a->c && b->c)
            CU_ASSERT(memcmp(b->c, a->c, n_state * sizeof(float)) == 0);
    }
}

static void test_roundtrip_lstm_onehot(void)
{
    fixture f;
    ckpt_data d;
    const char *dir = testlib_scratch_dir("ckpt_rt_lstm");
    char path[256];
    snprintf(path, sizeof path, "%s/ckpt.h5", dir);
    fixture_init(&f, CELL_LSTM, 2, 5, 0, OPTIM_ADAM, 11);
    CU_ASSERT_FATAL(model_find_tensor(&f.m, "weight_ih_l0")->transposed);
    write_ok(&f, path);
    int rc = ckpt_read(path, &d);
    if (rc != 0)
        fprintf(stderr, "\n  read: %s\n", cn_errmsg());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    assert_roundtrip(&f, &d, 1);
    ckpt_data_free(&d);
    CU_ASSERT_PTR_NULL(d.m.params);
    fixture_free(&f);
}

static void test_roundtrip_gru_embed(void)
{
    fixture f;
    ckpt_data d;
    const char *dir = testlib_scratch_dir("ckpt_rt_gru");
    char path[256];
    snprintf(path, sizeof path, "%s/ckpt.h5", dir);
    fixture_init(&f, CELL_GRU, 3, 4, 6, OPTIM_ADAM, 22);
    CU_ASSERT_PTR_NOT_NULL_FATAL(model_find_tensor(&f.m, "embedding.weight"));
    write_ok(&f, path);
    CU_ASSERT_EQUAL_FATAL(ckpt_read(path, &d), 0);
    assert_roundtrip(&f, &d, 1);
    ckpt_data_free(&d);
    fixture_free(&f);
}

/* Optimizers with one state array, and a weights-only model file. */
static void test_roundtrip_other_states(void)
{
    const optim_kind kinds[] = {OPTIM_SGD, OPTIM_RMSPROP, OPTIM_ADAGRAD};
    const char *dir = testlib_scratch_dir("ckpt_rt_other");
    char path[256];
    snprintf(path, sizeof path, "%s/ckpt.h5", dir);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        fixture f;
        ckpt_data d;
        fixture_init(&f, CELL_RNN, 1, 3, 0, kinds[i], 30 + i);
        write_ok(&f, path);
        CU_ASSERT_EQUAL_FATAL(ckpt_read(path, &d), 0);
        assert_roundtrip(&f, &d, 1);
        ckpt_data_free(&d);
        fixture_free(&f);
    }
    fixture f;
    ckpt_data d;
    fixture_init(&f, CELL_LSTM, 1, 4, 0, OPTIM_ADAM, 40);
    CU_ASSERT_EQUAL_FATAL(
        ckpt_write_atomic(path, &f.cfg, &f.voc, &f.m, NULL, &f.prog, 0, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(ckpt_read(path, &d), 0);
    assert_roundtrip(&f, &d, 0);
    ckpt_data_free(&d);
    fixture_free(&f);
}

/* Read /model/<name> with HDF5 directly: shape and data. */
static float *read_raw_tensor(const char *path, const char *name, hsize_t dims[2], int *ndim)
{
    hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(fid >= 0);
    hid_t dset = H5Dopen2(fid, name, H5P_DEFAULT);
    CU_ASSERT_FATAL(dset >= 0);
    hid_t space = H5Dget_space(dset);
    *ndim = H5Sget_simple_extent_ndims(space);
    dims[1] = 1;
    H5Sget_simple_extent_dims(space, dims, NULL);
    float *buf = malloc((size_t)(dims[0] * dims[1]) * sizeof *buf);
    CU_ASSERT_FATAL(H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Sclose(space);
    H5Dclose(dset);
    H5Fclose(fid);
    return buf;
}

static void test_pytorch_layout(void)
{
    fixture f;
    const char *dir = testlib_scratch_dir("ckpt_layout");
    char path[256];
    hsize_t dims[2];
    int ndim = 0;
    snprintf(path, sizeof path, "%s/ckpt.h5", dir);
    fixture_init(&f, CELL_LSTM, 2, 5, 0, OPTIM_ADAM, 50);
    write_ok(&f, path);
    const size_t GH = 4 * 5, V = TEST_V;

    float *w = read_raw_tensor(path, "/model/weight_ih_l0", dims, &ndim);
    CU_ASSERT_EQUAL(ndim, 2);
    CU_ASSERT_EQUAL(dims[0], GH);
    CU_ASSERT_EQUAL(dims[1], V);
    int same = 1;
    for (size_t r = 0; r < GH; r++)
        for (size_t v = 0; v < V; v++)
            same &= memcmp(&w[r * V + v], &f.m.layer[0].w_ih[v * GH + r], sizeof(float)) == 0;
    CU_ASSERT(same);
    free(w);

    w = read_raw_tensor(path, "/model/weight_ih_l1", dims, &ndim);
    CU_ASSERT(ndim == 2 && dims[0] == GH && dims[1] == 5);
    CU_ASSERT(memcmp(w, f.m.layer[1].w_ih, GH * 5 * sizeof(float)) == 0);
    free(w);

    w = read_raw_tensor(path, "/model/decoder.weight", dims, &ndim);
    CU_ASSERT(ndim == 2 && dims[0] == V && dims[1] == 5);
    CU_ASSERT(memcmp(w, f.m.head.p[0], V * 5 * sizeof(float)) == 0);
    free(w);

    w = read_raw_tensor(path, "/model/bias_hh_l1", dims, &ndim);
    CU_ASSERT(ndim == 1 && dims[0] == GH);
    CU_ASSERT(memcmp(w, f.m.layer[1].b_hh, GH * sizeof(float)) == 0);
    free(w);

    /* Every dataset is chunked with fletcher32. */
    hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t dset = H5Dopen2(fid, "/ranks/rank1/c", H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(dset);
    CU_ASSERT_EQUAL(H5Pget_layout(dcpl), H5D_CHUNKED);
    CU_ASSERT(H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, NULL, NULL, NULL, 0, NULL,
                                   NULL) >= 0);
    H5Pclose(dcpl);
    H5Dclose(dset);
    H5Fclose(fid);
    fixture_free(&f);
}

/* File offset and size of the first chunk of dataset `name`. */
static void chunk_location(const char *path, const char *name, haddr_t *addr, hsize_t *size)
{
    hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(fid >= 0);
    hid_t dset = H5Dopen2(fid, name, H5P_DEFAULT);
    CU_ASSERT_FATAL(dset >= 0);
    hid_t space = H5Dget_space(dset);
    unsigned mask = 0;
    CU_ASSERT_FATAL(H5Dget_chunk_info(dset, space, 0, NULL, &mask, addr, size) >= 0);
    H5Sclose(space);
    H5Dclose(dset);
    H5Fclose(fid);
}

static void flip_byte(const char *path, long offset)
{
    FILE *fp = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fseek(fp, offset, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, offset, SEEK_SET);
    fputc(c ^ 0x10, fp);
    fclose(fp);
}

/* Flip one byte in the middle of dataset `name`'s data. */
static void corrupt_dataset(const char *path, const char *name)
{
    haddr_t addr = 0;
    hsize_t size = 0;
    chunk_location(path, name, &addr, &size);
    CU_ASSERT_FATAL(size > 0);
    flip_byte(path, (long)(addr + size / 2));
}

/* ckpt_read fails naming the file and the given words, and prints nothing. */
static void assert_read_fails(const char *path, const char *w1, const char *w2)
{
    ckpt_data d;
    capture_begin();
    int rc = ckpt_read(path, &d);
    char *printed = capture_end();
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT(errmsg_has(path));
    CU_ASSERT(errmsg_has(w1));
    if (w2)
        CU_ASSERT(errmsg_has(w2));
    if (printed[0])
        fprintf(stderr, "\n  unexpected stderr: %s\n", printed);
    CU_ASSERT_STRING_EQUAL(printed, "");
    free(printed);
    CU_ASSERT_PTR_NULL(d.m.params);
    CU_ASSERT_PTR_NULL(d.voc.symbols);
}

static void test_damaged_files(void)
{
    fixture f;
    char path[256];
    const char *dir = testlib_scratch_dir("ckpt_damage");
    fixture_init(&f, CELL_LSTM, 2, 8, 0, OPTIM_ADAM, 60);

    snprintf(path, sizeof path, "%s/truncated.h5", dir);
    write_ok(&f, path);
    CU_ASSERT_EQUAL_FATAL(truncate(path, file_size(path) / 2), 0);
    assert_read_fails(path, "is damaged", "truncated");

    snprintf(path, sizeof path, "%s/flipped.h5", dir);
    write_ok(&f, path);
    corrupt_dataset(path, "/model/decoder.weight");
    assert_read_fails(path, "is damaged: checksum mismatch in /model/decoder.weight", NULL);

    snprintf(path, sizeof path, "%s/flipped_state.h5", dir);
    write_ok(&f, path);
    corrupt_dataset(path, "/optimizer/state1");
    assert_read_fails(path, "is damaged: checksum mismatch in /optimizer/state1", NULL);

    snprintf(path, sizeof path, "%s/missing.h5", dir);
    assert_read_fails(path, "cannot open", "No such file or directory");

    assert_read_fails(dir, "is a directory, not a regular file", NULL);

    snprintf(path, sizeof path, "%s/text.h5", dir);
    const char *text = "this is not a checkpoint\n";
    testlib_write_file(path, text, strlen(text));
    assert_read_fails(path, "is not a charnn checkpoint", NULL);

    snprintf(path, sizeof path, "%s/empty.h5", dir);
    testlib_write_file(path, "", 0);
    assert_read_fails(path, "is damaged", "empty");

    /* Metadata carries checksums too: flip a byte of an attribute's name. */
    snprintf(path, sizeof path, "%s/flipped_meta.h5", dir);
    write_ok(&f, path);
    size_t n_file = 0;
    char *bytes = file_slurp(path, &n_file);
    long meta_offset = -1;
    for (size_t i = 0; meta_offset < 0 && i + 13 <= n_file; i++)
        if (memcmp(bytes + i, "max_bad_steps", 13) == 0)
            meta_offset = (long)i + 4;
    free(bytes);
    CU_ASSERT_FATAL(meta_offset > 0);
    flip_byte(path, meta_offset);
    assert_read_fails(path, "is damaged", NULL);

    /* A valid HDF5 file without the format attribute. */
    snprintf(path, sizeof path, "%s/foreign.h5", dir);
    hid_t fid = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[1] = {4};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dset = H5Dcreate2(fid, "x", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT);
    H5Dclose(dset);
    H5Sclose(space);
    H5Fclose(fid);
    assert_read_fails(path, "is not a charnn checkpoint", NULL);

    /* A newer format version. */
    snprintf(path, sizeof path, "%s/future.h5", dir);
    write_ok(&f, path);
    fid = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t attr = H5Aopen(fid, "format_version", H5P_DEFAULT);
    long long future = 99;
    CU_ASSERT(H5Awrite(attr, H5T_NATIVE_LLONG, &future) >= 0);
    H5Aclose(attr);
    H5Fclose(fid);
    assert_read_fails(path, "has format version 99, this charnn reads 1", NULL);

    /* A tensor of the wrong shape. */
    snprintf(path, sizeof path, "%s/shape.h5", dir);
    write_ok(&f, path);
    fid = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT(H5Ldelete(fid, "/model/weight_hh_l1", H5P_DEFAULT) >= 0);
    hsize_t bad[2] = {32, 7};
    space = H5Screate_simple(2, bad, NULL);
    dset = H5Dcreate2(fid, "/model/weight_hh_l1", H5T_IEEE_F32LE, space, H5P_DEFAULT,
                      H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(dset);
    H5Sclose(space);
    H5Fclose(fid);
    assert_read_fails(path, "/model/weight_hh_l1 has shape 32x7, expected 32x8", NULL);

    /* A tensor that is not there. */
    snprintf(path, sizeof path, "%s/gone.h5", dir);
    write_ok(&f, path);
    fid = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT(H5Ldelete(fid, "/model/bias_ih_l0", H5P_DEFAULT) >= 0);
    H5Fclose(fid);
    assert_read_fails(path, "missing /model/bias_ih_l0", NULL);
    fixture_free(&f);
}

/* Whether dir holds a leftover temporary ("*.tmp.<pid>"). */
static int has_tmp_files(const char *dir)
{
    return testlib_system("ls -a '%s' | grep -q '\\.tmp\\.'", dir) == 0;
}

static void test_atomic_write(void)
{
    fixture f;
    char path[256], blocker[256];
    const char *dir = testlib_scratch_dir("ckpt_atomic");
    fixture_init(&f, CELL_LSTM, 2, 32, 0, OPTIM_ADAM, 70);

    /* The directory does not exist. */
    snprintf(path, sizeof path, "%s/nodir/ckpt.h5", dir);
    CU_ASSERT_EQUAL(fixture_write(&f, path), -1);
    CU_ASSERT(errmsg_has(path));
    CU_ASSERT(errmsg_has("No such file or directory"));
    CU_ASSERT(!file_exists(path));

    /* The "directory" is a regular file. */
    snprintf(blocker, sizeof blocker, "%s/plain.txt", dir);
    testlib_write_file(blocker, "x", 1);
    snprintf(path, sizeof path, "%s/plain.txt/ckpt.h5", dir);
    CU_ASSERT_EQUAL(fixture_write(&f, path), -1);
    CU_ASSERT(errmsg_has(path));
    CU_ASSERT(errmsg_has("Not a directory"));
    CU_ASSERT_EQUAL(file_size(blocker), 1);

    /* A write that fails halfway (the file-size limit stands in for a full
     * disk) removes its temporary and leaves the previous file as it was. */
    snprintf(path, sizeof path, "%s/ckpt.h5", dir);
    write_ok(&f, path);
    size_t n_before = 0;
    char *before = file_slurp(path, &n_before);
    testlib_fill_uniform(f.m.params, f.m.n_params, 0.5f, 71);
    struct rlimit old_lim, lim;
    CU_ASSERT_FATAL(getrlimit(RLIMIT_FSIZE, &old_lim) == 0);
    lim = old_lim;
    lim.rlim_cur = 16384;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    CU_ASSERT_FATAL(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    capture_begin();
    int rc = fixture_write(&f, path);
    char *printed = capture_end();
    setrlimit(RLIMIT_FSIZE, &old_lim);
    signal(SIGXFSZ, old_handler);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT(errmsg_has(path));
    CU_ASSERT(errmsg_has("File too large"));
    CU_ASSERT_STRING_EQUAL(printed, "");
    free(printed);
    CU_ASSERT(!has_tmp_files(dir));
    size_t n_after = 0;
    char *after = file_slurp(path, &n_after);
    CU_ASSERT(n_after == n_before && memcmp(after, before, n_before) == 0);
    free(before);
    free(after);
    ckpt_data d;
    CU_ASSERT_EQUAL(ckpt_read(path, &d), 0);
    ckpt_data_free(&d);

    /* And a successful write replaces it, leaving no temporary behind. */
    write_ok(&f, path);
    CU_ASSERT(!has_tmp_files(dir));
    CU_ASSERT_EQUAL_FATAL(ckpt_read(path, &d), 0);
    CU_ASSERT(memcmp(d.m.params, f.m.params, f.m.n_params * sizeof(float)) == 0);
    ckpt_data_free(&d);
    fixture_free(&f);
}

static void test_step_path(void)
{
    char out[64];
    rundir_step_path(out, sizeof out, "run", 1234);
    CU_ASSERT_STRING_EQUAL(out, "run/ckpt-00001234.h5");
    rundir_step_path(out, sizeof out, "a/b", 123456789);
    CU_ASSERT_STRING_EQUAL(out, "a/b/ckpt-123456789.h5");
}

static void test_latest_prune_resume(void)
{
    fixture f;
    char dir[128], path[256], found[256], extra[256];
    snprintf(dir, sizeof dir, "%s", testlib_scratch_dir("ckpt_run"));
    fixture_init(&f, CELL_GRU, 1, 6, 0, OPTIM_ADAM, 80);

    /* Nothing yet: an empty or absent directory is not an error. */
    CU_ASSERT_EQUAL(rundir_find_resumable(dir, found, sizeof found), 0);
    CU_ASSERT_STRING_EQUAL(found, "");
    snprintf(path, sizeof path, "%s/absent", dir);
    CU_ASSERT_EQUAL(rundir_find_resumable(path, found, sizeof found), 0);
    CU_ASSERT_STRING_EQUAL(found, "");

    for (int64_t step = 10; step <= 40; step += 10) {
        f.prog.step = step;
        rundir_step_path(path, sizeof path, dir, step);
        write_ok(&f, path);
        CU_ASSERT_EQUAL_FATAL(rundir_update_latest(dir, path), 0);
    }
    snprintf(path, sizeof path, "%s/latest", dir);
    char *latest = file_slurp(path, NULL);
    CU_ASSERT_STRING_EQUAL(latest, "ckpt-00000040.h5\n");
    free(latest);
    CU_ASSERT(!has_tmp_files(dir));

    f.prog.step = 5;
    snprintf(path, sizeof path, "%s/model.h5", dir);
    write_ok(&f, path);
    snprintf(path, sizeof path, "%s/best.h5", dir);
    write_ok(&f, path);
    snprintf(extra, sizeof extra, "%s/ckpt-notes.h5", dir);
    testlib_write_file(extra, "x", 1);

    CU_ASSERT_EQUAL(rundir_prune(dir, 0), 0);
    rundir_step_path(path, sizeof path, dir, 10);
    CU_ASSERT(file_exists(path));
    CU_ASSERT_EQUAL(rundir_prune(dir, 2), 0);
    for (int64_t step = 10; step <= 40; step += 10) {
        rundir_step_path(path, sizeof path, dir, step);
        CU_ASSERT_EQUAL(file_exists(path), step >= 30);
    }
    snprintf(path, sizeof path, "%s/best.h5", dir);
    CU_ASSERT(file_exists(path));
    snprintf(path, sizeof path, "%s/model.h5", dir);
    CU_ASSERT(file_exists(path));
    CU_ASSERT(file_exists(extra));

    /* The newest verifies: it is the answer, quietly. */
    capture_begin();
    CU_ASSERT_EQUAL(rundir_find_resumable(dir, found, sizeof found), 0);
    char *printed = capture_end();
    rundir_step_path(path, sizeof path, dir, 40);
    CU_ASSERT_STRING_EQUAL(found, path);
    CU_ASSERT_STRING_EQUAL(printed, "");
    free(printed);

    /* Damage 40: fall back to 30 and say so. */
    corrupt_dataset(path, "/model/decoder.weight");
    capture_begin();
    CU_ASSERT_EQUAL(rundir_find_resumable(dir, found, sizeof found), 0);
    printed = capture_end();
    rundir_step_path(path, sizeof path, dir, 30);
    CU_ASSERT_STRING_EQUAL(found, path);
    char want[512];
    snprintf(want, sizeof want,
             "charnn: warning: skipping damaged checkpoint '%s/ckpt-00000040.h5': checksum "
             "mismatch in /model/decoder.weight\n",
             dir);
    CU_ASSERT_STRING_EQUAL(printed, want);
    free(printed);
    ckpt_data d;
    CU_ASSERT_EQUAL_FATAL(ckpt_read(found, &d), 0);
    CU_ASSERT_EQUAL(d.prog.step, 30);
    ckpt_data_free(&d);

    /* Damage 30 too: the final model is the last resort. */
    CU_ASSERT_EQUAL_FATAL(truncate(path, file_size(path) / 2), 0);
    capture_begin();
    CU_ASSERT_EQUAL(rundir_find_resumable(dir, found, sizeof found), 0);
    printed = capture_end();
    snprintf(path, sizeof path, "%s/model.h5", dir);
    CU_ASSERT_STRING_EQUAL(found, path);
    CU_ASSERT(strstr(printed, "ckpt-00000040.h5") != NULL);
    CU_ASSERT(strstr(printed, "ckpt-00000030.h5': the file is truncated") != NULL);
    free(printed);

    /* Nothing usable at all. */
    unlink(path);
    capture_begin();
    CU_ASSERT_EQUAL(rundir_find_resumable(dir, found, sizeof found), 0);
    printed = capture_end();
    CU_ASSERT_STRING_EQUAL(found, "");
    free(printed);
    fixture_free(&f);
}

/* Format v2: task, head and a label set round-trip; an lm write records
 * task and head "lm" and no /labels. */
static void test_v2_task_labels(void)
{
    fixture f;
    ckpt_data d;
    char path[256];
    const char *dir = testlib_scratch_dir("ckpt_v2");
    fixture_init(&f, CELL_GRU, 1, 6, 0, OPTIM_ADAM, 50);

    snprintf(path, sizeof path, "%s/lm.h5", dir);
    write_ok(&f, path);
    CU_ASSERT_EQUAL_FATAL(ckpt_read(path, &d), 0);
    CU_ASSERT_EQUAL(d.format_version, CKPT_FORMAT_VERSION);
    CU_ASSERT_EQUAL(CKPT_FORMAT_VERSION, 2);
    CU_ASSERT_STRING_EQUAL(d.task.task, "lm");
    CU_ASSERT_STRING_EQUAL(d.task.head, "lm");
    CU_ASSERT_EQUAL(d.task.n_labels, 0);
    CU_ASSERT_PTR_NULL(d.task.labels);
    assert_roundtrip(&f, &d, 1);
    ckpt_data_free(&d);
    hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(fid >= 0);
    CU_ASSERT_EQUAL(H5Lexists(fid, "/labels", H5P_DEFAULT), 0);
    H5Fclose(fid);

    /* a v2 file must say what it is */
    snprintf(path, sizeof path, "%s/no_task.h5", dir);
    write_ok(&f, path);
    fid = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT(H5Adelete(fid, "task") >= 0);
    H5Fclose(fid);
    assert_read_fails(path, "is damaged: missing attribute task", NULL);

    /* a classifier (its head's kind, classes and pooling come back from the
     * file) with label names, UTF-8 and of different lengths */
    char *labels[] = {"negative", "positive", "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4", "x"};
    ckpt_task task = {.task = "classify", .head = "classify", .n_labels = 4, .labels = labels};
    snprintf(f.cfg.task, sizeof f.cfg.task, "classify");
    f.cfg.model.head = (head_config){.kind = HEAD_CLASSIFY, .classes = 4, .pool = HEAD_POOL_MEAN};
    model_free(&f.m);
    optim_free(&f.opt);
    model_build(&f.m, &f.cfg.model);
    testlib_fill_uniform(f.m.params, f.m.n_params, 0.5f, 99);
    optim_init(&f.opt, &f.cfg.optim, f.m.n_params);
    testlib_fill_uniform(f.opt.m, f.m.n_params, 0.01f, 100);
    testlib_fill_uniform(f.opt.v, f.m.n_params, 0.001f, 101);
    f.opt.t = 7;
    snprintf(path, sizeof path, "%s/classify.h5", dir);
    CU_ASSERT_EQUAL_FATAL(ckpt_write_task_atomic(path, &task, &f.cfg, &f.voc, &f.m, &f.opt,
                                                 &f.prog, TEST_NRANKS, f.ranks),
                          0);
    CU_ASSERT_EQUAL_FATAL(ckpt_read(path, &d), 0);
    CU_ASSERT_STRING_EQUAL(d.task.task, "classify");
    CU_ASSERT_STRING_EQUAL(d.task.head, "classify");
    CU_ASSERT_EQUAL_FATAL(d.task.n_labels, 4);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_STRING_EQUAL(d.task.labels[i], labels[i]);
    assert_roundtrip(&f, &d, 1);
    ckpt_data_free(&d);
    CU_ASSERT_PTR_NULL(d.task.labels);

    /* /labels is checksummed like every dataset */
    corrupt_dataset(path, "/labels");
    assert_read_fails(path, "is damaged: checksum mismatch in /labels", NULL);
    fixture_free(&f);
}

/* The v1 fixture written by charnn 0.1.0 reads as task lm, head lm. */
static void test_v1_reads_as_lm(void)
{
    char path[512], cmd[1200];
    snprintf(path, sizeof path, "%s/v1.h5", testlib_scratch_dir("ckpt_v1"));
    snprintf(cmd, sizeof cmd,
             "base64 -d '%s/tests/fixtures/v1_lstm_step4.h5.gz.b64' | gunzip > '%s'",
             CHARNN_SOURCE_DIR, path);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    ckpt_data d;
    int rc = ckpt_read(path, &d);
    if (rc != 0)
        fprintf(stderr, "\n  read: %s\n", cn_errmsg());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(d.format_version, 1);
    CU_ASSERT_STRING_EQUAL(d.task.task, "lm");
    CU_ASSERT_STRING_EQUAL(d.task.head, "lm");
    CU_ASSERT_EQUAL(d.task.n_labels, 0);
    CU_ASSERT_EQUAL(d.prog.step, 4);
    CU_ASSERT_EQUAL(d.cfg.model.cell, CELL_LSTM);
    CU_ASSERT_EQUAL(d.has_opt, 1);
    CU_ASSERT_EQUAL(d.nranks, 1);
    ckpt_data_free(&d);
}

/* The run lock: a second holder is refused naming the first, a released lock
 * is free again, and nothing but the lock file is written. */
static void test_run_lock(void)
{
    char dir[256], path[300], want[1024], host[256];
    snprintf(dir, sizeof dir, "%s/run", testlib_scratch_dir("ckpt_lock"));
    rundir_lock a, b;
    CU_ASSERT_EQUAL_FATAL(rundir_lock_acquire(dir, &a), 0);
    CU_ASSERT(a.fd >= 0);
    snprintf(path, sizeof path, "%s/" RUNDIR_LOCK_NAME, dir);
    char *named = file_slurp(path, NULL);
    CU_ASSERT_FATAL(gethostname(host, sizeof host) == 0);
    snprintf(want, sizeof want, "%ld %s\n", (long)getpid(), host);
    CU_ASSERT_STRING_EQUAL(named, want);
    free(named);
    /* flock locks belong to the open file: a second open in this process conflicts too */
    CU_ASSERT_EQUAL(rundir_lock_acquire(dir, &b), -1);
    snprintf(want, sizeof want,
             "run directory '%s' is in use by another charnn run (pid %ld on host %s)", dir,
             (long)getpid(), host);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), want);
    CU_ASSERT_EQUAL(b.fd, -1);
    rundir_lock_release(&a);
    CU_ASSERT_EQUAL(a.fd, -1);
    CU_ASSERT_EQUAL(rundir_lock_acquire(dir, &b), 0);
    rundir_lock_release(&b);
    rundir_lock_release(&b);
    /* a file where the directory should be */
    snprintf(path, sizeof path, "%s/afile", dir);
    testlib_write_file(path, "x", 1);
    CU_ASSERT_EQUAL(rundir_lock_acquire(path, &a), -1);
    snprintf(want, sizeof want, "--out '%s' exists and is not a directory", path);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), want);
}

/* Temporaries of any name whose writer is gone are removed; others stay. */
static void test_remove_stale_tmp(void)
{
    char dir[256], path[400];
    snprintf(dir, sizeof dir, "%s", testlib_scratch_dir("ckpt_stale"));
    pid_t dead = fork();
    CU_ASSERT_FATAL(dead >= 0);
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    const char *names[] = {"latest", "ckpt-00000010.h5", "model.h5", "best.h5"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s.tmp.%ld", dir, names[i], (long)dead);
        testlib_write_file(path, "x", 1);
    }
    snprintf(path, sizeof path, "%s/latest.tmp.%ld", dir, (long)getpid());
    testlib_write_file(path, "x", 1);
    snprintf(path, sizeof path, "%s/notes.tmp.txt", dir);
    testlib_write_file(path, "x", 1);
    capture_begin();
    CU_ASSERT_EQUAL(rundir_remove_stale_tmp(dir), 0);
    char *printed = capture_end();
    for (int i = 0; i < 4; i++) {
        char line[600];
        snprintf(path, sizeof path, "%s/%s.tmp.%ld", dir, names[i], (long)dead);
        CU_ASSERT(!file_exists(path));
        snprintf(line, sizeof line, "charnn: removed '%s', left by an interrupted write\n", path);
        CU_ASSERT(strstr(printed, line) != NULL);
    }
    free(printed);
    snprintf(path, sizeof path, "%s/latest.tmp.%ld", dir, (long)getpid());
    CU_ASSERT(file_exists(path));
    snprintf(path, sizeof path, "%s/notes.tmp.txt", dir);
    CU_ASSERT(file_exists(path));
}

/* Readers refuse what is not a regular file, by name, without opening it. */
static void test_not_regular(void)
{
    char fifo[256], want[512];
    snprintf(fifo, sizeof fifo, "%s/fifo", testlib_scratch_dir("ckpt_fifo"));
    unlink(fifo);
    CU_ASSERT_FATAL(mkfifo(fifo, 0600) == 0);
    assert_read_fails(fifo, "is a FIFO, not a regular file", NULL);
    snprintf(want, sizeof want, "'%s' is a FIFO, not a regular file", fifo);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), want);
    assert_read_fails("/dev/zero", "'/dev/zero' is a character device, not a regular file",
                      NULL);
    uint64_t size = 1;
    CU_ASSERT_EQUAL(fsio_check_regular(fifo, &size), -1);
    CU_ASSERT_EQUAL(size, 1);
    CU_ASSERT_EQUAL(fsio_check_regular("/dev/null", NULL), -1);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), "'/dev/null' is a character device, not a regular file");
    unlink(fifo);
}

int main(int argc, char **argv)
{
    CU_pSuite rt = testlib_suite("ckpt_roundtrip");
    testlib_add(rt, "lstm one-hot (transposed weight_ih_l0)", test_roundtrip_lstm_onehot);
    testlib_add(rt, "gru with embedding", test_roundtrip_gru_embed);
    testlib_add(rt, "other optimizers, weights only", test_roundtrip_other_states);
    testlib_add(rt, "pytorch layout on disk", test_pytorch_layout);
    CU_pSuite bad = testlib_suite("ckpt_damage");
    testlib_add(bad, "damaged and foreign files", test_damaged_files);
    testlib_add(bad, "atomic write", test_atomic_write);
    testlib_add(bad, "FIFOs and devices are refused", test_not_regular);
    CU_pSuite v2 = testlib_suite("ckpt_format_v2");
    testlib_add(v2, "task, head and labels", test_v2_task_labels);
    testlib_add(v2, "a v1 file reads as lm", test_v1_reads_as_lm);
    CU_pSuite run = testlib_suite("ckpt_rundir");
    testlib_add(run, "step path", test_step_path);
    testlib_add(run, "latest, prune, find_resumable", test_latest_prune_resume);
    testlib_add(run, "the run lock", test_run_lock);
    testlib_add(run, "stale temporaries", test_remove_stale_tmp);
    return testlib_run(argc, argv);
}
