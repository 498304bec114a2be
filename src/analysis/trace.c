/* Hidden-state traces in HDF5. See trace.h and docs/trace-format.md.
 *
 * HDF5 goes through h5io's checked helpers, so the library never prints its
 * own error stack: the caller gets one line through cn_err naming the file and
 * the object. Every id starts at H5I_INVALID_HID, every call is checked < 0
 * and one `error:` label closes everything (closing an invalid id there fails
 * quietly).
 *
 * Per-step datasets are created empty with H5S_UNLIMITED on their step axis,
 * chunked, shuffled, deflated and fletcher32-checksummed (every dataset of a
 * trace is), and grown with H5Dset_extent as blocks
 * arrive. A chunk holds at most TRACE_CHUNK_ELEMS values, so the partial
 * chunks of block-by-block appends stay in HDF5's 1 MiB chunk cache and each
 * chunk is compressed once, whatever the block size.
 */
#include "charnn/trace.h"
#include "charnn/trace_cond.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "charnn/ckpt.h"
#include "charnn/common.h"
#include "charnn/config.h"
#include "charnn/corpus.h"
#include "charnn/data.h"
#include "charnn/dist.h"
#include "charnn/h5io.h"
#include "charnn/head.h"
#include "charnn/memplan.h"

#define TRACE_CHUNK_ELEMS ((hsize_t)65536)
/* The streams file is written by every rank at once: bigger chunks, one rank's
 * streams each, so no chunk is shared between ranks. */
#define TRACE_STREAM_CHUNK_ELEMS ((hsize_t)1 << 20)
#define TRACE_MAX_RANK 4
/* Steps per forward. Fixed, not --block: BLAS rounds a row of a GEMM
 * differently depending on where it falls in the call (OpenBLAS's sgemm
 * computes the last M % 16 rows with other kernels), so the same windows are
 * what makes a trace the same bits whatever --block is, and a probe trace the
 * same bits as `charnn trace` over the same text. */
#define TRACE_WINDOW 256

/* ---- HDF5: h5io's checked helpers ----------------------------------- */

/* Create an empty dataset `name` (intermediate groups too) whose axis 0 grows
 * without limit from 0; dims[1..rank) are the fixed axes, chunk the chunk
 * shape. Compressed, and checksummed like every dataset h5io writes. Returns
 * the dataset or H5I_INVALID_HID with a message. */
static hid_t dset_create(const char *path, hid_t loc, const char *name, hid_t type, int rank,
                         const hsize_t *dims, const hsize_t *chunk)
{
    hsize_t cur[TRACE_MAX_RANK];
    CHARNN_ASSERT(rank >= 1 && rank <= TRACE_MAX_RANK);
    for (int i = 0; i < rank; i++)
        cur[i] = i == 0 ? 0 : dims[i];
    return h5io_dataset_create(path, loc, name, type, rank, cur, chunk,
                               H5IO_GROWABLE | H5IO_COMPRESS);
}

/* Chunk rows for rows of `row` elements: at most `elems` values, at most
 * `cap` rows (the known length, so short traces get no oversized chunks). */
static hsize_t chunk_rows(hsize_t row, hsize_t cap, hsize_t elems)
{
    hsize_t rows = elems / (row > 0 ? row : 1);
    if (rows < 1)
        rows = 1;
    if (cap >= 1 && rows > cap)
        rows = cap;
    return rows;
}

/* Attributes of a file this run may append to: -1 (absent or unreadable:
 * the file does not match) or 0. */
static int attr_get_i64(hid_t loc, const char *name, int64_t *out)
{
    return h5io_attr_read_num("", loc, "", name, H5T_NATIVE_INT64, 1, out) == 1 ? 0 : -1;
}

static int attr_get_str(hid_t loc, const char *name, char *out, size_t n)
{
    return h5io_attr_read_str("", loc, "", name, out, n) == 1 ? 0 : -1;
}

/* Shape of a dataset; -1 if it cannot be read. */
static int dset_shape(hid_t loc, const char *name, int *rank, hsize_t *dims)
{
    return h5io_dataset_shape("", loc, name, rank, dims);
}

/* ---- what every trace file starts with -------------------------------- */

static const char *gate_list(cell_kind cell)
{
    return cell == CELL_LSTM ? "i,f,g,o" : cell == CELL_GRU ? "r,z,n" : "";
}

static const char *const lstm_gates[] = {"i", "f", "g", "o"};
static const char *const gru_gates[] = {"r", "z", "n"};

/* Gate names of a cell (NULL for the vanilla RNN, whose one "gate" is h). */
static const char *const *gate_names(cell_kind cell, int *n)
{
    *n = cell == CELL_LSTM ? 4 : cell == CELL_GRU ? 3 : 0;
    return cell == CELL_LSTM ? lstm_gates : cell == CELL_GRU ? gru_gates : NULL;
}

typedef struct {
    const char *kind;   /* "text", "probe", "streams" */
    const char *model;  /* checkpoint path, or the run directory */
    const char *source; /* the text traced */
    const char *split;  /* split name, or NULL */
    int64_t model_step;
    int64_t n_steps;
    int64_t begin;      /* offset of the first step in the source (text traces) */
} trace_meta;

/* v may be NULL (the streams file holds no text). */
static int write_root_attrs(const char *path, hid_t fid, const model *m, const vocab *v,
                            const trace_meta *meta)
{
    hid_t root = H5Gopen2(fid, "/", H5P_DEFAULT);
    int rc = -1;
    if (root < 0)
        return h5io_write_fail(path, "opening /");
    if (h5io_attr_write_str(path, root, "format", TRACE_FORMAT) < 0 ||
        h5io_attr_write_i64(path, root, "format_version", TRACE_FORMAT_VERSION) < 0 ||
        h5io_attr_write_str(path, root, "kind", meta->kind) < 0 ||
        h5io_attr_write_str(path, root, "model", meta->model) < 0 ||
        h5io_attr_write_i64(path, root, "model_step", meta->model_step) < 0 ||
        h5io_attr_write_str(path, root, "cell", cell_name(m->cfg.cell)) < 0 ||
        h5io_attr_write_i64(path, root, "layers", m->cfg.layers) < 0 ||
        h5io_attr_write_i64(path, root, "hidden", m->cfg.hidden) < 0 ||
        h5io_attr_write_i64(path, root, "vocab_size", m->cfg.vocab) < 0 ||
        (v && h5io_attr_write_str(path, root, "vocab_mode",
                           v->mode == VOCAB_BYTES ? "bytes" : "codepoints") < 0) ||
        h5io_attr_write_str(path, root, "source", meta->source) < 0 ||
        h5io_attr_write_i64(path, root, "n_steps", meta->n_steps) < 0 ||
        h5io_attr_write_str(path, root, "gates", gate_list(m->cfg.cell)) < 0)
        goto error;
    if (meta->split && (h5io_attr_write_str(path, root, "split", meta->split) < 0 ||
                        h5io_attr_write_i64(path, root, "begin", meta->begin) < 0))
        goto error;
    rc = 0;
error:
    H5Gclose(root);
    return rc;
}

