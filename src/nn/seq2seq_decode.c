/* Decoding a seq2seq model: greedy (beam 1) and beam search, many sources at
 * a time. The encoder runs once over a block of sources; each source gets K
 * rows (its beams) in one decoder batch of rows * K, stepped one symbol at a
 * time (the decoder stack with T = 1, attention over the source, output
 * layer); after each step the K best continuations of each source are kept
 * and the rows' states are gathered from their parents. See seq2seq.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/seq2seq.h"
#include "charnn/stack.h"
#include "seq2seq_impl.h"

typedef struct {
    int32_t *ids;   /* (max_len) */
    float *attn;    /* (max_len + 1, S) or NULL */
    int n;
    double logprob;
} beam;

static double length_norm(double logprob, int n, float alpha)
{
    return alpha > 0.0f ? logprob / pow((5.0 + n) / 6.0, alpha) : logprob;
}

static void hyp_from(seq2seq_hyp *h, const beam *b, int finished, int S, float alpha)
{
    h->n = b->n;
    h->finished = finished;
    h->logprob = b->logprob;
    h->score = length_norm(b->logprob, b->n + finished, alpha);
    h->ids = cn_xmalloc(((size_t)b->n + 1) * sizeof *h->ids);
    memcpy(h->ids, b->ids, (size_t)b->n * sizeof *h->ids);
    h->S = S;
    h->attn = NULL;
    if (b->attn) {
        size_t na = (size_t)(b->n + finished) * S;
        h->attn = cn_xmalloc((na + 1) * sizeof *h->attn);
        memcpy(h->attn, b->attn, na * sizeof *h->attn);
    }
}

typedef struct {
    double score;
    int parent, sym;
} cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->parent != y->parent)
        return x->parent - y->parent;
    return x->sym - y->sym;
}

