/* The HDF5 checkpoint (docs/FORMATS.md section 4): written to `name.tmp`, fsync'd, renamed, so a
 * crash never leaves a broken file under a checkpoint's name; read and validated with errors
 * that name the file. Device-free: every array is float32 row-major on the host. */
#ifndef CRNN_CHECKPOINT_H
#define CRNN_CHECKPOINT_H

#include <stdint.h>

#include "crnn/common.h"
#include "crnn/layout.h"
#include "crnn/vocab.h"

#define CKPT_FORMAT "crnn-checkpoint"
#define CKPT_FORMAT_VERSION 1

typedef enum { CONFIG_INT, CONFIG_REAL, CONFIG_STRING } ConfigType;

/* One training flag as stored in /config's attributes. */
typedef struct ConfigEntry {
    char name[64];
    ConfigType type;
    int64_t i;
    double d;
    char *s; /* malloc'd for CONFIG_STRING */
} ConfigEntry;

typedef struct Checkpoint {
    ModelConfig model;
    int64_t iteration;
    double epoch;
    char crnn_version[640]; /* the build that wrote it (crnn_version_text), "" when not recorded */
    double elapsed_seconds; /* the run's time_s when it was taken (seconds of training since the
                               run began, across resumes; docs/FORMATS.md section 4); 0 when not recorded */

    ConfigEntry *config;
    int num_config;

    Vocab vocab;

    float *params;     /* [num_params], docs/FORMATS.md's order (model_layout) */
    size_t num_params;

    /* Training state: present when has_state (absent in files made only for -init_from). */
    int has_state;
    char optim_name[16];
    int64_t optim_step;
    double learning_rate;
    float *optim_m, *optim_v; /* [num_params]; optim_m NULL for RMSprop */
    uint64_t *rng;
    int num_rng;
    int streams;              /* P*B */
    int64_t batch_index, epoch_index;
    float *hidden_h, *hidden_c; /* [L, streams, H]; hidden_c NULL for cells without c */
    float *train_loss;        /* [num_train_loss] */
    int64_t num_train_loss;
    float *val_loss;          /* [num_val] */
    int64_t *val_iteration;
    int64_t num_val;
} Checkpoint;

/* Writes atomically (atomic_file): path.tmp, fsync, rename onto path, fsync of the folder;
 * errors name path (CRNN_ERR_IO for the disk, CRNN_ERR_NOMEM, else CRNN_ERR_OTHER). */
int checkpoint_write(const char *path, const Checkpoint *ck, CrnnError *err);
/* Reads and validates (attributes, shapes against the model config, finite parameters).
 * With want_state 0 only the model, config, vocab and parameters are read. Errors name the
 * file and say what to do (e.g. "not a crnn checkpoint", "truncated or corrupt"). Their kind
 * (crnn_error_kind): CRNN_ERR_CORRUPT when the file opens but is not a whole, valid checkpoint
 * (the only kind -resume auto passes over), CRNN_ERR_IO when it cannot be opened, CRNN_ERR_NOMEM
 * when memory ran out, CRNN_ERR_OTHER for a file of a newer crnn (format_version, model_type or
 * optimizer it does not know). */
int checkpoint_read(const char *path, Checkpoint *ck, int want_state, CrnnError *err);
void checkpoint_free(Checkpoint *ck);

/* Looks up a /config entry by flag name, or NULL. */
const ConfigEntry *checkpoint_config(const Checkpoint *ck, const char *name);

#endif