/* A 1-d growable dataset holding n values written at once (vocab, tokens). */
static int write_fixed_1d(const char *path, hid_t fid, const char *name, hid_t ftype,
                          hid_t mtype, hsize_t n, const void *buf)
{
    hsize_t chunk = chunk_rows(1, n, TRACE_CHUNK_ELEMS);
    hid_t dset = dset_create(path, fid, name, ftype, 1, &n, &chunk);
    if (dset < 0)
        return -1;
    int rc = h5io_dataset_append_1d(path, name, dset, mtype, 0, n, buf);
    H5Dclose(dset);
    return rc;
}

static int write_vocab(const char *path, hid_t fid, const vocab *v)
{
    return write_fixed_1d(path, fid, "/vocab", H5T_STD_U32LE, H5T_NATIVE_UINT32,
                          (hsize_t)v->size, v->symbols);
}

/* ---- charnn trace: the text trace ------------------------------------- */

/* Per layer, the series of a text trace: h, c (LSTM), then each gate. */
enum { SERIES_H = 0, SERIES_C = 1, SERIES_GATE0 = 2, SERIES_MAX = 6 };

typedef struct {
    const char *path;
    hid_t fid;
    hid_t tokens, targets, loss, prob;
    hid_t set[MODEL_MAX_LAYERS][SERIES_MAX];          /* H5I_INVALID_HID where absent */
    char name[MODEL_MAX_LAYERS][SERIES_MAX][40];      /* dataset paths, for messages */
} text_trace;

/* One block of steps gathered from the forward windows before it is appended. */
typedef struct {
    int cap, n;        /* rows held / filled */
    int32_t *x, *y;    /* (cap) */
    float *loss, *prob;/* (cap) */
    float *series;     /* (L, SERIES_MAX, cap, H) */
} text_block;

static void text_trace_init(text_trace *tt, const char *path)
{
    memset(tt, 0, sizeof *tt);
    tt->path = path;
    tt->fid = tt->tokens = tt->targets = tt->loss = tt->prob = H5I_INVALID_HID;
    for (int l = 0; l < MODEL_MAX_LAYERS; l++)
        for (int k = 0; k < SERIES_MAX; k++)
            tt->set[l][k] = H5I_INVALID_HID;
}

static int text_trace_close(text_trace *tt)
{
    H5Dclose(tt->tokens);
    H5Dclose(tt->targets);
    H5Dclose(tt->loss);
    H5Dclose(tt->prob);
    for (int l = 0; l < MODEL_MAX_LAYERS; l++)
        for (int k = 0; k < SERIES_MAX; k++)
            H5Dclose(tt->set[l][k]);
    int rc = 0;
    if (tt->fid >= 0 && H5Fclose(tt->fid) < 0)
        rc = h5io_write_fail(tt->path, "closing the file");
    text_trace_init(tt, tt->path);
    return rc;
}

static int text_trace_create(text_trace *tt, const model *m, const vocab *v,
                             const trace_meta *meta)
{
    const int L = m->cfg.layers, H = m->cfg.hidden;
    const hsize_t N = (hsize_t)meta->n_steps;
    const char *path = tt->path;
    int ngates;
    const char *const *gates = gate_names(m->cfg.cell, &ngates);
    if ((tt->fid = h5io_file_create(path, H5P_DEFAULT)) < 0)
        return -1;
    if (write_root_attrs(path, tt->fid, m, v, meta) < 0 || write_vocab(path, tt->fid, v) < 0)
        return -1;
    hsize_t c1 = chunk_rows(1, N, TRACE_CHUNK_ELEMS);
    if ((tt->tokens = dset_create(path, tt->fid, "/tokens", H5T_STD_I32LE, 1, &N, &c1)) < 0 ||
        (tt->targets = dset_create(path, tt->fid, "/targets", H5T_STD_I32LE, 1, &N, &c1)) < 0 ||
        (tt->loss = dset_create(path, tt->fid, "/loss", H5T_IEEE_F32LE, 1, &N, &c1)) < 0 ||
        (tt->prob = dset_create(path, tt->fid, "/prob", H5T_IEEE_F32LE, 1, &N, &c1)) < 0)
        return -1;
    const hsize_t dims[2] = {N, (hsize_t)H};
    const hsize_t chunk[2] = {chunk_rows((hsize_t)H, N, TRACE_CHUNK_ELEMS), (hsize_t)H};
    for (int l = 0; l < L; l++) {
        for (int k = 0; k < SERIES_GATE0 + ngates; k++) {
            if (k == SERIES_C && m->cfg.cell != CELL_LSTM)
                continue;
            if (k == SERIES_H || k == SERIES_C)
                snprintf(tt->name[l][k], sizeof tt->name[l][k], "/layer%d/%s", l,
                         k == SERIES_H ? "h" : "c");
            else
                snprintf(tt->name[l][k], sizeof tt->name[l][k], "/layer%d/gates/%s", l,
                         gates[k - SERIES_GATE0]);
            if ((tt->set[l][k] = dset_create(path, tt->fid, tt->name[l][k], H5T_IEEE_F32LE, 2,
                                             dims, chunk)) < 0)
                return -1;
        }
    }
    return 0;
}

static float *block_series(const text_block *b, int H, int l, int k)
{
    return b->series + ((size_t)l * SERIES_MAX + (size_t)k) * (size_t)b->cap * H;
}

