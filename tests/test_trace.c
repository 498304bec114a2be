/* Hidden-state traces: `charnn trace` on a tiny LSTM and GRU trained here, read
 * back through the HDF5 API and checked against a direct model_forward; the
 * training-time probe and streams traces of --trace-every, also across a
 * resume; LSTMVis files; bad flags and bad inputs.
 *
 * Measured here (2 x 16 models, 30 steps): loss and -log(prob) agree within
 * 4e-7; layer 0 of a trace equals a one-call forward over the whole text bit
 * for bit (the one-hot input is a row gather), upper layers within 3e-7
 * (their input GEMM rounds a row differently depending on where it falls in
 * the call); in every --grads row the last entry (the step whose loss is
 * differentiated) is the largest, dh by 10^3 to 10^7 over the first. */
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "charnn/ckpt.h"
#include "charnn/cli.h"
#include "charnn/config.h"
#include "charnn/corpus.h"
#include "charnn/data.h"
#include "charnn/dist.h"
#include "charnn/model.h"
#include "charnn/runtime.h"
#include "charnn/trace.h"
#include "charnn/train.h"
#include "testlib.h"

#define TEXT_PATH "trace_text.txt"
#define HIDDEN 16
#define LAYERS 2
#define SEQ 16
#define BATCH 4
#define STEPS 30
#define EVERY 10
#define PROBE 60
#define TRACED 700
#define GRAD_LEN 24
#define GRAD_CHUNKS 4

static char *text;
static size_t text_len;

/* Words, quotes, brackets, tabs and lines (ASCII, so a character is a byte). */
static void make_text(void)
{
    static const char *words[] = {"the", "king", "and", "queen", "of", "a", "land", "where",
                                  "\"rivers\"", "run", "(to)", "sea", "my", "lord"};
    size_t cap = 30000, n = 0;
    text = malloc(cap + 64);
    uint64_t s = 99;
    int col = 0;
    while (n < cap) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const char *w = words[(s >> 33) % 14];
        size_t len = strlen(w);
        memcpy(text + n, w, len);
        n += len;
        col += (int)len + 1;
        text[n++] = (s >> 20) % 11 == 0 ? '\t' : ' ';
        if (col > 50) {
            text[n++] = '\n';
            col = 0;
        }
    }
    text_len = n;
    testlib_write_file(TEXT_PATH, text, n);
}

/* ---- reading HDF5 ------------------------------------------------------ */


static float *read_f32(const char *path, const char *name, int *rank, hsize_t *dims)
{
    return testlib_read_dset(path, name, H5T_NATIVE_FLOAT, rank, dims);
}

static int64_t attr_i64(const char *path, const char *name)
{
    int64_t v = -1;
    H5E_BEGIN_TRY
    {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t a = f >= 0 ? H5Aopen(f, name, H5P_DEFAULT) : -1;
        if (a >= 0)
            H5Aread(a, H5T_NATIVE_INT64, &v);
        H5Aclose(a);
        H5Fclose(f);
    }
    H5E_END_TRY;
    return v;
}

static void attr_str(const char *path, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    H5E_BEGIN_TRY
    {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t a = f >= 0 ? H5Aopen(f, name, H5P_DEFAULT) : -1;
        hid_t t = a >= 0 ? H5Aget_type(a) : -1;
        char *s = NULL;
        if (t >= 0 && H5Aread(a, t, &s) >= 0 && s) {
            snprintf(out, n, "%s", s);
            H5free_memory(s);
        }
        H5Tclose(t);
        H5Aclose(a);
        H5Fclose(f);
    }
    H5E_END_TRY;
}

static int dset_exists(const char *path, const char *name)
{
    int rank;
    hsize_t dims[8];
    void *p = testlib_read_dset(path, name, H5T_NATIVE_FLOAT, &rank, dims);
    free(p);
    return p != NULL;
}

