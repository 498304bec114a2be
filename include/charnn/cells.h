/* cells: the recurrent part of one layer over one chunk of T steps, for the
 * vanilla RNN (tanh), the LSTM and the GRU, with PyTorch's gate order and
 * formulas (torch.nn.RNN / LSTM / GRU):
 *
 *   RNN : h' = tanh(W_ih x + b_ih + W_hh h + b_hh)                       G = 1
 *   LSTM: [i f g o] = W_ih x + b_ih + W_hh h + b_hh                      G = 4
 *         i, f, o = sigmoid(.), g = tanh(.)
 *         c' = f * c + i * g ;  h' = o * tanh(c')
 *   GRU : r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)                      G = 3
 *         z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *         n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 *         h' = (1 - z) * n + z * h
 *
 * The input projection x W_ih^T + b_ih for all T steps is one GEMM done by the
 * caller (src/nn/stack.c); a cell only runs what must be sequential: the
 * per-step product h_{t-1} W_hh^T and the gate math. Each cell has a naive
 * reference (cells_naive.c) that the tests compare with.
 *
 * Rows may stop early: with len set, row b runs len[b] steps and then holds
 * its state (h_t = h_{t-1}, c_t = c_{t-1} for t >= len[b]), so hs[T] is the
 * state at the row's length. Backward ignores dL/dh_t from above at those
 * positions, passes the carried gradient through them unchanged and writes
 * zero pre-activation gradients there, so they add nothing to any weight,
 * bias or input gradient. Backward starts from an optional gradient of the
 * final state and can return the gradient of the initial one (dL/dh0, and
 * dL/dc0 for the LSTM): what seq2seq and conditioning on a state need.
 */
#ifndef CHARNN_CELLS_H
#define CHARNN_CELLS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CELL_RNN = 0, CELL_LSTM = 1, CELL_GRU = 2 } cell_kind;

/* "rnn", "lstm", "gru" */
const char *cell_name(cell_kind kind);
/* 0 and *out set, or -1 for an unknown name. */
int cell_parse(const char *name, cell_kind *out);
/* Gates per unit: 1, 4 or 3. */
int cell_gates(cell_kind kind);

/* One layer over one chunk. Shapes use G = cell_gates(kind). */
typedef struct {
    cell_kind kind;
    int T, B, H;
    const float *w_hh; /* (G*H, H) */
    const float *b_hh; /* (G*H) */
    float *gates;      /* (T, B, G*H) forward in: x W_ih^T + b_ih; out: activated gates.
                          backward out: dL/d(x-projection), the pre-activation gradient */
    float *hs;         /* (T+1, B, H) hs[0] = carried h (in), hs[1..T] = outputs */
    float *cs;         /* (T+1, B, H) LSTM only: cs[0] = carried c, cs[1..T] */
    float *hn;         /* (T, B, H) GRU only: W_hn h_{t-1} + b_hn, kept for backward */
    float *hproj;      /* (B, G*H) scratch (forward and backward) */
    float *wpack;      /* scratch for W_hh packed for the step's product, at least
                          cell_wpack_floats() floats, 64-byte aligned; NULL: unpacked */
    const int32_t *len; /* (B) optional: steps row b runs, 0..T; from len[b] on the row
                           holds its state, and its gates (and hn) are unspecified there.
                           NULL: every row runs all T steps */
} cell_chunk;

/* Backward scratch and results beside the cell_chunk. */
typedef struct {
    float *dh;      /* (T, B, H) in: dL/dh_t from above (decoder or next layer); destroyed */
    float *dgh_n;   /* (T, B, H) GRU only, out: dL/d(W_hn h_{t-1} + b_hn) = dn_pre * r.
                       The h-projection's r and z parts get the same gradient as the
                       x-projection's (left in gates), so only the n part is kept;
                       for RNN and LSTM the whole h-projection gradient is gates */
    float *dh_next; /* (B, H) scratch */
    float *dc_next; /* (B, H) scratch, LSTM only */
    float *dh_record; /* (T, B, H) optional: receives dL/dh_t (from above and from t+1) */
    float *dc_record; /* (T, B, H) optional, LSTM: receives dL/dc_t */
    const float *dh_final; /* (B, H) optional in: dL/dh_T, the gradient of the state left
                              after the chunk (hs[T], the state at each row's length);
                              NULL: zero (truncated BPTT) */
    const float *dc_final; /* (B, H) optional in, LSTM: dL/dc_T */
    float *dh0;       /* (B, H) optional out: dL/dh0, the gradient of hs[0] */
    float *dc0;       /* (B, H) optional out, LSTM: dL/dc0, the gradient of cs[0] */
    /* optional: called every few steps between the parallel regions (from the
     * calling thread), e.g. to let started all-reduces progress */
    void (*progress)(void *ctx);
    void *progress_ctx;
} cell_grads;

/* How many steps a cell backward runs between progress calls. */
#define CELL_PROGRESS_EVERY 4

/* Floats a cell_chunk's wpack needs (forward and backward packings) at the
 * precision set now (kern_pack_need): half as many in bf16. */
size_t cell_wpack_floats(cell_kind kind, int H);

void rnn_forward(const cell_chunk *c);
void rnn_backward(const cell_chunk *c, const cell_grads *g);
void lstm_forward(const cell_chunk *c);
void lstm_backward(const cell_chunk *c, const cell_grads *g);
void gru_forward(const cell_chunk *c);
void gru_backward(const cell_chunk *c, const cell_grads *g);

/* Dispatch on c->kind. */
void cell_forward(const cell_chunk *c);
void cell_backward(const cell_chunk *c, const cell_grads *g);

/* Naive references: scalar loops, no BLAS, no threads. Same contract. */
void cell_forward_naive(const cell_chunk *c);
void cell_backward_naive(const cell_chunk *c, const cell_grads *g);

#endif
