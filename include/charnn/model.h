/* model: "stack + head": input (one-hot gather or embedding) -> L stacked
 * recurrent layers (src/nn/stack.c) -> an output head (head.h; the language
 * model's linear decoder + softmax cross-entropy in src/heads/head_lm.c, the
 * classifier's pooling + linear + softmax in src/heads/head_classify.c).
 *
 * Every parameter lives in one slab (model.params) and every gradient in a
 * second slab of the same layout (model.grads), so one all-reduce covers all
 * gradients. Tensors are views into the slabs. The slab is ordered by when the
 * backward pass finishes each part: the head's tensors (decoder.weight,
 * decoder.bias for the language model), layer L-1, ..., layer 0 with the
 * embedding; each of these is a "bucket" (a contiguous range) that can be
 * all-reduced as soon as its backward is done.
 *
 * Names and shapes follow PyTorch's state_dict (weight_ih_l{k} (G*H, D), ...)
 * so checkpoints exchange weights with torch.nn.RNN/LSTM/GRU. One exception
 * inside the slab: with one-hot input, layer 0's input weights are stored
 * transposed, (V, G*H), so that a token's column is one contiguous row to
 * gather; model_tensor.transposed marks it and checkpoints export (G*H, V).
 *
 * Bidirectional stacks (model_config.bidirectional) give every layer a second
 * set of tensors, named as PyTorch names them (weight_ih_l{k}_reverse, ...),
 * in the layer's bucket after the forward ones; layer l > 0 reads both
 * directions of the layer below, so its weight_ih has 2H columns, and the
 * head reads 2H features (model_top_width). The carried state then holds
 * L*2 (layer, direction) slices in torch's h_n order: layer l's forward at
 * 2l, its reverse at 2l+1; the reverse's "final" state is the one after it
 * read the row's first character.
 *
 * Without a stack (layers 0, mlp.h) the model is a plain MLP over its
 * condition vector: one tanh layer (mlp.weight, mlp.bias in bucket 1) under a
 * per-row head; for classify --features only.
 *
 * Ownership: model owns its slabs (the head's tensors are views into them);
 * model_work owns the activations of one chunk for a given (T, B), the head's
 * buffers included (model_work.head); model_state owns the carried hidden
 * state.
 */
#ifndef CHARNN_MODEL_H
#define CHARNN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "charnn/cells.h"

#define MODEL_MAX_LAYERS 16
/* the seq2seq head holds a whole decoder stack, attention and its output */
#define HEAD_MAX_TENSORS (4 * MODEL_MAX_LAYERS + 12)
#define HEAD_MAX_BUFFERS 4
/* per layer: 4 stack tensors per direction and up to 4 condition tensors
 * (cond.h); the embedding; the head's */
#define MODEL_MAX_TENSORS (12 * MODEL_MAX_LAYERS + 5 + HEAD_MAX_TENSORS)

typedef enum { HEAD_LM = 0, HEAD_CLASSIFY = 1, HEAD_SEQ2SEQ = 2, HEAD_TAG = 3 } head_kind;
typedef enum { HEAD_POOL_LAST = 0, HEAD_POOL_MEAN = 1, HEAD_POOL_MAX = 2 } head_pool;

/* The head on top of the stack; all zeros is the language model's. */
typedef struct {
    head_kind kind;
    int classes;    /* C, classify: outputs; tag: the K tags (the lm head outputs the
                       vocabulary) */
    head_pool pool; /* classify: how the top states of a row become one vector */
    int attention;  /* seq2seq: SEQ2SEQ_ATTN_* (seq2seq.h); classes is then the
                       target vocabulary, BOS/EOS included */
} head_config;

/* How a condition vector enters the stack (cond.h); COND_NONE, the default,
 * is an unconditioned model. */
typedef enum { COND_NONE = 0, COND_INIT = 1, COND_INPUT = 2, COND_EVERY = 3 } cond_mode;

typedef struct {
    cond_mode mode;
    int dim; /* D: the condition's width, > 0 with a mode */
    int standardize; /* 1: c is first standardised by the tensors features.mean and
                        features.std (D), set from the data, never trained */
} cond_config;

/* The MLP's activation (layers 0, mlp.h). */
typedef enum { MLP_TANH = 0, MLP_RELU = 1 } mlp_activation;

