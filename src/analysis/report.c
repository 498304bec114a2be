/* `charnn report`: run directories read back into curves and a summary. See
 * report.h for what is read and how resumed runs are stitched together. */
#include "charnn/report.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "charnn/ckpt.h"
#include "charnn/common.h"
#include "charnn/htmlplot.h"

/* A session starts again when time - elapsed (its start, in Unix seconds)
 * moves by more than this; time is written in whole seconds. */
#define REPORT_SESSION_SLACK 2.0

/* ---- one line of metrics.jsonl ------------------------------------------- */

typedef enum { LINE_OTHER, LINE_TRAIN, LINE_VAL, LINE_SKIP, LINE_BALANCE } line_kind;

typedef struct {
    line_kind kind;
    int64_t step;
    double loss, grad_norm, lr, chars_per_s, time, elapsed, val_loss;
    char rate_unit[REPORT_UNIT_MAX]; /* X of the rate's key "X_per_s": chars, examples, ... */
} metrics_line;

static void skip_ws(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n')
        (*p)++;
}

/* A JSON string at *p into buf (escapes kept as the escaped character, \u
 * as '?'); 0 or -1. */
static int parse_string(const char **p, char *buf, size_t n)
{
    const char *s = *p;
    size_t k = 0;
    if (*s++ != '"')
        return -1;
    while (*s && *s != '"') {
        char c = *s++;
        if (c == '\\') {
            if (!*s)
                return -1;
            c = *s++;
            if (c == 'u') {
                for (int i = 0; i < 4; i++)
                    if (!*s++)
                        return -1;
                c = '?';
            }
        }
        if (k + 1 < n)
            buf[k++] = c;
    }
    if (*s != '"')
        return -1;
    buf[k] = '\0';
    *p = s + 1;
    return 0;
}

/* A number (nan, inf and null read as non-finite / NaN); 0 or -1. */
static int parse_number(const char **p, double *v)
{
    if (strncmp(*p, "null", 4) == 0) {
        *v = NAN;
        *p += 4;
        return 0;
    }
    const char *s = *p;
    if (*s == '-')
        s++;
    if (!((*s >= '0' && *s <= '9') || *s == 'n' || *s == 'i'))
        return -1;
    char *end;
    *v = strtod(*p, &end);
    if (end == *p)
        return -1;
    *p = end;
    return 0;
}

/* Skip any JSON value (nested arrays and objects included); 0 or -1. */
static int skip_value(const char **p, int depth)
{
    char buf[8];
    double v;
    skip_ws(p);
    if (depth > 32)
        return -1;
    if (**p == '"')
        return parse_string(p, buf, sizeof buf);
    if (**p == '[' || **p == '{') {
        char close = **p == '[' ? ']' : '}';
        (*p)++;
        skip_ws(p);
        if (**p == close) {
            (*p)++;
            return 0;
        }
        for (;;) {
            if (close == '}') {
                if (parse_string(p, buf, sizeof buf) != 0)
                    return -1;
                skip_ws(p);
                if (*(*p)++ != ':')
                    return -1;
            }
            if (skip_value(p, depth + 1) != 0)
                return -1;
            skip_ws(p);
            if (**p == ',') {
                (*p)++;
                skip_ws(p);
                continue;
            }
            if (**p != close)
                return -1;
            (*p)++;
            return 0;
        }
    }
    if (strncmp(*p, "true", 4) == 0 || strncmp(*p, "false", 5) == 0) {
        *p += **p == 't' ? 4 : 5;
        return 0;
    }
    return parse_number(p, &v);
}

