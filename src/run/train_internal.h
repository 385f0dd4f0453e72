/* What the files of the training loop share: the run's state (Run) and what each file does for
 * the others. Private to src/train*.c; the public interface is include/crnn/train.h.
 *
 *   train.c           the loop: setup, train_step, progress, validation and checkpoint, stop
 *   train_settings.c  crnn-train's flags into TrainSettings, the resume merge
 *   train_files.c     checkpoint names, listing, -resume auto, pruning, the best link, -data_dir
 *   train_state.c     the loss history, loading the start, distributed validation + checkpoint
 *   train_report.c    what the run tells its Reporter: progress, validation, advice, samples */
#ifndef CRNN_TRAIN_INTERNAL_H
#define CRNN_TRAIN_INTERNAL_H

#include <limits.h>
#include <stdint.h>

#include "crnn/dataset.h"
#include "crnn/metrics.h"
#include "crnn/model.h"
#include "crnn/optim.h"
#include "crnn/report.h"
#include "crnn/runlock.h"
#include "crnn/train.h"
#include "crnn/vocab.h"

/* The losses of the run, across resumes: train_loss[k] is iteration k+1's; val_loss[k] was
 * found at val_iteration[k]. */
typedef struct History {
    float *train_loss;
    int64_t n_train, cap_train;
    float *val_loss;
    int64_t *val_iteration;
    int64_t n_val, cap_val;
} History;

/* -allreduce shared (train_shared.c): the parameters, moments and every rank's gradient in the
 * node's shared memory, each buffer `stride` reals apart; this rank updates elements
 * [first, first + count). */
typedef struct Shared {
    int on;
    real *params, *m, *v, *grads;
    size_t n, stride, first, count;
} Shared;

typedef struct Run {
    TrainSettings s;
    Comm *comm;
    Backend *be;
    const Reporter *rep;
    int quiet; /* nothing to report: -quiet, or not rank 0 */
    Vocab vocab;
    Batches train, val;
    int have_val;
    Model model;
    Optimizer opt;
    History hist;
    int64_t iteration;      /* iterations done */
    int64_t epoch_index;    /* current epoch, 0-based */
    int64_t batch_index;    /* batches of the current epoch done */
    uint64_t seed;
    int32_t *x, *y;         /* [max(B, val N), S] host */
    char last_checkpoint[PATH_MAX + 64];
    RunLock lock;              /* rank 0: <checkpoint_name>.lock, from before its first write */
    Metrics metrics;           /* rank 0 */
    float *step_times;         /* seconds per step of this process's run, for the sidecar JSON */
    int64_t n_steps, cap_steps;
    int64_t last_val_iteration; /* for the advice: training loss since the last validation */
    int underfitting_advised;   /* the underfitting advice was given and still holds */
    /* the run's clock, the metrics' time_s: elapsed_base (the resumed checkpoint's
     * elapsed_seconds, 0 for a fresh run) plus the monotonic seconds since clock_start, when
     * this process began */
    double elapsed_base, clock_start;
    Model sampler;              /* rank 0 with -sample_every: batch 1, the weights copied in */
    Shared shared;              /* -allreduce shared */
    int writes_params;          /* this rank writes the start's parameters and moments (all but
                                   -allreduce shared's ranks other than 0) */
    int64_t sample_checkpoints; /* with no validation split: checkpoints of this process */
} Run;

/* ---- train_shared.c ---- */
/* Whether -allreduce (auto or shared) asks for shared memory and this job could have it. */
int train_shared_wanted(const Run *r);
/* Decides for -allreduce shared or not and maps the node's memory for n parameters (a
 * collective); Run.shared.on says which. Sets Run.writes_params. */
int train_shared_setup(Run *r, size_t n, CrnnError *err);
/* This rank's gradient buffer. */
real *train_shared_grads(const Run *r);
/* After backward: every rank's gradient written (a barrier), then this rank's part of them
 * averaged over the ranks into its own buffer. */
int train_shared_reduce(Run *r, CrnnError *err);
/* The squared norm of the averaged gradient: the parts' sums over the ranks. */
int train_shared_sumsq(Run *r, double *sumsq, CrnnError *err);

/* ---- train.c ---- */
/* The metrics' time_s now: seconds of training since the run began, across resumes. */
double train_time_s(const Run *r);
/* Epochs done, with the fraction of the current one. */
double train_epoch(const Run *r);

/* ---- train_files.c ---- */
/* Creates the folder of the checkpoints and checks that it is writable. */
int train_prepare_checkpoint_folder(const char *checkpoint_name, CrnnError *err);
/* -resume auto: the newest checkpoint of the prefix that opens and validates (path), or "" when
 * there is none. An older one is taken only when a newer one is corrupt (noted unless quiet);
 * any other failure to read one (out of memory, I/O) is an error: -1 with err. */
int train_find_resume_checkpoint(const char *checkpoint_name, char *path, size_t cap, int quiet,
                                 const Reporter *rep, CrnnError *err);
/* -keep_last: removes all but the newest keep_last checkpoints (0: keeps all). */
void train_remove_old_checkpoints(const char *checkpoint_name, int64_t keep_last);
/* The name of the checkpoint at this point: torch-rnn's <name>_<iteration>.h5, or char-rnn's
 * lm_<savefile>_epoch<e>_<val>.h5 (val: the validation loss, NaN when none). */
void train_checkpoint_path(const TrainSettings *s, int64_t iteration, double epoch, double val_loss, char *out,
                           size_t cap);
/* <name>_best.h5 becomes path (a hard link, or a copy), replaced atomically. */
int train_link_best(const char *checkpoint_name, const char *path, CrnnError *err);
/* char-rnn's -data_dir: DIR/input.txt preprocessed into h5 = DIR/input.h5 and json =
 * DIR/input.json on first use or when the text is newer (rank 0; the others wait for it). */
int train_prepare_data_dir(const char *dir, Comm *comm, int quiet, const Reporter *rep, char *h5, char *json,
                           size_t cap, CrnnError *err);

/* ---- train_state.c ---- */
int history_add_train(History *h, float loss);
int history_add_val(History *h, float loss, int64_t it);
void history_free(History *h);
/* The parameters (and on resume everything else) from s.resume_path or s.init_from, or a fresh
 * initialisation. */
int train_load_start(Run *r, CrnnError *err);
/* Every rank: the hidden states to rank 0, the validation (each rank its share), rank 0's
 * checkpoint; all go on or all stop. */
int train_validate_and_checkpoint(Run *r, CrnnError *err);

/* ---- train_report.c ---- */
/* "nan" or "inf" for a non-finite value, as a user reads it (printf may write "-nan"). */
const char *train_nonfinite_name(double v);
/* The run's first line, and the advice on the model's size against the text's. */
void train_report_start(const Run *r, int64_t total);
/* A progress line: the live one or torch-rnn's; elapsed and eta in seconds. */
void train_report_progress(const Run *r, int64_t total, double loss, double chars_per_s, double elapsed,
                           double eta);
/* A validation's line and the advice on over- or underfitting it gives. */
void train_report_validation(Run *r, double val_loss);
/* -sample_every: rank 0's sample, reported and written to the metrics. */
int train_sample(Run *r, CrnnError *err);

#endif