typedef struct {
    cell_kind cell;
    int vocab;        /* V */
    int layers;       /* L; 0: no stack, an MLP over the condition (mlp.h) */
    int hidden;       /* H */
    int embed;        /* E; 0 = one-hot input */
    float dropout;    /* drop probability on the outputs of layers 0..L-2, training only */
    int bidirectional; /* 1: every layer also runs over each row reversed (its own length);
                          a layer outputs [forward; reverse] (2H), as torch's
                          bidirectional=True */
    head_config head; /* what sits on top (default: the language model's decoder) */
    cond_config cond; /* conditioning (default: none) */
    mlp_activation mlp_act; /* layers 0: the hidden layer's activation (default tanh) */
} model_config;

typedef struct head_ops head_ops; /* head.h */

/* The condition's tensors (cond.h), NULL where the mode has none. */
typedef struct {
    float *w_h[MODEL_MAX_LAYERS]; /* init: (H, D) */
    float *b_h[MODEL_MAX_LAYERS]; /* init: (H) */
    float *w_c[MODEL_MAX_LAYERS]; /* init, LSTM: (H, D) */
    float *b_c[MODEL_MAX_LAYERS]; /* init, LSTM: (H) */
    float *w_in;                  /* input, every: (G*H, D) */
    float *mean, *std;            /* standardize: (D) each */
} model_cond;

typedef struct {
    char name[32];  /* PyTorch state_dict name, e.g. "weight_ih_l0", "decoder.weight" */
    size_t offset;  /* first element in the slab */
    size_t size;    /* elements */
    int ndim;       /* 1 or 2 */
    int shape[2];   /* shape as exported (PyTorch's) */
    int transposed; /* 1: stored as (shape[1], shape[0]) in the slab */
    int is_bias;    /* biases get no weight decay */
    int bucket;     /* all-reduce bucket holding it */
} model_tensor;

typedef struct {
    float *w_ih; /* (G*H, D), or (V, G*H) for layer 0 with one-hot input */
    float *w_hh; /* (G*H, H) */
    float *b_ih; /* (G*H) */
    float *b_hh; /* (G*H) */
} model_layer;

typedef struct {
    model_config cfg;
    int gates; /* G */
    size_t n_params;
    float *params; /* (n_params) the parameter slab */
    float *grads;  /* (n_params) the gradient slab, same layout */
    model_layer layer[MODEL_MAX_LAYERS];  /* views into params */
    model_layer glayer[MODEL_MAX_LAYERS]; /* the same views into grads */
    model_layer layer_rev[MODEL_MAX_LAYERS];  /* bidirectional: the reverse direction */
    model_layer glayer_rev[MODEL_MAX_LAYERS];
    float *embed, *gembed; /* (V, E), NULL with one-hot input */
    model_cond cond, gcond; /* views into params / grads; all NULL without a condition */
    struct {
        float *w; /* (H, D) mlp.weight */
        float *b; /* (H) mlp.bias */
    } mlp, gmlp;  /* layers 0 (mlp.h): views into params / grads, else NULL */
    struct {
        const head_ops *ops;
        int outputs;                       /* K: the size of the output distribution */
        int n_tensors;                     /* declared by the head, in slab order */
        int tensor[HEAD_MAX_TENSORS];      /* their indices in the tensor table */
        float *p[HEAD_MAX_TENSORS];        /* views into params, e.g. (V, H), (V) for lm */
        float *g[HEAD_MAX_TENSORS];        /* the same views into grads */
    } head;
    int n_tensors;
    model_tensor tensor[MODEL_MAX_TENSORS];
    int n_buckets; /* 1 + L: the head, then layers top to bottom (layers 0: the head, the MLP) */
    size_t bucket_offset[MODEL_MAX_LAYERS + 1];
    size_t bucket_size[MODEL_MAX_LAYERS + 1];
} model;

/* Carried state between chunks, per stream. */
typedef struct {
    int layers, batch, hidden; /* layers: L, or 2L slices for a bidirectional stack */
    float *h; /* (L, B, H), bidirectional (L*2, B, H) (see above) */
    float *c; /* the same, LSTM only, else NULL */
} model_state;

