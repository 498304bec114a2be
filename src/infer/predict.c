/* `charnn predict`: a classifier over lines, in batches. See predict.h. */
#include "charnn/predict.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/ckpt.h"
#include "charnn/common.h"
#include "charnn/fsio.h"
#include "charnn/head.h"
#include "charnn/memplan.h"

/* One batch of lines: their ids (row-major, rows of cap_T) and lengths. */
typedef struct {
    int n;           /* lines in the batch (empty ones included) */
    size_t *line_no; /* (batch) 1-based */
    int32_t *len;    /* (batch) characters, 0 for an empty line */
    int32_t *ids;    /* (batch, cap_T) */
    int cap_T;
} line_batch;

/* Encode line (n bytes) into row; 0, or -1 naming the line. */
static int encode_line(const vocab *v, const char *name, size_t line_no, const uint8_t *s,
                       size_t n, line_batch *lb, int row, int max_len)
{
    int32_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp = s[i];
        int used = 1;
        if (v->mode == VOCAB_CODEPOINTS && cp >= 0x80u) {
            used = utf8_decode(s + i, n - i, &cp);
            if (used == 0)
                return cn_err("invalid UTF-8 in '%s' line %zu at byte %zu", name, line_no, i);
        }
        const int id = vocab_id(v, cp);
        if (id < 0) {
            char where[1152];
            snprintf(where, sizeof where, "'%s' line %zu (character %d)", name, line_no, k + 1);
            return vocab_err_missing_at(v, where, cp);
        }
        i += (size_t)used;
        if (max_len > 0 && k >= max_len)
            continue; /* cut, but the rest must still be valid */
        if (k == lb->cap_T) {
            const int cap = lb->cap_T * 2;
            int32_t *grown = cn_xcalloc((size_t)cap * (size_t)(row + 1), sizeof *grown);
            for (int r = 0; r < row; r++)
                memcpy(grown + (size_t)r * cap, lb->ids + (size_t)r * lb->cap_T,
                       (size_t)lb->len[r] * sizeof *grown);
            memcpy(grown + (size_t)row * cap, lb->ids + (size_t)row * lb->cap_T,
                   (size_t)k * sizeof *grown);
            free(lb->ids);
            lb->ids = grown;
            lb->cap_T = cap;
        }
        lb->ids[(size_t)row * lb->cap_T + k++] = id;
    }
    lb->len[row] = k;
    return 0;
}

/* Indices of the top k of p (K), most probable first, ties by index. */
static void top_k(const float *p, int K, int k, int *out)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int c = 0; c < K; c++) {
            int taken = 0;
            for (int i = 0; i < j; i++)
                taken |= out[i] == c;
            if (!taken && (best < 0 || p[c] > p[best]))
                best = c;
        }
        out[j] = best;
    }
}

typedef struct {
    const predict_options *o;
    const ckpt_data *d;
    FILE *out;
    const char *name;
    model_work w;
    int w_T;        /* steps w holds */
    model_state s;  /* (L, s_B, H) zero at every forward */
    int s_B;
    int32_t *x;     /* (T, B) time-major */
    int32_t *lens;  /* (B) rows of the forward */
    int *top;       /* (top_k) */
} predictor;

static int write_results(predictor *p, const line_batch *lb)
{
    const predict_options *o = p->o;
    const int K = p->d->task.n_labels, k = o->top_k < K ? o->top_k : K;
    char *const *labels = p->d->task.labels;
    int row = 0;
    for (int i = 0; i < lb->n; i++) {
        if (lb->len[i] == 0) {
            fprintf(stderr, "charnn: warning: '%s' line %zu is empty: no prediction\n", p->name,
                    lb->line_no[i]);
            if (o->json)
                fprintf(p->out, "{\"line\":%zu,\"error\":\"empty line\"}\n", lb->line_no[i]);
            else
                fputc('\n', p->out);
            continue;
        }
        const float *prob = head_output(&p->w, (size_t)row++);
        top_k(prob, K, k, p->top);
        if (o->json) {
            fprintf(p->out, "{\"line\":%zu,\"label\":", lb->line_no[i]);
            cn_json_string(p->out, labels[p->top[0]]);
            fprintf(p->out, ",\"probability\":%.6f,\"top\":[", (double)prob[p->top[0]]);
            for (int j = 0; j < k; j++) {
                fprintf(p->out, "%s{\"label\":", j ? "," : "");
                cn_json_string(p->out, labels[p->top[j]]);
                fprintf(p->out, ",\"probability\":%.6f}", (double)prob[p->top[j]]);
            }
            fputs("]}\n", p->out);
        } else {
            for (int j = 0; j < k; j++)
                fprintf(p->out, "%s%s\t%.6f", j ? "\t" : "", labels[p->top[j]],
                        (double)prob[p->top[j]]);
            fputc('\n', p->out);
        }
    }
    if (fflush(p->out) != 0 || ferror(p->out))
        return cn_err("cannot write the predictions: %s", strerror(errno));
    return 0;
}