/* Step t of the last forward in w (B = 1) into the next row of the block. */
static void text_block_add(text_block *b, const model *m, const model_work *w, int t,
                           const int32_t *x, const int32_t *y)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, G = m->gates;
    const int r = b->n++;
    const size_t row = (size_t)r * H;
    CHARNN_ASSERT(r < b->cap);
    b->x[r] = x[t];
    b->y[r] = y[t];
    b->loss[r] = w->head.loss[t];
    b->prob[r] = head_target_prob(w, (size_t)t, y[t]);
    for (int l = 0; l < L; l++) {
        /* hs and cs row 0 is the state the window started from */
        memcpy(block_series(b, H, l, SERIES_H) + row, w->hs[l] + (size_t)(t + 1) * H,
               (size_t)H * sizeof(float));
        if (m->cfg.cell == CELL_LSTM)
            memcpy(block_series(b, H, l, SERIES_C) + row, w->cs[l] + (size_t)(t + 1) * H,
                   (size_t)H * sizeof(float));
        /* gate g is columns [g*H, (g+1)*H) of the (T, G*H) gate rows */
        for (int g = 0; g < G && m->cfg.cell != CELL_RNN; g++)
            memcpy(block_series(b, H, l, SERIES_GATE0 + g) + row,
                   w->gates[l] + (size_t)t * G * H + (size_t)g * H, (size_t)H * sizeof(float));
    }
}

/* Append the block's rows at step `at` and empty it. */
static int text_block_flush(text_trace *tt, text_block *b, const model *m, hsize_t at)
{
    const char *path = tt->path;
    const int H = m->cfg.hidden;
    const hsize_t n = (hsize_t)b->n;
    if (n == 0)
        return 0;
    if (h5io_dataset_append_1d(path, "/tokens", tt->tokens, H5T_NATIVE_INT32, at, n, b->x) < 0 ||
        h5io_dataset_append_1d(path, "/targets", tt->targets, H5T_NATIVE_INT32, at, n, b->y) < 0 ||
        h5io_dataset_append_1d(path, "/loss", tt->loss, H5T_NATIVE_FLOAT, at, n, b->loss) < 0 ||
        h5io_dataset_append_1d(path, "/prob", tt->prob, H5T_NATIVE_FLOAT, at, n, b->prob) < 0)
        return -1;
    const hsize_t start[2] = {at, 0}, count[2] = {n, (hsize_t)H};
    for (int l = 0; l < m->cfg.layers; l++) {
        for (int k = 0; k < SERIES_MAX; k++) {
            if (tt->set[l][k] < 0)
                continue;
            if (h5io_dataset_set_rows(path, tt->name[l][k], tt->set[l][k], at + n) < 0 ||
                h5io_dataset_write_box(path, tt->name[l][k], tt->set[l][k], H5T_NATIVE_FLOAT, 2, start,
                           count, H5I_INVALID_HID, H5P_DEFAULT, block_series(b, H, l, k)) < 0)
                return -1;
        }
    }
    b->n = 0;
    return 0;
}

/* --grads: for chunk c of L steps (text positions [c*L, (c+1)*L)), run from a
 * zero state, differentiate the loss at the chunk's last step alone and write
 * the norm over units of dL/dh_t (and dL/dc_t) for every t of the chunk. */
