/* The loss of a model over a whole split: zero state, carried from batch to batch; the mean
 * over batches of each batch's mean per-token loss (torch-rnn's eval). Shared by validation in
 * crnn-train and by crnn-eval. */
#ifndef CRNN_EVALUATE_H
#define CRNN_EVALUATE_H

#include "crnn/comm.h"
#include "crnn/dataset.h"
#include "crnn/model.h"

/* x, y: host scratch of b->B * b->S each. Evaluates the first max_batches batches (0 or more
 * than there are: all of them). Leaves the model's state where it stopped. A Batches of no
 * streams (b->B == 0, a rank without a share of a small split) gives 0. */
double evaluate_batches(Model *m, const Batches *b, int32_t *x, int32_t *y, int64_t max_batches);

/* The batches evaluate_batches(..., max_batches) evaluates. */
int64_t evaluate_count(const Batches *b, int64_t max_batches);

/* A view of N streams shared among the ranks (docs/FORMATS.md section 2): this rank evaluates streams
 * *first .. *first + *count - 1, as evenly as they go (*count 0 for the ranks past N when
 * N < P). */
void evaluate_share(int64_t N, const Comm *c, int *first, int *count);

/* Every rank, together: mine is this rank's evaluate_batches times its streams, ok whether it
 * got it. On rank 0 *loss gets the ranks' shares added and divided by the N streams: the loss of
 * one rank evaluating all N, up to float summation order. -1 with err when any rank failed. */
int evaluate_add_shares(Comm *c, int ok, double mine, int64_t N, double *loss, CrnnError *err);

#endif
