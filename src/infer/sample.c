/* Sampling. See sample.h. */
#include "charnn/sample.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/ckpt.h"
#include "charnn/head.h"
#include "charnn/kernels.h"
#include "charnn/memplan.h"
#include "charnn/model.h"
#include "charnn/runtime.h"
#include "charnn/vocab.h"

static const float *sort_key_p;

static int by_prob_desc(const void *a, const void *b)
{
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    float pi = sort_key_p[i], pj = sort_key_p[j];
    if (pi != pj)
        return pi > pj ? -1 : 1;
    return i < j ? -1 : (i > j);
}

int sample_pick(const float *p, int V, double temperature, int top_k, cn_rng *rng,
                float *scratch_p, int32_t *scratch_idx)
{
    /* Below SAMPLE_GREEDY_TEMPERATURE, p^(1/T) puts all but nothing on the
     * argmax (see sample.h): draw it directly, ties to the lowest index. */
    if (temperature < SAMPLE_GREEDY_TEMPERATURE)
        return kern_argmax(p, V);
    int n = V;
    for (int v = 0; v < V; v++)
        scratch_idx[v] = v;
    if (top_k > 0 && top_k < V) {
        sort_key_p = p;
        qsort(scratch_idx, (size_t)V, sizeof *scratch_idx, by_prob_desc);
        n = top_k;
    }
    /* p^(1/T) / max p^(1/T) = exp((log p - log max p) / T), in double: log p / T
     * itself is far beyond float precision at small T */
    float pmax = 0.0f;
    for (int i = 0; i < n; i++)
        if (p[scratch_idx[i]] > pmax)
            pmax = p[scratch_idx[i]];
    double lmax = log((double)pmax), total = 0.0;
    for (int i = 0; i < n; i++) {
        float q = p[scratch_idx[i]];
        double e = q > 0.0f ? exp((log((double)q) - lmax) / temperature) : 0.0;
        scratch_p[i] = (float)e;
        total += e;
    }
    double u = cn_rng_uniform(rng) * total, acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += scratch_p[i];
        if (u < acc)
            return scratch_idx[i];
    }
    for (int i = n - 1; i >= 0; i--)
        if (scratch_p[i] > 0.0f)
            return scratch_idx[i];
    return scratch_idx[0];
}

/* 0, or -1 with errno set when out cannot take the bytes (a full disk, a
 * closed pipe) */
static int put_symbol(const vocab *v, int32_t id, FILE *out)
{
    char buf[4];
    size_t n = (size_t)vocab_decode(v, id, buf);
    return fwrite(buf, 1, n, out) == n ? 0 : -1;
}

static int write_failed(void)
{
    return cn_err("cannot write the sample: %s", strerror(errno ? errno : EIO));
}

uint64_t sample_stream_seed(uint64_t seed, int i)
{
    /* below 10^18, the largest --seed takes */
    return i == 0 ? seed : cn_hash64(seed, (uint64_t)i) % 1000000000000000000ull;
}

/* One sample's text while a batch of them is drawn. */
typedef struct {
    char *p;
    size_t n, cap;
} sample_text;

static void text_append(sample_text *s, const char *b, size_t n)
{
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2 + 64;
        s->p = cn_xrealloc(s->p, s->cap);
    }
    memcpy(s->p + s->n, b, n);
    s->n += n;
}

static void text_symbol(sample_text *s, const vocab *v, int32_t id)
{
    char buf[4];
    text_append(s, buf, (size_t)vocab_decode(v, id, buf));
}

