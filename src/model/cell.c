/* The table of cells (cell.h). A new cell is a row here and its kernels (docs/DESIGN.md,
 * "Adding a cell"). */
#include "crnn/cell.h"

#include <stdio.h>
#include <string.h>

static const CellSpec cells[CELL_COUNT] = {
    [CELL_LSTM] = {.name = "lstm", .id = CELL_LSTM, .gates = 4, .has_cell_state = 1,
                   .recurrent_bias_apart = 0, .forget_block = 1},
    [CELL_GRU] = {.name = "gru", .id = CELL_GRU, .gates = 3, .has_cell_state = 0,
                  .recurrent_bias_apart = 1, .forget_block = -1},
    [CELL_RNN] = {.name = "rnn", .id = CELL_RNN, .gates = 1, .has_cell_state = 0,
                  .recurrent_bias_apart = 0, .forget_block = -1},
};

const CellSpec *cell_find(const char *name) {
    for (int k = 0; k < CELL_COUNT; k++)
        if (name && strcmp(cells[k].name, name) == 0) return &cells[k];
    return NULL;
}

const CellSpec *cell_get(CellId id) { return &cells[id]; }

const char *cell_names(char *buf, size_t size, const char *last_word) {
    size_t len = 0;
    buf[0] = 0;
    for (int k = 0; k < CELL_COUNT && len < size; k++) {
        const char *sep = k == 0 ? "" : k == CELL_COUNT - 1 ? " " : ", ";
        int n = snprintf(buf + len, size - len, "%s%s%s%s", sep, k > 0 && k == CELL_COUNT - 1 ? last_word : "",
                         k > 0 && k == CELL_COUNT - 1 ? " " : "", cells[k].name);
        if (n < 0) break;
        len += (size_t)n;
    }
    return buf;
}
