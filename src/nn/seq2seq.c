/* The seq2seq head: decoder stack, attention, combination and output layer on
 * top of the encoder (the model's stack). See seq2seq.h. */
#include "charnn/seq2seq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/head.h"
#include "charnn/kernels.h"
#include "charnn/stack.h"
#include "seq2seq_impl.h"

enum { S2S_OUT_W = 0, S2S_OUT_B = 1, S2S_COMB_W = 2, S2S_COMB_B = 3, S2S_ATTN = 4 };

static const char *const attn_names[] = {"none", "dot", "general", "additive"};

int seq2seq_attention_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, attn_names[i]) == 0)
            return i;
    return -1;
}

const char *seq2seq_attention_name(int kind)
{
    return kind >= 0 && kind < 4 ? attn_names[kind] : "unknown";
}

/* Index (among the head's tensors) of the decoder's first tensor. */
static int decoder_base(int attention)
{
    static const int base[] = {2, 4, 5, 8};
    return base[attention];
}

static int s2s_check(const model_config *cfg)
{
    if (cfg->head.classes < SEQ2SEQ_SPECIALS + 1)
        return cn_err("a translation model needs at least one target symbol");
    if (cfg->head.attention < 0 || cfg->head.attention > SEQ2SEQ_ATTN_ADDITIVE)
        return cn_err("unknown attention kind %d", cfg->head.attention);
    if (cfg->bidirectional)
        return cn_err("--bidirectional is not supported by --task seq2seq: its decoder starts "
                      "from the encoder's final state of each layer, one direction's");
    return 0;
}

static int s2s_outputs(const model_config *cfg)
{
    return cfg->head.classes;
}

static void s2s_declare(model *m)
{
    const int Vt = m->cfg.head.classes, H = m->cfg.hidden, E = m->cfg.embed;
    const int L = m->cfg.layers, GH = m->gates * H;
    char name[32];
    model_head_add_tensor(m, "out.weight", Vt, H, 0);
    model_head_add_tensor(m, "out.bias", Vt, 0, 1);
    if (m->cfg.head.attention != SEQ2SEQ_ATTN_NONE) {
        model_head_add_tensor(m, "attn.combine.weight", H, 2 * H, 0);
        model_head_add_tensor(m, "attn.combine.bias", H, 0, 1);
    }
    if (m->cfg.head.attention == SEQ2SEQ_ATTN_GENERAL)
        model_head_add_tensor(m, "attn.weight", H, H, 0);
    if (m->cfg.head.attention == SEQ2SEQ_ATTN_ADDITIVE) {
        model_head_add_tensor(m, "attn.enc.weight", H, H, 0);
        model_head_add_tensor(m, "attn.dec.weight", H, H, 0);
        model_head_add_tensor(m, "attn.dec.bias", H, 0, 1);
        model_head_add_tensor(m, "attn.v.weight", 1, H, 0);
    }
    for (int l = L - 1; l >= 0; l--) {
        snprintf(name, sizeof name, "decoder.weight_ih_l%d", l);
        if (l == 0 && E == 0)
            model_head_add_transposed(m, name, GH, Vt);
        else
            model_head_add_tensor(m, name, GH, l == 0 ? E : H, 0);
        snprintf(name, sizeof name, "decoder.weight_hh_l%d", l);
        model_head_add_tensor(m, name, GH, H, 0);
        snprintf(name, sizeof name, "decoder.bias_ih_l%d", l);
        model_head_add_tensor(m, name, GH, 0, 1);
        snprintf(name, sizeof name, "decoder.bias_hh_l%d", l);
        model_head_add_tensor(m, name, GH, 0, 1);
    }
    if (E > 0)
        model_head_add_tensor(m, "tgt_embed.weight", Vt, E, 0);
}

void s2s_view(const model *m, model *view)
{
    const int L = m->cfg.layers, base = decoder_base(m->cfg.head.attention);
    memset(view, 0, sizeof *view);
    view->cfg = m->cfg;
    view->cfg.vocab = m->cfg.head.classes;
    view->cfg.head = (head_config){0};
    view->gates = m->gates;
    for (int l = 0; l < L; l++) {
        int i = base + 4 * (L - 1 - l);
        view->layer[l] = (model_layer){m->head.p[i], m->head.p[i + 1], m->head.p[i + 2],
                                       m->head.p[i + 3]};
        view->glayer[l] = (model_layer){m->head.g[i], m->head.g[i + 1], m->head.g[i + 2],
                                        m->head.g[i + 3]};
    }
    if (m->cfg.embed > 0) {
        view->embed = m->head.p[base + 4 * L];
        view->gembed = m->head.g[base + 4 * L];
    }
}