/* Parse one line; 0, or -1 when it is not an object with a type and a step. */
static int parse_line(const char *s, metrics_line *ln)
{
    static const struct {
        const char *key;
        size_t offset;
    } numbers[] = {
        {"loss", offsetof(metrics_line, loss)},
        {"grad_norm", offsetof(metrics_line, grad_norm)},
        {"lr", offsetof(metrics_line, lr)},
        {"chars_per_s", offsetof(metrics_line, chars_per_s)},
        {"time", offsetof(metrics_line, time)},
        {"elapsed", offsetof(metrics_line, elapsed)},
        {"val_loss", offsetof(metrics_line, val_loss)},
    };
    int has_type = 0, has_step = 0;
    ln->kind = LINE_OTHER;
    ln->step = 0;
    ln->loss = ln->grad_norm = ln->lr = ln->chars_per_s = NAN;
    ln->time = ln->elapsed = ln->val_loss = NAN;
    ln->rate_unit[0] = '\0';
    skip_ws(&s);
    if (*s++ != '{')
        return -1;
    skip_ws(&s);
    if (*s == '}')
        return -1;
    for (;;) {
        char key[32];
        skip_ws(&s);
        if (parse_string(&s, key, sizeof key) != 0)
            return -1;
        skip_ws(&s);
        if (*s++ != ':')
            return -1;
        skip_ws(&s);
        if (strcmp(key, "type") == 0) {
            char type[32];
            if (parse_string(&s, type, sizeof type) != 0)
                return -1;
            has_type = 1;
            ln->kind = strcmp(type, "train") == 0     ? LINE_TRAIN
                       : strcmp(type, "val") == 0     ? LINE_VAL
                       : strcmp(type, "skip") == 0    ? LINE_SKIP
                       : strcmp(type, "balance") == 0 ? LINE_BALANCE
                                                      : LINE_OTHER;
        } else if (strcmp(key, "step") == 0) {
            double v;
            if (parse_number(&s, &v) != 0 || !(v >= 0 && v < 9e18) || v != floor(v))
                return -1;
            ln->step = (int64_t)v;
            has_step = 1;
        } else {
            size_t i, n = sizeof numbers / sizeof numbers[0];
            for (i = 0; i < n && strcmp(key, numbers[i].key) != 0; i++)
                ;
            const size_t kn = strlen(key), sn = strlen("_per_s");
            if (i < n) {
                if (parse_number(&s, (double *)((char *)ln + numbers[i].offset)) != 0)
                    return -1;
            } else if (ln->kind == LINE_TRAIN && kn > sn && kn - sn < sizeof ln->rate_unit &&
                       strcmp(key + kn - sn, "_per_s") == 0) {
                /* the training rate of any task: examples_per_s, tags_per_s, ... */
                if (parse_number(&s, &ln->chars_per_s) != 0)
                    return -1;
                memcpy(ln->rate_unit, key, kn - sn);
                ln->rate_unit[kn - sn] = '\0';
            } else if (skip_value(&s, 0) != 0) {
                return -1;
            }
        }
        skip_ws(&s);
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s++ != '}')
            return -1;
        break;
    }
    skip_ws(&s);
    return *s == '\0' && has_type && has_step ? 0 : -1;
}

/* ---- a run ---------------------------------------------------------------- */

typedef struct {
    int64_t *v;
    int n, cap;
} step_list;

static void step_push(step_list *l, int64_t s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = cn_xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    l->v[l->n++] = s;
}

/* What reading a file keeps besides the report itself. */
typedef struct {
    int cap_train, cap_val;
    step_list skips, moves;
    int all_timed;          /* every train line so far had time and elapsed */
    int have_time;          /* a timed train line was seen */
    double prev_elapsed, prev_start, offset;
    double cps_time, time_sum; /* sum of chars_per_s * interval, and of intervals */
    int rewind_pending;     /* a rewind already counted the session the next line starts */
} reader;

/* A line of `kind` at step s, not after the last kept line of its kind: the
 * run went back to an earlier checkpoint. Drop every kept line after step s,
 * and those of the same kind at s (the other kinds at s may be the same
 * step's lines logged again, or not at all, by the resumed session). */
static int64_t rewind_to(report_data *d, reader *rd, int64_t s, line_kind kind)
{
    int64_t dropped = 0;
#define DROP(n, step_of, k)                                                          \
    while ((n) && ((step_of) > s || ((step_of) == s && kind == (k)))) {               \
        (n)--;                                                                        \
        dropped++;                                                                    \
    }
    DROP(d->n_train, d->train[d->n_train - 1].step, LINE_TRAIN)
    DROP(d->n_val, d->val[d->n_val - 1].step, LINE_VAL)
    DROP(rd->skips.n, rd->skips.v[rd->skips.n - 1], LINE_SKIP)
    DROP(rd->moves.n, rd->moves.v[rd->moves.n - 1], LINE_BALANCE)
#undef DROP
    return dropped;
}