static int trace_grads(const char *path, hid_t fid, model *m, data_source *src, size_t begin,
                       int len, int chunks)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, lstm = m->cfg.cell == CELL_LSTM;
    hid_t group = H5I_INVALID_HID, dh[MODEL_MAX_LAYERS], dc[MODEL_MAX_LAYERS];
    char names[MODEL_MAX_LAYERS][2][40];
    int rc = -1;
    model_work w;
    model_state s;
    model_work_init(&w, m, len, 1);
    model_state_init(&s, &m->cfg, 1);
    int32_t *tok = cn_xmalloc((size_t)(len + 1) * sizeof *tok);
    float *weight = cn_xcalloc((size_t)len, sizeof *weight);
    float *rec = cn_xmalloc((size_t)L * 2 * len * H * sizeof *rec);
    float *norms = cn_xmalloc((size_t)len * sizeof *norms);
    for (int l = 0; l < L; l++)
        dh[l] = dc[l] = H5I_INVALID_HID;
    weight[len - 1] = 1.0f;
    w.mask = weight;
    for (int l = 0; l < L; l++) {
        w.dh_record[l] = rec + (size_t)(2 * l) * len * H;
        w.dc_record[l] = lstm ? rec + (size_t)(2 * l + 1) * len * H : NULL;
    }

    if ((group = H5Gcreate2(fid, "/grads", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        h5io_write_fail(path, "creating /grads");
        goto error;
    }
    if (h5io_attr_write_i64(path, group, "chunk_len", len) < 0 ||
        h5io_attr_write_i64(path, group, "chunks", chunks) < 0)
        goto error;
    const hsize_t dims[2] = {(hsize_t)chunks, (hsize_t)len};
    const hsize_t chunk[2] = {chunk_rows((hsize_t)len, (hsize_t)chunks, TRACE_CHUNK_ELEMS),
                              (hsize_t)len};
    for (int l = 0; l < L; l++) {
        snprintf(names[l][0], sizeof names[l][0], "/grads/layer%d/dh", l);
        snprintf(names[l][1], sizeof names[l][1], "/grads/layer%d/dc", l);
        if ((dh[l] = dset_create(path, fid, names[l][0], H5T_IEEE_F32LE, 2, dims, chunk)) < 0)
            goto error;
        if (lstm &&
            (dc[l] = dset_create(path, fid, names[l][1], H5T_IEEE_F32LE, 2, dims, chunk)) < 0)
            goto error;
    }
    for (int c = 0; c < chunks; c++) {
        if (src->read(src, begin + (size_t)c * len, (size_t)len + 1, tok) != 0)
            goto error;
        model_state_reset(&s);
        model_forward(m, &w, &s, tok, tok + 1, len, 0, 0);
        /* the gradient slab is scratch here: only the records are wanted */
        model_zero_grads(m);
        model_backward(m, &w, tok, tok + 1, 1.0f, NULL, NULL);
        const hsize_t start[2] = {(hsize_t)c, 0}, count[2] = {1, (hsize_t)len};
        for (int l = 0; l < L; l++) {
            for (int k = 0; k < (lstm ? 2 : 1); k++) {
                const float *r = k == 0 ? w.dh_record[l] : w.dc_record[l];
                for (int t = 0; t < len; t++) {
                    double ss = 0.0;
                    for (int j = 0; j < H; j++)
                        ss += (double)r[(size_t)t * H + j] * r[(size_t)t * H + j];
                    norms[t] = (float)sqrt(ss);
                }
                hid_t d = k == 0 ? dh[l] : dc[l];
                if (h5io_dataset_set_rows(path, names[l][k], d, (hsize_t)c + 1) < 0 ||
                    h5io_dataset_write_box(path, names[l][k], d, H5T_NATIVE_FLOAT, 2, start, count,
                               H5I_INVALID_HID, H5P_DEFAULT, norms) < 0)
                    goto error;
            }
        }
    }
    rc = 0;
error:
    for (int l = 0; l < L; l++) {
        H5Dclose(dh[l]);
        H5Dclose(dc[l]);
    }
    H5Gclose(group);
    model_zero_grads(m);
    free(norms);
    free(rec);
    free(weight);
    free(tok);
    model_state_free(&s);
    model_work_free(&w);
    return rc;
}

/* ---- LSTMVis ---------------------------------------------------------- */

/* One symbol as a words.dict token: LSTMVis splits each line on whitespace,
 * so whitespace and control characters become <space>, <newline>, <tab>,
 * <U+XXXX> (code points) or <0xXX> (bytes: control bytes and those above 0x7F). */
static void dict_symbol(const vocab *v, int id, char *out, size_t n)
{
    uint32_t s = v->symbols[id];
    if (s == ' ')
        snprintf(out, n, "<space>");
    else if (s == '\n')
        snprintf(out, n, "<newline>");
    else if (s == '\t')
        snprintf(out, n, "<tab>");
    else if (v->mode == VOCAB_BYTES && (s >= 0x80 || s < 0x20 || s == 0x7f))
        snprintf(out, n, "<0x%02X>", (unsigned)s);
    else if (s < 0x20 || s == 0x7f || (s >= 0x80 && s <= 0xa0) || s == 0x1680 ||
             (s >= 0x2000 && s <= 0x200a) || s == 0x2028 || s == 0x2029 || s == 0x202f ||
             s == 0x205f || s == 0x3000 || s == 0xfeff)
        snprintf(out, n, "<U+%04X>", (unsigned)s);
    else {
        char b[4];
        int k = vocab_decode(v, id, b);
        snprintf(out, n, "%.*s", k, b);
    }
}

/* A YAML double-quoted scalar. */
static void yaml_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s < 0x20)
            fprintf(f, "\\x%02x", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

/* The LSTMVis directory name for a trace path: "x/run.h5" -> "x/run_lstmvis". */
static void lstmvis_dir(const char *out, char *dir, size_t n)
{
    size_t len = strlen(out);
    const char *dot = strrchr(out, '.');
    if (dot && (strcmp(dot, ".h5") == 0 || strcmp(dot, ".hdf5") == 0))
        len = (size_t)(dot - out);
    snprintf(dir, n, "%.*s_lstmvis", (int)len, out);
}

static int write_lstmvis(const char *out, const model *m, const vocab *v, const char *model_path,
                         const char *source, int64_t step)
{
    char dir[CONFIG_PATH_MAX + 16], file[CONFIG_PATH_MAX + 32], sym[32];
    lstmvis_dir(out, dir, sizeof dir);
    const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
    struct stat sb;
    if (mkdir(dir, 0777) != 0 && !(errno == EEXIST && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)))
        return cn_err("cannot create '%s': %s", dir, strerror(errno));

    snprintf(file, sizeof file, "%s/words.dict", dir);
    FILE *f = fopen(file, "w");
    if (!f)
        return cn_err("cannot create '%s': %s", file, strerror(errno));
    for (int id = 0; id < v->size; id++) {
        dict_symbol(v, id, sym, sizeof sym);
        fprintf(f, "%s %d\n", sym, id);
    }
    if (fclose(f) != 0)
        return cn_err("cannot write '%s': %s", file, strerror(errno));

    snprintf(file, sizeof file, "%s/lstm.yml", dir);
    if (!(f = fopen(file, "w")))
        return cn_err("cannot create '%s': %s", file, strerror(errno));
    char rel[CONFIG_PATH_MAX + 8], desc[3 * CONFIG_PATH_MAX];
    snprintf(rel, sizeof rel, "../%s", base);
    snprintf(desc, sizeof desc, "charnn trace of '%s' by '%s' (%s, %d x %d, step %lld)", source,
             model_path, cell_name(m->cfg.cell), m->cfg.layers, m->cfg.hidden, (long long)step);
    fprintf(f, "# LSTMVis project written by charnn trace (docs/trace-format.md)\nname: ");
    yaml_quoted(f, base);
    fprintf(f, "\ndescription: ");
    yaml_quoted(f, desc);
    fprintf(f, "\n\nfiles:\n  states: ");
    yaml_quoted(f, rel);
    fprintf(f, "\n  train: ");
    yaml_quoted(f, rel);
    fprintf(f, "\n  words: words.dict\n\n"
               "word_sequence:\n  file: train\n  path: tokens\n  dict_file: words\n\n"
               "states:\n  file: states\n  types: [\n");
    for (int l = 0; l < m->cfg.layers; l++) {
        /* the LSTM's state is c; the other cells carry h alone */
        fprintf(f, "    {type: state, layer: %d, path: layer%d/%s},\n", l + 1, l,
                m->cfg.cell == CELL_LSTM ? "c" : "h");
        fprintf(f, "    {type: output, layer: %d, path: layer%d/h}%s\n", l + 1, l,
                l + 1 < m->cfg.layers ? "," : "");
    }
    fprintf(f, "  ]\n");
    if (fclose(f) != 0)
        return cn_err("cannot write '%s': %s", file, strerror(errno));
    return 0;
}

/* ---- charnn trace ----------------------------------------------------- */

/* The text to trace: --data (a text or prepared corpus) or the checkpoint's own data. */
static int open_source(const trace_options *o, ckpt_data *d, data_source *src, data_splits *sp,
                       const char **name)
{
    *name = o->data[0] ? o->data : d->cfg.data;
    if (!(*name)[0])
        return cn_err("checkpoint '%s' names no training data: give --data", o->model);
    if (corpus_open(src, *name, &d->voc, d->voc.mode, d->cfg.val_frac, d->cfg.test_frac,
                    sp) == 0)
        return 0;
    if (!o->data[0])
        cn_err_context("training data of '%s'", o->model);
    return -1;
}