static float *ints(model_work *owner, size_t n)
{
    return model_work_alloc(owner, n); /* int32 and float have the same size */
}

s2s_work *s2s_work_make(model_work *owner, const model *m, int T, int S, int B, int backward)
{
    const int L = m->cfg.layers, H = m->cfg.hidden;
    const size_t LBH = (size_t)L * B * H, TBH = (size_t)T * B * H, SBH = (size_t)S * B * H;
    CHARNN_ASSERT(owner->head_ctx == NULL);
    s2s_work *k = cn_xcalloc(1, sizeof *k);
    owner->head_ctx = k;
    k->T = T;
    k->S = S;
    k->B = B;
    model view;
    s2s_view(m, &view);
    model_work_init_stack(&k->dec, owner, &view, T, B);
    k->h = model_work_alloc(owner, LBH);
    if (m->cfg.cell == CELL_LSTM)
        k->c = model_work_alloc(owner, LBH);
    k->xd = (int32_t *)ints(owner, (size_t)T * B);
    k->dlen = (int32_t *)ints(owner, (size_t)B);
    if (backward) {
        k->dh0 = model_work_alloc(owner, LBH);
        if (m->cfg.cell == CELL_LSTM)
            k->dc0 = model_work_alloc(owner, LBH);
    }
    const int attn = m->cfg.head.attention;
    if (attn == SEQ2SEQ_ATTN_NONE)
        return k;
    if (attn != SEQ2SEQ_ATTN_DOT)
        k->keys = model_work_alloc(owner, SBH);
    if (attn == SEQ2SEQ_ATTN_ADDITIVE)
        k->q = model_work_alloc(owner, TBH);
    k->a = model_work_alloc(owner, (size_t)B * T * S);
    k->ctx = model_work_alloc(owner, TBH);
    k->cat = model_work_alloc(owner, 2 * TBH);
    k->htil = model_work_alloc(owner, TBH);
    if (backward) {
        k->dhtil = model_work_alloc(owner, TBH);
        k->dcat = model_work_alloc(owner, 2 * TBH);
        k->dctx = model_work_alloc(owner, TBH);
        k->da = model_work_alloc(owner, (size_t)B * T * S);
        if (attn != SEQ2SEQ_ATTN_DOT)
            k->dkeys = model_work_alloc(owner, SBH);
        if (attn == SEQ2SEQ_ATTN_ADDITIVE) {
            k->dq = model_work_alloc(owner, TBH);
            k->dv = model_work_alloc(owner, (size_t)B * H);
        }
    }
    return k;
}

static attn_params attn_params_of(const model *m, int T, int S, int B)
{
    attn_params p = {.kind = m->cfg.head.attention, .T = T, .S = S, .B = B, .H = m->cfg.hidden};
    if (p.kind == SEQ2SEQ_ATTN_GENERAL)
        p.wa = m->head.p[S2S_ATTN];
    if (p.kind == SEQ2SEQ_ATTN_ADDITIVE) {
        p.we = m->head.p[S2S_ATTN];
        p.wd = m->head.p[S2S_ATTN + 1];
        p.bd = m->head.p[S2S_ATTN + 2];
        p.v = m->head.p[S2S_ATTN + 3];
    }
    return p;
}

static void fill_bias(float *y, const float *bias, size_t N, int D)
{
    for (size_t n = 0; n < N; n++)
        memcpy(y + n * D, bias, (size_t)D * sizeof(float));
}

void s2s_output(const model *m, s2s_work *k, const float *dtop, int T, int B, const float *enc,
                int S, const int32_t *len, float *logits)
{
    const int H = m->cfg.hidden, Vt = m->cfg.head.classes;
    const size_t N = (size_t)T * B;
    const float *hin = dtop;
    CHARNN_ASSERT(T <= k->T && S <= k->S && B <= k->B);
    if (m->cfg.head.attention != SEQ2SEQ_ATTN_NONE) {
        attn_params p = attn_params_of(m, T, S, B);
        attn_io io = {enc, dtop, len, k->keys, k->q, k->a, k->ctx};
        attn_forward(&p, &io);
        for (size_t n = 0; n < N; n++) {
            memcpy(k->cat + n * 2 * H, k->ctx + n * H, (size_t)H * sizeof(float));
            memcpy(k->cat + n * 2 * H + H, dtop + n * H, (size_t)H * sizeof(float));
        }
        fill_bias(k->htil, m->head.p[S2S_COMB_B], N, H);
        kern_gemm(0, 1, (int)N, H, 2 * H, 1.0f, k->cat, 2 * H, m->head.p[S2S_COMB_W], 2 * H,
                  1.0f, k->htil, H);
        for (size_t i = 0; i < N * H; i++)
            k->htil[i] = tanhf(k->htil[i]);
        hin = k->htil;
    }
    fill_bias(logits, m->head.p[S2S_OUT_B], N, Vt);
    kern_gemm(0, 1, (int)N, Vt, H, 1.0f, hin, H, m->head.p[S2S_OUT_W], H, 1.0f, logits, Vt);
}

