/* The seq2seq model: encoder stack + decoder stack + attention in one slab.
 * Finite-difference gradient checks of whole models for every cell and every
 * attention kind, over rows of several source lengths and target lengths
 * (padding masked); of the bridge (dL/dh0, dL/dc0 of the encoder's start
 * state, which reaches the loss only through the decoder's start state);
 * the attention's fast path (per-row GEMMs) against plain loops in double;
 * padding (source ids past a row's length, masked targets) changes neither
 * the loss nor any gradient; the tensor table's PyTorch names.
 *
 * As in test_head.c the model computes in float: central differences with a
 * step of 1e-2 on the loss summed in double, bound 2e-2 on the relative
 * error (worst errors printed); a missing bridge or attention term gives
 * errors of order 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/nn/attention.h"
#include "charnn/common.h"
#include "charnn/head.h"
#include "charnn/memplan.h"
#include "charnn/model.h"
#include "charnn/seq2seq.h"
#include "charnn/translate.h"
#include "charnn/vocab.h"
#include "testlib.h"

enum { V = 5, VT = 6, T = 4, B = 3, HID = 4 };
#define GRADCHECK_BOUND 2e-2
#define NAIVE_TOL 1e-5

static const int32_t src_len[B] = {T, 2, 3};
static const int tgt_len[B] = {3, T, 2};

typedef struct {
    model m;
    model_work w;
    model_state s0, s;
    int32_t x[T * B], y[T * B], len[B];
    float mask[T * B];
} fixture;

static void fixture_init(fixture *f, cell_kind cell, int attention, int layers, int embed)
{
    model_config cfg = {.cell = cell, .vocab = V, .layers = layers, .hidden = HID,
                        .embed = embed,
                        .head = {.kind = HEAD_SEQ2SEQ, .classes = VT, .attention = attention}};
    model_build(&f->m, &cfg);
    model_init_uniform(&f->m, 0.5f, 7, NAN);
    model_work_init(&f->w, &f->m, T, B);
    model_state_init(&f->s0, &cfg, B);
    model_state_init(&f->s, &cfg, B);
    for (int i = 0; i < T * B; i++) {
        int t = i / B, b = i % B;
        f->x[i] = (i * 3 + 1) % V;
        f->y[i] = t < tgt_len[b] - 1 ? SEQ2SEQ_SPECIALS + (i * 2 + 1) % (VT - 2)
                                     : SEQ2SEQ_EOS;
        f->mask[i] = t < tgt_len[b] ? 1.0f : 0.0f;
    }
    memcpy(f->len, src_len, sizeof f->len);
    f->w.len = f->len;
    f->w.mask = f->mask;
}

static void fixture_free(fixture *f)
{
    model_state_free(&f->s0);
    model_state_free(&f->s);
    model_work_free(&f->w);
    model_free(&f->m);
}

static double loss_at(fixture *f)
{
    size_t ns = (size_t)f->s0.layers * B * f->s0.hidden;
    memcpy(f->s.h, f->s0.h, ns * sizeof(float));
    if (f->s0.c)
        memcpy(f->s.c, f->s0.c, ns * sizeof(float));
    model_forward(&f->m, &f->w, &f->s, f->x, f->y, T, 0, 0);
    double total = 0.0;
    for (int i = 0; i < f->w.head.n; i++)
        total += f->w.head.loss[i];
    return total;
}

static double rel_err(double num, double ana)
{
    return fabs(num - ana) / fmax(1e-2, fabs(num) + fabs(ana));
}

static double worst_param_error(fixture *f)
{
    loss_at(f);
    model_zero_grads(&f->m);
    model_backward(&f->m, &f->w, f->x, f->y, 1.0f, NULL, NULL);
    double worst = 0.0;
    const float hstep = 1e-2f;
    for (size_t i = 0; i < f->m.n_params; i++) {
        float keep = f->m.params[i];
        f->m.params[i] = keep + hstep;
        double lp = loss_at(f);
        f->m.params[i] = keep - hstep;
        double lm = loss_at(f);
        f->m.params[i] = keep;
        worst = fmax(worst, rel_err((lp - lm) / (2.0 * hstep), f->m.grads[i]));
    }
    return worst;
}

static void gradcheck_case(cell_kind cell, int attention, int layers, int embed)
{
    fixture f;
    fixture_init(&f, cell, attention, layers, embed);
    double worst = worst_param_error(&f);
    printf("  %s L%d E%d attention %s: worst relative error %.2e over %zu parameters\n",
           cell_name(cell), layers, embed, seq2seq_attention_name(attention), worst,
           f.m.n_params);
    CU_ASSERT(worst < GRADCHECK_BOUND);
    /* masked targets carry no loss */
    for (int i = 0; i < T * B; i++)
        if (f.mask[i] == 0.0f)
            CU_ASSERT(f.w.head.loss[i] == 0.0f);
    fixture_free(&f);
}