/* One forward over the non-empty lines of lb, then the output. */
static int predict_batch(predictor *p, const line_batch *lb)
{
    int B = 0, T = 1;
    for (int i = 0; i < lb->n; i++)
        if (lb->len[i] > 0) {
            p->lens[B++] = lb->len[i];
            if (lb->len[i] > T)
                T = lb->len[i];
        }
    if (B > 0) {
        if (T > p->w_T) {
            if (memplan_check_infer(&p->d->m.cfg, T, p->o->batch, 0.0, "predict") != 0)
                return -1;
            if (p->w_T)
                model_work_free(&p->w);
            model_work_init(&p->w, &p->d->m, T, p->o->batch);
            p->w_T = T;
            free(p->x);
            p->x = cn_xmalloc((size_t)T * p->o->batch * sizeof *p->x);
        }
        int b = 0;
        for (int i = 0; i < lb->n; i++) {
            if (lb->len[i] == 0)
                continue;
            for (int t = 0; t < T; t++)
                p->x[(size_t)t * B + b] =
                    t < lb->len[i] ? lb->ids[(size_t)i * lb->cap_T + t] : 0;
            b++;
        }
        if (B != p->s_B) {
            model_state_free(&p->s);
            model_state_init(&p->s, &p->d->m.cfg, B);
            p->s_B = B;
        }
        model_state_reset(&p->s);
        p->w.B = B;
        p->w.mask = NULL;
        p->w.len = p->lens;
        model_forward(&p->d->m, &p->w, &p->s, p->x, NULL, T, 0, 0);
    }
    return write_results(p, lb);
}

int predict_run(const predict_options *o, FILE *out)
{
    CHARNN_ASSERT(o->batch >= 1 && o->top_k >= 1);
    const int from_stdin = !o->input || strcmp(o->input, "-") == 0;
    const char *name = from_stdin ? "<stdin>" : o->input;
    ckpt_data d;
    if (ckpt_read(o->model_path, &d) != 0)
        return -1;
    if (ckpt_require_task(&d, o->model_path, "classify", "predict") != 0) {
        ckpt_data_free(&d);
        return -1;
    }
    const int max_len = o->max_len > 0 ? o->max_len : d.cfg.max_len;
    FILE *in = stdin;
    if (!from_stdin) {
        if (fsio_check_regular(o->input, NULL) != 0) {
            ckpt_data_free(&d);
            return -1;
        }
        if (!(in = fopen(o->input, "rb"))) {
            cn_err("cannot open '%s': %s", o->input, strerror(errno));
            ckpt_data_free(&d);
            return -1;
        }
    }
    predictor p;
    memset(&p, 0, sizeof p);
    p.o = o;
    p.d = &d;
    p.out = out;
    p.name = name;
    model_state_init(&p.s, &d.m.cfg, o->batch);
    p.s_B = o->batch;
    p.lens = cn_xmalloc((size_t)o->batch * sizeof *p.lens);
    p.top = cn_xmalloc((size_t)o->top_k * sizeof *p.top);
    line_batch lb = {0};
    lb.cap_T = 64;
    lb.line_no = cn_xmalloc((size_t)o->batch * sizeof *lb.line_no);
    lb.len = cn_xmalloc((size_t)o->batch * sizeof *lb.len);
    lb.ids = cn_xmalloc((size_t)lb.cap_T * o->batch * sizeof *lb.ids);
    char *line = NULL;
    size_t cap = 0, line_no = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, in)) >= 0) {
        line_no++;
        if (n > 0 && line[n - 1] == '\n')
            n--;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        lb.line_no[lb.n] = line_no;
        rc = encode_line(&d.voc, name, line_no, (const uint8_t *)line, (size_t)n, &lb, lb.n,
                         max_len);
        if (rc != 0)
            break;
        if (++lb.n == o->batch) {
            rc = predict_batch(&p, &lb);
            lb.n = 0;
        }
    }
    if (rc == 0 && ferror(in))
        rc = cn_err("cannot read '%s': %s", name, strerror(errno));
    if (rc == 0 && lb.n > 0)
        rc = predict_batch(&p, &lb);
    if (rc == 0 && line_no == 0)
        fprintf(stderr, "charnn: warning: '%s' has no lines: nothing to predict\n", name);
    free(line);
    free(lb.line_no);
    free(lb.len);
    free(lb.ids);
    free(p.lens);
    free(p.top);
    free(p.x);
    if (p.w_T)
        model_work_free(&p.w);
    model_state_free(&p.s);
    if (!from_stdin)
        fclose(in);
    ckpt_data_free(&d);
    return rc;
}
