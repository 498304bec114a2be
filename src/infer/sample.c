/* Sampling. See sample.h. */
#include "charnn/sample.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/ckpt.h"
#include "charnn/head.h"
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
    if (temperature < SAMPLE_GREEDY_TEMPERATURE) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (p[v] > p[best])
                best = v;
        return best;
    }
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

int sample_run(const sample_options *o, FILE *out)
{
    ckpt_data d;
    if (ckpt_read(o->model_path, &d) != 0)
        return -1;
    runtime_set_threads(o->threads > 0 ? o->threads : 1);
    const int V = d.voc.size;
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
    if (memplan_check_infer(&d.m.cfg, 1, 1, 0.0, "sample") != 0)
        goto done;
    cn_rng rng;
    cn_rng_seed(&rng, o->seed);
    model_work w;
    model_state s;
    model_work_init(&w, &d.m, 1, 1);
    model_state_init(&s, &d.m.cfg, 1);
    float *sp = cn_xmalloc((size_t)V * sizeof(float));
    int32_t *si = cn_xmalloc((size_t)V * sizeof(int32_t));
    int32_t x;
    int ok;
    if (nprime == 0) {
        x = (int32_t)(cn_rng_next(&rng) % (uint64_t)V);
        ok = put_symbol(&d.voc, x, out) == 0;
    } else {
        ok = fwrite(o->prime, 1, plen, out) == plen;
        for (size_t i = 0; ok && i + 1 < nprime; i++)
            model_forward(&d.m, &w, &s, &prime_ids[i], NULL, 1, 0, 0);
        x = prime_ids[nprime - 1];
    }
    /* every write is checked: a full disk stops the sampling at once */
    for (int64_t i = 0; ok && i < o->length; i++) {
        model_forward(&d.m, &w, &s, &x, NULL, 1, 0, 0);
        x = sample_pick(head_output(&w, 0), V, o->temperature, o->top_k, &rng, sp, si);
        ok = put_symbol(&d.voc, x, out) == 0;
    }
    ok = ok && fputc('\n', out) != EOF && fflush(out) == 0 && !ferror(out);
    rc = ok ? 0 : write_failed();
    free(sp);
    free(si);
    model_state_free(&s);
    model_work_free(&w);
done:
    free(prime_ids);
    ckpt_data_free(&d);
    return rc;
}
