/* The recurrent cells crnn knows, one row each in one table (src/model/cell.c): what the model, the
 * checkpoint and the training loop ask of a cell. Equations and block order: docs/FORMATS.md
 * section 3. The cells' recurrences are reached by the cell's id through each backend's cell
 * table (Backend.cell, backend_cell_forward; backend.h). docs/DESIGN.md, "Adding a cell", lists
 * the steps. */
#ifndef CRNN_CELL_H
#define CRNN_CELL_H

#include <stddef.h>

/* A cell's index in the table and in each backend's cell table (Backend.cell). */
typedef enum CellId { CELL_LSTM, CELL_GRU, CELL_RNN, CELL_COUNT } CellId;

typedef struct CellSpec {
    const char *name; /* the -model_type value and the checkpoint's model_type attribute */
    CellId id;
    int gates;        /* G: column blocks of width H in W_x, W_h, b_x, b_h */
    int has_cell_state; /* a second state c beside h (lstm): cs buffers, /c in checkpoints */
    /* The recurrent bias b_h stays apart from the input projection (gru: r multiplies
     * h W_hn + b_hn), so the recurrence adds it and keeps h W_h + b_h (gates_h); otherwise
     * b_h is folded into the input projection and db_h equals db_x. */
    int recurrent_bias_apart;
    int forget_block; /* the block of b_x that starts at 1 (lstm's f), or -1 */
} CellSpec;

/* The cell named name, or NULL. */
const CellSpec *cell_find(const char *name);
/* The cell of id id (id < CELL_COUNT). */
const CellSpec *cell_get(CellId id);
/* The names for a message: "lstm, gru or rnn" with last_word "or". Returns buf. */
const char *cell_names(char *buf, size_t size, const char *last_word);

#endif
