/* The memory plan of a command and the check against this process's limits.
 * See memplan.h. */
#define _DEFAULT_SOURCE
#include "charnn/memplan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "charnn/cells.h"
#include "charnn/common.h"
#include "charnn/kernels.h"
#include "charnn/stack.h"

/* seq2seq (seq2seq.h): the encoder (target 0) or the decoder (target 1) as
 * a language model's configuration over its vocabulary */
static model_config s2s_side(const model_config *cfg, int target)
{
    model_config c = *cfg;
    c.head = (head_config){.kind = HEAD_LM};
    if (target)
        c.vocab = cfg->head.classes;
    return c;
}

size_t memplan_params(const model_config *cfg)
{
    if (cfg->head.kind == HEAD_SEQ2SEQ) {
        const model_config enc = s2s_side(cfg, 0), dec = s2s_side(cfg, 1);
        const size_t H = (size_t)cfg->hidden, at = (size_t)cfg->head.attention;
        /* attention: combination (H, 2H) + (H); general W_a; additive W_e, W_d, b_d, v */
        const size_t attn = at == 0 ? 0 : 2 * H * H + H + (at == 2 ? H * H : 0) +
                                              (at == 3 ? 2 * H * H + 2 * H : 0);
        return memplan_params(&enc) - ((size_t)enc.vocab * H + (size_t)enc.vocab) +
               memplan_params(&dec) + attn;
    }
    const size_t V = (size_t)cfg->vocab, H = (size_t)cfg->hidden, E = (size_t)cfg->embed;
    const size_t GH = (size_t)cell_gates(cfg->cell) * H, dirs = (size_t)model_directions(cfg);
    size_t n = V * H * dirs + V; /* decoder */
    for (int l = 0; l < cfg->layers; l++) {
        size_t D = l == 0 ? (E > 0 ? E : V) : H * dirs;
        n += dirs * (GH * D + GH * H + 2 * GH);
    }
    return n + V * E;
}

size_t memplan_work_floats(const model_config *cfg, int T, int B)
{
    if (cfg->head.kind == HEAD_SEQ2SEQ) {
        /* the encoder's stack, the decoder's stack with the output distribution,
         * attention weights and their gradient (B, T, T), the attention's and
         * combination's (T, B, H)-sized buffers, start states and their gradients */
        const model_config enc = s2s_side(cfg, 0), dec = s2s_side(cfg, 1);
        const size_t N = (size_t)T * (size_t)B, H = (size_t)cfg->hidden;
        return memplan_work_floats(&enc, T, B) - (N * (size_t)enc.vocab + N) +
               memplan_work_floats(&dec, T, B) + 2 * N * (size_t)T + 12 * N * H +
               4 * (size_t)cfg->layers * (size_t)B * H + 2 * N;
    }
    const size_t L = (size_t)cfg->layers, H = (size_t)cfg->hidden, E = (size_t)cfg->embed;
    const size_t V = (size_t)cfg->vocab, GH = (size_t)cell_gates(cfg->cell) * H;
    const size_t N = (size_t)T * (size_t)B, Bs = (size_t)B;
    /* per layer: gates (N, GH) and h (N + B, H); c (LSTM) or W_hn h (GRU);
     * the dropped outputs of the layers below the top */
    size_t per_layer = N * GH + (N + Bs) * H;
    if (cfg->cell == CELL_LSTM)
        per_layer += (N + Bs) * H;
    if (cfg->cell == CELL_GRU)
        per_layer += N * H;
    const size_t dirs = (size_t)model_directions(cfg), W = dirs * H;
    size_t n = L * per_layer * dirs;
    if (cfg->dropout > 0.0f)
        n += (L - 1) * N * W;
    if (dirs == 2) /* the joined outputs, the positions, a reversed input, dL/dh per direction */
        n += L * N * W + 2 * N + N * (W > E ? W : E) + 2 * N * H;
    n += N * E + Bs * GH + cell_wpack_floats(cfg->cell, cfg->hidden);
    if (cfg->cell == CELL_GRU)
        n += N * H;
    size_t dw = H > E ? H : E;
    n += N * (W > E ? W : E) + (stack_needs_second_dh(cfg) ? N * dw : 0);
    return n + 2 * Bs * H + N * V + N;
}

/* carried state for B streams: h, and c for the LSTM */
static double state_bytes(const model_config *cfg, int B)
{
    return (double)cfg->layers * model_directions(cfg) * B * cfg->hidden * (cfg->cell == CELL_LSTM ? 2 : 1) * 4.0;
}

/* Resident bytes of training, and the address space it reserves: the
 * released activations keep their addresses while the checkpoint image is
 * built. */
static double train_bytes(const model_config *cfg, int optim_states, int T, int B,
                          double *address_space)
{
    const double P = (double)memplan_params(cfg);
    /* values, gradients, optimizer state (floats), weight-decay mask (bytes) */
    double params = P * 4.0 * (2 + optim_states) + P;
    /* a checkpoint holds a file image of the values and optimizer state; the
     * activations' pages are released before it is built */
    double image = P * 4.0 * (1 + optim_states) + 2.0 * state_bytes(cfg, B);
    double work = (double)memplan_work_floats(cfg, T, B) * 4.0 + 2.0 * T * B * 4.0;
    /* training and validation streams, each with its state */
    double base = params + 2.0 * state_bytes(cfg, B);
    *address_space = base + work + image;
    return base + (work > image ? work : image);
}

