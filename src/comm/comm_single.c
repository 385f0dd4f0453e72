/* The single-process Comm: one rank, every collective is the identity. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crnn/comm.h"

static int single_allreduce_mean(Comm *c, real *buf, size_t n, CrnnError *err) {
    (void)c, (void)buf, (void)n, (void)err;
    return 0;
}
static int single_wait_all(Comm *c, CrnnError *err) {
    (void)c, (void)err;
    return 0;
}
static int single_gather(Comm *c, const void *send, size_t bytes, void *recv, int root, CrnnError *err) {
    (void)c, (void)root, (void)err;
    if (bytes && recv != send) memmove(recv, send, bytes);
    return 0;
}
static int single_allreduce_max_int(Comm *c, int64_t *v, CrnnError *err) {
    (void)c, (void)v, (void)err;
    return 0;
}
static int single_broadcast(Comm *c, void *buf, size_t bytes, int root, CrnnError *err) {
    (void)c, (void)buf, (void)bytes, (void)root, (void)err;
    return 0;
}
static int single_barrier(Comm *c, CrnnError *err) {
    (void)c, (void)err;
    return 0;
}
static void single_destroy(Comm *c) {
    if (c) free(c->timer);
    free(c);
}
/* one process: nothing to wait for, nothing to tell */
static void single_abort(Comm *c, int code) {
    (void)c;
    fflush(stdout);
    exit(code);
}

Comm *comm_single_create(CrnnError *err) {
    Comm *c = crnn_calloc(1, sizeof *c, err);
    if (!c) return NULL;
    c->timer = crnn_calloc(1, sizeof *c->timer, err);
    if (!c->timer) {
        free(c);
        return NULL;
    }
    if (gethostname(c->host, sizeof c->host - 1) != 0) snprintf(c->host, sizeof c->host, "?");
    c->name = "single";
    c->under_launcher = 0;
    c->rank = 0;
    c->size = 1;
    c->local_rank = 0;
    c->local_size = 1;
    c->allreduce_mean = single_allreduce_mean;
    c->allreduce_mean_start = single_allreduce_mean;
    c->wait_all = single_wait_all;
    c->gather = single_gather;
    c->allreduce_max_int = single_allreduce_max_int;
    c->broadcast = single_broadcast;
    c->barrier = single_barrier;
    c->destroy = single_destroy;
    c->abort = single_abort;
    return c;
}