static void add_train(report_data *d, reader *rd, const metrics_line *ln)
{
    report_train_point pt = {ln->step, ln->loss, ln->grad_norm, ln->lr, ln->chars_per_s, NAN};
    if (ln->rate_unit[0])
        snprintf(d->rate_unit, sizeof d->rate_unit, "%s", ln->rate_unit);
    int timed = isfinite(ln->elapsed) && isfinite(ln->time) && ln->elapsed >= 0;
    rd->all_timed &= timed;
    if (timed) {
        double start = ln->time - ln->elapsed, dt = ln->elapsed - rd->prev_elapsed;
        int fresh = !rd->have_time;
        if (!fresh && (ln->elapsed < rd->prev_elapsed ||
                       fabs(start - rd->prev_start) > REPORT_SESSION_SLACK)) {
            rd->offset += rd->prev_elapsed;
            if (!rd->rewind_pending)
                d->sessions++;
            fresh = 1;
        }
        if (fresh)
            dt = ln->elapsed;
        if (isfinite(ln->chars_per_s)) {
            rd->cps_time += ln->chars_per_s * dt;
            rd->time_sum += dt;
        }
        rd->have_time = 1;
        rd->prev_elapsed = ln->elapsed;
        rd->prev_start = start;
        pt.time = rd->offset + ln->elapsed;
    }
    rd->rewind_pending = 0;
    if (d->n_train == rd->cap_train) {
        rd->cap_train = rd->cap_train ? 2 * rd->cap_train : 256;
        d->train = cn_xrealloc(d->train, (size_t)rd->cap_train * sizeof *d->train);
    }
    d->train[d->n_train++] = pt;
}

static void add_line(report_data *d, reader *rd, const metrics_line *ln)
{
    int64_t last = -1;
    switch (ln->kind) {
    case LINE_TRAIN:
        last = d->n_train ? d->train[d->n_train - 1].step : -1;
        break;
    case LINE_VAL:
        last = d->n_val ? d->val[d->n_val - 1].step : -1;
        break;
    case LINE_SKIP:
        last = rd->skips.n ? rd->skips.v[rd->skips.n - 1] : -1;
        break;
    case LINE_BALANCE:
        last = rd->moves.n ? rd->moves.v[rd->moves.n - 1] : -1;
        break;
    case LINE_OTHER:
        return;
    }
    if (d->sessions == 0)
        d->sessions = 1;
    if (ln->step <= last) {
        d->replaced += rewind_to(d, rd, ln->step, ln->kind);
        if (!rd->rewind_pending)
            d->sessions++;
        rd->rewind_pending = 1;
    }
    switch (ln->kind) {
    case LINE_TRAIN:
        add_train(d, rd, ln);
        break;
    case LINE_VAL:
        if (d->n_val == rd->cap_val) {
            rd->cap_val = rd->cap_val ? 2 * rd->cap_val : 64;
            d->val = cn_xrealloc(d->val, (size_t)rd->cap_val * sizeof *d->val);
        }
        d->val[d->n_val++] = (report_val_point){ln->step, ln->val_loss, NAN};
        break;
    case LINE_SKIP:
        step_push(&rd->skips, ln->step);
        break;
    case LINE_BALANCE:
        step_push(&rd->moves, ln->step);
        break;
    case LINE_OTHER:
        break;
    }
}

static void summarize(report_data *d, const reader *rd)
{
    d->best_val = NAN;
    d->best_val_step = -1;
    d->last_loss = d->n_train ? d->train[d->n_train - 1].loss : NAN;
    int64_t steps = 0;
    if (d->n_train)
        steps = d->train[d->n_train - 1].step;
    if (d->n_val && d->val[d->n_val - 1].step > steps)
        steps = d->val[d->n_val - 1].step;
    if (rd->skips.n && rd->skips.v[rd->skips.n - 1] > steps)
        steps = rd->skips.v[rd->skips.n - 1];
    if (rd->moves.n && rd->moves.v[rd->moves.n - 1] > steps)
        steps = rd->moves.v[rd->moves.n - 1];
    d->steps = steps;
    /* validation times from the train line of the same step (both written in that step) */
    int j = 0;
    for (int i = 0; i < d->n_val; i++) {
        report_val_point *v = &d->val[i];
        while (j < d->n_train && d->train[j].step < v->step)
            j++;
        v->time = j < d->n_train && d->train[j].step == v->step ? d->train[j].time : NAN;
        if (isfinite(v->val_loss) && !(v->val_loss >= d->best_val)) {
            d->best_val = v->val_loss;
            d->best_val_step = v->step;
        }
    }
    d->bad_steps = rd->skips.n;
    d->balance_moves = rd->moves.n;
    d->wall_time = rd->have_time && rd->all_timed ? rd->offset + rd->prev_elapsed : NAN;
    if (rd->have_time && rd->all_timed && rd->time_sum > 0) {
        d->mean_chars_per_s = rd->cps_time / rd->time_sum;
    } else {
        double sum = 0;
        int n = 0;
        for (int i = 0; i < d->n_train; i++)
            if (isfinite(d->train[i].chars_per_s)) {
                sum += d->train[i].chars_per_s;
                n++;
            }
        d->mean_chars_per_s = n ? sum / n : NAN;
    }
    if (!rd->all_timed)
        for (int i = 0; i < d->n_train; i++)
            d->train[i].time = NAN;
    if (!rd->all_timed)
        for (int i = 0; i < d->n_val; i++)
            d->val[i].time = NAN;
}

