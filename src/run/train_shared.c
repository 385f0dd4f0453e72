/* -allreduce shared: the ranks of one node, every rank of the job on it and on the CPU, hold one
 * copy of the parameters and of the optimizer's moments, in memory they all map
 * (Comm.node_shared), and a gradient each. A step's backward writes each rank's own gradient;
 * after a barrier rank q sums the P gradients over its part of the elements (parts as even as
 * whole cache lines go), divides by P, and updates that part of the parameters and moments; a
 * second barrier, and the next step reads them. In place of an allreduce, which copies every
 * gradient between the ranks, and of every rank updating the whole model: one pass over its part
 * of the P gradients and the update of its part (benchmarks/NOTES.md).
 *
 * Only rank 0 writes the parameters and moments at the start (train_state.c: Run.writes_params);
 * the others wait at a barrier. Rank 0 reads them for validation and checkpoints between steps,
 * while the others can at most run the next step's forward and backward, which only read them. */
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* Elements of each buffer, rounded up to whole cache lines so that the buffers and the parts
 * never share one between ranks. */
#define LINE_REALS (64 / sizeof(real))

static size_t round_up(size_t n) { return (n + LINE_REALS - 1) / LINE_REALS * LINE_REALS; }

int train_shared_wanted(const Run *r) {
    const Comm *c = r->comm;
    return r->s.shared != 0 && c->size > 1 && c->node_shared && r->be->host_memory;
}

int train_shared_setup(Run *r, size_t n, CrnnError *err) {
    Comm *c = r->comm;
    Shared *sh = &r->shared;
    memset(sh, 0, sizeof *sh);
    r->writes_params = 1;
    if (!train_shared_wanted(r)) { /* one rank has nothing to share */
        if (r->s.shared == 2 && c->size > 1)
            return crnn_fail_usage(err, "-allreduce shared needs ranks that train on the CPU (-gpu -1), all on one node; use -allreduce overlap");
        return 0;
    }
    if (c->local_size != c->size) {
        if (r->s.shared == 2)
            return crnn_fail_usage(err, "-allreduce shared needs every rank on one node (these %d ranks run on several); use -allreduce overlap",
                                   c->size);
        return 0;
    }
    const size_t stride = round_up(n);
    const size_t buffers = 3 + (size_t)c->size; /* parameters, m, v, a gradient per rank */
    CrnnError mine = {0};
    real *base = c->node_shared(c, buffers * stride * sizeof(real), &mine);
    if (comm_all_ok(c, base != NULL, "could not map the node's shared memory", &mine)) {
        if (r->s.shared == 2 || c->timer->broken) {
            *err = mine;
            return -1;
        }
        if (!r->quiet) report(r->rep, REPORT_NOTE, "-allreduce auto: %s; reducing through MPI instead", mine.msg);
        return 0;
    }
    comm_timed(c, r->iteration, "the start's barrier");
    if (c->node_barrier(c, err)) return -1;
    sh->on = 1;
    sh->n = n;
    sh->params = base;
    sh->m = base + stride;
    sh->v = base + 2 * stride;
    sh->grads = base + 3 * stride;
    sh->stride = stride;
    const int P = c->size, q = c->rank;
    const size_t lines = stride / LINE_REALS;
    sh->first = lines * (size_t)q / (size_t)P * LINE_REALS;
    size_t end = lines * (size_t)(q + 1) / (size_t)P * LINE_REALS;
    if (end > n) end = n;
    sh->count = end > sh->first ? end - sh->first : 0;
    r->writes_params = q == 0;
    if (!r->quiet)
        report(r->rep, REPORT_INFO, "the %d ranks on %s share one copy of the parameters and the optimizer's moments (-allreduce shared)",
               P, c->host);
    return 0;
}

real *train_shared_grads(const Run *r) { return r->shared.grads + (size_t)r->comm->rank * r->shared.stride; }

/* dst = (src[0] + src[1] + ... + src[P-1]) * scale over n elements, summed in rank order; dst
 * may be one of the src (each element is read before it is written). */
static void mean_of(real *dst, real *const *src, int P, size_t n, real scale) {
    enum { CHUNK = 1024 };
    real acc[CHUNK];
    for (size_t i0 = 0; i0 < n; i0 += CHUNK) {
        const size_t m = n - i0 < CHUNK ? n - i0 : CHUNK;
        memcpy(acc, src[0] + i0, m * sizeof *acc);
        for (int q = 1; q < P; q++) {
            const real *s = src[q] + i0;
            for (size_t i = 0; i < m; i++) acc[i] += s[i];
        }
        for (size_t i = 0; i < m; i++) dst[i0 + i] = acc[i] * scale;
    }
}

int train_shared_reduce(Run *r, CrnnError *err) {
    Comm *c = r->comm;
    Shared *sh = &r->shared;
    if (c->node_barrier(c, err)) return -1;
    enum { FEW = 64 };
    real *src[FEW];
    real **srcs = c->size <= FEW ? src : malloc((size_t)c->size * sizeof *srcs);
    if (!srcs) return crnn_fail_nomem(err, "rank %d: out of memory", c->rank);
    for (int q = 0; q < c->size; q++) srcs[q] = sh->grads + (size_t)q * sh->stride + sh->first;
    mean_of(train_shared_grads(r) + sh->first, srcs, c->size, sh->count, (real)(1.0 / c->size));
    if (srcs != src) free(srcs);
    return 0;
}

int train_shared_sumsq(Run *r, double *sumsq, CrnnError *err) {
    const Shared *sh = &r->shared;
    real part = sh->count ? (real)r->be->sumsq(r->be, train_shared_grads(r) + sh->first, sh->count) : 0;
    if (r->comm->allreduce_mean(r->comm, &part, 1, err)) return -1;
    *sumsq = (double)part * r->comm->size;
    return 0;
}
