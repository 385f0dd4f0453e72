/* What crnn-train records for people and plotting tools (docs/FORMATS.md section 4), on rank 0:
 * <checkpoint_name>_metrics.jsonl, one JSON object a line (a "train" record per print, a "val"
 * record per validation, "start", "checkpoint" and "sample" records), and torch-rnn's sidecar
 * <checkpoint_name>_<i>.json beside each checkpoint, which its users' plotting scripts read.
 *
 * Every record carries "time_s", the caller's clock (seconds of training since the run began,
 * continuing across resumes), and "wall", the Unix time in seconds (with microseconds) at which
 * the record was written. */
#ifndef CRNN_METRICS_H
#define CRNN_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "crnn/common.h"
#include "crnn/flags.h"

typedef struct Metrics {
    FILE *fp;
    char path[4096];
} Metrics;

/* A fresh run (resumed_iteration < 0) truncates the file; a resumed one drops the records after
 * resumed_iteration and appends. */
int metrics_open(Metrics *m, const char *checkpoint_name, int64_t resumed_iteration, CrnnError *err);
void metrics_close(Metrics *m);

/* times: seconds per step over the print window, [ranks][3] = compute, communication, I/O. */
void metrics_train(Metrics *m, double time_s, int64_t iteration, double epoch, double loss, double learning_rate,
                   double grad_norm, double chars_per_s, const double *times, int ranks);
/* batches: the validation batches the loss is over, of total (fewer with -val_max_batches);
 * seconds: the validation's wall time, every rank's share and their sum. */
void metrics_val(Metrics *m, double time_s, int64_t iteration, double epoch, double val_loss, int64_t batches, int64_t total,
                 double seconds);

/* A run's start-up (data read, model built, checkpoint loaded) in seconds, before its first
 * step at iteration + 1; a checkpoint's gather and write in seconds (its time_s: the
 * checkpoint's elapsed_seconds, when it was taken). */
void metrics_start(Metrics *m, double time_s, int64_t iteration, double seconds);
void metrics_checkpoint(Metrics *m, double time_s, int64_t iteration, double seconds);
/* A sample drawn during training (-sample_every): {"type": "sample", "iteration", "time_s",
 * "wall", "text"}. text is n bytes, written as a JSON string; bytes that are not UTF-8 (a
 * bytes-mode vocabulary's) become U+FFFD. */
void metrics_sample(Metrics *m, double time_s, int64_t iteration, const char *text, size_t n);

/* torch-rnn's <checkpoint_name>_<i>.json: opt (the run's flags), i, train_loss_history,
 * val_loss_history, val_loss_history_it, forward_backward_times (seconds, the steps of this
 * process's run). Written atomically. */
int metrics_write_sidecar(const char *path, FlagSet *flags, int64_t iteration,
                          const float *train_loss, int64_t n_train, const float *val_loss,
                          const int64_t *val_iteration, int64_t n_val, const float *step_times,
                          int64_t n_steps, CrnnError *err);

#endif