static int read_metrics(const char *path, report_data *d)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cn_err("cannot open '%s': %s", path, strerror(errno));
    reader rd;
    memset(&rd, 0, sizeof rd);
    rd.all_timed = 1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t lineno = 0, blank = 0;
    errno = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        metrics_line ln;
        const char *p = line;
        skip_ws(&p);
        if (*p == '\0') {
            blank++;
            continue;
        }
        d->lines++;
        if (parse_line(line, &ln) != 0) {
            if (!d->malformed)
                d->first_malformed = lineno;
            d->malformed++;
            continue;
        }
        add_line(d, &rd, &ln);
    }
    int rc = 0;
    if (ferror(f))
        rc = cn_err("cannot read '%s': %s", path, strerror(errno ? errno : EIO));
    else if (d->lines > 0 && d->malformed == d->lines)
        rc = cn_err("'%s' holds no metrics: all %lld lines are malformed (line %lld is the first)",
                    path, (long long)d->lines, (long long)d->first_malformed);
    if (rc == 0)
        summarize(d, &rd);
    free(line);
    free(rd.skips.v);
    free(rd.moves.v);
    fclose(f);
    return rc;
}

/* The config from the checkpoint DIR/latest names, or DIR/model.h5; a run
 * without a readable one is still reported, saying why. */
static void read_config(const char *dir, report_data *d)
{
    char name[256] = "", path[CONFIG_PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/latest", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(name, sizeof name, f))
            name[0] = '\0';
        fclose(f);
        name[strcspn(name, "\r\n")] = '\0';
        if (strchr(name, '/'))
            name[0] = '\0';
    }
    snprintf(path, sizeof path, "%s/%s", dir, name[0] ? name : "model.h5");
    if (access(path, F_OK) != 0 && name[0])
        snprintf(path, sizeof path, "%s/model.h5", dir);
    if (access(path, F_OK) != 0) {
        snprintf(d->config_from, sizeof d->config_from, "no checkpoint in '%s' yet", dir);
        return;
    }
    ckpt_data c;
    if (ckpt_read(path, &c) != 0) {
        snprintf(d->config_from, sizeof d->config_from, "%s", cn_errmsg());
        return;
    }
    d->has_config = 1;
    d->cfg = c.cfg;
    d->config_step = c.prog.step;
    snprintf(d->config_from, sizeof d->config_from, "%s", path);
    ckpt_data_free(&c);
}

