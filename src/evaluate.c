/* Loss over a split (see evaluate.h). */
#include "crnn/evaluate.h"

int64_t evaluate_count(const Batches *b, int64_t max_batches) {
    return max_batches > 0 && max_batches < b->count ? max_batches : b->count;
}

double evaluate_batches(Model *m, const Batches *b, int32_t *x, int32_t *y, int64_t max_batches) {
    const int64_t count = evaluate_count(b, max_batches);
    if (b->B < 1 || count < 1) return 0.0;
    model_reset_state(m);
    model_set_dropout(m, 0, 0, 0, 0); /* evaluation uses the whole model */
    double total = 0;
    for (int64_t k = 0; k < count; k++) {
        dataset_batch(b, k, x, y);
        total += model_forward(m, x, y, b->B, b->S);
    }
    return total / (double)count;
}
