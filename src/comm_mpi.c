/* The MPI Comm: one rank per process, the world communicator, errors returned as values
 * naming the rank. A rank that dies ends the job through mpirun (or srun --kill-on-bad-exit),
 * never a hang: every collective here is on the world communicator. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "crnn/comm.h"

typedef struct Pending {
    MPI_Request req;
    real *buf;
    size_t n;
} Pending;

typedef struct MpiImpl {
    MPI_Comm world, node;
    Pending *pending;
    int npending, cap;
    int finalize; /* we called MPI_Init */
} MpiImpl;

static MpiImpl *impl(Comm *c) { return c->impl; }

static int mpi_fail(Comm *c, int code, const char *what, CrnnError *err) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    text[len] = '\0';
    return crnn_fail(err, "rank %d of %d: %s failed: %s", c->rank, c->size, what, text);
}

#ifdef CRNN_DOUBLE
#define MPI_REAL_T MPI_DOUBLE
#else
#define MPI_REAL_T MPI_FLOAT
#endif

/* MPI counts are ints: large buffers go in pieces. */
#define MPI_PIECE ((size_t)1 << 30)

static void scale(real *buf, size_t n, int size) {
    real s = (real)(1.0 / size);
    for (size_t k = 0; k < n; k++) buf[k] *= s;
}

static int mpi_allreduce_mean(Comm *c, real *buf, size_t n, CrnnError *err) {
    if (c->size == 1) return 0;
    for (size_t off = 0; off < n; off += MPI_PIECE) {
        int count = (int)(n - off < MPI_PIECE ? n - off : MPI_PIECE);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, count, MPI_REAL_T, MPI_SUM, impl(c)->world);
        if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "the gradient allreduce", err);
    }
    scale(buf, n, c->size);
    return 0;
}

static int mpi_allreduce_mean_start(Comm *c, real *buf, size_t n, CrnnError *err) {
    if (c->size == 1) return 0;
    MpiImpl *m = impl(c);
    for (size_t off = 0; off < n; off += MPI_PIECE) {
        if (m->npending == m->cap) {
            int cap = m->cap ? 2 * m->cap : 16;
            Pending *grown = realloc(m->pending, (size_t)cap * sizeof *grown);
            if (!grown) return crnn_fail(err, "rank %d: out of memory", c->rank);
            m->pending = grown;
            m->cap = cap;
        }
        Pending *p = &m->pending[m->npending];
        p->buf = buf + off;
        p->n = n - off < MPI_PIECE ? n - off : MPI_PIECE;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, p->buf, (int)p->n, MPI_REAL_T, MPI_SUM, m->world, &p->req);
        if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "a gradient bucket's allreduce", err);
        m->npending++;
        /* nudge the progress of the ones already started */
        for (int k = 0; k < m->npending; k++) {
            int flag;
            MPI_Test(&m->pending[k].req, &flag, MPI_STATUS_IGNORE);
        }
    }
    return 0;
}

static int mpi_wait_all(Comm *c, CrnnError *err) {
    MpiImpl *m = impl(c);
    int rc = MPI_SUCCESS;
    for (int k = 0; k < m->npending; k++) {
        int r = MPI_Wait(&m->pending[k].req, MPI_STATUS_IGNORE);
        if (r != MPI_SUCCESS && rc == MPI_SUCCESS) rc = r;
        scale(m->pending[k].buf, m->pending[k].n, c->size);
    }
    m->npending = 0;
    if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "waiting for the gradient allreduces", err);
    return 0;
}

static int mpi_allreduce_max_int(Comm *c, int64_t *v, CrnnError *err) {
    if (c->size == 1) return 0;
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_INT64_T, MPI_MAX, impl(c)->world);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(c, rc, "an allreduce", err);
}

static int mpi_broadcast(Comm *c, void *buf, size_t bytes, int root, CrnnError *err) {
    for (size_t off = 0; off < bytes; off += MPI_PIECE) {
        int count = (int)(bytes - off < MPI_PIECE ? bytes - off : MPI_PIECE);
        int rc = MPI_Bcast((char *)buf + off, count, MPI_BYTE, root, impl(c)->world);
        if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "a broadcast", err);
    }
    return 0;
}

static int mpi_gather(Comm *c, const void *send, size_t bytes, void *recv, int root, CrnnError *err) {
    if (bytes > (size_t)1 << 30) return crnn_fail(err, "rank %d: gather of %zu bytes is too large", c->rank, bytes);
    int rc = MPI_Gather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, root, impl(c)->world);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(c, rc, "gathering the hidden states", err);
}

