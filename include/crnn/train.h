/* The training loop: batches, steps, validation, checkpoints, resume, signals, progress.
 * It reads its settings from the parsed flags of crnn-train (FORMATS.md section 5), so that
 * the checkpoint's /config records exactly the flags of the run. */
#ifndef CRNN_TRAIN_H
#define CRNN_TRAIN_H

#include <stdint.h>

#include "crnn/backend.h"
#include "crnn/comm.h"
#include "crnn/common.h"
#include "crnn/flags.h"
#include "crnn/report.h"

/* Exit status of crnn-train when a signal (SIGUSR1, SIGTERM, SIGINT) stopped it after it wrote a
 * checkpoint: resume with -resume auto. (EX_TEMPFAIL from sysexits.h.) */
#define CRNN_EXIT_STOPPED 75

/* Catches SIGUSR1, SIGTERM and SIGINT: training stops at the next step boundary. */
void train_catch_signals(void);

/* The underfitting advice's test, after a validation: whether the validation loss has stopped
 * improving and stays close to the training loss. val_losses[0..n-1] are the run's validation
 * losses, oldest first, the newest last; train_loss is the mean training loss since the
 * validation before the newest. It has stopped improving when there are at least 4 and the
 * newest is less than 1% below the one three validations earlier (newest > 0.99 * val_losses[n-4]:
 * it fell by less than 1% of that over the last three validations, or rose); close means within
 * 2% of the training loss. Early in training the two losses are always close, so closeness alone
 * says nothing. Returns 1 to advise a larger model, else 0. */
int train_advice_underfitting(const float *val_losses, int64_t n, double train_loss);

/* Runs training. Returns 0 when it finished, CRNN_EXIT_STOPPED when a signal stopped it after a
 * checkpoint, -1 on error (err filled). */
int train_run(FlagSet *flags, Comm *comm, Backend *be, const Reporter *rep, CrnnError *err);

#endif
