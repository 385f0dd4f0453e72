/* The -comm_timeout bookkeeping of the collectives, for every Comm (comm.h): which collective is
 * waited for and whether the wait is bounded, and the error that ends a job whose peers went
 * quiet. Apart from comm.c because the CUDA module (libcrnn-cuda.so) carries a copy of it. */
#include <inttypes.h>

#include "crnn/comm.h"

void comm_timed(Comm *c, int64_t iteration, const char *what) {
    c->timer->timed = 1;
    c->timer->iteration = iteration;
    c->timer->what = what;
}

void comm_untimed(Comm *c) { c->timer->timed = 0; }

int comm_bounded(const Comm *c) { return c->timer->timed && c->timer->timeout > 0; }

int comm_timeout_error(Comm *c, CrnnError *err) {
    CommTimer *t = c->timer;
    t->broken = 1;
    return crnn_fail_peer_lost(err,
                     "rank %d of %d on %s: waited %g s (-comm_timeout) for the other ranks in %s at iteration %" PRId64
                     " and heard nothing: a rank, its host or the network between them is gone or stuck; ending the "
                     "whole job (the checkpoints written so far are whole: continue with -resume auto)",
                     c->rank, c->size, c->host, t->timeout, t->what ? t->what : "a collective", t->iteration);
}
