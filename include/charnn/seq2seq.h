/* seq2seq: the character-level encoder-decoder. The encoder is the model's
 * stack (stack.h) over the source, named "encoder.weight_ih_l{k}", ...,
 * "src_embed.weight"; everything else is the seq2seq head (head.h, HEAD_SEQ2SEQ,
 * src/nn/seq2seq.c): a decoder stack of the same cell, layers and width over
 * the target vocabulary ("decoder.weight_ih_l{k}", ..., "tgt_embed.weight"),
 * optional attention over the encoder's states (src/nn/attention.h) with
 * Luong's combination layer tanh(W_c [ctx; h] + b_c) ("attn.combine.*"), and
 * the output layer "out.weight" (Vt, H), "out.bias" (Vt). All of it lives in
 * the model's one parameter slab, so training, all-reduce, checkpoints and
 * PyTorch export treat it like any model (docs/pytorch.md).
 *
 * Training (teacher forcing): model_forward(x = source (T, B), y = target
 * (T, B)) with w->len the source lengths and w->mask the target mask. The
 * decoder starts from the encoder's final state of every layer (each row's
 * state at its length) and reads BOS, y_0, ..., y_{T-2}; it is trained to
 * emit y, which ends with EOS, padded with EOS under mask 0. In backward the
 * decoder's dL/dh0 (dL/dc0) becomes the encoder's dL/d(final state)
 * (model_work.dh_final) and the attention's dL/denc its dL/dtop.
 *
 * Target vocabulary: id 0 is EOS (also the padding), id 1 is BOS, ids 2..
 * the target symbols in ascending order (seq2seq_target_* below); a
 * checkpoint stores its names as /labels.
 *
 * Attention is Luong-style throughout (no input feeding): the decoder stack
 * runs first, then every step attends with its top state, so training stays
 * one stack pass per side. "additive" is Bahdanau's scoring function
 * v . tanh(W_e enc + W_d dec + b) applied to the current top state.
 */
#ifndef CHARNN_SEQ2SEQ_H
#define CHARNN_SEQ2SEQ_H

#include <stdint.h>

#include "charnn/model.h"
#include "charnn/vocab.h"

enum { SEQ2SEQ_EOS = 0, SEQ2SEQ_BOS = 1, SEQ2SEQ_SPECIALS = 2 };

typedef enum {
    SEQ2SEQ_ATTN_NONE = 0,
    SEQ2SEQ_ATTN_DOT = 1,
    SEQ2SEQ_ATTN_GENERAL = 2,
    SEQ2SEQ_ATTN_ADDITIVE = 3,
} seq2seq_attention;

/* "none", "dot", "general", "additive" -> SEQ2SEQ_ATTN_*, or -1; and back. */
int seq2seq_attention_parse(const char *name);
const char *seq2seq_attention_name(int kind);

/* The target vocabulary's names (for /labels): "</s>", "<s>", then each
 * symbol of v as UTF-8. *out gets Vt = v->size + 2 malloc'd strings. */
int seq2seq_target_labels(const vocab *v, char ***out, int *n);
/* Back: the symbols of labels 2.. into a vocabulary (code points). */
int seq2seq_target_vocab(char *const *labels, int n, vocab *v);

/* After a forward: the attention weights (B, T, S) with S = T of that forward,
 * NULL without attention. */
const float *seq2seq_attention_weights(const model_work *w);
/* After a forward: the decoder's states of layer l, (T + 1, B, H), row 0 the
 * start state (the encoder's final state). */
const float *seq2seq_decoder_states(const model_work *w, int l);

/* Decoding. */
typedef struct {
    int beam;             /* 1: greedy */
    int max_len;          /* target symbols at most, EOS excluded */
    float length_penalty; /* beam score = log p / ((5 + n) / 6)^alpha (GNMT); 0: plain log p */
    int want_attention;   /* fill seq2seq_hyp.attn */
} seq2seq_decode_options;

typedef struct {
    int32_t *ids;   /* (n) target ids, no BOS/EOS */
    int n;
    int finished;   /* 1: ended with EOS; 0: stopped at max_len */
    double logprob; /* natural log probability of ids (and EOS when finished) */
    double score;   /* what beam search ranked by */
    float *attn;    /* (n + finished, S) weights of each emitted symbol over the source, or NULL */
    int S;
} seq2seq_hyp;

/* Translate n sources (src[i] of src_len[i] >= 1 source ids), decoding up to
 * `rows` sources at a time; out[i] is filled (free with seq2seq_hyp_free).
 * 0, or -1 with a message. */
int seq2seq_translate(const model *m, const int32_t *const *src, const int *src_len, int n,
                      int rows, const seq2seq_decode_options *o, seq2seq_hyp *out);
void seq2seq_hyp_free(seq2seq_hyp *h);

#endif
