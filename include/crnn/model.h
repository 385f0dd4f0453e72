/* The language model: embedding -> L recurrent layers -> linear decoder, over one flat
 * parameter buffer and one flat gradient buffer (docs/FORMATS.md section 3). Layers hold views into
 * the buffers. Activations are time-major: row t*B + b is step t of stream b.
 *
 * Forward on a batch keeps what backward needs; backward writes the gradient of the mean
 * per-token loss over the batch's B*S positions into the gradient buffer. Hidden state carries
 * from one forward to the next (stateful training) until model_reset_state. */
#ifndef CRNN_MODEL_H
#define CRNN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "crnn/backend.h"
#include "crnn/cell.h"
#include "crnn/common.h"
#include "crnn/layout.h"

typedef struct LayerBuffers {
    real *W_x, *W_h, *b_x, *b_h;     /* views into params */
    real *dW_x, *dW_h, *db_x, *db_h; /* views into grads */
    real *hs;     /* [(S+1), B, H]: slot 0 the initial state, slot t+1 the output of step t */
    real *cs;     /* [(S+1), B, H] likewise for the cell state (cells that have one: lstm) */
    real *gates;  /* [S, B, G*H]: activations after forward, pre-activation grads in backward */
    real *gates_h; /* [S, B, G*H] when the recurrent bias stays apart (gru): h W_h + b_h per
                    * step, then its gradients */
    real *dhs;    /* [S, B, H]: gradient on this layer's outputs */
    real *drop;   /* [S, B, H]: the outputs after dropout (NULL without dropout) */
    real *state_h, *state_c; /* [B_max, H]: carried between batches */
} LayerBuffers;

typedef struct Model {
    ModelConfig cfg;
    Backend *be;
    const CellSpec *cell; /* cell_find(cfg.model_type) */
    int G;                /* cell->gates */
    int max_B, max_S;
    int B, S;               /* shape of the last forward */
    size_t num_params;
    int num_tensors;
    ParamTensor tensors[CRNN_MAX_TENSORS];
    real *params, *grads;   /* flat, in backend memory */
    int lent;               /* params and grads are the caller's (model_create_lent) */
    real *embedding, *d_embedding; /* NULL when one-hot (D = 0) */
    real *W_dec, *b_dec, *dW_dec, *db_dec;
    LayerBuffers layers[CRNN_MAX_LAYERS];
    real *x_embed;          /* [S, B, D]; NULL when one-hot (D = 0) */
    real *dx_embed;         /* [S, B, D]; NULL when one-hot (D = 0) */
    /* [V, G*H]: the embedding folded into layer 0 (model.c), E W_x + b_x (+ b_h) forward and its
     * gradient backward; NULL when one-hot or when max_B * max_S <= V */
    real *proj;
    int folded;             /* the last forward took layer 0's input projection from proj */
    real *logits;           /* [S, B, V], gradient in place after backward's start */
    real *dc;               /* [B, H] scratch */
    int32_t *x_dev, *y_dev; /* [S, B] time-major indices */
    int32_t *x_host, *y_host;
    /* dropout of the next forward and its backward (model_set_dropout) */
    int dropout_on;
    uint64_t dropout_seed, dropout_iteration;
    int dropout_first_stream;
} Model;

/* Allocates buffers for batches up to max_B x max_S. Parameters start at zero. */
int model_create(Model *m, const ModelConfig *cfg, Backend *be, int max_B, int max_S,
                 CrnnError *err);
/* The same with the flat parameters and gradients in the caller's memory (num_params reals each,
 * as model_layout counts them; a CPU backend's host memory), which model_destroy leaves alone:
 * -allreduce shared's, where the ranks of a node hold one copy of the parameters. */
int model_create_lent(Model *m, const ModelConfig *cfg, Backend *be, int max_B, int max_S, real *params,
                      real *grads, CrnnError *err);
void model_destroy(Model *m);

/* torch-rnn's initialisation from the counter-based generator keyed by seed. Returns -1, the
 * parameters untouched, when host memory for the values ran out (the caller reports it with
 * crnn_fail_nomem); else 0. */
int model_init_params(Model *m, uint64_t seed);

/* Host copies of the flat parameters (float32, docs/FORMATS.md order). */
void model_get_params(Model *m, float *host);
void model_set_params(Model *m, const float *host);

/* Hidden state as host float32 arrays [L, B, H] (c is ignored for cells without one). */
void model_get_state(Model *m, float *h, float *c, int B);
void model_set_state(Model *m, const float *h, const float *c, int B);
void model_reset_state(Model *m);

/* Turns dropout (cfg.dropout > 0) on for the forwards that follow, keyed by the training
 * iteration and the global stream of the batch's first row (docs/FORMATS.md section 3), or off
 * (on = 0: validation, sampling and evaluation, the default). Backward uses the masks of the
 * last forward. */
void model_set_dropout(Model *m, int on, uint64_t seed, uint64_t iteration, int first_stream);

/* Forward over a batch: x, y host [B, S] stream-major, 0-based. y may be NULL (no loss).
 * Returns the mean loss per token (nats), or 0 when y is NULL. The final hidden state is
 * carried into the next call. */
double model_forward(Model *m, const int32_t *x, const int32_t *y, int B, int S);
/* Called by model_backward as soon as a range of the gradient buffer is final -- the decoder's,
 * then each layer's from the top, then the embedding's (none when D = 0); together they cover
 * the buffer once --
 * so that its reduction across ranks can start while the rest of backward runs. */
typedef void (*GradReadyFn)(void *ctx, real *grads, size_t n);

/* Backward of the last forward (which must have had y): grads = d(mean loss)/d(params).
 * ready may be NULL. */
void model_backward(Model *m, GradReadyFn ready, void *ctx);
/* The logits of the last forward, time-major [S, B, V], in backend memory. */
const real *model_logits(const Model *m);

#endif