/* Activations of one chunk, sized for at most T steps of B streams. */
typedef struct {
    int T, B;
    int t_used;                          /* steps in the last forward */
    float *gates[MODEL_MAX_LAYERS];      /* (T, B, G*H) */
    float *hs[MODEL_MAX_LAYERS];         /* (T+1, B, H) */
    float *cs[MODEL_MAX_LAYERS];         /* (T+1, B, H) LSTM */
    float *hn[MODEL_MAX_LAYERS];         /* (T, B, H) GRU */
    float *dropped[MODEL_MAX_LAYERS];    /* (T, B, H) dropout(output of layer l), l < L-1 */
    uint64_t dropout_key[MODEL_MAX_LAYERS];
    int dropout_on;                      /* masks applied in the last forward */
    float *emb;                          /* (T, B, E) embedded input, E > 0 */
    float *hproj;                        /* (B, G*H) */
    float *wpack;                        /* a layer's W_hh packed for the step products */
    size_t wpack_floats;                 /* its size: cell_wpack_floats at allocation */
    float *dgh_n;                        /* (T, B, H) GRU only */
    float *dh_a;                         /* (T, B, max(top width, E)) gradient from the head */
    float *dh_b;                         /* (T, B, max(H, E)) a second one, only where
                                            stack_backward has no spare buffer */
    float *dh_next, *dc_next;            /* (B, H) */
    /* bidirectional only: the reverse direction's buffers have the forward's
     * shapes and run in reversed time: row b's step t is its position
     * len[b]-1-t (t < len[b]; padded positions keep their place) */
    float *gates_rev[MODEL_MAX_LAYERS];  /* (T, B, G*H) */
    float *hs_rev[MODEL_MAX_LAYERS];     /* (T+1, B, H) */
    float *cs_rev[MODEL_MAX_LAYERS];     /* (T+1, B, H) LSTM */
    float *hn_rev[MODEL_MAX_LAYERS];     /* (T, B, H) GRU */
    float *out[MODEL_MAX_LAYERS];        /* (T, B, 2H) layer l's [forward; reverse] output
                                            at each position, in input time */
    int32_t *rev_pos;                    /* (T*B) position t*B+b <-> its place in reversed
                                            time (an involution) */
    int32_t *x_rev;                      /* (T, B) one-hot input: the tokens in reversed time */
    float *rev_in;                       /* (T, B, max(2H, E)) a layer's input in reversed
                                            time, and backward's scratch */
    float *dh_dir;                       /* (2, T, B, H) backward: dL/dh of each direction */
    struct {
        int n;                           /* targets in the last forward: T*B or B */
        int K;                           /* outputs per target */
        float *prob;                     /* (T*B or B, K) output distribution, then dlogits */
        float *loss;                     /* (T*B or B) masked loss of each target, nats */
        float *buf[HEAD_MAX_BUFFERS];    /* the head's own buffers (see its file) */
    } head;
    /* optional, owned by the caller (NULL by default): */
    const float *mask;                   /* (T*B) or (B), y's shape: weight of each target's
                                            loss in forward and backward, 0 = padding */
    const int32_t *len;                  /* (B) steps row b runs, 0..T; from len[b] on the
                                            row's state stays as it was (so the state left in
                                            model_state is the one at the row's length), the
                                            gradient from above there is ignored and those
                                            positions add nothing to any gradient; x there
                                            must still be valid ids (NULL: all T steps) */
    float *dh0;                          /* (L, B, H) (bidirectional: (2L, B, H), as
                                            model_state) receives dL/dh0, the gradient of the state
                                            the chunk started from (NULL: not wanted); zero
                                            when cond init replaced that state */
    float *dc0;                          /* (L, B, H) LSTM: receives dL/dc0 */
    const float *dh_final;               /* (L, B, H) in: dL/d(state after the chunk), i.e. of
                                            the state at each row's length, e.g. a decoder's
                                            dL/dh0 (NULL: zero, truncated BPTT) */
    const float *dc_final;               /* (L, B, H) LSTM: dL/d(cell state after the chunk) */
    float *dh_record[MODEL_MAX_LAYERS];  /* (T, B, H) receives dL/dh_t of layer l (forward
                                            direction) */
    float *dc_record[MODEL_MAX_LAYERS];  /* (T, B, H) receives dL/dc_t of layer l (LSTM) */
    const float *cond;                   /* (B, D) the condition of each row (cond.h), NULL:
                                            none */
    int cond_first;                      /* 1: this chunk starts the rows' sequences (init
                                            sets the state from cond, input adds it at step
                                            0); 0: it continues them (only every adds it) */
    void (*progress)(void *ctx);         /* called now and then during backward */
    void *progress_ctx;
    void *head_ctx;                      /* a head's own state (seq2seq's decoder), malloc'd;
                                            freed by model_work_free */
    /* the condition's (cond.h), allocated for conditional models only: */
    int cond_on;                         /* the cond_mode the last forward applied */
    float *cond_proj;                    /* (B, G*H) input/every: c W^T; backward: the summed
                                            gate gradients */
    float *cond_dh0, *cond_dc0;          /* (L, B, H) init: dL/d(state set from c) */
    float *cond_std;                     /* (B, D) standardize: the standardised condition */
    float *mlp_h;                        /* (B, H) layers 0: the MLP's hidden layer (mlp.h) */
    /* every buffer above that model_work_init allocated, with its length */
    int n_owned;
    struct {
        float *p;
        size_t n;
    } owned[2 * (10 * MODEL_MAX_LAYERS + 12) + 24 + 4 + HEAD_MAX_BUFFERS];
} model_work;