static int trace_text(const trace_options *o)
{
    ckpt_data d;
    data_source src;
    text_trace tt;
    text_block blk;
    model_work w;
    model_state s;
    int rc = -1, created = 0, have_work = 0;
    int32_t *tok = NULL;
    const char *source;
    data_splits sp;
    memset(&src, 0, sizeof src);
    memset(&blk, 0, sizeof blk);
    text_trace_init(&tt, o->out);
    if (ckpt_read(o->model, &d) != 0)
        return -1;
    if (ckpt_require_task(&d, o->model, CKPT_TASK_LM, "trace") != 0) {
        ckpt_data_free(&d);
        return -1;
    }
    if (open_source(o, &d, &src, &sp, &source) != 0)
        goto error;
    const size_t begin = sp.begin[o->split], end = sp.end[o->split];
    if (end - begin < 2) {
        cn_err("split '%s' of '%s' has %zu tokens: nothing to trace", data_split_name(o->split),
               source, end - begin);
        goto error;
    }
    int64_t n = (int64_t)(end - begin - 1);
    if (o->max_chars > 0 && o->max_chars < n)
        n = o->max_chars;
    int chunks = 0;
    if (o->grads) {
        chunks = (int)(n / o->grad_len < o->grad_chunks ? n / o->grad_len : o->grad_chunks);
        if (chunks < 1) {
            cn_err("--grad-chunk %d is longer than the %lld steps traced", o->grad_len,
                   (long long)n);
            goto error;
        }
    }

    model *m = &d.m;
    const int H = m->cfg.hidden, L = m->cfg.layers;
    const int window = n < TRACE_WINDOW ? (int)n : TRACE_WINDOW;
    trace_meta meta = {"text", o->model, source, data_split_name(o->split), d.prog.step, n,
                       (int64_t)begin};
    double block_bytes = 4.0 * L * SERIES_MAX * H * (double)(o->block < n ? o->block : n);
    if (memplan_check_infer(&m->cfg, window, 1, block_bytes, "trace") != 0)
        goto error;
    created = 1;
    if (text_trace_create(&tt, m, &d.voc, &meta) != 0)
        goto error;
    model_work_init(&w, m, window, 1);
    model_state_init(&s, &m->cfg, 1);
    have_work = 1;
    tok = cn_xmalloc((size_t)(window + 1) * sizeof *tok);
    blk.cap = o->block < n ? o->block : (int)n;
    blk.x = cn_xmalloc((size_t)blk.cap * sizeof *blk.x);
    blk.y = cn_xmalloc((size_t)blk.cap * sizeof *blk.y);
    blk.loss = cn_xmalloc((size_t)blk.cap * sizeof *blk.loss);
    blk.prob = cn_xmalloc((size_t)blk.cap * sizeof *blk.prob);
    blk.series = cn_xmalloc((size_t)L * SERIES_MAX * blk.cap * H * sizeof *blk.series);
    double t0 = cn_now();
    int64_t written = 0;
    for (int64_t at = 0; at < n;) {
        int Tw = n - at < window ? (int)(n - at) : window;
        if (src.read(&src, begin + (size_t)at, (size_t)Tw + 1, tok) != 0)
            goto error;
        model_forward(m, &w, &s, tok, tok + 1, Tw, 0, 0);
        for (int t = 0; t < Tw; t++) {
            text_block_add(&blk, m, &w, t, tok, tok + 1);
            if (blk.n == blk.cap) {
                if (text_block_flush(&tt, &blk, m, (hsize_t)written) != 0)
                    goto error;
                written += blk.cap;
            }
        }
        at += Tw;
    }
    if (blk.n > 0 && text_block_flush(&tt, &blk, m, (hsize_t)written) != 0)
        goto error;
    if (o->grads && trace_grads(o->out, tt.fid, m, &src, begin, o->grad_len, chunks) != 0)
        goto error;
    if (text_trace_close(&tt) != 0)
        goto error;
    if (o->lstmvis && write_lstmvis(o->out, m, &d.voc, o->model, source, d.prog.step) != 0)
        goto error;
    printf("traced %lld steps of '%s' (%s split) with '%s' (step %lld) into '%s' in %.1fs\n",
           (long long)n, source, data_split_name(o->split), o->model, (long long)d.prog.step,
           o->out, cn_now() - t0);
    if (o->grads)
        printf("gradient flow: %d chunks of %d steps in /grads\n", chunks, o->grad_len);
    if (o->lstmvis) {
        char dir[CONFIG_PATH_MAX + 16];
        lstmvis_dir(o->out, dir, sizeof dir);
        printf("LSTMVis project: '%s/lstm.yml'\n", dir);
    }
    rc = 0;
error:
    text_trace_close(&tt);
    if (rc != 0 && created)
        unlink(o->out); /* no half-written trace */
    free(tok);
    free(blk.x);
    free(blk.y);
    free(blk.loss);
    free(blk.prob);
    free(blk.series);
    if (have_work) {
        model_state_free(&s);
        model_work_free(&w);
    }
    data_source_close(&src);
    ckpt_data_free(&d);
    return rc;
}

int trace_run(const trace_options *o)
{
    int rc;
    H5E_BEGIN_TRY
    {
        rc = trace_classify_run(o); /* 1: not a classifier */
        if (rc == 1)
            rc = trace_tag_run(o); /* 1: not a tagger */
        if (rc == 1)
            rc = trace_cond_run(o); /* 1: neither a generator nor a vector classifier */
        if (rc == 1)
            rc = trace_text(o);
    }
    H5E_END_TRY;
    return rc;
}

/* ---- train --trace-every: the probe trace ----------------------------- */

struct trace_probe {
    char *path;
    int n;          /* N, steps of the probe text */
    int32_t *tok;   /* (N + 1) the probe text: inputs tok[0..N), targets tok[1..N] */
    model_work w;   /* (min(N, TRACE_WINDOW), 1) */
    model_state s;  /* (1) */
    float *loss;    /* (min(N, TRACE_WINDOW)) */
};

/* Is the probe file at path one this run can append to (same model shape,
 * vocabulary and probe text)? 1 yes, 0 no. */