static int mpi_barrier(Comm *c, CrnnError *err) {
    int rc = MPI_Barrier(impl(c)->world);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(c, rc, "a barrier", err);
}

static void mpi_destroy(Comm *c) {
    if (!c) return;
    MpiImpl *m = impl(c);
    if (m) {
        if (m->node != MPI_COMM_NULL) MPI_Comm_free(&m->node);
        if (m->finalize) MPI_Finalize();
        free(m->pending);
        free(m);
    }
    free(c);
}

Comm *comm_mpi_create(int *argc, char ***argv, CrnnError *err) {
    Comm *c = crnn_calloc(1, sizeof *c, err);
    MpiImpl *m = crnn_calloc(1, sizeof *m, err);
    if (!c || !m) {
        free(c);
        free(m);
        return NULL;
    }
    c->impl = m;
    m->node = MPI_COMM_NULL;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            free(m);
            free(c);
            crnn_fail(err, "MPI_Init failed; run under mpirun, or without it for one process");
            return NULL;
        }
        m->finalize = 1;
    }
    m->world = MPI_COMM_WORLD;
    MPI_Comm_set_errhandler(m->world, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->world, &c->rank);
    MPI_Comm_size(m->world, &c->size);
    if (MPI_Comm_split_type(m->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &m->node) == MPI_SUCCESS) {
        MPI_Comm_rank(m->node, &c->local_rank);
        MPI_Comm_size(m->node, &c->local_size);
    } else {
        c->local_rank = 0;
        c->local_size = 1;
    }
    c->name = "mpi";
    c->mpi_comm = &m->world;
    c->allreduce_mean = mpi_allreduce_mean;
    c->allreduce_mean_start = mpi_allreduce_mean_start;
    c->wait_all = mpi_wait_all;
    c->allreduce_max_int = mpi_allreduce_max_int;
    c->broadcast = mpi_broadcast;
    c->gather = mpi_gather;
    c->barrier = mpi_barrier;
    c->destroy = mpi_destroy;
    return c;
}

/* srun without PMI support (srun --mpi=none, Slurm's usual default) starts each of its N tasks
 * as a world of its own: N runs that would each train alone and write the same checkpoints.
 * A process srun started (SLURM_STEP_NUM_TASKS is set for a step, not in the batch shell) whose
 * world is not the step's task count is refused. Under mpirun (OMPI_COMM_WORLD_SIZE is set at
 * start) the Slurm variables describe mpirun's own daemons, not the ranks: no comparison. */
static int check_slurm_step(const Comm *c, int started_by_mpirun, CrnnError *err) {
    const char *tasks = getenv("SLURM_STEP_NUM_TASKS");
    if (started_by_mpirun || !tasks || !*tasks) return 0;
    char *end;
    long n = strtol(tasks, &end, 10);
    if (*end != '\0' || n < 1 || n == c->size) return 0;
    return crnn_fail(err,
                     "srun started %ld tasks (SLURM_STEP_NUM_TASKS=%s) but this process is in an MPI world of %d: "
                     "srun did not connect the tasks, so each would train alone; start them with `srun --mpi=pmix` "
                     "(Debian's Open MPI has no PMI2) or with mpirun inside the allocation (launch/crnn-launch does either)",
                     n, tasks, c->size);
}

Comm *comm_create(int *argc, char ***argv, CrnnError *err) {
    static const char *const launcher_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                                "PMI_SIZE", NULL};
    int by_mpirun = getenv("OMPI_COMM_WORLD_SIZE") != NULL;
    Comm *c = NULL;
    for (int k = 0; launcher_vars[k] && !c; k++)
        if (getenv(launcher_vars[k])) {
            c = comm_mpi_create(argc, argv, err);
            if (!c) return NULL;
        }
    if (!c) c = comm_single_create(err);
    if (c && check_slurm_step(c, by_mpirun, err)) {
        c->destroy(c);
        return NULL;
    }
    return c;
}

int comm_all_ok(Comm *c, int ok, const char *what, CrnnError *err) {
    int64_t failed = ok ? 0 : 1;
    CrnnError why;
    if (c->allreduce_max_int(c, &failed, &why)) {
        if (ok) *err = why;
        return -1;
    }
    if (!failed) return 0;
    if (ok) crnn_fail(err, "rank %d of %d: stopping, another rank %s (its message says why)", c->rank, c->size, what);
    return -1;
}