/* Called when the gradients of `bucket` are final during model_backward. */
typedef void (*model_bucket_fn)(void *ctx, int bucket);

/* 0 or -1 with a message naming the bad field. */
int model_config_check(const model_config *cfg);
/* Directions per layer: 1, or 2 when bidirectional. */
int model_directions(const model_config *cfg);
/* Features per position of the top states the head reads: H, or 2H when
 * bidirectional. */
int model_top_width(const model_config *cfg);
void model_build(model *m, const model_config *cfg);
void model_free(model *m);
/* Uniform init in [-scale, scale] from seed (char-rnn's default 0.08); then, for
 * the LSTM, set the forget-gate biases (b_ih and b_hh each get half) to
 * forget_bias unless it is NaN: of every tensor named *bias_ih_l{k} or
 * *bias_hh_l{k}, so a head's own stack (seq2seq's decoder) gets it too. */
void model_init_uniform(model *m, float scale, uint64_t seed, float forget_bias);
/* The tensor named `name`, or NULL. */
const model_tensor *model_find_tensor(const model *m, const char *name);
/* Mask over the slab: 1 for weights, 0 for biases (used by weight decay). */
void model_fill_decay_mask(const model *m, uint8_t *mask);
void model_zero_grads(model *m);

void model_state_init(model_state *s, const model_config *cfg, int B);
void model_state_reset(model_state *s);
void model_state_free(model_state *s);

/* For heads: append a tensor of (rows, cols) (cols 0: a vector) to the table,
 * in bucket 0, recorded as the head's next tensor. */
void model_head_add_tensor(model *m, const char *name, int rows, int cols, int is_bias);
/* The same for a (rows, cols) weight stored transposed, (cols, rows), as layer
 * 0's one-hot input weights are (a decoder stack's). */
void model_head_add_transposed(model *m, const char *name, int rows, int cols);
/* For cond.c: the same in any bucket, not recorded as the head's. */
void model_add_tensor(model *m, const char *name, int rows, int cols, int is_bias, int bucket);

void model_work_init(model_work *w, const model *m, int T, int B);
/* For heads holding a second stack (seq2seq's decoder): the stack's buffers
 * of m (layers, cells, embedding; no head) for (T, B) into w, allocated in and
 * owned by owner (an initialised workspace, w's own buffers are none). */
void model_work_init_stack(model_work *w, model_work *owner, const model *m, int T, int B);
/* For heads: a zeroed buffer of n floats owned (and released, freed) by w. */
float *model_work_alloc(model_work *w, size_t n);
void model_work_free(model_work *w);
/* Hand the pages of w's buffers back to the system (their contents become
 * zeros; the next forward refills them). Between steps nothing in w is live,
 * so a checkpoint write can use that memory instead of adding to the peak. */
void model_work_release(model_work *w);

/* Forward over T <= w->T steps of tokens x (T, B), targets y (T, B) for a
 * per-step head, (B) for a per-row head, or NULL. Starts from s and leaves s
 * at the state after the chunk. With train != 0 and cfg.dropout > 0 applies
 * dropout with masks keyed by dropout_key. Leaves the output distribution and
 * the per-target loss in w->head (read them with head_output,
 * head_target_prob); returns the summed (masked) loss in nats (0 when y is
 * NULL). */
double model_forward(const model *m, model_work *w, model_state *s, const int32_t *x,
                     const int32_t *y, int T, int train, uint64_t dropout_key);

/* Backward of the last forward (which must have had targets): adds the
 * gradient of grad_scale * (summed loss) into m->grads. Calls on_bucket after
 * each bucket is final (may be NULL). */
void model_backward(model *m, model_work *w, const int32_t *x, const int32_t *y,
                    float grad_scale, model_bucket_fn on_bucket, void *ctx);

#endif