static void test_gradcheck_attention(void)
{
    const cell_kind cells[3] = {CELL_RNN, CELL_LSTM, CELL_GRU};
    for (int a = 0; a < 4; a++)
        for (int k = 0; k < 3; k++)
            gradcheck_case(cells[k], a, 2, 0);
    gradcheck_case(CELL_LSTM, SEQ2SEQ_ATTN_ADDITIVE, 1, 3);
    gradcheck_case(CELL_GRU, SEQ2SEQ_ATTN_GENERAL, 2, 6);
}

/* dL/dh0 (and dL/dc0) of the encoder's start state against central
 * differences: without attention this is the bridge alone. */
static void bridge_case(cell_kind cell, int attention)
{
    fixture f;
    fixture_init(&f, cell, attention, 2, 0);
    size_t ns = (size_t)2 * B * HID;
    testlib_fill_uniform(f.s0.h, ns, 0.5f, 3);
    if (f.s0.c)
        testlib_fill_uniform(f.s0.c, ns, 0.5f, 4);
    float *dh0 = calloc(ns, sizeof(float)), *dc0 = calloc(ns, sizeof(float));
    f.w.dh0 = dh0;
    f.w.dc0 = f.s0.c ? dc0 : NULL;
    loss_at(&f);
    model_zero_grads(&f.m);
    model_backward(&f.m, &f.w, f.x, f.y, 1.0f, NULL, NULL);
    double worst = 0.0, largest = 0.0;
    const float hstep = 1e-2f;
    for (int which = 0; which < (f.s0.c ? 2 : 1); which++) {
        float *p = which ? f.s0.c : f.s0.h;
        const float *g = which ? dc0 : dh0;
        for (size_t i = 0; i < ns; i++) {
            float keep = p[i];
            p[i] = keep + hstep;
            double lp = loss_at(&f);
            p[i] = keep - hstep;
            double lm = loss_at(&f);
            p[i] = keep;
            double num = (lp - lm) / (2.0 * hstep);
            worst = fmax(worst, rel_err(num, g[i]));
            largest = fmax(largest, fabs(num));
        }
    }
    printf("  bridge %s attention %s: worst relative error %.2e (largest |dL/dstate| %.2e)\n",
           cell_name(cell), seq2seq_attention_name(attention), worst, largest);
    CU_ASSERT(worst < GRADCHECK_BOUND);
    CU_ASSERT(largest > 1e-3); /* the start state does reach the loss */
    free(dh0);
    free(dc0);
    fixture_free(&f);
}

static void test_gradcheck_bridge(void)
{
    bridge_case(CELL_LSTM, SEQ2SEQ_ATTN_NONE);
    bridge_case(CELL_GRU, SEQ2SEQ_ATTN_NONE);
    bridge_case(CELL_RNN, SEQ2SEQ_ATTN_NONE);
    bridge_case(CELL_LSTM, SEQ2SEQ_ATTN_DOT);
}