int report_read(const char *dir, report_data *out)
{
    memset(out, 0, sizeof *out);
    out->best_val = out->last_loss = out->mean_chars_per_s = out->wall_time = NAN;
    snprintf(out->rate_unit, sizeof out->rate_unit, "chars");
    out->best_val_step = -1;
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return cn_err("cannot open run directory '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return cn_err("'%s' is not a run directory", dir);
    snprintf(out->dir, sizeof out->dir, "%s", dir);
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    if (stat(path, &sb) != 0)
        return cn_err("'%s' is not a run directory: no metrics.jsonl (%s)", dir, strerror(errno));
    if (read_metrics(path, out) != 0) {
        report_data_free(out);
        return -1;
    }
    read_config(dir, out);
    return 0;
}

void report_data_free(report_data *d)
{
    free(d->train);
    free(d->val);
    d->train = NULL;
    d->val = NULL;
    d->n_train = d->n_val = 0;
}

/* ---- text and JSON ---------------------------------------------------------- */

static void format_duration(char *out, size_t n, double s)
{
    if (!isfinite(s))
        snprintf(out, n, "n/a");
    else if (s < 60)
        snprintf(out, n, "%.1fs", s);
    else if (s < 3600)
        snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(out, n, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
}

static void config_text(char *buf, size_t n, const report_data *d)
{
    if (!d->has_config) {
        snprintf(buf, n, "config unknown (%s)", d->config_from);
        return;
    }
    const run_config *c = &d->cfg;
    snprintf(buf, n,
             "%s %d x %d, %s, dropout %g, seq %d, batch %d x %d rank%s, %s lr %g (%s), clip %g, "
             "seed %llu (from '%s' at step %lld)",
             cell_name(c->model.cell), c->model.layers, c->model.hidden,
             c->model.embed ? "embedding" : "one-hot input", (double)c->model.dropout, c->seq,
             c->batch, c->nranks, c->nranks == 1 ? "" : "s", optim_name(c->optim.kind),
             (double)c->sched.lr, sched_name(c->sched.kind), (double)c->clip,
             (unsigned long long)c->seed, d->config_from, (long long)d->config_step);
}

/* Indices of the runs by best validation loss, runs without one last, ties in order. */
static int *rank_runs(const report_data *runs, int n)
{
    int *order = cn_xmalloc((size_t)(n ? n : 1) * sizeof *order);
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = 1; i < n; i++) { /* insertion sort: stable */
        int k = order[i], j = i;
        double v = runs[k].best_val;
        while (j > 0) {
            double u = runs[order[j - 1]].best_val;
            int before = isfinite(v) && (!isfinite(u) || v < u);
            if (!before)
                break;
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
    return order;
}

static void print_or_na(FILE *out, const char *fmt, double v, int width)
{
    if (isfinite(v))
        fprintf(out, fmt, v);
    else
        fprintf(out, "%*s", width, "n/a");
}

void report_write_table(FILE *out, const report_data *runs, int n)
{
    char cfg[3 * CONFIG_PATH_MAX], wall[32];
    for (int i = 0; i < n; i++) {
        const report_data *d = &runs[i];
        config_text(cfg, sizeof cfg, d);
        format_duration(wall, sizeof wall, d->wall_time);
        fprintf(out, "%s\n  %s\n", d->dir, cfg);
        if (d->lines == 0) {
            fprintf(out, "  no metrics logged yet\n");
            continue;
        }
        fprintf(out, "  steps %lld in %d session%s; best val loss ", (long long)d->steps,
                d->sessions, d->sessions == 1 ? "" : "s");
        if (isfinite(d->best_val))
            fprintf(out, "%.4f at step %lld", d->best_val, (long long)d->best_val_step);
        else
            fputs("n/a", out);
        fputs("; last train loss ", out);
        print_or_na(out, "%.4f", d->last_loss, 0);
        fputs("\n  ", out);
        print_or_na(out, "%.0f", d->mean_chars_per_s, 0);
        fprintf(out, " %s/s; wall time %s", d->rate_unit, wall);
        if (isfinite(d->wall_time))
            fprintf(out, " (%.1f s)", d->wall_time);
        fprintf(out, "; %lld bad step%s; %lld balance move%s\n", (long long)d->bad_steps,
                d->bad_steps == 1 ? "" : "s", (long long)d->balance_moves,
                d->balance_moves == 1 ? "" : "s");
        if (d->replaced)
            fprintf(out, "  %lld line%s replaced by a resume from an earlier checkpoint\n",
                    (long long)d->replaced, d->replaced == 1 ? "" : "s");
        if (d->malformed)
            fprintf(out, "  %lld malformed line%s skipped (the first is line %lld)\n",
                    (long long)d->malformed, d->malformed == 1 ? "" : "s",
                    (long long)d->first_malformed);
    }
    if (n < 2)
        return;
    int *order = rank_runs(runs, n);
    fprintf(out, "\nby best validation loss:\n  %4s  %9s  %8s  %8s  %9s  %10s  %9s  %s\n", "rank",
            "best_val", "at_step", "steps", "last_loss", "rate/s", "wall", "run");
    for (int i = 0; i < n; i++) {
        const report_data *d = &runs[order[i]];
        format_duration(wall, sizeof wall, d->wall_time);
        fprintf(out, "  %4d  ", i + 1);
        print_or_na(out, "%9.4f", d->best_val, 9);
        if (d->best_val_step >= 0)
            fprintf(out, "  %8lld", (long long)d->best_val_step);
        else
            fprintf(out, "  %8s", "n/a");
        fprintf(out, "  %8lld  ", (long long)d->steps);
        print_or_na(out, "%9.4f", d->last_loss, 9);
        fputs("  ", out);
        print_or_na(out, "%10.0f", d->mean_chars_per_s, 10);
        fprintf(out, "  %9s  %s\n", wall, d->dir);
    }
    free(order);
}

static void json_num(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%.10g", v);
    else
        fputs("null", out);
}

void report_write_json(FILE *out, const report_data *runs, int n)
{
    fputs("{\"runs\":[", out);
    for (int i = 0; i < n; i++) {
        const report_data *d = &runs[i];
        fputs(i ? ",\n{\"dir\":" : "\n{\"dir\":", out);
        cn_json_string(out, d->dir);
        fputs(",\"config\":", out);
        if (d->has_config) {
            const run_config *c = &d->cfg;
            fprintf(out, "{\"cell\":\"%s\",\"layers\":%d,\"hidden\":%d,\"embed\":%d,"
                         "\"vocab_size\":%d,\"dropout\":%g,\"seq\":%d,\"batch\":%d,\"nranks\":%d,"
                         "\"optimizer\":\"%s\",\"lr\":%g,\"schedule\":\"%s\",\"clip\":%g,"
                         "\"seed\":%llu,\"steps\":%lld,\"data\":",
                    cell_name(c->model.cell), c->model.layers, c->model.hidden, c->model.embed,
                    c->model.vocab, (double)c->model.dropout, c->seq, c->batch, c->nranks,
                    optim_name(c->optim.kind), (double)c->sched.lr, sched_name(c->sched.kind),
                    (double)c->clip, (unsigned long long)c->seed, (long long)c->steps);
            cn_json_string(out, c->data);
            fprintf(out, ",\"checkpoint_step\":%lld}", (long long)d->config_step);
        } else {
            fputs("null", out);
        }
        fputs(",\"config_from\":", out);
        cn_json_string(out, d->config_from);
        fprintf(out, ",\"steps\":%lld,\"best_val_loss\":", (long long)d->steps);
        json_num(out, d->best_val);
        fputs(",\"best_val_step\":", out);
        if (d->best_val_step >= 0)
            fprintf(out, "%lld", (long long)d->best_val_step);
        else
            fputs("null", out);
        fputs(",\"last_loss\":", out);
        json_num(out, d->last_loss);
        fputs(",\"mean_chars_per_s\":", out);
        json_num(out, d->mean_chars_per_s);
        fprintf(out, ",\"rate_unit\":\"%s\"", d->rate_unit);
        fputs(",\"wall_time_s\":", out);
        json_num(out, d->wall_time);
        fprintf(out, ",\"bad_steps\":%lld,\"balance_moves\":%lld,\"sessions\":%d,\"lines\":%lld,"
                     "\"replaced_lines\":%lld,\"malformed_lines\":%lld,\"first_malformed_line\":",
                (long long)d->bad_steps, (long long)d->balance_moves, d->sessions,
                (long long)d->lines, (long long)d->replaced, (long long)d->malformed);
        if (d->malformed)
            fprintf(out, "%lld}", (long long)d->first_malformed);
        else
            fputs("null}", out);
    }
    fputs("\n]}\n", out);
}

/* ---- the page --------------------------------------------------------------- */

static const char *run_color(int i)
{
    return htmlplot_palette[i % HTMLPLOT_N_PALETTE];
}

/* Characters of the directory part every run shares ("runs/sweep/" of a
 * sweep's runs), which the page states once and leaves out of the labels. */
static size_t common_dir(const report_data *runs, int n)
{
    if (n < 2)
        return 0;
    size_t len = 0;
    for (size_t i = 0; runs[0].dir[i]; i++) {
        int same = 1;
        for (int k = 1; k < n && same; k++)
            same = runs[k].dir[i] == runs[0].dir[i];
        if (!same)
            break;
        if (runs[0].dir[i] == '/')
            len = i + 1;
    }
    return len;
}

/* The time axis in seconds, minutes or hours, whichever reads best. */
static double time_unit(const report_data *runs, int n, const char **label)
{
    double hi = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(runs[i].wall_time) && runs[i].wall_time > hi)
            hi = runs[i].wall_time;
    if (hi > 3 * 3600) {
        *label = "wall time (hours of training)";
        return 3600;
    }
    if (hi > 180) {
        *label = "wall time (minutes of training)";
        return 60;
    }
    *label = "wall time (seconds of training)";
    return 1;
}

typedef enum { AXIS_STEP, AXIS_TIME } x_axis;
typedef enum { Y_LOSS, Y_GRAD_NORM, Y_LR, Y_CHARS_PER_S } y_value;

/* One plot of every run: train lines (and validation, for the loss). */
static void run_plot(FILE *out, const report_data *runs, int n, const char *id, x_axis xa,
                     y_value yv, const char *ylabel)
{
    size_t skip = common_dir(runs, n);
    const char *tlabel = NULL;
    double tscale = time_unit(runs, n, &tlabel);
    int with_val = yv == Y_LOSS;
    htmlplot_series *s = cn_xcalloc((size_t)(2 * n + 1), sizeof *s);
    double **bufs = cn_xcalloc((size_t)(4 * n + 1), sizeof *bufs);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const report_data *d = &runs[i];
        double *x = bufs[4 * i] = cn_xmalloc((size_t)(d->n_train + 1) * sizeof *x);
        double *y = bufs[4 * i + 1] = cn_xmalloc((size_t)(d->n_train + 1) * sizeof *y);
        for (int j = 0; j < d->n_train; j++) {
            const report_train_point *p = &d->train[j];
            x[j] = xa == AXIS_STEP ? (double)p->step : p->time / tscale;
            y[j] = yv == Y_LOSS ? p->loss : yv == Y_GRAD_NORM ? p->grad_norm
                                          : yv == Y_LR        ? p->lr
                                                              : p->chars_per_s;
        }
        s[k++] = (htmlplot_series){x, y, d->n_train, run_color(i), 0, 0, d->dir + skip};
        if (!with_val)
            continue;
        double *vx = bufs[4 * i + 2] = cn_xmalloc((size_t)(d->n_val + 1) * sizeof *vx);
        double *vy = bufs[4 * i + 3] = cn_xmalloc((size_t)(d->n_val + 1) * sizeof *vy);
        for (int j = 0; j < d->n_val; j++) {
            vx[j] = xa == AXIS_STEP ? (double)d->val[j].step : d->val[j].time / tscale;
            vy[j] = d->val[j].val_loss;
        }
        s[k++] = (htmlplot_series){vx, vy, d->n_val, run_color(i), 1, 1, d->dir + skip};
    }
    htmlplot_frame f = {id, "line-plot", 540, 300, xa == AXIS_STEP ? "step" : tlabel, ylabel,
                        yv == Y_GRAD_NORM, 0, 0};
    htmlplot_lines(out, &f, s, k);
    for (int i = 0; i < 4 * n; i++)
        free(bufs[i]);
    free(bufs);
    free(s);
}

static void figure(FILE *out, const report_data *runs, int n, const char *id, x_axis xa,
                   y_value yv, const char *ylabel, const char *caption)
{
    fputs("<figure>", out);
    run_plot(out, runs, n, id, xa, yv, ylabel);
    fprintf(out, "<figcaption>%s</figcaption></figure>\n", caption);
}

static void html_cell_num(FILE *out, const char *fmt, double v)
{
    fputs("<td>", out);
    if (isfinite(v))
        fprintf(out, fmt, v);
    else
        fputs("n/a", out);
    fputs("</td>", out);
}

int report_write_html(const char *path, const report_data *runs, int n)
{
    FILE *out = fopen(path, "w");
    if (!out)
        return cn_err("cannot write '%s': %s", path, strerror(errno));
    char buf[3 * CONFIG_PATH_MAX];
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>charnn "
          "report</title>\n<style>\n",
          out);
    htmlplot_base_style(out);
    fputs("table.runs{border-collapse:collapse;font-size:12px;margin:8px 0}\n"
          "table.runs td,table.runs th{border:1px solid #ddd;padding:3px 7px;text-align:right}\n"
          "table.runs td.run,table.runs th.run{text-align:left}\n"
          ".swatch{display:inline-block;width:22px;height:4px;vertical-align:middle;"
          "margin-right:6px}\n"
          "ul.legend{list-style:none;padding:0;margin:6px 0;font-size:13px}\n"
          "ul.legend li{display:inline-block;margin-right:18px}\n"
          "p.config{font-size:12px;color:#555;margin:2px 0}\n"
          "</style>\n</head><body>\n<h1>Training report</h1>\n",
          out);
    size_t skip = common_dir(runs, n);
    fprintf(out, "<p class=\"meta\">%d run%s", n, n == 1 ? "" : "s");
    if (skip) {
        char prefix[CONFIG_PATH_MAX];
        snprintf(prefix, sizeof prefix, "%.*s", (int)skip, runs[0].dir);
        fputs(" in <code>", out);
        htmlplot_escape(out, prefix);
        fputs("</code>", out);
    }
    fputs("; solid lines: training loss, dashed with dots: validation loss (nats per "
          "character).</p>\n",
          out);
    fputs("<ul class=\"legend\" id=\"legend\">\n", out);
    for (int i = 0; i < n; i++) {
        fprintf(out, "<li><span class=\"swatch\" style=\"background:%s\"></span>", run_color(i));
        htmlplot_escape(out, runs[i].dir + skip);
        fputs("</li>\n", out);
    }
    fputs("</ul>\n<table class=\"runs\" id=\"runs\">\n<tr><th>#</th><th class=\"run\">run</th>"
          "<th>best val loss</th><th>at step</th><th>steps</th><th>last train loss</th>"
          "<th>rate (per s)</th><th>wall time</th><th>sessions</th><th>bad steps</th>"
          "<th>balance moves</th></tr>\n",
          out);
    int *order = rank_runs(runs, n);
    for (int r = 0; r < n; r++) {
        int i = order[r];
        const report_data *d = &runs[i];
        fprintf(out, "<tr class=\"run-row\"><td>%d</td><td class=\"run\"><span class=\"swatch\" "
                     "style=\"background:%s\"></span>",
                r + 1, run_color(i));
        htmlplot_escape(out, d->dir + skip);
        fputs("</td>", out);
        html_cell_num(out, "%.4f", d->best_val);
        html_cell_num(out, "%.0f", d->best_val_step >= 0 ? (double)d->best_val_step : NAN);
        fprintf(out, "<td>%lld</td>", (long long)d->steps);
        html_cell_num(out, "%.4f", d->last_loss);
        if (isfinite(d->mean_chars_per_s))
            fprintf(out, "<td>%.0f %s</td>", d->mean_chars_per_s, d->rate_unit);
        else
            fputs("<td>n/a</td>", out);
        format_duration(buf, sizeof buf, d->wall_time);
        fprintf(out, "<td>%s</td><td>%d</td><td>%lld</td><td>%lld</td></tr>\n", buf, d->sessions,
                (long long)d->bad_steps, (long long)d->balance_moves);
    }
    fputs("</table>\n", out);
    for (int r = 0; r < n; r++) {
        const report_data *d = &runs[order[r]];
        config_text(buf, sizeof buf, d);
        fputs("<p class=\"config\"><b>", out);
        htmlplot_escape(out, d->dir + skip);
        fputs("</b>: ", out);
        htmlplot_escape(out, buf);
        fputs("</p>\n", out);
    }
    free(order);
    fputs("<section id=\"curves\">\n<h2>Loss</h2>\n<div class=\"plots\">\n", out);
    figure(out, runs, n, "loss-steps", AXIS_STEP, Y_LOSS, "loss (nats/char)",
           "training and validation loss against steps");
    figure(out, runs, n, "loss-time", AXIS_TIME, Y_LOSS, "loss (nats/char)",
           "training and validation loss against wall time");
    fputs("</div>\n<h2>Optimisation</h2>\n<div class=\"plots\">\n", out);
    figure(out, runs, n, "grad-norm", AXIS_STEP, Y_GRAD_NORM, "gradient norm",
           "global gradient norm before clipping (log scale)");
    figure(out, runs, n, "lr", AXIS_STEP, Y_LR, "learning rate", "learning rate");
    figure(out, runs, n, "chars-per-s", AXIS_STEP, Y_CHARS_PER_S, "chars/s",
           "training throughput, characters per second");
    fputs("</div>\n</section>\n</body></html>\n", out);
    int bad = ferror(out);
    if (fclose(out) != 0 || bad)
        return cn_err("cannot write '%s': %s", path, strerror(errno ? errno : EIO));
    return 0;
}

/* ---- the command ------------------------------------------------------------ */

int report_run(const report_options *o)
{
    report_data *runs = cn_xcalloc((size_t)(o->n_runs ? o->n_runs : 1), sizeof *runs);
    int n = 0, rc = -1;
    for (; n < o->n_runs; n++) {
        if (report_read(o->runs[n], &runs[n]) != 0)
            goto done;
        const report_data *d = &runs[n];
        if (d->malformed)
            fprintf(stderr, "charnn: warning: '%s/metrics.jsonl': skipped %lld malformed line%s "
                            "(the first is line %lld)\n",
                    d->dir, (long long)d->malformed, d->malformed == 1 ? "" : "s",
                    (long long)d->first_malformed);
    }
    if (o->json)
        report_write_json(o->out, runs, n);
    else
        report_write_table(o->out, runs, n);
    if (o->html && report_write_html(o->html, runs, n) != 0)
        goto done;
    if (o->html && !o->json)
        fprintf(o->out, "\nwrote '%s'\n", o->html);
    rc = 0;
done:
    for (int i = 0; i < n; i++)
        report_data_free(&runs[i]);
    free(runs);
    return rc;
}
