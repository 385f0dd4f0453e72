/* Loss over a split (see evaluate.h). */
#include "crnn/evaluate.h"

double evaluate_batches(Model *m, const Batches *b, int32_t *x, int32_t *y) {
    model_reset_state(m);
    model_set_dropout(m, 0, 0, 0, 0); /* evaluation uses the whole model */
    double total = 0;
    for (int64_t k = 0; k < b->count; k++) {
        dataset_batch(b, k, x, y);
        total += model_forward(m, x, y, b->B, b->S);
    }
    return b->count > 0 ? total / (double)b->count : 0.0;
}