static int probe_file_matches(const char *path, const model *m, const vocab *v,
                              const int32_t *tok, int n)
{
    hid_t fid = H5I_INVALID_HID, dset = H5I_INVALID_HID;
    int64_t layers = 0, hidden = 0, vsize = 0;
    char kind[32] = "", cell[16] = "";
    int32_t *have = NULL;
    uint32_t *syms = NULL;
    int ok = 0, rank;
    hsize_t dims[TRACE_MAX_RANK];
    if ((fid = h5io_file_open(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        goto error;
    if (attr_get_str(fid, "kind", kind, sizeof kind) < 0 || strcmp(kind, "probe") != 0 ||
        attr_get_str(fid, "cell", cell, sizeof cell) < 0 ||
        strcmp(cell, cell_name(m->cfg.cell)) != 0 || attr_get_i64(fid, "layers", &layers) < 0 ||
        layers != m->cfg.layers || attr_get_i64(fid, "hidden", &hidden) < 0 ||
        hidden != m->cfg.hidden || attr_get_i64(fid, "vocab_size", &vsize) < 0 ||
        vsize != v->size)
        goto error;
    if (dset_shape(fid, "/tokens", &rank, dims) < 0 || rank != 1 || dims[0] != (hsize_t)n ||
        dset_shape(fid, "/vocab", &rank, dims) < 0 || rank != 1 || dims[0] != (hsize_t)v->size)
        goto error;
    have = cn_xmalloc((size_t)n * sizeof *have);
    syms = cn_xmalloc((size_t)v->size * sizeof *syms);
    if ((dset = H5Dopen2(fid, "/tokens", H5P_DEFAULT)) < 0 ||
        H5Dread(dset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, have) < 0 ||
        memcmp(have, tok, (size_t)n * sizeof *have) != 0)
        goto error;
    H5Dclose(dset);
    if ((dset = H5Dopen2(fid, "/vocab", H5P_DEFAULT)) < 0 ||
        H5Dread(dset, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, syms) < 0 ||
        memcmp(syms, v->symbols, (size_t)v->size * sizeof *syms) != 0)
        goto error;
    for (int l = 0; l < m->cfg.layers; l++) {
        char name[32];
        snprintf(name, sizeof name, "/layer%d/h", l);
        if (dset_shape(fid, name, &rank, dims) < 0 || rank != 3 || dims[1] != (hsize_t)n ||
            dims[2] != (hsize_t)m->cfg.hidden)
            goto error;
    }
    ok = 1;
error:
    free(have);
    free(syms);
    H5Dclose(dset);
    H5Fclose(fid);
    return ok;
}

static int probe_create(const trace_probe *p, const model *m, const vocab *v)
{
    const int L = m->cfg.layers, H = m->cfg.hidden;
    const hsize_t N = (hsize_t)p->n;
    hid_t fid = H5I_INVALID_HID, dset = H5I_INVALID_HID;
    int rc = -1;
    char dir[CONFIG_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s", p->path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    trace_meta meta = {"probe", dir, "", NULL, 0, p->n, 0};
    if ((fid = h5io_file_create(p->path, H5P_DEFAULT)) < 0)
        goto error;
    if (write_root_attrs(p->path, fid, m, v, &meta) < 0 || write_vocab(p->path, fid, v) < 0 ||
        write_fixed_1d(p->path, fid, "/tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, N, p->tok) < 0 ||
        write_fixed_1d(p->path, fid, "/targets", H5T_STD_I32LE, H5T_NATIVE_INT32, N,
                       p->tok + 1) < 0)
        goto error;
    const hsize_t c1 = 1024;
    if ((dset = dset_create(p->path, fid, "/steps", H5T_STD_I64LE, 1, &N, &c1)) < 0)
        goto error;
    H5Dclose(dset);
    const hsize_t dims2[2] = {0, N}, chunk2[2] = {1, chunk_rows(1, N, TRACE_CHUNK_ELEMS)};
    if ((dset = dset_create(p->path, fid, "/loss", H5T_IEEE_F32LE, 2, dims2, chunk2)) < 0)
        goto error;
    H5Dclose(dset);
    const hsize_t dims3[3] = {0, N, (hsize_t)H};
    const hsize_t chunk3[3] = {1, chunk_rows((hsize_t)H, N, TRACE_CHUNK_ELEMS), (hsize_t)H};
    for (int l = 0; l < L; l++) {
        for (int k = 0; k < (m->cfg.cell == CELL_LSTM ? 2 : 1); k++) {
            char name[32];
            snprintf(name, sizeof name, "/layer%d/%s", l, k == 0 ? "h" : "c");
            if ((dset = dset_create(p->path, fid, name, H5T_IEEE_F32LE, 3, dims3, chunk3)) < 0)
                goto error;
            H5Dclose(dset);
        }
    }
    dset = H5I_INVALID_HID;
    rc = 0;
error:
    H5Dclose(dset);
    if (fid >= 0 && H5Fclose(fid) < 0 && rc == 0)
        rc = h5io_write_fail(p->path, "closing the file");
    return rc;
}

static int probe_open(trace_probe **out, const char *path, const model *m, const vocab *v,
                      const int32_t *tokens, int64_t n)
{
    *out = NULL;
    if (n < 2)
        return cn_err("the probe text of '%s' needs at least 2 tokens (got %lld)", path,
                      (long long)n);
    if (n - 1 > INT32_MAX)
        return cn_err("the probe text of '%s' is too long (%lld tokens)", path, (long long)n);
    trace_probe *p = cn_xcalloc(1, sizeof *p);
    p->path = cn_xstrdup(path);
    p->n = (int)(n - 1);
    p->tok = cn_xmalloc((size_t)n * sizeof *p->tok);
    memcpy(p->tok, tokens, (size_t)n * sizeof *p->tok);
    const int block = p->n < TRACE_WINDOW ? p->n : TRACE_WINDOW;
    model_work_init(&p->w, m, block, 1);
    model_state_init(&p->s, &m->cfg, 1);
    p->loss = cn_xmalloc((size_t)block * sizeof *p->loss);
    *out = p;
    if (access(path, F_OK) == 0) {
        if (probe_file_matches(path, m, v, p->tok, p->n))
            return 0;
        fprintf(stderr, "charnn: warning: '%s' holds another model or probe text: starting it "
                        "afresh\n", path);
    }
    return probe_create(p, m, v);
}

int trace_probe_open(trace_probe **out, const char *path, const model *m, const vocab *v,
                     const int32_t *tokens, int64_t n)
{
    int rc;
    H5E_BEGIN_TRY
    {
        rc = probe_open(out, path, m, v, tokens, n);
    }
    H5E_END_TRY;
    if (rc != 0) {
        trace_probe_close(*out);
        *out = NULL;
    }
    return rc;
}

/* Entries kept before appending `step`: those of earlier steps. A resumed run
 * (or one restarted from an older checkpoint) overwrites what came after. */
static int steps_keep(const char *path, hid_t dset, int64_t step, hid_t dxpl, hsize_t *keep)
{
    hid_t space = H5I_INVALID_HID;
    hsize_t S = 0;
    int64_t *steps = NULL;
    int rc = -1;
    if ((space = H5Dget_space(dset)) < 0 || H5Sget_simple_extent_dims(space, &S, NULL) < 0) {
        h5io_read_fail(path, "/steps");
        goto error;
    }
    steps = cn_xmalloc((S ? S : 1) * sizeof *steps);
    if (S > 0 && H5Dread(dset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, dxpl, steps) < 0) {
        h5io_read_fail(path, "/steps");
        goto error;
    }
    *keep = S;
    while (*keep > 0 && steps[*keep - 1] >= step)
        (*keep)--;
    rc = 0;
error:
    free(steps);
    H5Sclose(space);
    return rc;
}

static int probe_append(trace_probe *p, const model *m, int64_t step)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, N = p->n;
    hid_t fid = H5I_INVALID_HID, steps = H5I_INVALID_HID, loss = H5I_INVALID_HID;
    hid_t h[MODEL_MAX_LAYERS], c[MODEL_MAX_LAYERS];
    char names[MODEL_MAX_LAYERS][2][32];
    hsize_t keep;
    int rc = -1;
    for (int l = 0; l < L; l++) {
        h[l] = c[l] = H5I_INVALID_HID;
        snprintf(names[l][0], sizeof names[l][0], "/layer%d/h", l);
        snprintf(names[l][1], sizeof names[l][1], "/layer%d/c", l);
    }
    if ((fid = h5io_file_open(p->path, H5F_ACC_RDWR, H5P_DEFAULT)) < 0)
        goto error;
    if ((steps = H5Dopen2(fid, "/steps", H5P_DEFAULT)) < 0 ||
        (loss = H5Dopen2(fid, "/loss", H5P_DEFAULT)) < 0) {
        h5io_write_fail(p->path, "opening /steps and /loss");
        goto error;
    }
    for (int l = 0; l < L; l++) {
        if ((h[l] = H5Dopen2(fid, names[l][0], H5P_DEFAULT)) < 0 ||
            (m->cfg.cell == CELL_LSTM && (c[l] = H5Dopen2(fid, names[l][1], H5P_DEFAULT)) < 0)) {
            h5io_write_fail(p->path, "opening the states");
            goto error;
        }
    }
    if (steps_keep(p->path, steps, step, H5P_DEFAULT, &keep) < 0 ||
        h5io_dataset_append_1d(p->path, "/steps", steps, H5T_NATIVE_INT64, keep, 1, &step) < 0 ||
        h5io_dataset_set_rows(p->path, "/loss", loss, keep + 1) < 0)
        goto error;
    for (int l = 0; l < L; l++)
        if (h5io_dataset_set_rows(p->path, names[l][0], h[l], keep + 1) < 0 ||
            (c[l] >= 0 && h5io_dataset_set_rows(p->path, names[l][1], c[l], keep + 1) < 0))
            goto error;
    model_state_reset(&p->s);
    for (int at = 0; at < N;) {
        int Tb = N - at < p->w.T ? N - at : p->w.T;
        model_forward(m, &p->w, &p->s, p->tok + at, p->tok + at + 1, Tb, 0, 0);
        memcpy(p->loss, p->w.head.loss, (size_t)Tb * sizeof *p->loss);
        const hsize_t s2[2] = {keep, (hsize_t)at}, c2[2] = {1, (hsize_t)Tb};
        if (h5io_dataset_write_box(p->path, "/loss", loss, H5T_NATIVE_FLOAT, 2, s2, c2, H5I_INVALID_HID,
                       H5P_DEFAULT, p->loss) < 0)
            goto error;
        const hsize_t s3[3] = {keep, (hsize_t)at, 0}, c3[3] = {1, (hsize_t)Tb, (hsize_t)H};
        for (int l = 0; l < L; l++) {
            if (h5io_dataset_write_box(p->path, names[l][0], h[l], H5T_NATIVE_FLOAT, 3, s3, c3,
                           H5I_INVALID_HID, H5P_DEFAULT, p->w.hs[l] + H) < 0)
                goto error;
            if (c[l] >= 0 && h5io_dataset_write_box(p->path, names[l][1], c[l], H5T_NATIVE_FLOAT, 3, s3, c3,
                                        H5I_INVALID_HID, H5P_DEFAULT, p->w.cs[l] + H) < 0)
                goto error;
        }
        at += Tb;
    }
    if (h5io_attr_write_i64(p->path, fid, "model_step", step) < 0)
        goto error;
    rc = 0;
error:
    for (int l = 0; l < L; l++) {
        H5Dclose(h[l]);
        H5Dclose(c[l]);
    }
    H5Dclose(loss);
    H5Dclose(steps);
    if (fid >= 0 && H5Fclose(fid) < 0 && rc == 0)
        rc = h5io_write_fail(p->path, "closing the file");
    return rc;
}

int trace_probe_append(trace_probe *p, const model *m, int64_t step)
{
    int rc;
    H5E_BEGIN_TRY
    {
        rc = probe_append(p, m, step);
    }
    H5E_END_TRY;
    return rc;
}

void trace_probe_close(trace_probe *p)
{
    if (!p)
        return;
    model_work_free(&p->w);
    model_state_free(&p->s);
    free(p->loss);
    free(p->tok);
    free(p->path);
    free(p);
}

/* ---- train --trace-every: the streams trace (parallel HDF5) ----------- */

static hid_t streams_fapl(const char *path)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || dist_hdf5_fapl_mpio((int64_t)fapl) != 0) {
        h5io_write_fail(path, "setting up MPI-IO");
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

/* Collective: create the streams file for this run's shape. */
static hid_t streams_create(const char *path, hid_t fapl, const model *m, int T, int S, int R)
{
    const int L = m->cfg.layers, H = m->cfg.hidden;
    hid_t fid = H5I_INVALID_HID, dset = H5I_INVALID_HID;
    int ok = 0;
    char dir[CONFIG_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    trace_meta meta = {"streams", dir, "", NULL, 0, T, 0};
    if ((fid = h5io_file_create(path, fapl)) < 0)
        goto error;
    if (write_root_attrs(path, fid, m, NULL, &meta) < 0 ||
        h5io_attr_write_i64(path, fid, "seq", T) < 0 || h5io_attr_write_i64(path, fid, "batch", S / R) < 0 ||
        h5io_attr_write_i64(path, fid, "nranks", R) < 0)
        goto error;
    const hsize_t c1 = 1024, n1 = 0;
    if ((dset = dset_create(path, fid, "/steps", H5T_STD_I64LE, 1, &n1, &c1)) < 0)
        goto error;
    H5Dclose(dset);
    /* a chunk holds a rank's share of the streams (all ranks but the last when
     * --balance splits them unevenly) */
    const hsize_t B = (hsize_t)((S + R - 1) / R);
    const hsize_t dims[4] = {0, (hsize_t)T, (hsize_t)S, (hsize_t)H};
    const hsize_t chunk[4] = {1, chunk_rows(B * H, (hsize_t)T, TRACE_STREAM_CHUNK_ELEMS), B,
                              (hsize_t)H};
    for (int l = 0; l < L; l++) {
        char name[32];
        snprintf(name, sizeof name, "/layer%d/h", l);
        if ((dset = dset_create(path, fid, name, H5T_IEEE_F32LE, 4, dims, chunk)) < 0)
            goto error;
        H5Dclose(dset);
    }
    dset = H5I_INVALID_HID;
    ok = 1;
error:
    H5Dclose(dset);
    if (!ok) {
        H5Fclose(fid);
        return H5I_INVALID_HID;
    }
    return fid;
}

/* Does an open streams file have this run's shape? */
static int streams_match(hid_t fid, const model *m, int T, int S)
{
    int64_t layers = 0, hidden = 0;
    char kind[32] = "";
    int rank;
    hsize_t dims[TRACE_MAX_RANK];
    if (attr_get_str(fid, "kind", kind, sizeof kind) < 0 || strcmp(kind, "streams") != 0 ||
        attr_get_i64(fid, "layers", &layers) < 0 || layers != m->cfg.layers ||
        attr_get_i64(fid, "hidden", &hidden) < 0 || hidden != m->cfg.hidden ||
        dset_shape(fid, "/steps", &rank, dims) < 0 || rank != 1)
        return 0;
    for (int l = 0; l < m->cfg.layers; l++) {
        char name[32];
        snprintf(name, sizeof name, "/layer%d/h", l);
        if (dset_shape(fid, name, &rank, dims) < 0 || rank != 4 || dims[1] != (hsize_t)T ||
            dims[2] != (hsize_t)S || dims[3] != (hsize_t)m->cfg.hidden)
            return 0;
    }
    return 1;
}

static int streams_write(const char *path, const model *m, const model_work *w, int first,
                         int S, int64_t step)
{
    const int L = m->cfg.layers, H = m->cfg.hidden, T = w->t_used, B = w->B;
    const int R = dist_size(), r = dist_rank();
    hid_t fapl = H5I_INVALID_HID, dxpl = H5I_INVALID_HID, fid = H5I_INVALID_HID;
    hid_t steps = H5I_INVALID_HID, h[MODEL_MAX_LAYERS];
    char names[MODEL_MAX_LAYERS][32];
    hsize_t keep;
    int rc = -1;
    for (int l = 0; l < L; l++) {
        h[l] = H5I_INVALID_HID;
        snprintf(names[l], sizeof names[l], "/layer%d/h", l);
    }
    if ((fapl = streams_fapl(path)) < 0)
        goto error;
    if ((dxpl = H5Pcreate(H5P_DATASET_XFER)) < 0 || dist_hdf5_dxpl_collective((int64_t)dxpl) != 0) {
        h5io_write_fail(path, "setting up collective I/O");
        goto error;
    }
    /* rank 0 decides, so that no rank sees a file another rank just created */
    int exists = r == 0 && access(path, F_OK) == 0;
    dist_bcast(&exists, sizeof exists, 0);
    if (exists) {
        fid = h5io_file_open(path, H5F_ACC_RDWR, fapl);
        int ok = fid >= 0 && streams_match(fid, m, T, S);
        if (dist_allreduce_sum_int(ok) != R) {
            if (r == 0)
                fprintf(stderr, "charnn: warning: '%s' holds another run's streams (%d streams x "
                                "%d steps needed): starting it afresh\n",
                        path, S, T);
            if (fid >= 0)
                H5Fclose(fid);
            fid = H5I_INVALID_HID;
            exists = 0;
        }
    }
    if (!exists && (fid = streams_create(path, fapl, m, T, S, R)) < 0)
        goto error;
    if ((steps = H5Dopen2(fid, "/steps", H5P_DEFAULT)) < 0) {
        h5io_write_fail(path, "opening /steps");
        goto error;
    }
    for (int l = 0; l < L; l++)
        if ((h[l] = H5Dopen2(fid, names[l], H5P_DEFAULT)) < 0) {
            h5io_write_fail(path, "opening the states");
            goto error;
        }
    if (steps_keep(path, steps, step, dxpl, &keep) < 0 ||
        h5io_dataset_set_rows(path, "/steps", steps, keep + 1) < 0)
        goto error;
    /* rank 0 writes the step; the others join the collective write with nothing */
    const hsize_t one = r == 0 ? 1 : 0;
    if (h5io_dataset_write_box(path, "/steps", steps, H5T_NATIVE_INT64, 1, &keep, &one, H5I_INVALID_HID,
                   dxpl, &step) < 0)
        goto error;
    const hsize_t start[4] = {keep, 0, (hsize_t)first, 0};
    const hsize_t count[4] = {1, (hsize_t)T, (hsize_t)B, (hsize_t)H};
    for (int l = 0; l < L; l++) {
        /* hs[l] row 0 is the state carried into the chunk: the step's h_t are rows 1..T */
        if (h5io_dataset_set_rows(path, names[l], h[l], keep + 1) < 0 ||
            h5io_dataset_write_box(path, names[l], h[l], H5T_NATIVE_FLOAT, 4, start, count, H5I_INVALID_HID,
                       dxpl, w->hs[l] + (size_t)B * H) < 0)
            goto error;
    }
    if (h5io_attr_write_i64(path, fid, "model_step", step) < 0)
        goto error;
    rc = 0;
error:
    for (int l = 0; l < L; l++)
        H5Dclose(h[l]);
    H5Dclose(steps);
    if (fid >= 0 && H5Fclose(fid) < 0 && rc == 0)
        rc = h5io_write_fail(path, "closing the file");
    H5Pclose(dxpl);
    H5Pclose(fapl);
    return rc;
}

int trace_streams_write(const char *path, const model *m, const model_work *w, int first,
                        int streams, int64_t step)
{
    int rc;
    H5E_BEGIN_TRY
    {
        rc = streams_write(path, m, w, first, streams, step);
    }
    H5E_END_TRY;
    /* every rank returns alike, so that none walks on into the next collective alone */
    if (dist_allreduce_max_int(rc != 0 ? 1 : 0) != 0) {
        if (rc == 0)
            cn_err("writing '%s' failed on another rank", path);
        return -1;
    }
    return 0;
}
