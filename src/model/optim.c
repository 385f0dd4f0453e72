/* Adam over flat buffers, and gradient clipping. */
#include "crnn/optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int optim_create(Optimizer *o, Backend *be, const char *name, size_t n, double learning_rate,
                 double decay_rate, CrnnError *err) {
    return optim_create_lent(o, be, name, n, learning_rate, decay_rate, NULL, NULL, err);
}

int optim_create_lent(Optimizer *o, Backend *be, const char *name, size_t n, double learning_rate,
                      double decay_rate, real *m, real *v, CrnnError *err) {
    memset(o, 0, sizeof *o);
    int rmsprop = strcmp(name, "rmsprop") == 0;
    if (strcmp(name, "adam") != 0 && !rmsprop)
        return crnn_fail(err, "-optimizer must be adam or rmsprop, got '%s'", name);
    if (rmsprop && !(decay_rate > 0 && decay_rate < 1))
        return crnn_fail(err, "-decay_rate must be between 0 and 1, got %g", decay_rate);
    snprintf(o->name, sizeof o->name, "%s", name);
    o->learning_rate = learning_rate;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->decay_rate = decay_rate;
    o->n = n;
    o->be = be;
    o->lent = v != NULL;
    o->m = rmsprop ? NULL : o->lent ? m : be->alloc(be, n * sizeof(real));
    o->v = o->lent ? v : be->alloc(be, n * sizeof(real));
    if ((!rmsprop && !o->m) || !o->v) {
        optim_destroy(o);
        return crnn_fail_nomem(err, "out of memory for the optimizer's moments (%zu parameters)", n);
    }
    return 0;
}

void optim_destroy(Optimizer *o) {
    if (o->be && !o->lent) {
        o->be->free(o->be, o->m);
        o->be->free(o->be, o->v);
    }
    memset(o, 0, sizeof *o);
}

void optim_step(Optimizer *o, real *params, const real *grads, double clamp) {
    optim_step_part(o, params, grads, 0, o->n, clamp);
}

void optim_step_part(Optimizer *o, real *params, const real *grads, size_t first, size_t count, double clamp) {
    const real c = clamp > 0 ? (real)clamp : 0;
    o->step++;
    if (count == 0) return;
    real *m = o->m ? o->m + first : NULL, *v = o->v + first;
    if (!m)
        o->be->rmsprop(o->be, params + first, grads + first, v, count, o->learning_rate, o->decay_rate, o->eps, c);
    else
        o->be->adam(o->be, params + first, grads + first, m, v, count, o->learning_rate, o->beta1, o->beta2,
                    o->eps, o->step, c);
}

void optim_clip(Backend *be, real *grads, size_t n, double clip, int by_norm) {
    if (clip <= 0) return;
    if (!by_norm) {
        be->clamp(be, grads, n, (real)clip);
        return;
    }
    optim_clip_norm(be, grads, n, clip, sqrt(be->sumsq(be, grads, n)));
}

void optim_clip_norm(Backend *be, real *grads, size_t n, double clip, double norm) {
    if (clip > 0 && norm > clip) be->scale(be, grads, n, (real)(clip / norm));
}
