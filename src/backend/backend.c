/* What every backend shares (backend.h): the checks around the table of operations, and the
 * cells' recurrences reached by the cell's id (cell.h) through each backend's cell table, so
 * that the model asks the cell's spec and never names a cell. */
#include "crnn/backend.h"

#include <stdio.h>
#include <stdlib.h>

int backend_check(Backend *be, CrnnError *err) {
    return be && be->status ? be->status(be, err) : 0;
}

int backend_set_precision(Backend *be, Precision p, CrnnError *err) {
    if (be->set_precision) return be->set_precision(be, p, err);
    if (p == PRECISION_FLOAT32) return 0;
    return crnn_fail_usage(err, "-precision bf16 is not available on the %s backend yet; use -precision float32, or -gpu -1 for the CPU",
                           be->name);
}

void backend_destroy(Backend *be) {
    if (be) be->destroy(be);
}

/* be's row for cell id, with both recurrences set: a backend that lacks one is a bug. */
static const CellOps *cell_row(const Backend *be, CellId id) {
    const CellOps *row = (unsigned)id < CELL_COUNT ? &be->cell[id] : NULL;
    if (!row || !row->forward || !row->backward) {
        fprintf(stderr, "internal error: the %s backend has no recurrence for cell %s (id %d)\n",
                be->name, row ? cell_get(id)->name : "?", (int)id);
        abort();
    }
    return row;
}

void backend_cell_forward(Backend *be, CellId id, const CellSeq *q) { cell_row(be, id)->forward(be, q); }
void backend_cell_backward(Backend *be, CellId id, const CellSeq *q) { cell_row(be, id)->backward(be, q); }