/* attn_forward against the definitions in attention.h, in double. */
static void test_attention_naive(void)
{
    enum { TT = 3, S = 5, BB = 2, H = 3 };
    float enc[S * BB * H], dec[TT * BB * H], wa[H * H], we[H * H], wd[H * H], bd[H], v[H];
    float keys[S * BB * H], q[TT * BB * H], a[BB * TT * S], ctx[TT * BB * H];
    const int32_t len[BB] = {S, 3};
    testlib_fill_uniform(enc, S * BB * H, 1.0f, 1);
    testlib_fill_uniform(dec, TT * BB * H, 1.0f, 2);
    testlib_fill_uniform(wa, H * H, 1.0f, 3);
    testlib_fill_uniform(we, H * H, 1.0f, 4);
    testlib_fill_uniform(wd, H * H, 1.0f, 5);
    testlib_fill_uniform(bd, H, 1.0f, 6);
    testlib_fill_uniform(v, H, 1.0f, 7);
    for (int kind = SEQ2SEQ_ATTN_DOT; kind <= SEQ2SEQ_ATTN_ADDITIVE; kind++) {
        attn_params p = {kind, TT, S, BB, H, wa, we, wd, bd, v};
        attn_io io = {enc, dec, len, keys, q, a, ctx};
        attn_forward(&p, &io);
        double worst = 0.0;
        for (int b = 0; b < BB; b++) {
            for (int t = 0; t < TT; t++) {
                const float *h = dec + (t * BB + b) * H;
                double e[S], mx = -INFINITY, sum = 0.0;
                for (int s = 0; s < len[b]; s++) {
                    const float *hs = enc + (s * BB + b) * H;
                    e[s] = 0.0;
                    for (int i = 0; i < H; i++) {
                        if (kind == SEQ2SEQ_ATTN_DOT) {
                            e[s] += (double)h[i] * hs[i];
                        } else if (kind == SEQ2SEQ_ATTN_GENERAL) {
                            double k = 0.0;
                            for (int j = 0; j < H; j++)
                                k += (double)wa[i * H + j] * hs[j];
                            e[s] += h[i] * k;
                        } else {
                            double z = bd[i];
                            for (int j = 0; j < H; j++)
                                z += (double)we[i * H + j] * hs[j] + (double)wd[i * H + j] * h[j];
                            e[s] += v[i] * tanh(z);
                        }
                    }
                    mx = fmax(mx, e[s]);
                }
                for (int s = 0; s < len[b]; s++)
                    sum += exp(e[s] - mx);
                for (int s = 0; s < S; s++) {
                    double ref = s < len[b] ? exp(e[s] - mx) / sum : 0.0;
                    worst = fmax(worst, fabs(ref - a[(b * TT + t) * S + s]));
                }
                for (int i = 0; i < H; i++) {
                    double c = 0.0;
                    for (int s = 0; s < len[b]; s++)
                        c += exp(e[s] - mx) / sum * enc[(s * BB + b) * H + i];
                    worst = fmax(worst, fabs(c - ctx[(t * BB + b) * H + i]));
                }
            }
        }
        printf("  attention %s: fast vs naive %.1e\n", seq2seq_attention_name(kind), worst);
        CU_ASSERT(worst < NAIVE_TOL);
    }
}

/* Source ids past a row's length and targets under mask 0 change nothing. */
static void test_padding_ignored(void)
{
    for (int a = 0; a < 4; a++) {
        fixture f, g;
        fixture_init(&f, CELL_LSTM, a, 2, 0);
        fixture_init(&g, CELL_LSTM, a, 2, 0);
        for (int i = 0; i < T * B; i++) {
            if (i / B >= src_len[i % B])
                g.x[i] = (g.x[i] + 2) % V;
            if (g.mask[i] == 0.0f)
                g.y[i] = VT - 1;
        }
        double lf = loss_at(&f), lg = loss_at(&g);
        model_zero_grads(&f.m);
        model_zero_grads(&g.m);
        model_backward(&f.m, &f.w, f.x, f.y, 1.0f, NULL, NULL);
        model_backward(&g.m, &g.w, g.x, g.y, 1.0f, NULL, NULL);
        double dg = testlib_max_rel_diff(f.m.grads, g.m.grads, f.m.n_params);
        printf("  attention %s: padding changed: loss %.1e, gradients %.1e\n",
               seq2seq_attention_name(a), fabs(lf - lg), dg);
        CU_ASSERT(fabs(lf - lg) <= 1e-6 * fabs(lf));
        CU_ASSERT(dg <= 1e-5);
        fixture_free(&f);
        fixture_free(&g);
    }
}

