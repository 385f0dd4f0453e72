/* Communication between the ranks that train one model. The single-process implementation is
 * here; MPI and NCCL implement the same table. */
#ifndef CRNN_COMM_H
#define CRNN_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "crnn/common.h"

typedef struct Comm Comm;

struct Comm {
    const char *name;
    int rank, size;             /* in the job */
    int local_rank, local_size; /* on this node */
    /* buf = mean over ranks of buf (n reals, in backend memory). */
    int (*allreduce_mean)(Comm *c, real *buf, size_t n, CrnnError *err);
    /* v = max over ranks of v. */
    int (*allreduce_max_int)(Comm *c, int64_t *v, CrnnError *err);
    /* bytes from root to every rank. */
    int (*broadcast)(Comm *c, void *buf, size_t bytes, int root, CrnnError *err);
    int (*barrier)(Comm *c, CrnnError *err);
    void (*destroy)(Comm *c);
    void *impl;
};

Comm *comm_single_create(CrnnError *err);

#endif
