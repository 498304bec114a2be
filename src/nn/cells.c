/* Cell names and dispatch. The math lives in {rnn,lstm,gru}_{forward,backward}.c. */
#include "charnn/cells.h"

#include <string.h>

#include "charnn/common.h"
#include "charnn/kernels.h"

static const char *const cell_names[] = {"rnn", "lstm", "gru"};

const char *cell_name(cell_kind kind)
{
    CHARNN_ASSERT(kind >= CELL_RNN && kind <= CELL_GRU);
    return cell_names[kind];
}

int cell_parse(const char *name, cell_kind *out)
{
    for (int k = CELL_RNN; k <= CELL_GRU; k++) {
        if (strcmp(name, cell_names[k]) == 0) {
            *out = (cell_kind)k;
            return 0;
        }
    }
    return -1;
}

int cell_gates(cell_kind kind)
{
    switch (kind) {
    case CELL_RNN:
        return 1;
    case CELL_LSTM:
        return 4;
    case CELL_GRU:
        return 3;
    }
    CHARNN_ASSERT(!"unknown cell kind");
    return 0;
}

void cell_forward(const cell_chunk *c)
{
    switch (c->kind) {
    case CELL_RNN:
        rnn_forward(c);
        return;
    case CELL_LSTM:
        lstm_forward(c);
        return;
    case CELL_GRU:
        gru_forward(c);
        return;
    }
    CHARNN_ASSERT(!"unknown cell kind");
}

void cell_backward(const cell_chunk *c, const cell_grads *g)
{
    switch (c->kind) {
    case CELL_RNN:
        rnn_backward(c, g);
        return;
    case CELL_LSTM:
        lstm_backward(c, g);
        return;
    case CELL_GRU:
        gru_backward(c, g);
        return;
    }
    CHARNN_ASSERT(!"unknown cell kind");
}

size_t cell_wpack_floats(cell_kind kind, int H)
{
    const int GH = cell_gates(kind) * H;
    size_t fwd = kern_pack_need(GH, H), bwd = kern_pack_need(H, GH);
    return fwd > bwd ? fwd : bwd;
}