static void s2s_work_init(model_work *w, const model *m, int T, int B)
{
    const size_t N = (size_t)T * B;
    w->head.prob = model_work_alloc(w, N * (size_t)m->cfg.head.classes);
    w->head.loss = model_work_alloc(w, N);
    s2s_work_make(w, m, T, T, B, 1);
}

static double s2s_forward(const model *m, model_work *w, const float *top, const int32_t *y,
                          int T)
{
    s2s_work *k = w->head_ctx;
    const int B = w->B, L = m->cfg.layers, H = m->cfg.hidden, Vt = m->cfg.head.classes;
    const size_t BH = (size_t)B * H, N = (size_t)T * B;
    CHARNN_ASSERT(y != NULL && T <= k->T && B <= k->B);
    model view;
    s2s_view(m, &view);
    /* the decoder starts where each row's encoder stopped (hs[l] at T holds
     * the state at the row's length) */
    for (int l = 0; l < L; l++) {
        memcpy(k->h + l * BH, w->hs[l] + (size_t)T * BH, BH * sizeof(float));
        if (k->c)
            memcpy(k->c + l * BH, w->cs[l] + (size_t)T * BH, BH * sizeof(float));
    }
    for (int b = 0; b < B; b++) {
        k->xd[b] = SEQ2SEQ_BOS;
        int n = T;
        if (w->mask)
            for (n = T; n > 1 && w->mask[(size_t)(n - 1) * B + b] == 0.0f; n--)
                ;
        k->dlen[b] = n;
    }
    memcpy(k->xd + B, y, (N - B) * sizeof(int32_t));
    model_state sd = {L, B, H, k->h, k->c};
    k->dec.B = B;
    k->dec.len = k->dlen;
    const uint64_t key = w->dropout_on ? cn_hash64(w->dropout_key[0], 0x5e2u) : 0;
    const float *dtop = stack_forward(&view, &k->dec, &sd, k->xd, T, w->dropout_on, key);
    w->head.n = (int)N;
    s2s_output(m, k, dtop, T, B, top, T, w->len, w->head.prob);
    double total = kern_softmax_xent(w->head.prob, y, N, Vt, w->head.loss);
    return w->mask ? head_mask_loss(w, N) : total;
}

