/* What every backend shares (backend.h): the checks around the table of operations, and the
 * cells' recurrences reached by the cell's id (cell.h), so that the model asks the cell's spec
 * and never names a cell. */
#include "crnn/backend.h"

int backend_check(Backend *be, CrnnError *err) {
    return be && be->status ? be->status(be, err) : 0;
}

void backend_destroy(Backend *be) {
    if (be) be->destroy(be);
}

static void lstm_forward(Backend *be, const CellSeq *q) {
    be->lstm_forward(be, q->gates, q->W_h, q->hs, q->cs, q->S, q->B, q->H);
}
static void lstm_backward(Backend *be, const CellSeq *q) {
    be->lstm_backward(be, q->gates, q->W_h, q->cs, q->dhs, q->dc, q->S, q->B, q->H);
}
static void gru_forward(Backend *be, const CellSeq *q) {
    be->gru_forward(be, q->gates, q->gates_h, q->W_h, q->b_h, q->hs, q->S, q->B, q->H);
}
static void gru_backward(Backend *be, const CellSeq *q) {
    be->gru_backward(be, q->gates, q->gates_h, q->W_h, q->hs, q->dhs, q->S, q->B, q->H);
}
static void rnn_forward(Backend *be, const CellSeq *q) {
    be->rnn_forward(be, q->gates, q->W_h, q->hs, q->S, q->B, q->H);
}
static void rnn_backward(Backend *be, const CellSeq *q) {
    be->rnn_backward(be, q->gates, q->W_h, q->dhs, q->S, q->B, q->H);
}

typedef struct CellOps {
    void (*forward)(Backend *be, const CellSeq *q);
    void (*backward)(Backend *be, const CellSeq *q);
} CellOps;

/* One row per cell of cell.h, in its order. */
static const CellOps cell_ops[CELL_COUNT] = {
    [CELL_LSTM] = {lstm_forward, lstm_backward},
    [CELL_GRU] = {gru_forward, gru_backward},
    [CELL_RNN] = {rnn_forward, rnn_backward},
};

void backend_cell_forward(Backend *be, CellId id, const CellSeq *q) { cell_ops[id].forward(be, q); }
void backend_cell_backward(Backend *be, CellId id, const CellSeq *q) { cell_ops[id].backward(be, q); }
