/* Sampling from a conditional generator: every row starts from BOS under the
 * condition and stops at EOS (generate.h); several draws run as one batch.
 * See generate.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/ckpt.h"
#include "charnn/cond.h"
#include "charnn/examples.h"
#include "charnn/generate.h"
#include "charnn/head.h"
#include "charnn/model.h"
#include "charnn/runtime.h"
#include "charnn/sample.h"

/* A set of texts (open addressing on a 64-bit FNV-1a hash). */
typedef struct {
    size_t cap, n;
    char **slot;
} text_set;

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int set_has(const text_set *t, const char *s)
{
    if (!t->cap)
        return 0;
    for (size_t i = fnv(s) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (!t->slot[i])
            return 0;
        if (strcmp(t->slot[i], s) == 0)
            return 1;
    }
}

static void set_add(text_set *t, const char *s)
{
    if (set_has(t, s))
        return;
    if (2 * (t->n + 1) > t->cap) {
        text_set g = {t->cap ? 2 * t->cap : 1024, 0, NULL};
        g.slot = cn_xcalloc(g.cap, sizeof *g.slot);
        for (size_t i = 0; i < t->cap; i++)
            if (t->slot[i]) {
                size_t j = fnv(t->slot[i]) & (g.cap - 1);
                while (g.slot[j])
                    j = (j + 1) & (g.cap - 1);
                g.slot[j] = t->slot[i];
                g.n++;
            }
        free(t->slot);
        *t = g;
    }
    size_t i = fnv(s) & (t->cap - 1);
    while (t->slot[i])
        i = (i + 1) & (t->cap - 1);
    t->slot[i] = cn_xstrdup(s);
    t->n++;
}

static void set_free(text_set *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slot[i]);
    free(t->slot);
    memset(t, 0, sizeof *t);
}

/* The training split's texts of an examples file. */
static int load_training_texts(const char *path, text_set *set)
{
    examples_file ex;
    vocab v = {0};
    if (examples_open(&ex, path, &v) != 0)
        return cn_err_context("--novel needs the training texts");
    int32_t *ids = cn_xmalloc((ex.max_len + 1) * sizeof *ids);
    char *text = cn_xmalloc(4 * ex.max_len + 1);
    int rc = 0;
    for (size_t i = ex.split_begin[SPLIT_TRAIN]; i < ex.split_end[SPLIT_TRAIN] && rc == 0; i++) {
        size_t n = examples_length(&ex, i), len = 0;
        rc = examples_read_tokens(&ex, i, ids);
        for (size_t j = 0; j < n; j++)
            len += (size_t)vocab_decode(&v, ids[j], text + len);
        text[len] = '\0';
        set_add(set, text);
    }
    free(ids);
    free(text);
    examples_close(&ex);
    vocab_free(&v);
    return rc;
}

/* The condition vector (D) the options ask for. */
static int condition_vector(const gen_sample_options *o, const ckpt_data *d, float *c)
{
    const int D = d->m.cfg.cond.dim, C = d->task.n_labels;
    memset(c, 0, (size_t)D * sizeof *c);
    if (C > 0) {
        if (o->cond_vector)
            return cn_err("'%s' is conditioned on a class (--cond NAME), not a vector",
                          o->model_path);
        if (!o->cond) {
            char known[1024] = "";
            for (int i = 0; i < C && strlen(known) < sizeof known - 64; i++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                         i ? ", " : "", d->task.labels[i]);
            return cn_err("'%s' needs --cond NAME (one of: %s)", o->model_path, known);
        }
        for (int i = 0; i < C; i++)
            if (strcmp(d->task.labels[i], o->cond) == 0) {
                c[i] = 1.0f;
                return 0;
            }
        char known[1024] = "";
        for (int i = 0; i < C && strlen(known) < sizeof known - 64; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                     d->task.labels[i]);
        return cn_err("unknown class '%s' for --cond (the model knows: %s)", o->cond, known);
    }
    if (o->cond)
        return cn_err("'%s' is conditioned on vectors of width %d (--cond-vector FILE), not a "
                      "class",
                      o->model_path, D);
    if (!o->cond_vector)
        return cn_err("'%s' needs --cond-vector FILE (%d numbers)", o->model_path, D);
    return gen_vector_read_text(o->cond_vector, D, c);
}

/* Draw B samples, draws first..first+B-1, into texts (B rows of 4*length+1
 * bytes each, prime included). */