static void s2s_backward(model *m, model_work *w, const float *top, const int32_t *y, int T,
                         float scale, float *dtop)
{
    s2s_work *k = w->head_ctx;
    const int B = w->B, L = m->cfg.layers, H = m->cfg.hidden, Vt = m->cfg.head.classes;
    const size_t BH = (size_t)B * H, N = (size_t)T * B;
    float *dlogits = w->head.prob;
    CHARNN_ASSERT(y != NULL && (size_t)w->head.n == N);
    model view;
    s2s_view(m, &view);
    kern_softmax_xent_backward(dlogits, y, N, Vt, scale);
    head_mask_rows(w, dlogits, N, Vt);
    const float *dec_top = k->dec.hs[L - 1] + BH;
    float *ddec = k->dec.dh_a; /* (T, B, H) */
    const int attn = m->cfg.head.attention;
    const float *hin = attn != SEQ2SEQ_ATTN_NONE ? k->htil : dec_top;
    kern_gemm(1, 0, Vt, H, (int)N, 1.0f, dlogits, Vt, hin, H, 1.0f, m->head.g[S2S_OUT_W], H);
    kern_sum_rows(m->head.g[S2S_OUT_B], dlogits, N, Vt);
    memset(dtop, 0, N * H * sizeof(float));
    if (attn == SEQ2SEQ_ATTN_NONE) {
        kern_gemm(0, 0, (int)N, H, Vt, 1.0f, dlogits, Vt, m->head.p[S2S_OUT_W], H, 0.0f, ddec,
                  H);
    } else {
        float *dz = k->dhtil;
        kern_gemm(0, 0, (int)N, H, Vt, 1.0f, dlogits, Vt, m->head.p[S2S_OUT_W], H, 0.0f, dz, H);
        for (size_t i = 0; i < N * H; i++)
            dz[i] *= 1.0f - k->htil[i] * k->htil[i];
        kern_gemm(1, 0, H, 2 * H, (int)N, 1.0f, dz, H, k->cat, 2 * H, 1.0f,
                  m->head.g[S2S_COMB_W], 2 * H);
        kern_sum_rows(m->head.g[S2S_COMB_B], dz, N, H);
        kern_gemm(0, 0, (int)N, 2 * H, H, 1.0f, dz, H, m->head.p[S2S_COMB_W], 2 * H, 0.0f,
                  k->dcat, 2 * H);
        for (size_t n = 0; n < N; n++) {
            memcpy(k->dctx + n * H, k->dcat + n * 2 * H, (size_t)H * sizeof(float));
            memcpy(ddec + n * H, k->dcat + n * 2 * H + H, (size_t)H * sizeof(float));
        }
        attn_params p = attn_params_of(m, T, T, B);
        attn_grads g = {0};
        if (attn == SEQ2SEQ_ATTN_GENERAL)
            g.wa = m->head.g[S2S_ATTN];
        if (attn == SEQ2SEQ_ATTN_ADDITIVE) {
            g.we = m->head.g[S2S_ATTN];
            g.wd = m->head.g[S2S_ATTN + 1];
            g.bd = m->head.g[S2S_ATTN + 2];
            g.v = m->head.g[S2S_ATTN + 3];
        }
        attn_io io = {top, dec_top, w->len, k->keys, k->q, k->a, k->ctx};
        attn_backward(&p, &g, &io, k->dctx, ddec, dtop, k->da, k->dkeys, k->dq, k->dv);
    }
    k->dec.dh0 = k->dh0;
    k->dec.dc0 = k->dc0;
    k->dec.progress = w->progress;
    k->dec.progress_ctx = w->progress_ctx;
    stack_backward(&view, &k->dec, k->xd, ddec, NULL, NULL);
    w->dh_final = k->dh0;
    w->dc_final = k->dc0;
}

const float *seq2seq_attention_weights(const model_work *w)
{
    const s2s_work *k = w->head_ctx;
    return k ? k->a : NULL;
}

const float *seq2seq_decoder_states(const model_work *w, int l)
{
    const s2s_work *k = w->head_ctx;
    CHARNN_ASSERT(k != NULL && l >= 0 && l < MODEL_MAX_LAYERS);
    return k->dec.hs[l];
}

int seq2seq_target_labels(const vocab *v, char ***out, int *n)
{
    const int Vt = v->size + SEQ2SEQ_SPECIALS;
    char **l = cn_xcalloc((size_t)Vt, sizeof *l);
    l[SEQ2SEQ_EOS] = cn_xstrdup("</s>");
    l[SEQ2SEQ_BOS] = cn_xstrdup("<s>");
    for (int i = 0; i < v->size; i++) {
        char buf[5] = {0};
        vocab_decode(v, i, buf);
        l[SEQ2SEQ_SPECIALS + i] = cn_xstrdup(buf);
    }
    *out = l;
    *n = Vt;
    return 0;
}

int seq2seq_target_vocab(char *const *labels, int n, vocab *v)
{
    if (n < SEQ2SEQ_SPECIALS + 1 || strcmp(labels[SEQ2SEQ_EOS], "</s>") != 0 ||
        strcmp(labels[SEQ2SEQ_BOS], "<s>") != 0)
        return cn_err("the target vocabulary does not start with </s>, <s>");
    uint32_t *sym = cn_xcalloc((size_t)n, sizeof *sym);
    for (int i = SEQ2SEQ_SPECIALS; i < n; i++) {
        size_t len = strlen(labels[i]);
        if (len == 0 || utf8_decode((const uint8_t *)labels[i], len, &sym[i - SEQ2SEQ_SPECIALS]) !=
                            (int)len) {
            free(sym);
            return cn_err("target symbol %d is not one UTF-8 character", i);
        }
    }
    int rc = vocab_from_symbols(v, VOCAB_CODEPOINTS, sym, n - SEQ2SEQ_SPECIALS);
    free(sym);
    return rc;
}

const head_ops head_seq2seq_ops = {
    .name = "seq2seq",
    .stack_prefix = "encoder.",
    .embed_name = "src_embed.weight",
    .check = s2s_check,
    .outputs = s2s_outputs,
    .declare = s2s_declare,
    .work_init = s2s_work_init,
    .forward = s2s_forward,
    .backward = s2s_backward,
};
