/* Optimizers over the flat parameter and gradient buffers: Adam (torch/optim's, as torch-rnn
 * uses it) with its moments in two flat buffers, RMSprop (char-rnn's) with one, and gradient
 * clipping. */
#ifndef CRNN_OPTIM_H
#define CRNN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "crnn/backend.h"
#include "crnn/common.h"

typedef struct Optimizer {
    char name[16];         /* "adam" or "rmsprop" */
    double learning_rate;  /* current */
    double beta1, beta2, eps;
    double decay_rate;     /* RMSprop's alpha */
    int64_t step;          /* steps taken */
    real *m, *v;           /* [n], backend memory; m is NULL for RMSprop */
    size_t n;
    Backend *be;
    int lent; /* m and v are the caller's (optim_create_lent) */
} Optimizer;

int optim_create(Optimizer *o, Backend *be, const char *name, size_t n, double learning_rate,
                 double decay_rate, CrnnError *err);
/* The same with the moments in the caller's memory (n reals each; m unused by RMSprop), which
 * optim_destroy leaves alone (-allreduce shared). */
int optim_create_lent(Optimizer *o, Backend *be, const char *name, size_t n, double learning_rate,
                      double decay_rate, real *m, real *v, CrnnError *err);
void optim_destroy(Optimizer *o);
/* One update of params from grads; clamp > 0 clamps each gradient to [-clamp, clamp] first, in
 * the same pass (optim_clip's by_norm 0, without a pass of its own; grads are left as they are). */
void optim_step(Optimizer *o, real *params, const real *grads, double clamp);
/* The same step for elements [first, first + count) of the buffers only (the step counted once
 * all the same): -allreduce shared, where each rank updates its part. */
void optim_step_part(Optimizer *o, real *params, const real *grads, size_t first, size_t count, double clamp);
/* Gradient clipping; clip <= 0 leaves the gradient alone. by_norm 0: each element clamped to
 * [-clip, clip] (torch-rnn, char-rnn); 1: the whole gradient scaled down to norm clip when its
 * norm is larger. */
void optim_clip(Backend *be, real *grads, size_t n, double clip, int by_norm);
/* by_norm's scaling with the norm already known: grads (the whole gradient, or a part of it
 * whose whole has this norm) times clip / norm when norm > clip > 0. */
void optim_clip_norm(Backend *be, real *grads, size_t n, double clip, double norm);

#endif