static void test_tensor_names(void)
{
    fixture f;
    fixture_init(&f, CELL_LSTM, SEQ2SEQ_ATTN_ADDITIVE, 2, 3);
    const char *names[] = {"out.weight", "out.bias", "attn.combine.weight", "attn.combine.bias",
                           "attn.enc.weight", "attn.dec.weight", "attn.dec.bias",
                           "attn.v.weight", "decoder.weight_ih_l1", "decoder.weight_hh_l0",
                           "decoder.bias_ih_l0", "decoder.bias_hh_l1", "tgt_embed.weight",
                           "encoder.weight_ih_l0", "encoder.weight_hh_l1", "encoder.bias_ih_l1",
                           "encoder.bias_hh_l0", "src_embed.weight"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CU_ASSERT_PTR_NOT_NULL(model_find_tensor(&f.m, names[i]));
    const model_tensor *t = model_find_tensor(&f.m, "attn.combine.weight");
    CU_ASSERT(t && t->shape[0] == HID && t->shape[1] == 2 * HID);
    t = model_find_tensor(&f.m, "out.weight");
    CU_ASSERT(t && t->shape[0] == VT && t->shape[1] == HID);
    CU_ASSERT(model_find_tensor(&f.m, "weight_ih_l0") == NULL);
    fixture_free(&f);
    fixture_init(&f, CELL_GRU, SEQ2SEQ_ATTN_NONE, 1, 0);
    t = model_find_tensor(&f.m, "decoder.weight_ih_l0");
    CU_ASSERT(t && t->transposed && t->shape[0] == 3 * HID && t->shape[1] == VT);
    CU_ASSERT(model_find_tensor(&f.m, "attn.combine.weight") == NULL);
    CU_ASSERT(seq2seq_attention_parse("general") == SEQ2SEQ_ATTN_GENERAL);
    /* the memory plan counts the parameters the model has */
    for (int a = 0; a < 4; a++)
        for (int e = 0; e <= 3; e += 3) {
            model_config c = f.m.cfg;
            c.head.attention = a;
            c.embed = e;
            model mm;
            model_build(&mm, &c);
            CU_ASSERT(memplan_params(&c) == mm.n_params);
            model_free(&mm);
        }
    CU_ASSERT(seq2seq_attention_parse("luong") == -1);
    fixture_free(&f);
}

/* log p(ids, then EOS | src) by teacher forcing: minus the summed loss. */
static double sequence_logprob(const model *m, const int32_t *src, int ls, const int32_t *ids,
                               int n)
{
    const int Tn = (ls > n + 1 ? ls : n + 1);
    model_work w;
    model_work_init(&w, m, Tn, 1);
    model_state s;
    model_state_init(&s, &m->cfg, 1);
    int32_t x[16] = {0}, y[16] = {0}, len[1] = {ls};
    memcpy(x, src, (size_t)ls * sizeof *x);
    memcpy(y, ids, (size_t)n * sizeof *y);
    y[n] = SEQ2SEQ_EOS;
    float mask[16] = {0};
    for (int t = 0; t <= n; t++)
        mask[t] = 1.0f;
    w.len = len;
    w.mask = mask;
    double lp = -model_forward(m, &w, &s, x, y, Tn, 0, 0);
    model_state_free(&s);
    model_work_free(&w);
    return lp;
}

/* Beam search with as many beams as there are sequences is exhaustive: it
 * must return the most probable sequence of at most MAXN symbols, found here
 * by scoring every one by teacher forcing; greedy equals beam 1; decoding
 * sources together gives what decoding them one by one gives. */
static void test_beam_search(void)
{
    enum { MAXN = 4, NSRC = 3 };
    const int K = 243; /* > 3^MAXN prefixes and > the 121 finished sequences: nothing pruned */
    model_config cfg = {.cell = CELL_LSTM, .vocab = V, .layers = 1, .hidden = HID,
                        .head = {.kind = HEAD_SEQ2SEQ, .classes = 5,
                                 .attention = SEQ2SEQ_ATTN_GENERAL}};
    model m;
    model_build(&m, &cfg);
    model_init_uniform(&m, 0.9f, 11, NAN);
    const int32_t s0[] = {1, 2, 3, 4}, s1[] = {0, 4}, s2[] = {2, 2, 1};
    const int32_t *src[NSRC] = {s0, s1, s2};
    const int slen[NSRC] = {4, 2, 3};
    seq2seq_hyp beam[NSRC], one[NSRC], greedy[NSRC], beam1[NSRC];
    seq2seq_decode_options ob = {K, MAXN, 0.0f, 1}, og = {1, MAXN, 0.0f, 0};
    CU_ASSERT(seq2seq_translate(&m, src, slen, NSRC, NSRC, &ob, beam) == 0);
    for (int i = 0; i < NSRC; i++)
        CU_ASSERT(seq2seq_translate(&m, &src[i], &slen[i], 1, 1, &ob, &one[i]) == 0);
    CU_ASSERT(seq2seq_translate(&m, src, slen, NSRC, 2, &og, greedy) == 0);
    og.beam = 1;
    CU_ASSERT(seq2seq_translate(&m, src, slen, NSRC, 1, &og, beam1) == 0);
    for (int i = 0; i < NSRC; i++) {
        /* brute force over the 1 + 3 + ... + 3^MAXN finished sequences */
        double best = -INFINITY;
        int32_t ids[MAXN];
        for (int n = 0; n <= MAXN; n++) {
            int total = 1;
            for (int k = 0; k < n; k++)
                total *= 3;
            for (int c = 0; c < total; c++) {
                for (int k = 0, v = c; k < n; k++, v /= 3)
                    ids[k] = SEQ2SEQ_SPECIALS + v % 3;
                best = fmax(best, sequence_logprob(&m, src[i], slen[i], ids, n));
            }
        }
        double got = beam[i].finished ? sequence_logprob(&m, src[i], slen[i], beam[i].ids,
                                                         beam[i].n)
                                      : -INFINITY;
        printf("  source %d: best log p %.5f by brute force, beam %d found %.5f (reported "
               "%.5f), greedy %.5f\n",
               i, best, K, got, beam[i].logprob, greedy[i].logprob);
        CU_ASSERT(beam[i].finished);
        CU_ASSERT(fabs(got - best) < 1e-4);
        CU_ASSERT(fabs(beam[i].logprob - got) < 1e-4);
        CU_ASSERT(greedy[i].logprob <= beam[i].logprob + 1e-6);
        /* together and one by one */
        CU_ASSERT(one[i].n == beam[i].n && fabs(one[i].logprob - beam[i].logprob) < 1e-5);
        CU_ASSERT(one[i].n == beam[i].n &&
                  memcmp(one[i].ids, beam[i].ids, (size_t)beam[i].n * sizeof(int32_t)) == 0);
        CU_ASSERT(beam1[i].n == greedy[i].n &&
                  memcmp(beam1[i].ids, greedy[i].ids, (size_t)greedy[i].n * sizeof(int32_t)) == 0);
        /* attention rows: one per symbol and EOS, each a distribution over the source */
        CU_ASSERT_PTR_NOT_NULL(beam[i].attn);
        for (int t = 0; beam[i].attn && t < beam[i].n + 1; t++) {
            double sum = 0.0;
            for (int s = 0; s < slen[i]; s++)
                sum += beam[i].attn[(size_t)t * beam[i].S + s];
            CU_ASSERT(fabs(sum - 1.0) < 1e-4);
        }
        seq2seq_hyp_free(&beam[i]);
        seq2seq_hyp_free(&one[i]);
        seq2seq_hyp_free(&greedy[i]);
        seq2seq_hyp_free(&beam1[i]);
    }
    model_free(&m);
}

static int to_cps(const char *s, uint32_t *out)
{
    int n = 0;
    for (size_t i = 0, len = strlen(s); i < len;) {
        int k = utf8_decode((const uint8_t *)s + i, len - i, &out[n++]);
        CU_ASSERT_FATAL(k > 0);
        i += (size_t)k;
    }
    return n;
}

static double chrf_of(const char *hyp, const char *ref)
{
    uint32_t h[256], r[256];
    chrf_stats st;
    memset(&st, 0, sizeof st);
    int nh = to_cps(hyp, h), nr = to_cps(ref, r);
    chrf_add(&st, h, nh, r, nr);
    return chrf_score(&st);
}

/* chrF: sacreBLEU's value on the pair of the Hugging Face chrF metric card
 * (61.576379378113785), a hand-computed pair, whitespace ignored, extremes. */
static void test_chrf(void)
{
    double a = chrf_of("The relationship between Obama and Netanyahu is not exactly friendly.",
                       "The ties between Obama and Netanyahu are not particularly friendly.");
    printf("  chrF %.6f (sacreBLEU 61.576379)\n", a);
    CU_ASSERT(fabs(a - 61.576379378113785) < 1e-6);
    /* abc vs abd: n=1 2/3, n=2 1/2, n=3 0/1 on both sides: P = R = 7/18 */
    CU_ASSERT(fabs(chrf_of("abc", "abd") - 100.0 * 7.0 / 18.0) < 1e-9);
    CU_ASSERT(fabs(chrf_of("a b  c", "abc") - 100.0) < 1e-9);
    CU_ASSERT(fabs(chrf_of("나는 집에 간다", "나는 집에 간다") - 100.0) < 1e-9);
    CU_ASSERT(chrf_of("xyz", "abc") == 0.0);
    CU_ASSERT(chrf_of("", "abc") == 0.0);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("seq2seq");
    testlib_add(s, "tensor names", test_tensor_names);
    testlib_add(s, "attention: fast vs naive", test_attention_naive);
    testlib_add(s, "gradcheck: every cell and attention", test_gradcheck_attention);
    testlib_add(s, "gradcheck: the bridge into the encoder", test_gradcheck_bridge);
    testlib_add(s, "padding changes nothing", test_padding_ignored);
    testlib_add(s, "beam search: exhaustive beam finds the best sequence", test_beam_search);
    testlib_add(s, "chrF against sacreBLEU and by hand", test_chrf);
    return testlib_run(argc, argv);
}
