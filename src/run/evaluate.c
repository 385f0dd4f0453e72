/* Loss over a split (see evaluate.h). */
#include "crnn/evaluate.h"

#include <stdlib.h>

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

void evaluate_share(int64_t N, const Comm *c, int *first, int *count) {
    *first = (int)(c->rank * N / c->size);
    *count = (int)((c->rank + 1) * N / c->size) - *first;
}

int evaluate_add_shares(Comm *c, int ok, double mine, int64_t N, double *loss, CrnnError *err) {
    double *sums = NULL;
    if (ok && c->rank == 0 && !(sums = calloc((size_t)c->size, sizeof *sums))) {
        crnn_fail(err, "out of memory for the ranks' shares of the loss");
        ok = 0;
    }
    int rc = -1;
    if (comm_all_ok(c, ok, "could not compute its share of the loss", err) == 0 &&
        c->gather(c, &mine, sizeof mine, sums, 0, err) == 0) {
        if (c->rank == 0) {
            double total = 0;
            for (int k = 0; k < c->size; k++) total += sums[k];
            *loss = total / (double)N;
        }
        rc = 0;
    }
    free(sums);
    return rc;
}
