/* The training loop: batches, steps, validation, checkpoints, resume, signals, progress.
 * It reads its settings from the parsed flags of crnn-train (FORMATS.md section 5), so that
 * the checkpoint's /config records exactly the flags of the run. */
#ifndef CRNN_TRAIN_H
#define CRNN_TRAIN_H

#include "crnn/backend.h"
#include "crnn/comm.h"
#include "crnn/common.h"
#include "crnn/flags.h"

/* Exit status of crnn-train when a signal (SIGUSR1, SIGTERM, SIGINT) stopped it after it wrote a
 * checkpoint: resume with -resume auto. (EX_TEMPFAIL from sysexits.h.) */
#define CRNN_EXIT_STOPPED 75

/* Catches SIGUSR1, SIGTERM and SIGINT: training stops at the next step boundary. */
void train_catch_signals(void);

/* Runs training. Returns 0 when it finished, CRNN_EXIT_STOPPED when a signal stopped it after a
 * checkpoint, -1 on error (err filled). */
int train_run(FlagSet *flags, Comm *comm, Backend *be, CrnnError *err);

#endif
