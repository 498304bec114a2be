/* What the seq2seq head (seq2seq.c) shares with decoding (seq2seq_decode.c):
 * its workspace, the decoder as a stack-only model view into the slab, and
 * the output layer after the decoder stack. Private to src/nn. */
#ifndef CHARNN_NN_SEQ2SEQ_IMPL_H
#define CHARNN_NN_SEQ2SEQ_IMPL_H

#include <stdint.h>

#include "attention.h"
#include "charnn/model.h"

typedef struct {
    int T, S, B;       /* capacity: decoder steps, source steps, rows */
    model_work dec;    /* the decoder stack's (buffers owned by the outer workspace) */
    float *h, *c;      /* (L, B, H) the decoder's running state */
    float *dh0, *dc0;  /* (L, B, H) its gradient at the start */
    int32_t *xd;       /* (T, B) decoder inputs: BOS, y_0, ... */
    int32_t *dlen;     /* (B) decoder steps per row */
    float *keys;       /* (S, B, H) */
    float *q;          /* (T, B, H) */
    float *a;          /* (B, T, S) */
    float *ctx;        /* (T, B, H) */
    float *cat;        /* (T, B, 2H) [ctx; h] */
    float *htil;       /* (T, B, H) tanh(W_c cat + b_c) */
    float *dhtil, *dcat, *dctx, *da, *dkeys, *dq, *dv; /* backward scratch */
} s2s_work;

/* A workspace for (T, S, B) in owner->head_ctx, buffers owned by owner. */
s2s_work *s2s_work_make(model_work *owner, const model *m, int T, int S, int B, int backward);
/* The decoder stack as a model (layers, embedding; grads too) over m's slab. */
void s2s_view(const model *m, model *view);
/* Logits (T * B, Vt) of the decoder's top states dtop (T, B, H) attending over
 * enc (S, B, H) with source lengths len (NULL: S). */
void s2s_output(const model *m, s2s_work *k, const float *dtop, int T, int B, const float *enc,
                int S, const int32_t *len, float *logits);

#endif