/* Decode sources [0, R) of the block. */
static int decode_block(const model *m, const int32_t *const *src, const int *src_len, int R,
                        const seq2seq_decode_options *o, seq2seq_hyp *out)
{
    const int K = o->beam, L = m->cfg.layers, H = m->cfg.hidden, Vt = m->cfg.head.classes;
    const int RK = R * K, maxn = o->max_len;
    const int lstm = m->cfg.cell == CELL_LSTM;
    int S = 1;
    for (int r = 0; r < R; r++)
        S = src_len[r] > S ? src_len[r] : S;
    const size_t RH = (size_t)R * H, RKH = (size_t)RK * H;

    /* encoder over the block */
    model_work we;
    memset(&we, 0, sizeof we);
    model_work_init_stack(&we, &we, m, S, R);
    int32_t *x = cn_xcalloc((size_t)S * R, sizeof *x), *len = cn_xmalloc((size_t)R * sizeof *len);
    for (int r = 0; r < R; r++) {
        len[r] = src_len[r];
        for (int t = 0; t < src_len[r]; t++)
            x[(size_t)t * R + r] = src[r][t];
    }
    we.len = len;
    model_state es;
    model_state_init(&es, &m->cfg, R);
    const float *enc = stack_forward(m, &we, &es, x, S, 0, 0);

    /* every source's K rows: its encoder states, lengths and start state */
    float *enc_rep = cn_xmalloc((size_t)S * RKH * sizeof(float));
    int32_t *len_rep = cn_xmalloc((size_t)RK * sizeof *len_rep);
    float *h = cn_xmalloc((size_t)L * RKH * sizeof(float)), *h2 = cn_xmalloc((size_t)L * RKH * sizeof(float));
    float *c = lstm ? cn_xmalloc((size_t)L * RKH * sizeof(float)) : NULL;
    float *c2 = lstm ? cn_xmalloc((size_t)L * RKH * sizeof(float)) : NULL;
    for (int r = 0; r < R; r++)
        for (int j = 0; j < K; j++) {
            const int row = r * K + j;
            len_rep[row] = len[r];
            for (int t = 0; t < S; t++)
                memcpy(enc_rep + ((size_t)t * RK + row) * H, enc + ((size_t)t * R + r) * H,
                       (size_t)H * sizeof(float));
            for (int l = 0; l < L; l++) {
                memcpy(h + (size_t)l * RKH + (size_t)row * H, es.h + (size_t)l * RH + (size_t)r * H,
                       (size_t)H * sizeof(float));
                if (lstm)
                    memcpy(c + (size_t)l * RKH + (size_t)row * H,
                           es.c + (size_t)l * RH + (size_t)r * H, (size_t)H * sizeof(float));
            }
        }
    model_state_free(&es);
    model_work_free(&we);

    model_work ws;
    memset(&ws, 0, sizeof ws);
    s2s_work *k = s2s_work_make(&ws, m, 1, S, RK, 0);
    model view;
    s2s_view(m, &view);
    float *logits = cn_xmalloc((size_t)RK * Vt * sizeof(float));
    int32_t *xd = cn_xmalloc((size_t)RK * sizeof *xd);
    const int want_attn = o->want_attention && m->cfg.head.attention != SEQ2SEQ_ATTN_NONE;
    beam *bm = cn_xcalloc((size_t)RK, sizeof *bm), *bm2 = cn_xcalloc((size_t)RK, sizeof *bm2);
    for (int i = 0; i < RK; i++) {
        bm[i].ids = cn_xcalloc((size_t)maxn + 1, sizeof(int32_t));
        bm2[i].ids = cn_xcalloc((size_t)maxn + 1, sizeof(int32_t));
        if (want_attn) {
            bm[i].attn = cn_xcalloc(((size_t)maxn + 1) * S, sizeof(float));
            bm2[i].attn = cn_xcalloc(((size_t)maxn + 1) * S, sizeof(float));
        }
        bm[i].logprob = i % K == 0 ? 0.0 : -INFINITY; /* one live beam at the start */
        xd[i] = SEQ2SEQ_BOS;
    }
    int *done = cn_xcalloc((size_t)R, sizeof *done);      /* finished hypotheses per source */
    int *closed = cn_xcalloc((size_t)R, sizeof *closed);  /* the source's search is over */
    cand *cands = cn_xmalloc((size_t)K * Vt * sizeof *cands);
    for (int r = 0; r < R; r++)
        out[r].score = -INFINITY;

    for (int step = 0; step <= maxn; step++) {
        int open = 0;
        for (int r = 0; r < R; r++)
            open += !closed[r];
        if (!open)
            break;
        k->dec.B = RK;
        k->dec.len = NULL;
        model_state sd = {L, RK, H, h, c};
        const float *dtop = stack_forward(&view, &k->dec, &sd, xd, 1, 0, 0);
        s2s_output(m, k, dtop, 1, RK, enc_rep, S, len_rep, logits);
        for (int i = 0; i < RK; i++) { /* log-softmax */
            float *z = logits + (size_t)i * Vt, mx = -INFINITY;
            for (int v = 0; v < Vt; v++)
                mx = z[v] > mx ? z[v] : mx;
            double sum = 0.0;
            for (int v = 0; v < Vt; v++)
                sum += exp((double)z[v] - mx);
            const float lse = mx + (float)log(sum);
            for (int v = 0; v < Vt; v++)
                z[v] -= lse;
        }
        for (int r = 0; r < R; r++) {
            if (closed[r]) {
                for (int j = 0; j < K; j++) {
                    const int row = r * K + j;
                    bm2[row].n = bm[row].n;
                    bm2[row].logprob = -INFINITY;
                    xd[row] = SEQ2SEQ_EOS;
                }
                continue;
            }
            int nc = 0;
            for (int j = 0; j < K; j++) {
                const int row = r * K + j;
                if (!isfinite(bm[row].logprob))
                    continue;
                const float *z = logits + (size_t)row * Vt;
                for (int v = 0; v < Vt; v++)
                    if (v != SEQ2SEQ_BOS)
                        cands[nc++] = (cand){bm[row].logprob + z[v], j, v};
            }
            qsort(cands, (size_t)nc, sizeof *cands, cand_cmp);
            int live = 0;
            for (int i = 0; i < nc && live < K; i++) {
                const int prow = r * K + cands[i].parent;
                const beam *p = &bm[prow];
                const int eos = cands[i].sym == SEQ2SEQ_EOS || step == maxn;
                if (eos) {
                    /* a finished hypothesis (or one cut at max_len) */
                    if (done[r] >= K)
                        continue;
                    beam f = *p;
                    int fin = cands[i].sym == SEQ2SEQ_EOS;
                    f.logprob = fin ? cands[i].score : p->logprob;
                    if (want_attn)
                        memcpy(p->attn + (size_t)p->n * S,
                               k->a + (size_t)prow * S, (size_t)S * sizeof(float));
                    if (!fin && step == maxn && cands[i].sym != SEQ2SEQ_EOS && done[r] > 0)
                        continue;
                    double sc = length_norm(f.logprob, f.n + fin, o->length_penalty);
                    if (sc > out[r].score) {
                        seq2seq_hyp_free(&out[r]);
                        hyp_from(&out[r], &f, fin, S, o->length_penalty);
                    }
                    done[r]++;
                    continue;
                }
                beam *nb = &bm2[r * K + live];
                memcpy(nb->ids, p->ids, (size_t)p->n * sizeof *p->ids);
                nb->ids[p->n] = cands[i].sym;
                nb->n = p->n + 1;
                nb->logprob = cands[i].score;
                if (want_attn) {
                    memcpy(nb->attn, p->attn, (size_t)p->n * S * sizeof(float));
                    memcpy(nb->attn + (size_t)p->n * S, k->a + (size_t)prow * S,
                           (size_t)S * sizeof(float));
                }
                const int row = r * K + live;
                for (int l = 0; l < L; l++) {
                    memcpy(h2 + (size_t)l * RKH + (size_t)row * H,
                           h + (size_t)l * RKH + (size_t)prow * H, (size_t)H * sizeof(float));
                    if (lstm)
                        memcpy(c2 + (size_t)l * RKH + (size_t)row * H,
                               c + (size_t)l * RKH + (size_t)prow * H, (size_t)H * sizeof(float));
                }
                xd[row] = cands[i].sym;
                live++;
            }
            for (int j = live; j < K; j++) {
                bm2[r * K + j].logprob = -INFINITY;
                bm2[r * K + j].n = 0;
                xd[r * K + j] = SEQ2SEQ_EOS;
            }
            /* over when K hypotheses finished, or no live beam can beat the best
             * finished one (log p only falls; exact without a length penalty) */
            double best_live = -INFINITY;
            for (int j = 0; j < live; j++)
                best_live = fmax(best_live, bm2[r * K + j].logprob);
            if (done[r] >= K || live == 0 ||
                (o->length_penalty == 0.0f && done[r] > 0 && best_live <= out[r].score))
                closed[r] = 1;
        }
        beam *tb = bm;
        bm = bm2;
        bm2 = tb;
        float *t1 = h;
        h = h2;
        h2 = t1;
        if (lstm) {
            t1 = c;
            c = c2;
            c2 = t1;
        }
    }
    for (int i = 0; i < RK; i++) {
        free(bm[i].ids);
        free(bm2[i].ids);
        free(bm[i].attn);
        free(bm2[i].attn);
    }
    free(bm);
    free(bm2);
    free(done);
    free(closed);
    free(cands);
    free(logits);
    free(xd);
    model_work_free(&ws);
    free(enc_rep);
    free(len_rep);
    free(h);
    free(h2);
    free(c);
    free(c2);
    free(x);
    free(len);
    return 0;
}

int seq2seq_translate(const model *m, const int32_t *const *src, const int *src_len, int n,
                      int rows, const seq2seq_decode_options *o, seq2seq_hyp *out)
{
    CHARNN_ASSERT(m->cfg.head.kind == HEAD_SEQ2SEQ);
    if (o->beam < 1 || o->max_len < 1 || rows < 1)
        return cn_err("--beam, --max-len and the rows per block must be at least 1");
    memset(out, 0, (size_t)n * sizeof *out);
    for (int i = 0; i < n; i++)
        if (src_len[i] < 1)
            return cn_err("source %d is empty", i + 1);
    for (int at = 0; at < n; at += rows) {
        int R = n - at < rows ? n - at : rows;
        if (decode_block(m, src + at, src_len + at, R, o, out + at) != 0)
            return -1;
    }
    return 0;
}

void seq2seq_hyp_free(seq2seq_hyp *h)
{
    free(h->ids);
    free(h->attn);
    h->ids = NULL;
    h->attn = NULL;
}