/* A JSON string of n bytes (NUL included) */
static void json_bytes(FILE *f, const char *p, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* The batch's samples in order: text lines separated by a blank line, or one
 * JSON object a line. */
static int write_samples(const sample_options *o, const sample_text *texts, FILE *out)
{
    for (int i = 0; i < o->count; i++) {
        if (o->json) {
            fprintf(out, "{\"sample\":%d,\"seed\":%llu,\"text\":", i,
                    (unsigned long long)sample_stream_seed(o->seed, i));
            json_bytes(out, texts[i].p, texts[i].n);
            fputs("}\n", out);
        } else {
            if (i > 0)
                fputc('\n', out);
            fwrite(texts[i].p, 1, texts[i].n, out);
            fputc('\n', out);
        }
        if (ferror(out))
            return -1;
    }
    return 0;
}

int sample_run(const sample_options *o, FILE *out)
{
    CHARNN_ASSERT(o->count >= 1);
    ckpt_data d;
    if (ckpt_read(o->model_path, &d) != 0)
        return -1;
    runtime_set_threads(o->threads > 0 ? o->threads : 1);
    const int V = d.voc.size, B = o->count;
    /* one sample streams its text out as it goes; a batch keeps its rows' texts */
    const int streaming = B == 1 && !o->json;
    int rc = -1;
    if (d.m.cfg.head.kind != HEAD_LM) {
        cn_err("cannot sample from '%s': it is a %s model, not a language model", o->model_path,
               head_name(d.m.cfg.head.kind));
        ckpt_data_free(&d);
        return -1;
    }
    if (d.m.cfg.cond.mode != COND_NONE) {
        cn_err("'%s' is a conditional generator: give --cond NAME or --cond-vector FILE",
               o->model_path);
        ckpt_data_free(&d);
        return -1;
    }
    size_t plen = strlen(o->prime);
    int32_t *prime_ids = cn_xmalloc((plen + 1) * sizeof(int32_t));
    size_t nprime = 0;
    if (plen > 0 && vocab_encode(&d.voc, (const uint8_t *)o->prime, plen, prime_ids, &nprime,
                                 "--prime") != 0)
        goto done;
    if (memplan_check_infer(&d.m.cfg, 1, B, 0.0, "sample") != 0)
        goto done;
    cn_rng *rng = cn_xmalloc((size_t)B * sizeof *rng);
    sample_text *texts = cn_xcalloc((size_t)B, sizeof *texts);
    int32_t *x = cn_xmalloc((size_t)B * sizeof *x); /* (B) */
    for (int i = 0; i < B; i++)
        cn_rng_seed(&rng[i], sample_stream_seed(o->seed, i));
    model_work w;
    model_state s;
    model_work_init(&w, &d.m, 1, B);
    model_state_init(&s, &d.m.cfg, B);
    w.B = B;
    float *sp = cn_xmalloc((size_t)V * sizeof(float));
    int32_t *si = cn_xmalloc((size_t)V * sizeof(int32_t));
    int ok = 1;
    if (nprime == 0) {
        for (int i = 0; i < B; i++) {
            x[i] = (int32_t)(cn_rng_next(&rng[i]) % (uint64_t)V);
            if (streaming)
                ok = put_symbol(&d.voc, x[i], out) == 0;
            else
                text_symbol(&texts[i], &d.voc, x[i]);
        }
    } else {
        if (streaming)
            ok = fwrite(o->prime, 1, plen, out) == plen;
        for (int i = 0; !streaming && i < B; i++)
            text_append(&texts[i], o->prime, plen);
        for (size_t k = 0; ok && k + 1 < nprime; k++) {
            for (int i = 0; i < B; i++)
                x[i] = prime_ids[k];
            model_forward(&d.m, &w, &s, x, NULL, 1, 0, 0);
        }
        for (int i = 0; i < B; i++)
            x[i] = prime_ids[nprime - 1];
    }
    const double t0 = cn_now();
    /* every write is checked: a full disk stops the sampling at once */
    for (int64_t k = 0; ok && k < o->length; k++) {
        model_forward(&d.m, &w, &s, x, NULL, 1, 0, 0);
        for (int i = 0; i < B; i++) {
            x[i] = sample_pick(head_output(&w, (size_t)i), V, o->temperature, o->top_k, &rng[i],
                               sp, si);
            if (streaming)
                ok = put_symbol(&d.voc, x[i], out) == 0;
            else
                text_symbol(&texts[i], &d.voc, x[i]);
        }
    }
    const double seconds = cn_now() - t0;
    if (streaming)
        ok = ok && fputc('\n', out) != EOF;
    else
        ok = write_samples(o, texts, out) == 0;
    ok = ok && fflush(out) == 0 && !ferror(out);
    rc = ok ? 0 : write_failed();
    if (rc == 0 && o->stats)
        *o->stats = (sample_stats){.seconds = seconds, .symbols = (int64_t)B * o->length};
    free(sp);
    free(si);
    model_state_free(&s);
    model_work_free(&w);
    for (int i = 0; i < B; i++)
        free(texts[i].p);
    free(texts);
    free(x);
    free(rng);
done:
    free(prime_ids);
    ckpt_data_free(&d);
    return rc;
}