/* Are dataset `name` of a and b the same shape and the same bits? */
static int same_dataset(const char *a, const char *b, const char *name)
{
    int ra = 0, rb = 0;
    hsize_t da[8], db[8], n = 1;
    float *x = read_f32(a, name, &ra, da), *y = read_f32(b, name, &rb, db);
    int same = x && y && ra == rb;
    for (int i = 0; same && i < ra; i++) {
        same = da[i] == db[i];
        n *= da[i];
    }
    same = same && memcmp(x, y, n * sizeof(float)) == 0;
    if (!same)
        printf("\n    %s differs between '%s' and '%s'", name, a, b);
    free(x);
    free(y);
    return same;
}

/* Every per-step dataset of a text trace of model m (and its gradients). */
static int same_trace(const char *a, const char *b, const model *m, int grads)
{
    static const char *const lstm_gates[] = {"i", "f", "g", "o"}, *const gru_gates[] = {"r", "z", "n"};
    const char *const *gates = m->cfg.cell == CELL_LSTM ? lstm_gates : gru_gates;
    int ngates = m->cfg.cell == CELL_LSTM ? 4 : m->cfg.cell == CELL_GRU ? 3 : 0;
    int same = same_dataset(a, b, "/tokens") & same_dataset(a, b, "/targets") &
               same_dataset(a, b, "/loss") & same_dataset(a, b, "/prob") &
               same_dataset(a, b, "/vocab");
    for (int l = 0; l < m->cfg.layers; l++) {
        char name[64];
        snprintf(name, sizeof name, "/layer%d/h", l);
        same &= same_dataset(a, b, name);
        if (m->cfg.cell == CELL_LSTM) {
            snprintf(name, sizeof name, "/layer%d/c", l);
            same &= same_dataset(a, b, name);
        }
        for (int g = 0; g < ngates; g++) {
            snprintf(name, sizeof name, "/layer%d/gates/%s", l, gates[g]);
            same &= same_dataset(a, b, name);
        }
        if (grads) {
            snprintf(name, sizeof name, "/grads/layer%d/dh", l);
            same &= same_dataset(a, b, name);
            if (m->cfg.cell == CELL_LSTM) {
                snprintf(name, sizeof name, "/grads/layer%d/dc", l);
                same &= same_dataset(a, b, name);
            }
        }
    }
    return same;
}

/* ---- running `charnn trace` in this process ----------------------------- */

/* cli_trace on the words of `args` (split at spaces), stderr into `errfile`
 * when given; returns its exit status. */
