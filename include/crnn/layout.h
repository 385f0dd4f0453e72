/* The model's parameter tensors: the configuration, the tensors' names, shapes and places in
 * the flat buffer (docs/FORMATS.md section 3). Pure functions over plain values, without the runtime
 * Model or a Backend, so that the checkpoint reader and writer (the I/O library) share them with
 * the model (model.h). Implemented in src/model/layout.c. */
#ifndef CRNN_LAYOUT_H
#define CRNN_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "crnn/common.h"

#define CRNN_MAX_LAYERS 64
#define CRNN_MAX_TENSORS (3 + 4 * CRNN_MAX_LAYERS)

typedef struct ModelConfig {
    char model_type[8]; /* "lstm", "gru" or "rnn" */
    int V;              /* vocabulary */
    int D;              /* wordvec_size */
    int H;              /* rnn_size */
    int L;              /* num_layers */
    double dropout;
} ModelConfig;

/* One parameter tensor: its checkpoint path, its place in the flat buffer and its shape. */
typedef struct ParamTensor {
    char name[48];  /* "params/rnn/0/W_x", without the leading '/' */
    size_t offset;  /* elements from the start of the flat buffer */
    int ndim;       /* 1 or 2 */
    int64_t dims[2];
    size_t size;
} ParamTensor;

/* Checks a configuration; the message names the offending flag. */
int model_config_check(const ModelConfig *cfg, CrnnError *err);
/* The tensors in docs/FORMATS.md's order (embedding; per layer W_x, W_h, b_x, b_h; decoder W, b)
 * and the total parameter count. Returns the tensor count. With one-hot input (D = 0) there is
 * no embedding and layer 0's W_x is [V, G*H]. */
int model_layout(const ModelConfig *cfg, ParamTensor *tensors, size_t *num_params);

#endif
