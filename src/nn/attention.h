/* attention: Luong dot/general and Bahdanau additive attention of T decoder
 * states over S encoder states per row, masked over source padding. Private
 * to the seq2seq head (seq2seq.c) and its decoding (translate.c).
 *
 * Time-major like the stacks: enc (S, B, H), dec (T, B, H). The weights a
 * are row-major per batch row: (B, T, S), a[b][t][s] = 0 for s >= len[b].
 *   dot:      score(t, s) = dec_t . enc_s
 *   general:  score(t, s) = dec_t . (W_a enc_s)               attn.weight (H, H)
 *   additive: score(t, s) = v . tanh(W_e enc_s + W_d dec_t + b_d)
 *             attn.enc.weight (H, H), attn.dec.weight (H, H), attn.dec.bias (H),
 *             attn.v.weight (1, H)
 * ctx_t = sum_s a(t, s) enc_s with a = softmax over s < len[b].
 */
#ifndef CHARNN_NN_ATTENTION_H
#define CHARNN_NN_ATTENTION_H

#include <stdint.h>

typedef struct {
    int kind;            /* SEQ2SEQ_ATTN_DOT, _GENERAL, _ADDITIVE */
    int T, S, B, H;
    const float *wa;     /* general: (H, H) */
    const float *we, *wd, *bd, *v; /* additive: (H, H), (H, H), (H), (H) */
} attn_params;

typedef struct {
    float *wa, *we, *wd, *bd, *v; /* the gradients, same shapes (added into) */
} attn_grads;

typedef struct {
    const float *enc;    /* (S, B, H) */
    const float *dec;    /* (T, B, H) */
    const int32_t *len;  /* (B) source lengths, 1..S; NULL: all S */
    float *keys;         /* (S, B, H) general: W_a enc; additive: W_e enc */
    float *q;            /* (T, B, H) additive: W_d dec + b_d */
    float *a;            /* (B, T, S) the weights */
    float *ctx;          /* (T, B, H) the contexts */
} attn_io;

/* Fill keys, q, a and ctx. */
void attn_forward(const attn_params *p, const attn_io *io);
/* Given dL/dctx (T, B, H): add dL/ddec into ddec (T, B, H), dL/denc into
 * denc (S, B, H) and the weights' gradients into g. Scratch: da (B, T, S),
 * dkeys (S, B, H), dq (T, B, H), dv (B, H). */
void attn_backward(const attn_params *p, const attn_grads *g, const attn_io *io,
                   const float *dctx, float *ddec, float *denc, float *da, float *dkeys,
                   float *dq, float *dv);

#endif