static int run_trace(const char *errfile, const char *fmt, ...) CN_PRINTF(2, 3);
static int run_trace(const char *errfile, const char *fmt, ...)
{
    char line[8192];
    char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    for (char *tok = strtok(line, " "); tok && argc < 63; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    argv[argc] = NULL;
    int saved = -1;
    if (errfile) {
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    int rc = cli_trace(argc, argv);
    if (errfile) {
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
    }
    fflush(stdout);
    return rc;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, ch;
    if (!f)
        return -1;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* ---- training the models ------------------------------------------------ */

static void train_config(run_config *c, const char *out, cell_kind cell, int64_t steps)
{
    config_default(c);
    snprintf(c->data, sizeof c->data, "%s", TEXT_PATH);
    snprintf(c->out, sizeof c->out, "%s", out);
    c->model.cell = cell;
    c->model.layers = LAYERS;
    c->model.hidden = HIDDEN;
    c->seq = SEQ;
    c->batch = BATCH;
    c->steps = steps;
    c->sched.lr = 1e-2f;
    c->log_every = 10;
    c->eval_every = 0;
    c->checkpoint_every = 0;
    c->progress_bar = 0;
    c->trace_every = EVERY;
    c->trace_probe_chars = PROBE;
}

static const char *run_dir(cell_kind cell)
{
    return cell == CELL_LSTM ? "trace_run_lstm" : "trace_run_gru";
}

static void test_train_models(void)
{
    make_text();
    static const cell_kind cells[] = {CELL_LSTM, CELL_GRU};
    for (int i = 0; i < 2; i++) {
        run_config c;
        train_config(&c, testlib_scratch_dir(run_dir(cells[i])), cells[i], STEPS);
        CU_ASSERT_EQUAL_FATAL(train_run(&c), TRAIN_EXIT_OK);
    }
}

/* The probe tokens: the first PROBE + 1 of the validation split. */
static size_t val_begin(void)
{
    data_splits sp;
    CHARNN_ASSERT(data_splits_init(&sp, text_len, 0.05, 0.05) == 0);
    return sp.begin[SPLIT_VAL];
}

/* --trace-every with one rank: the probe and streams files and their shapes;
 * the last streams entry ends in the state model.h5 carries; the last probe
 * entry is a forward of model.h5 over the probe text. */
static void check_training_traces(cell_kind cell)
{
    char probe[256], streams[256], model_path[256], kind[32];
    snprintf(probe, sizeof probe, "%s/trace_probe.h5", run_dir(cell));
    snprintf(streams, sizeof streams, "%s/trace_streams.h5", run_dir(cell));
    snprintf(model_path, sizeof model_path, "%s/model.h5", run_dir(cell));
    const int lstm = cell == CELL_LSTM, S = STEPS / EVERY;
    int rank;
    hsize_t dims[8];

    attr_str(probe, "kind", kind, sizeof kind);
    CU_ASSERT_STRING_EQUAL(kind, "probe");
    attr_str(streams, "kind", kind, sizeof kind);
    CU_ASSERT_STRING_EQUAL(kind, "streams");
    CU_ASSERT_EQUAL(attr_i64(probe, "model_step"), STEPS);
    int64_t *steps = testlib_read_dset(probe, "/steps", H5T_NATIVE_INT64, &rank, dims);
    CU_ASSERT_FATAL(steps != NULL);
    CU_ASSERT(rank == 1 && dims[0] == (hsize_t)S);
    for (int s = 0; s < S && s < (int)dims[0]; s++)
        CU_ASSERT_EQUAL(steps[s], (int64_t)(s + 1) * EVERY);
    free(steps);
    steps = testlib_read_dset(streams, "/steps", H5T_NATIVE_INT64, &rank, dims);
    CU_ASSERT_FATAL(steps != NULL);
    CU_ASSERT(rank == 1 && dims[0] == (hsize_t)S && steps[S - 1] == STEPS);
    free(steps);

    int32_t *tok = testlib_read_dset(probe, "/tokens", H5T_NATIVE_INT32, &rank, dims);
    int32_t *tgt = testlib_read_dset(probe, "/targets", H5T_NATIVE_INT32, &rank, dims);
    float *loss = read_f32(probe, "/loss", &rank, dims);
    CU_ASSERT_FATAL(tok && tgt && loss);
    CU_ASSERT(rank == 2 && dims[0] == (hsize_t)S && dims[1] == PROBE);

    ckpt_data d;
    CU_ASSERT_EQUAL_FATAL(ckpt_read(model_path, &d), 0);
    /* the probe is the start of the validation text */
    const size_t vb = val_begin();
    for (int t = 0; t < PROBE; t++) {
        char ch[4];
        CU_ASSERT(vocab_decode(&d.voc, tok[t], ch) == 1 && ch[0] == text[vb + t]);
        CU_ASSERT(vocab_decode(&d.voc, tgt[t], ch) == 1 && ch[0] == text[vb + t + 1]);
    }
    /* the final model over the probe text from a zero state */
    int32_t *x = malloc((PROBE + 1) * sizeof *x);
    memcpy(x, tok, PROBE * sizeof *x);
    x[PROBE] = tgt[PROBE - 1];
    model_work w;
    model_state st;
    model_work_init(&w, &d.m, PROBE, 1);
    model_state_init(&st, &d.m.cfg, 1);
    model_forward(&d.m, &w, &st, x, x + 1, PROBE, 0, 0);
    CU_ASSERT(memcmp(loss + (size_t)(S - 1) * PROBE, w.head.loss, PROBE * sizeof(float)) == 0);
    for (int l = 0; l < LAYERS; l++) {
        char name[32];
        snprintf(name, sizeof name, "/layer%d/h", l);
        float *h = read_f32(probe, name, &rank, dims);
        CU_ASSERT_FATAL(h != NULL);
        CU_ASSERT(rank == 3 && dims[0] == (hsize_t)S && dims[1] == PROBE && dims[2] == HIDDEN);
        CU_ASSERT(memcmp(h + (size_t)(S - 1) * PROBE * HIDDEN, w.hs[l] + HIDDEN,
                         (size_t)PROBE * HIDDEN * sizeof(float)) == 0);
        free(h);
        snprintf(name, sizeof name, "/layer%d/c", l);
        CU_ASSERT_EQUAL(dset_exists(probe, name), lstm);

        /* streams: (S, T, B, H), the last step's h_T is the carried state */
        snprintf(name, sizeof name, "/layer%d/h", l);
        float *sh = read_f32(streams, name, &rank, dims);
        CU_ASSERT_FATAL(sh != NULL);
        CU_ASSERT(rank == 4 && dims[0] == (hsize_t)S && dims[1] == SEQ && dims[2] == BATCH &&
                  dims[3] == HIDDEN);
        const float *last = sh + (((size_t)(S - 1) * SEQ + (SEQ - 1)) * BATCH) * HIDDEN;
        CU_ASSERT(memcmp(last, d.ranks[0].h + (size_t)l * BATCH * HIDDEN,
                         (size_t)BATCH * HIDDEN * sizeof(float)) == 0);
        free(sh);
    }
    model_state_free(&st);
    model_work_free(&w);
    ckpt_data_free(&d);
    free(x);
    free(tok);
    free(tgt);
    free(loss);
}

static void test_training_traces(void)
{
    check_training_traces(CELL_LSTM);
    check_training_traces(CELL_GRU);
}

/* ---- charnn trace ------------------------------------------------------- */

static void check_text_trace(cell_kind cell)
{
    const char *name = cell == CELL_LSTM ? "lstm" : "gru";
    const int lstm = cell == CELL_LSTM;
    char out[256], out7[256], model_path[256], s[64];
    snprintf(model_path, sizeof model_path, "%s/model.h5", run_dir(cell));
    snprintf(out, sizeof out, "trace_%s.h5", name);
    snprintf(out7, sizeof out7, "trace_%s_b7.h5", name);
    CU_ASSERT_EQUAL_FATAL(run_trace(NULL, "--model %s --data %s --out %s --max-chars %d --grads "
                                          "--grad-chunk %d --grad-chunks %d --lstmvis",
                                    model_path, TEXT_PATH, out, TRACED, GRAD_LEN, GRAD_CHUNKS),
                          0);
    CU_ASSERT_EQUAL_FATAL(run_trace(NULL, "--model %s --data %s --out %s --max-chars %d --grads "
                                          "--grad-chunk %d --grad-chunks %d --block 7 "
                                          "--threads 1",
                                    model_path, TEXT_PATH, out7, TRACED, GRAD_LEN, GRAD_CHUNKS),
                          0);
    ckpt_data d;
    CU_ASSERT_EQUAL_FATAL(ckpt_read(model_path, &d), 0);
    const int V = d.voc.size, H = HIDDEN;

    attr_str(out, "kind", s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "text");
    attr_str(out, "cell", s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, name);
    attr_str(out, "gates", s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, lstm ? "i,f,g,o" : "r,z,n");
    CU_ASSERT_EQUAL(attr_i64(out, "n_steps"), TRACED);
    CU_ASSERT_EQUAL(attr_i64(out, "layers"), LAYERS);
    CU_ASSERT_EQUAL(attr_i64(out, "model_step"), STEPS);

    /* --block 7 (and one thread) gives the same bits as one block */
    CU_ASSERT(same_trace(out, out7, &d.m, 1));

    /* tokens decode back to the text, targets are the next characters */
    int rank;
    hsize_t dims[8];
    int32_t *tok = testlib_read_dset(out, "/tokens", H5T_NATIVE_INT32, &rank, dims);
    int32_t *tgt = testlib_read_dset(out, "/targets", H5T_NATIVE_INT32, &rank, dims);
    float *loss = read_f32(out, "/loss", &rank, dims);
    float *prob = read_f32(out, "/prob", &rank, dims);
    CU_ASSERT_FATAL(tok && tgt && loss && prob);
    CU_ASSERT(rank == 1 && dims[0] == TRACED);
    int decoded = 1;
    for (int t = 0; t < TRACED; t++) {
        char ch[4];
        decoded &= vocab_decode(&d.voc, tok[t], ch) == 1 && ch[0] == text[t];
        decoded &= vocab_decode(&d.voc, tgt[t], ch) == 1 && ch[0] == text[t + 1];
    }
    CU_ASSERT(decoded);
    /* loss = -log(prob) */
    double worst = 0.0;
    for (int t = 0; t < TRACED; t++)
        worst = fmax(worst, fabs((double)loss[t] + log((double)prob[t])));
    printf("\n    %s: max |loss + log(prob)| %.2g", name, worst);
    CU_ASSERT(worst < 1e-5);

    /* a direct forward over the whole text at once, B = 1 */
    int32_t *x = malloc((TRACED + 1) * sizeof *x);
    memcpy(x, tok, TRACED * sizeof *x);
    x[TRACED] = tgt[TRACED - 1];
    model_work w;
    model_state st;
    model_work_init(&w, &d.m, TRACED, 1);
    model_state_init(&st, &d.m.cfg, 1);
    model_forward(&d.m, &w, &st, x, x + 1, TRACED, 0, 0);
    double lworst = 0.0;
    for (int t = 0; t < TRACED; t++)
        lworst = fmax(lworst, fabs((double)loss[t] - w.head.loss[t]));
    CU_ASSERT(lworst < 1e-5);
    for (int l = 0; l < LAYERS; l++) {
        char dn[64];
        snprintf(dn, sizeof dn, "/layer%d/h", l);
        float *h = read_f32(out, dn, &rank, dims);
        CU_ASSERT_FATAL(h != NULL);
        CU_ASSERT(rank == 2 && dims[0] == TRACED && dims[1] == (hsize_t)H);
        if (l == 0) /* one-hot input: a row gather, the same bits in any window */
            CU_ASSERT(memcmp(h, w.hs[0] + H, (size_t)TRACED * H * sizeof(float)) == 0);
        double d_h = testlib_max_rel_diff(h, w.hs[l] + H, (size_t)TRACED * H);
        printf("\n    %s layer %d: h vs one forward %.2g", name, l, d_h);
        CU_ASSERT(d_h < 1e-5);
        free(h);
        snprintf(dn, sizeof dn, "/layer%d/c", l);
        CU_ASSERT_EQUAL(dset_exists(out, dn), lstm);
        if (lstm) {
            float *c = read_f32(out, dn, &rank, dims);
            CU_ASSERT(testlib_max_rel_diff(c, w.cs[l] + H, (size_t)TRACED * H) < 1e-5);
            free(c);
        }
        /* gate g at step t is columns [g*H, (g+1)*H) of w.gates[l] row t */
        const int G = d.m.gates;
        const char *const lstm_gates[] = {"i", "f", "g", "o"}, *const gru_gates[] = {"r", "z", "n"};
        for (int g = 0; g < G; g++) {
            snprintf(dn, sizeof dn, "/layer%d/gates/%s", l, lstm ? lstm_gates[g] : gru_gates[g]);
            float *gv = read_f32(out, dn, &rank, dims);
            CU_ASSERT_FATAL(gv != NULL);
            double gd = 0.0;
            for (int t = 0; t < TRACED; t++)
                for (int j = 0; j < H; j++)
                    gd = fmax(gd, fabs(gv[(size_t)t * H + j] -
                                       w.gates[l][(size_t)t * G * H + (size_t)g * H + j]));
            CU_ASSERT(gd < 1e-5);
            free(gv);
        }
    }

    /* --grads: (C, L) per layer; the top layer's last entry is
     * |W_dec^T (p - onehot(y))| at the chunk's last step */
    for (int l = 0; l < LAYERS; l++) {
        for (int k = 0; k < 2; k++) {
            char dn[64];
            snprintf(dn, sizeof dn, "/grads/layer%d/%s", l, k ? "dc" : "dh");
            if (k == 1 && !lstm) {
                CU_ASSERT(!dset_exists(out, dn));
                continue;
            }
            float *g = read_f32(out, dn, &rank, dims);
            CU_ASSERT_FATAL(g != NULL);
            CU_ASSERT(rank == 2 && dims[0] == GRAD_CHUNKS && dims[1] == GRAD_LEN);
            int last_largest = 1, finite = 1;
            for (int c = 0; c < GRAD_CHUNKS; c++) {
                const float *row = g + (size_t)c * GRAD_LEN;
                for (int t = 0; t < GRAD_LEN; t++) {
                    finite &= isfinite(row[t]) && row[t] >= 0.0f;
                    last_largest &= row[t] <= row[GRAD_LEN - 1];
                }
            }
            printf("\n    %s layer %d %s: chunk 0 last/first %.3g", name, l, k ? "dc" : "dh",
                   (double)(g[GRAD_LEN - 1] / g[0]));
            CU_ASSERT(finite);
            CU_ASSERT(last_largest);
            if (l == LAYERS - 1 && k == 0) {
                model_state_reset(&st);
                model_forward(&d.m, &w, &st, x, x + 1, GRAD_LEN, 0, 0);
                const float *p = w.head.prob + (size_t)(GRAD_LEN - 1) * V;
                double ss = 0.0;
                for (int j = 0; j < H; j++) {
                    double a = 0.0;
                    for (int v = 0; v < V; v++)
                        a += ((double)p[v] - (v == x[GRAD_LEN])) * d.m.head.p[0][(size_t)v * H + j];
                    ss += a * a;
                }
                CU_ASSERT(fabs(sqrt(ss) - g[GRAD_LEN - 1]) < 1e-4 * sqrt(ss));
            }
            free(g);
        }
    }

    /* LSTMVis: words.dict (one "symbol id" line per entry) and lstm.yml */
    char path[256], line[256];
    snprintf(path, sizeof path, "trace_%s_lstmvis/words.dict", name);
    CU_ASSERT_EQUAL(count_lines(path), V);
    FILE *f = fopen(path, "r");
    CU_ASSERT_FATAL(f != NULL);
    int id = 0, fields_ok = 1, seen_space = 0, seen_newline = 0, seen_tab = 0;
    while (fgets(line, sizeof line, f)) {
        char sym[64], extra[8];
        int n = -1;
        fields_ok &= sscanf(line, "%63s %d %7s", sym, &n, extra) == 2 && n == id;
        seen_space |= strcmp(sym, "<space>") == 0 && d.voc.symbols[id] == ' ';
        seen_newline |= strcmp(sym, "<newline>") == 0 && d.voc.symbols[id] == '\n';
        seen_tab |= strcmp(sym, "<tab>") == 0 && d.voc.symbols[id] == '\t';
        id++;
    }
    fclose(f);
    CU_ASSERT(fields_ok && seen_space && seen_newline && seen_tab);
    snprintf(path, sizeof path, "trace_%s_lstmvis/lstm.yml", name);
    f = fopen(path, "r");
    CU_ASSERT_FATAL(f != NULL);
    char yml[4096];
    size_t n = fread(yml, 1, sizeof yml - 1, f);
    yml[n] = '\0';
    fclose(f);
    char want[128];
    snprintf(want, sizeof want, "states: \"../trace_%s.h5\"", name);
    CU_ASSERT(strstr(yml, want) != NULL);
    CU_ASSERT(strstr(yml, "path: tokens") != NULL && strstr(yml, "dict_file: words") != NULL);
    CU_ASSERT(strstr(yml, "{type: output, layer: 2, path: layer1/h}") != NULL);
    CU_ASSERT((strstr(yml, "{type: state, layer: 1, path: layer0/c}") != NULL) == lstm);

    model_state_free(&st);
    model_work_free(&w);
    ckpt_data_free(&d);
    free(x);
    free(tok);
    free(tgt);
    free(loss);
    free(prob);
}

static void test_trace_lstm(void)
{
    check_text_trace(CELL_LSTM);
}

static void test_trace_gru(void)
{
    check_text_trace(CELL_GRU);
}

/* --split without --data traces the model's own data and splits; a prepared
 * corpus gives the same trace; the probe's last entry is the same bits as a
 * trace of the probe text. */
static void test_split_prepared_probe(void)
{
    const char *model_path = "trace_run_lstm/model.h5";
    ckpt_data d;
    CU_ASSERT_EQUAL_FATAL(ckpt_read(model_path, &d), 0);
    data_splits sp;
    CU_ASSERT_EQUAL_FATAL(data_splits_init(&sp, text_len, 0.05, 0.05), 0);
    CU_ASSERT_EQUAL_FATAL(run_trace(NULL, "--model %s --split val --out trace_val.h5",
                                    model_path), 0);
    char s[64];
    attr_str("trace_val.h5", "split", s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "val");
    CU_ASSERT_EQUAL(attr_i64("trace_val.h5", "begin"), (int64_t)sp.begin[SPLIT_VAL]);
    CU_ASSERT_EQUAL(attr_i64("trace_val.h5", "n_steps"),
                    (int64_t)(sp.end[SPLIT_VAL] - sp.begin[SPLIT_VAL] - 1));

    const char *inputs[] = {TEXT_PATH};
    CU_ASSERT_EQUAL_FATAL(corpus_prepare(inputs, 1, "trace_corpus.h5", VOCAB_CODEPOINTS, 0.05,
                                         0.05, CORPUS_DEFAULT_BUFFER_BYTES), 0);
    CU_ASSERT_EQUAL_FATAL(run_trace(NULL, "--model %s --data trace_corpus.h5 --split val "
                                          "--out trace_val_prepared.h5 --block 100",
                                    model_path), 0);
    CU_ASSERT(same_trace("trace_val.h5", "trace_val_prepared.h5", &d.m, 0));

    CU_ASSERT_EQUAL_FATAL(run_trace(NULL, "--model %s --split val --max-chars %d "
                                          "--out trace_probe_text.h5",
                                    model_path, PROBE), 0);
    int rank;
    hsize_t dims[8];
    for (int l = 0; l < LAYERS; l++) {
        char name[32];
        snprintf(name, sizeof name, "/layer%d/h", l);
        float *probe = read_f32("trace_run_lstm/trace_probe.h5", name, &rank, dims);
        float *h = read_f32("trace_probe_text.h5", name, &rank, dims);
        CU_ASSERT_FATAL(probe && h);
        const size_t S = STEPS / EVERY;
        CU_ASSERT(memcmp(probe + (S - 1) * PROBE * HIDDEN, h,
                         (size_t)PROBE * HIDDEN * sizeof(float)) == 0);
        free(probe);
        free(h);
    }
    ckpt_data_free(&d);
}

/* Bad flags: usage, exit 2. Bad inputs: one line, exit 1, no file left. */
static void test_errors(void)
{
    const char *m = "trace_run_lstm/model.h5", *err = "trace_err.txt";
    CU_ASSERT_EQUAL(run_trace(err, "--model %s --data %s", m, TEXT_PATH), 2);
    CU_ASSERT_EQUAL(run_trace(err, "--model %s --out x.h5", m), 2);
    CU_ASSERT_EQUAL(run_trace(err, "--model %s --data %s --out x.h5 --block 0", m, TEXT_PATH), 2);
    CU_ASSERT_EQUAL(run_trace(err, "--model %s --data %s --out x.h5 --frobnicate", m, TEXT_PATH),
                    2);
    CU_ASSERT_EQUAL(run_trace(err, "--model %s --data %s --out x.h5 --split nope", m, TEXT_PATH),
                    2);
    CU_ASSERT_EQUAL(run_trace(err, "--model %s --data %s --out x.h5 --grad-chunk 5", m,
                              TEXT_PATH), 2);
    CU_ASSERT_EQUAL(run_trace(err, "--model %s --data %s --out x.out --lstmvis", m, TEXT_PATH),
                    2);
    CU_ASSERT_EQUAL(run_trace(err, "--model %s --data %s --out %s", m, TEXT_PATH, m), 2);

    CU_ASSERT_EQUAL(run_trace(err, "--model trace_missing.h5 --data %s --out trace_x.h5",
                              TEXT_PATH), 1);
    CU_ASSERT_EQUAL(count_lines(err), 1);
    CU_ASSERT_EQUAL(run_trace(err, "--model %s --data %s --out trace_x.h5", TEXT_PATH,
                              TEXT_PATH), 1);
    CU_ASSERT_EQUAL(count_lines(err), 1);
    testlib_write_file("trace_foreign.txt", "the king Zebra\n", 15);
    CU_ASSERT_EQUAL(run_trace(err, "--model %s --data trace_foreign.txt --out trace_x.h5", m), 1);
    CU_ASSERT_EQUAL(count_lines(err), 1);
    CU_ASSERT(testlib_system("grep -q \"trace_foreign.txt' at byte 9: character 'Z'\" %s", err) ==
              0);
    CU_ASSERT_EQUAL(run_trace(err, "--model %s --data %s --out trace_x.h5 --grads --grad-chunk "
                                   "1000000", m, TEXT_PATH), 1);
    CU_ASSERT_EQUAL(count_lines(err), 1);
    CU_ASSERT(access("trace_x.h5", F_OK) != 0);
}

/* A run stopped at step 20 and resumed to 30 appends to both trace files and
 * ends with the entries of an uninterrupted run. */
static void test_resume_appends(void)
{
    run_config c;
    const char *dir = testlib_scratch_dir("trace_run_resume");
    train_config(&c, dir, CELL_LSTM, 20);
    CU_ASSERT_EQUAL_FATAL(train_run(&c), TRAIN_EXIT_OK);
    train_config(&c, dir, CELL_LSTM, STEPS);
    snprintf(c.resume, sizeof c.resume, "auto");
    CU_ASSERT_EQUAL_FATAL(train_run(&c), TRAIN_EXIT_OK);
    int rank;
    hsize_t dims[8];
    const char *files[] = {"trace_probe.h5", "trace_streams.h5"};
    for (int i = 0; i < 2; i++) {
        char a[256], b[256];
        snprintf(a, sizeof a, "%s/%s", dir, files[i]);
        snprintf(b, sizeof b, "%s/%s", run_dir(CELL_LSTM), files[i]);
        int64_t *steps = testlib_read_dset(a, "/steps", H5T_NATIVE_INT64, &rank, dims);
        CU_ASSERT_FATAL(steps != NULL);
        CU_ASSERT(dims[0] == 3 && steps[0] == 10 && steps[1] == 20 && steps[2] == 30);
        free(steps);
        CU_ASSERT(same_dataset(a, b, "/layer0/h"));
        CU_ASSERT(same_dataset(a, b, "/layer1/h"));
        if (i == 0)
            CU_ASSERT(same_dataset(a, b, "/layer1/c") && same_dataset(a, b, "/loss"));
    }
}

int main(int argc, char **argv)
{
    if (dist_init(&argc, &argv) != 0)
        return 2;
    runtime_set_threads(2);
    CU_pSuite s = testlib_suite("trace");
    testlib_add(s, "train a tiny lstm and gru with --trace-every", test_train_models);
    testlib_add(s, "probe and streams traces of training", test_training_traces);
    testlib_add(s, "charnn trace of an lstm", test_trace_lstm);
    testlib_add(s, "charnn trace of a gru", test_trace_gru);
    testlib_add(s, "--split, prepared corpus, probe text", test_split_prepared_probe);
    testlib_add(s, "bad flags and bad inputs", test_errors);
    testlib_add(s, "a resumed run appends to its traces", test_resume_appends);
    int rc = testlib_run(argc, argv);
    free(text);
    dist_finalize();
    return rc;
}
