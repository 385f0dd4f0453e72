/* The training loop: batches, steps, validation, checkpoints, resume, signals, progress.
 * Its settings are crnn-train's flags, resolved (train_settings_resolve); the checkpoint's
 * /config records exactly the flags of the run. */
#ifndef CRNN_TRAIN_H
#define CRNN_TRAIN_H

#include <limits.h>
#include <stdint.h>

#include "crnn/backend.h"
#include "crnn/comm.h"
#include "crnn/common.h"
#include "crnn/flags.h"
#include "crnn/model.h"
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

/* The run's settings: crnn-train's flags (docs/FORMATS.md section 5), resolved and checked by
 * train_settings_resolve. Strings point into the FlagSet, which outlives the run. */
typedef struct TrainSettings {
    const char *input_h5, *input_json, *init_from, *resume, *optimizer;
    char checkpoint_name[PATH_MAX]; /* the prefix of every file the run writes (see -savefile) */
    char resume_path[PATH_MAX];     /* the checkpoint this run continues, or "" */
    int charrnn_names;              /* -checkpoint_dir / -savefile: char-rnn's checkpoint names */
    int B, S;
    ModelConfig model;              /* V is the vocabulary's, filled by train_run */
    double max_epochs, learning_rate, grad_clip, lr_decay_factor, learning_rate_decay, decay_rate;
    int64_t max_iters, lr_decay_every, learning_rate_decay_after, print_every, checkpoint_every, keep_last, seed;
    int learning_rate_given; /* -learning_rate given: it replaces a resumed checkpoint's */
    int quiet, reset_iterations;
    int clip_norm;           /* -grad_clip_mode norm */
    int overlap;             /* -allreduce overlap (or auto, where the memory is not shared) */
    int shared;              /* -allreduce shared: 2; auto: 1 (shared where it can be); else 0 */
    Precision precision;     /* -precision: the products' (backend.h) */
    double comm_timeout;     /* seconds; 0: wait for ever */
    int64_t val_max_batches; /* 0: the whole validation split */
    int64_t sample_every;    /* a sample every this many validations; 0: none */
    int64_t sample_length;   /* characters per sample */
    /* the run's flags, merged with a resumed checkpoint's: recorded whole in the checkpoint's
     * /config and the sidecar JSON, never read by name outside train_settings_resolve */
    FlagSet *flags;
} TrainSettings;

/* crnn-train's flags into settings: char-rnn's -data_dir preprocessed (rank 0; the others wait),
 * -resume's checkpoint found (auto: the newest that opens) and its /config merged into flags
 * (docs/FORMATS.md section 4: a flag not given takes the checkpoint's value; a given one that differs
 * is handled as its Flag.resume says), then every value checked. Every rank calls it. Returns 0,
 * or -1 with err filled (a usage error for a bad value). */
int train_settings_resolve(FlagSet *flags, Comm *comm, const Reporter *rep, TrainSettings *s, CrnnError *err);

/* Runs training. rep shows what it does (rank 0, unless quiet); rep->live chooses the live
 * progress line over plain lines. Returns 0 when it finished, CRNN_EXIT_STOPPED when a signal
 * stopped it after a checkpoint, -1 on error (err filled). */
int train_run(const TrainSettings *s, Comm *comm, Backend *be, const Reporter *rep, CrnnError *err);

#endif
