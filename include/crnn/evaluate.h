/* The loss of a model over a whole split: zero state, carried from batch to batch; the mean
 * over batches of each batch's mean per-token loss (torch-rnn's eval). Shared by validation in
 * crnn-train and by crnn-eval. */
#ifndef CRNN_EVALUATE_H
#define CRNN_EVALUATE_H

#include "crnn/dataset.h"
#include "crnn/model.h"

/* x, y: host scratch of b->B * b->S each. Leaves the model's state at the split's end. */
double evaluate_batches(Model *m, const Batches *b, int32_t *x, int32_t *y);

#endif
