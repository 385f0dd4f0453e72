/* Communication between the ranks that train one model: the single process (comm_single.c),
 * MPI (comm_mpi.c) and NCCL over MPI (comm_nccl.c) implement this table; comm.c holds what
 * they share. */
#ifndef CRNN_COMM_H
#define CRNN_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "crnn/common.h"

typedef struct Comm Comm;

/* -comm_timeout: how long a timed collective may wait for the other ranks. The training step's
 * collectives are timed (the gradient and loss allreduces, the stop flag, the gathers); the
 * waits while rank 0 alone works (preprocessing, validation, writing) are not. A wait that runs
 * out, or a collective that fails (a peer's connection lost), fails with a message naming `what`
 * and `iteration`, and sets `broken`: the job cannot go on, and must end through Comm.abort (a
 * clean MPI_Finalize would wait for the lost rank). */
typedef struct CommTimer {
    double timeout;     /* seconds; 0: waits are not bounded */
    int timed;          /* whether the collectives now are timed */
    int64_t iteration;  /* the step they belong to */
    const char *what;   /* the operation, for the message */
    int broken;         /* a collective failed or ran out of time */
} CommTimer;

struct Comm {
    const char *name;           /* for messages: "single", "mpi" (NCCL keeps the name of the Comm it wraps) */
    /* A launcher (mpirun, srun) started this rank and relays its stdout: a pseudo-terminal even
     * when the job's output goes to a file, so isatty says nothing of where the text ends up. */
    int under_launcher;
    int rank, size;             /* in the job */
    int local_rank, local_size; /* on this node */
    char host[64];              /* this rank's host name */
    CommTimer *timer;           /* shared by a Comm and the one it wraps (NCCL over MPI) */
    void *mpi_comm;             /* the job's MPI_Comm (for parallel HDF5), or NULL */
    /* buf = mean over ranks of buf (n reals, in backend memory). */
    int (*allreduce_mean)(Comm *c, real *buf, size_t n, CrnnError *err);
    /* The same, started now and finished by wait_all (one gradient bucket at a time). */
    int (*allreduce_mean_start)(Comm *c, real *buf, size_t n, CrnnError *err);
    int (*wait_all)(Comm *c, CrnnError *err);
    /* Rank r's `bytes` land at recv + r * bytes on root (recv only used there). */
    int (*gather)(Comm *c, const void *send, size_t bytes, void *recv, int root, CrnnError *err);
    /* v = max over ranks of v. */
    int (*allreduce_max_int)(Comm *c, int64_t *v, CrnnError *err);
    /* bytes from root to every rank. */
    int (*broadcast)(Comm *c, void *buf, size_t bytes, int root, CrnnError *err);
    int (*barrier)(Comm *c, CrnnError *err);
    /* -allreduce shared: `bytes` of memory that every rank of the job maps, where all of them
     * run on one node (a collective; once per Comm), zero-filled once every rank has passed a
     * node_barrier. NULL where they do not, or the memory could not be had (err says why; the
     * ranks agree through comm_all_ok before that barrier); the function itself is NULL where
     * the Comm never has such memory (one process, NCCL). */
    void *(*node_shared)(Comm *c, size_t bytes, CrnnError *err);
    /* Every rank is here and sees what the others wrote to node_shared memory before they came
     * (timed like the step's collectives). */
    int (*node_barrier)(Comm *c, CrnnError *err);
    void (*destroy)(Comm *c);
    /* Ends the whole job now with exit status `code`, without waiting for any rank (MPI_Abort;
     * ncclCommAbort first on GPUs); for a rank that cannot finish cleanly. Does not return. */
    void (*abort)(Comm *c, int code);
    void *impl;
};

Comm *comm_single_create(CrnnError *err);
/* MPI_Init and the world communicator; node-local rank and size from MPI_COMM_TYPE_SHARED. */
Comm *comm_mpi_create(int *argc, char ***argv, CrnnError *err);
/* MPI when a launcher (mpirun, srun with PMIx) started this process, else the single process. */
Comm *comm_create(int *argc, char ***argv, CrnnError *err);
/* The collectives that follow are timed (c->timer->timeout), as `what` of step `iteration`. */
void comm_timed(Comm *c, int64_t iteration, const char *what);
/* The collectives that follow wait as long as it takes (rank 0 alone is working). */
void comm_untimed(Comm *c);
/* Whether the waits now are bounded: timed, with a -comm_timeout above 0. */
int comm_bounded(const Comm *c);
/* The message of a timed wait that ran out (the ranks not heard from are not known: a
 * collective does not say); sets timer->broken. */
int comm_timeout_error(Comm *c, CrnnError *err);

/* Whether every rank of c is `ok` (a collective: every rank calls it): 0 when all are; -1
 * otherwise, err keeping this rank's own failure or, on a rank that was fine, saying that
 * another rank `what` (e.g. "could not start"). So that a rank that fails alone stops the
 * others instead of leaving them waiting in the next collective. */
int comm_all_ok(Comm *c, int ok, const char *what, CrnnError *err);

#endif