static void draw_batch(const ckpt_data *d, const gen_sample_options *o, const float *cond1,
                       const int32_t *prime, size_t nprime, int64_t first, int B, char *texts,
                       size_t stride)
{
    const model *m = &d->m;
    const int V = d->voc.size, D = m->cfg.cond.dim;
    const int32_t bos = vocab_id(&d->voc, GEN_BOUNDARY);
    model_work w;
    model_state s;
    model_work_init(&w, m, 1, B);
    model_state_init(&s, &m->cfg, B);
    float *cond = cn_xmalloc((size_t)B * D * sizeof *cond);
    for (int b = 0; b < B; b++)
        memcpy(cond + (size_t)b * D, cond1, (size_t)D * sizeof *cond);
    cn_rng *rng = cn_xmalloc((size_t)B * sizeof *rng);
    int32_t *x = cn_xmalloc((size_t)B * sizeof *x);
    size_t *len = cn_xcalloc((size_t)B, sizeof *len);
    int *done = cn_xcalloc((size_t)B, sizeof *done);
    float *sp = cn_xmalloc((size_t)V * sizeof *sp);
    int32_t *si = cn_xmalloc((size_t)V * sizeof *si);
    for (int b = 0; b < B; b++) {
        int64_t j = first + b;
        cn_rng_seed(&rng[b], j == 0 ? o->seed : cn_hash64(o->seed, (uint64_t)j));
        x[b] = bos;
    }
    w.cond = cond;
    w.cond_first = 1;
    /* BOS, then the prime's symbols, then what the model draws */
    for (size_t i = 0; i < nprime; i++) {
        model_forward(m, &w, &s, x, NULL, 1, 0, 0);
        w.cond_first = 0;
        for (int b = 0; b < B; b++) {
            x[b] = prime[i];
            len[b] += (size_t)vocab_decode(&d->voc, x[b], texts + b * stride + len[b]);
        }
    }
    int live = B;
    for (int64_t k = 0; k < o->length && live > 0; k++) {
        model_forward(m, &w, &s, x, NULL, 1, 0, 0);
        w.cond_first = 0;
        for (int b = 0; b < B; b++) {
            if (done[b])
                continue;
            x[b] = sample_pick(head_output(&w, (size_t)b), V, o->temperature, o->top_k,
                               &rng[b], sp, si);
            if (x[b] == bos) {
                done[b] = 1;
                live--;
                continue;
            }
            len[b] += (size_t)vocab_decode(&d->voc, x[b], texts + b * stride + len[b]);
        }
    }
    for (int b = 0; b < B; b++)
        texts[b * stride + len[b]] = '\0';
    free(cond);
    free(rng);
    free(x);
    free(len);
    free(done);
    free(sp);
    free(si);
    model_state_free(&s);
    model_work_free(&w);
}

int gen_sample_run(const gen_sample_options *o, FILE *out)
{
    CHARNN_ASSERT(o->count >= 1 && o->length >= 0);
    ckpt_data d;
    if (ckpt_read(o->model_path, &d) != 0)
        return -1;
    runtime_set_threads(o->threads > 0 ? o->threads : 1);
    int rc = -1;
    text_set seen = {0}, train = {0};
    float *c = NULL;
    int32_t *prime = NULL;
    char *texts = NULL;
    if (ckpt_require_task(&d, o->model_path, "generate", "sample --cond") != 0)
        goto done;
    c = cn_xmalloc((size_t)d.m.cfg.cond.dim * sizeof *c);
    if (condition_vector(o, &d, c) != 0)
        goto done;
    size_t plen = strlen(o->prime), nprime = 0;
    prime = cn_xmalloc((plen + 1) * sizeof *prime);
    if (plen > 0 &&
        vocab_encode(&d.voc, (const uint8_t *)o->prime, plen, prime, &nprime, "--prime") != 0)
        goto done;
    for (size_t i = 0; i < nprime; i++)
        if (d.voc.symbols[prime[i]] == GEN_BOUNDARY) {
            cn_err("--prime holds a newline, which ends a sample");
            goto done;
        }
    if (o->novel && load_training_texts(o->data ? o->data : d.cfg.data, &train) != 0)
        goto done;
    const size_t stride = 4 * ((size_t)o->length + nprime) + 1;
    const int64_t max_draws = 100 * (int64_t)o->count + 1000;
    int64_t drawn = 0, printed = 0, repeats = 0, in_train = 0;
    while (printed < o->count && drawn < max_draws) {
        int B = (int)(o->count - printed);
        if (B > 256)
            B = 256;
        texts = cn_xrealloc(texts, (size_t)B * stride);
        draw_batch(&d, o, c, prime, nprime, drawn, B, texts, stride);
        drawn += B;
        for (int b = 0; b < B && printed < o->count; b++) {
            const char *s = texts + (size_t)b * stride;
            if (o->unique && set_has(&seen, s)) {
                repeats++;
                continue;
            }
            if (o->novel && set_has(&train, s)) {
                in_train++;
                continue;
            }
            if (o->unique)
                set_add(&seen, s);
            if (fputs(s, out) == EOF || fputc('\n', out) == EOF) {
                cn_err("cannot write the sample: %s", strerror(errno ? errno : EIO));
                goto done;
            }
            printed++;
        }
    }
    if (fflush(out) != 0) {
        cn_err("cannot write the sample: %s", strerror(errno ? errno : EIO));
        goto done;
    }
    if (o->report && (o->unique || o->novel))
        fprintf(o->report,
                "drew %lld samples for %lld printed: %lld repeats redrawn, %lld training texts "
                "redrawn (%.1f%% of the draws were in the training data)\n",
                (long long)drawn, (long long)printed, (long long)repeats, (long long)in_train,
                drawn ? 100.0 * (double)in_train / (double)drawn : 0.0);
    if (printed < o->count) {
        cn_err("only %lld of %d samples were %s after %lld draws", (long long)printed, o->count,
               o->novel ? "new" : "unique", (long long)drawn);
        goto done;
    }
    rc = 0;
done:
    set_free(&seen);
    set_free(&train);
    free(texts);
    free(prime);
    free(c);
    ckpt_data_free(&d);
    return rc;
}