double memplan_train_bytes(const model_config *cfg, int optim_states, int T, int B)
{
    double address_space;
    return train_bytes(cfg, optim_states, T, B, &address_space);
}

double memplan_infer_bytes(const model_config *cfg, int T, int B, double extra)
{
    return (double)memplan_work_floats(cfg, T, B) * 4.0 + 2.0 * T * B * 4.0 +
           state_bytes(cfg, B) + extra;
}

/* a field of /proc/self/status in bytes ("VmRSS", "VmSize"), 0 if unknown */
static double proc_status_bytes(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0.0;
    char line[256];
    size_t n = strlen(field);
    double kib = 0.0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kib = strtod(line + n + 1, NULL);
            break;
        }
    fclose(f);
    return kib * 1024.0;
}

/* a number in a file (a cgroup limit), 0 if absent or "max" */
static double file_number(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0.0;
    char buf[64] = "";
    char *ok = fgets(buf, sizeof buf, f);
    fclose(f);
    if (!ok || strncmp(buf, "max", 3) == 0)
        return 0.0;
    double v = strtod(buf, NULL);
    /* cgroup v1 writes "no limit" as a page-rounded 2^63 */
    return v > 0.0 && v < 4e18 ? v : 0.0;
}

/* The tightest memory limit of this process's cgroup (v2 memory.max up the
 * tree, or v1 memory.limit_in_bytes), 0 if none. */
static double cgroup_limit_bytes(void)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return 0.0;
    char line[1024], path[1400];
    double best = 0.0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *rel = NULL;
        const char *fmt = NULL;
        if (strncmp(line, "0::", 3) == 0) {
            rel = line + 3;
            fmt = "/sys/fs/cgroup%s/memory.max";
        } else if (strstr(line, ":memory:")) {
            rel = strstr(line, ":memory:") + 8;
            fmt = "/sys/fs/cgroup/memory%s/memory.limit_in_bytes";
        } else {
            continue;
        }
        /* from the process's own group up to the root */
        for (;;) {
            snprintf(path, sizeof path, fmt, strcmp(rel, "/") == 0 ? "" : rel);
            double v = file_number(path);
            if (v > 0.0 && (best == 0.0 || v < best))
                best = v;
            char *slash = strrchr(rel, '/');
            if (!slash || slash == rel)
                break;
            *slash = '\0';
        }
        snprintf(path, sizeof path, fmt, "");
        double v = file_number(path);
        if (v > 0.0 && (best == 0.0 || v < best))
            best = v;
    }
    fclose(f);
    return best;
}

double memplan_limit_bytes(const char **source)
{
    double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    double limit = phys > 0.0 ? phys : 0.0;
    *source = "this machine has";
    double cg = cgroup_limit_bytes();
    if (cg > 0.0 && (limit == 0.0 || cg < limit)) {
        limit = cg;
        *source = "the cgroup memory limit (a Slurm --mem, a container) is";
    }
    return limit;
}

/* ranks of this job on this node (each needs its own copy), from the launcher */
static int local_ranks(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0)
            return atoi(v);
    }
    return 1;
}

static const char *gib(char *buf, size_t n, double bytes)
{
    if (bytes >= 1024.0 * 1024.0 * 1024.0)
        snprintf(buf, n, "%.1f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
    else
        snprintf(buf, n, "%.0f MiB", bytes / (1024.0 * 1024.0));
    return buf;
}

int memplan_check(double need, double address_space, const char *what)
{
    char a[32], b[32];
    const char *source;
    double limit = memplan_limit_bytes(&source);
    int ranks = local_ranks();
    /* the process already holds its libraries, the text and a loaded model */
    double total = need + proc_status_bytes("VmRSS");
    if (limit > 0.0 && total * ranks > limit) {
        if (ranks > 1)
            return cn_err("%s needs %s of memory per rank, %d ranks on this node; %s %s", what,
                          gib(a, sizeof a, total), ranks, source, gib(b, sizeof b, limit));
        return cn_err("%s needs %s of memory; %s %s", what, gib(a, sizeof a, total), source,
                      gib(b, sizeof b, limit));
    }
    /* ulimit -v counts address space, which libraries reserve far beyond
     * what they touch: compare with the process's present size */
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        double size = proc_status_bytes("VmSize"), room = (double)rl.rlim_cur - size;
        if (address_space > room)
            return cn_err("%s needs %s more address space; the limit (ulimit -v) leaves %s",
                          what, gib(a, sizeof a, address_space),
                          gib(b, sizeof b, room > 0.0 ? room : 0.0));
    }
    return 0;
}

int memplan_check_train(const model_config *cfg, int optim_states, int T, int B)
{
    char what[160];
    snprintf(what, sizeof what, "training a %s of %d x %d (T %d, B %d)", cell_name(cfg->cell),
             cfg->layers, cfg->hidden, T, B);
    double address_space, need = train_bytes(cfg, optim_states, T, B, &address_space);
    return memplan_check(need, address_space, what);
}

int memplan_check_infer(const model_config *cfg, int T, int B, double extra, const char *what)
{
    char w[160];
    snprintf(w, sizeof w, "%s with a %s of %d x %d (T %d, B %d)", what, cell_name(cfg->cell),
             cfg->layers, cfg->hidden, T, B);
    double need = memplan_infer_bytes(cfg, T, B, extra);
    return memplan_check(need, need, w);
}
