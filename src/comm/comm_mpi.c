/* The MPI Comm: one rank per process, the world communicator, errors returned as values
 * naming the rank. A rank that dies ends the job through mpirun (or srun --kill-on-bad-exit),
 * never a hang: every collective here is on the world communicator.
 *
 * The gradient buckets of -allreduce overlap are reduced by a communication thread: Open MPI
 * moves a nonblocking collective's data only inside MPI calls, so without one the buckets that
 * backward hands over early would wait for the main thread's next MPI call. The thread starts
 * each bucket's MPI_Iallreduce and tests them every PROGRESS_US microseconds, sleeping in
 * between (the compute threads keep the cores), while the main thread runs backward; wait_all
 * waits for it. The two threads never call MPI at the same time (MPI_THREAD_SERIALIZED): the
 * main thread calls MPI only while the communication thread has nothing in flight.
 *
 * Every allreduce here is in place, and Open MPI's nonblocking allreduce (coll/libnbc) reduces
 * an in-place buffer through a binomial tree: reduce to rank 0, then broadcast, 2·log2(P) times
 * the buffer through the slowest link, where a ring sends 2(P-1)/P times it (half as much at
 * P = 2, a quarter at P = 16; benchmarks/NOTES.md). So under Open MPI, unless the user chose an
 * algorithm (OMPI_MCA_coll_libnbc_iallreduce_algorithm, or mpirun --mca, which sets the same),
 * buffers of RING_BYTES and more go round a ring and smaller ones (the loss, the stop flag)
 * through the tree, whose 2·log2(P) steps beat the ring's 2(P-1) where latency is all: the
 * choice is made per call through MPI_T's control variable, and where that cannot be written
 * every buffer takes the ring. */
#include <errno.h>
#include <inttypes.h>
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crnn/comm.h"

typedef struct Pending {
    MPI_Request req;
    real *buf;
    size_t n;
} Pending;

/* How often the communication thread drives the reductions in flight. */
#define PROGRESS_US 100

typedef struct Progress {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work; /* main -> thread: a bucket, or stop */
    pthread_cond_t idle; /* thread -> main: nothing in flight */
    int running;
    int stop;    /* the thread ends (destroy) or parks for good (a timed-out wait) */
    int started; /* buckets 0 .. started-1 have their MPI_Iallreduce */
    int done;    /* buckets finished (the thread counts them) */
    int busy;    /* the thread is inside MPI or has requests in flight */
    int rc;      /* the first MPI error */
} Progress;

/* Buffers of this many bytes and more are reduced around a ring (above). */
#define RING_BYTES ((size_t)64 << 10)

typedef struct MpiImpl {
    MPI_Comm world, node;
    MPI_Win shared;            /* node_shared's window (MPI_WIN_NULL: none), locked for all */
    int mpit;                  /* we called MPI_T_init_thread */
    int algo_ctl;              /* algo_handle writes libnbc's iallreduce algorithm per call */
    int algo;                  /* the algorithm last written (-1: none yet) */
    MPI_T_cvar_handle algo_handle;
    Pending *pending;
    int npending, cap;
    int finalize;    /* we called MPI_Init */
    int serialized;  /* MPI_THREAD_SERIALIZED was granted: the communication thread may run */
    Progress prog;
} MpiImpl;

static MpiImpl *impl(Comm *c) { return c->impl; }

static int mpi_fail(Comm *c, int code, const char *what, CrnnError *err) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    text[len] = '\0';
    CommTimer *t = c->timer;
    t->broken = 1;
    if (t->timed && t->what)
        return crnn_fail_peer_lost(err, "rank %d of %d on %s: %s at iteration %" PRId64 " failed: %s: a rank, its host or the network "
                              "between them is gone; ending the whole job (the checkpoints written so far are whole: "
                              "continue with -resume auto)",
                         c->rank, c->size, c->host, t->what, t->iteration, text);
    return crnn_fail_peer_lost(err, "rank %d of %d on %s: %s failed: %s", c->rank, c->size, c->host, what, text);
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

/* The CLOCK_REALTIME instant `seconds` from now, for pthread_cond_timedwait. */
static struct timespec realtime_after(double seconds) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    long long ns = (long long)t.tv_nsec + (long long)(seconds * 1e9);
    t.tv_sec += (time_t)(ns / 1000000000LL);
    t.tv_nsec = (long)(ns % 1000000000LL);
    return t;
}

/* Waits for req: as long as it takes, or while the timer is on at most timer->timeout seconds,
 * polling the request (Open MPI's own wait polls the same way: no CPU is spent that MPI_Wait
 * would not spend). A request left behind by a timeout is never freed: the job ends. */
static int wait_request(Comm *c, MPI_Request *req, const char *what, CrnnError *err) {
    const CommTimer *t = c->timer;
    int rc;
    if (!comm_bounded(c)) {
        rc = MPI_Wait(req, MPI_STATUS_IGNORE);
        return rc == MPI_SUCCESS ? 0 : mpi_fail(c, rc, what, err);
    }
    const double deadline = crnn_now_seconds() + t->timeout;
    for (unsigned spins = 0;; spins++) {
        int done = 0;
        rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(c, rc, what, err);
        if (done) return 0;
        if ((spins & 63) == 0 && crnn_now_seconds() > deadline) return comm_timeout_error(c, err);
    }
}

/* MPI_Iallreduce in place, around a ring or through the tree by size (the file's comment).
 * Called only by the thread that may call MPI at that moment. */
static int iallreduce(MpiImpl *m, void *buf, int count, MPI_Datatype type, MPI_Op op, MPI_Request *req) {
    if (m->algo_ctl) {
        int size = 0;
        MPI_Type_size(type, &size);
        int want = (size_t)count * (size_t)size >= RING_BYTES ? 1 : 2; /* libnbc: 1 ring, 2 binomial */
        if (want != m->algo && MPI_T_cvar_write(m->algo_handle, &want) == MPI_SUCCESS) m->algo = want;
    }
    return MPI_Iallreduce(MPI_IN_PLACE, buf, count, type, op, m->world, req);
}

static int mpi_allreduce_mean(Comm *c, real *buf, size_t n, CrnnError *err) {
    if (c->size == 1) return 0;
    for (size_t off = 0; off < n; off += MPI_PIECE) {
        int count = (int)(n - off < MPI_PIECE ? n - off : MPI_PIECE);
        MPI_Request req;
        int rc = iallreduce(impl(c), buf + off, count, MPI_REAL_T, MPI_SUM, &req);
        if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "an allreduce", err);
        if (wait_request(c, &req, "an allreduce", err)) return -1;
    }
    scale(buf, n, c->size);
    return 0;
}

/* ---- the communication thread ---------------------------------------------------------- */

static void *progress_main(void *arg) {
    Comm *c = arg;
    MpiImpl *m = impl(c);
    Progress *p = &m->prog;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->started == m->npending && p->done == p->started) {
            p->busy = 0;
            pthread_cond_broadcast(&p->idle);
            pthread_cond_wait(&p->work, &p->mu);
        }
        if (p->stop) break;
        p->busy = 1;
        int from = p->started, to = m->npending, done = p->done;
        Pending *pend = m->pending; /* stable while busy: the main thread grows it only when idle */
        pthread_mutex_unlock(&p->mu);
        int rc = MPI_SUCCESS;
        for (int k = from; k < to && rc == MPI_SUCCESS; k++)
            rc = iallreduce(m, pend[k].buf, (int)pend[k].n, MPI_REAL_T, MPI_SUM, &pend[k].req);
        /* the buckets finish in the order they started */
        while (rc == MPI_SUCCESS && done < to) {
            int flag = 0;
            rc = MPI_Test(&pend[done].req, &flag, MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS || !flag) break;
            scale(pend[done].buf, pend[done].n, c->size);
            done++;
        }
        pthread_mutex_lock(&p->mu);
        p->started = to;
        p->done = done;
        if (rc != MPI_SUCCESS) {
            if (p->rc == MPI_SUCCESS) p->rc = rc;
            p->done = p->started = m->npending; /* nothing more can finish: report it */
            continue;
        }
        if (p->done < p->started && p->started == m->npending && !p->stop) { /* nothing new: let the compute run */
            struct timespec t = realtime_after(PROGRESS_US * 1e-6);
            pthread_cond_timedwait(&p->work, &p->mu, &t);
        }
    }
    p->busy = 0;
    pthread_cond_broadcast(&p->idle);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int progress_start(Comm *c, CrnnError *err) {
    Progress *p = &impl(c)->prog;
    if (p->running) return 0;
    if (pthread_create(&p->thread, NULL, progress_main, c) != 0)
        return crnn_fail(err, "rank %d: cannot start the communication thread: %s", c->rank, strerror(errno));
    p->running = 1;
    return 0;
}

static void progress_stop(MpiImpl *m) {
    Progress *p = &m->prog;
    if (!p->running) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    p->running = 0;
}

static int grow_pending(Comm *c, CrnnError *err) {
    MpiImpl *m = impl(c);
    if (m->npending < m->cap) return 0;
    int cap = m->cap ? 2 * m->cap : 16;
    Pending *grown = realloc(m->pending, (size_t)cap * sizeof *grown);
    if (!grown) return crnn_fail_nomem(err, "rank %d: out of memory", c->rank);
    m->pending = grown;
    m->cap = cap;
    return 0;
}

static int mpi_allreduce_mean_start(Comm *c, real *buf, size_t n, CrnnError *err) {
    if (c->size == 1) return 0;
    MpiImpl *m = impl(c);
    Progress *p = &m->prog;
    if (m->serialized && progress_start(c, err)) return -1;
    for (size_t off = 0; off < n; off += MPI_PIECE) {
        if (p->running) pthread_mutex_lock(&p->mu);
        /* the list grows only while the thread has nothing of it in hand */
        while (p->running && p->busy && m->npending == m->cap) pthread_cond_wait(&p->idle, &p->mu);
        if (grow_pending(c, err)) {
            if (p->running) pthread_mutex_unlock(&p->mu);
            return -1;
        }
        Pending *q = &m->pending[m->npending];
        q->buf = buf + off;
        q->n = n - off < MPI_PIECE ? n - off : MPI_PIECE;
        if (p->running) { /* the thread starts it */
            m->npending++;
            pthread_cond_signal(&p->work);
            pthread_mutex_unlock(&p->mu);
            continue;
        }
        int rc = iallreduce(impl(c), q->buf, (int)q->n, MPI_REAL_T, MPI_SUM, &q->req);
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

/* The main thread's wait for the communication thread, bounded like every timed wait. */
static int progress_wait(Comm *c, CrnnError *err) {
    MpiImpl *m = impl(c);
    Progress *p = &m->prog;
    const CommTimer *t = c->timer;
    const int bounded = comm_bounded(c);
    const struct timespec deadline = realtime_after(bounded ? t->timeout : 0);
    pthread_mutex_lock(&p->mu);
    int timed_out = 0;
    while (p->busy || p->started < m->npending || p->done < p->started) {
        if (!bounded) {
            pthread_cond_wait(&p->idle, &p->mu);
        } else if (pthread_cond_timedwait(&p->idle, &p->mu, &deadline) == ETIMEDOUT) {
            timed_out = 1;
            break;
        }
    }
    int rc = p->rc;
    if (timed_out) { /* the thread stops calling MPI before the job is aborted */
        p->stop = 1;
        pthread_cond_signal(&p->work);
        while (p->busy) pthread_cond_wait(&p->idle, &p->mu);
    } else {
        m->npending = 0;
        p->started = p->done = 0;
        p->rc = MPI_SUCCESS;
    }
    pthread_mutex_unlock(&p->mu);
    if (timed_out) return comm_timeout_error(c, err);
    if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "waiting for the gradient allreduces", err);
    return 0;
}

static int mpi_wait_all(Comm *c, CrnnError *err) {
    MpiImpl *m = impl(c);
    if (m->prog.running) return progress_wait(c, err);
    int rc = 0;
    for (int k = 0; k < m->npending && rc == 0; k++) {
        rc = wait_request(c, &m->pending[k].req, "waiting for the gradient allreduces", err);
        if (rc == 0) scale(m->pending[k].buf, m->pending[k].n, c->size);
    }
    m->npending = 0;
    return rc;
}

static int mpi_allreduce_max_int(Comm *c, int64_t *v, CrnnError *err) {
    if (c->size == 1) return 0;
    MPI_Request req;
    int rc = iallreduce(impl(c), v, 1, MPI_INT64_T, MPI_MAX, &req);
    if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "an allreduce", err);
    return wait_request(c, &req, "an allreduce", err);
}

static int mpi_broadcast(Comm *c, void *buf, size_t bytes, int root, CrnnError *err) {
    for (size_t off = 0; off < bytes; off += MPI_PIECE) {
        int count = (int)(bytes - off < MPI_PIECE ? bytes - off : MPI_PIECE);
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + off, count, MPI_BYTE, root, impl(c)->world, &req);
        if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "a broadcast", err);
        if (wait_request(c, &req, "a broadcast", err)) return -1;
    }
    return 0;
}

static int mpi_gather(Comm *c, const void *send, size_t bytes, void *recv, int root, CrnnError *err) {
    if (bytes > (size_t)1 << 30) return crnn_fail(err, "rank %d: gather of %zu bytes is too large", c->rank, bytes);
    MPI_Request req;
    int rc = MPI_Igather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, root, impl(c)->world, &req);
    if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "a gather", err);
    return wait_request(c, &req, "a gather", err);
}

static int mpi_barrier(Comm *c, CrnnError *err) {
    MPI_Request req;
    int rc = MPI_Ibarrier(impl(c)->world, &req);
    if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "a barrier", err);
    return wait_request(c, &req, "a barrier", err);
}

/* One window for the whole job, its memory on local rank 0 and mapped by the others (MPI-3
 * shared memory), under a passive-target epoch for good: the ranks read and write it directly,
 * and node_barrier orders those accesses (MPI_Win_sync on each side of a barrier, the unified
 * memory model's way). */
static void *mpi_node_shared(Comm *c, size_t bytes, CrnnError *err) {
    MpiImpl *m = impl(c);
    if (c->local_size != c->size || m->shared != MPI_WIN_NULL || bytes == 0) return NULL;
    void *base = NULL;
    MPI_Aint size = 0;
    int disp = 0;
    int rc = MPI_Win_allocate_shared(c->local_rank == 0 ? (MPI_Aint)bytes : 0, 1, MPI_INFO_NULL, m->node, &base,
                                     &m->shared);
    if (rc == MPI_SUCCESS) rc = MPI_Win_shared_query(m->shared, 0, &size, &disp, &base);
    if (rc == MPI_SUCCESS && (size_t)size < bytes) rc = MPI_ERR_NO_MEM;
    if (rc == MPI_SUCCESS) rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, m->shared);
    if (rc != MPI_SUCCESS) {
        char text[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, text, &len);
        text[len] = '\0';
        if (m->shared != MPI_WIN_NULL) MPI_Win_free(&m->shared);
        crnn_fail(err, "rank %d of %d on %s: no shared memory of %zu bytes for the node's ranks: %s", c->rank, c->size,
                  c->host, bytes, text);
        return NULL;
    }
    if (c->local_rank == 0) memset(base, 0, bytes);
    return base;
}

static int mpi_node_barrier(Comm *c, CrnnError *err) {
    MpiImpl *m = impl(c);
    if (m->shared != MPI_WIN_NULL) MPI_Win_sync(m->shared);
    MPI_Request req;
    int rc = MPI_Ibarrier(m->node, &req);
    if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "a barrier", err);
    if (wait_request(c, &req, "a barrier", err)) return -1;
    if (m->shared != MPI_WIN_NULL) MPI_Win_sync(m->shared);
    return 0;
}

static void mpi_abort(Comm *c, int code) {
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(impl(c)->world, code);
    exit(code); /* MPI_Abort does not return; should it, the process still ends */
}

static void mpi_destroy(Comm *c) {
    if (!c) return;
    MpiImpl *m = impl(c);
    if (m) {
        progress_stop(m);
        if (m->shared != MPI_WIN_NULL) {
            MPI_Win_unlock_all(m->shared);
            MPI_Win_free(&m->shared);
        }
        pthread_mutex_destroy(&m->prog.mu);
        pthread_cond_destroy(&m->prog.work);
        pthread_cond_destroy(&m->prog.idle);
        if (m->node != MPI_COMM_NULL) MPI_Comm_free(&m->node);
        if (m->algo_ctl) MPI_T_cvar_handle_free(&m->algo_handle);
        if (m->mpit) MPI_T_finalize();
        if (m->finalize) MPI_Finalize();
        free(m->pending);
        free(m);
    }
    free(c->timer);
    free(c);
}

Comm *comm_mpi_create(int *argc, char ***argv, CrnnError *err) {
    Comm *c = crnn_calloc(1, sizeof *c, err);
    MpiImpl *m = crnn_calloc(1, sizeof *m, err);
    CommTimer *timer = crnn_calloc(1, sizeof *timer, err);
    if (!c || !m || !timer) {
        free(c);
        free(m);
        free(timer);
        return NULL;
    }
    c->impl = m;
    c->timer = timer;
    pthread_mutex_init(&m->prog.mu, NULL);
    pthread_cond_init(&m->prog.work, NULL);
    pthread_cond_init(&m->prog.idle, NULL);
    if (gethostname(c->host, sizeof c->host - 1) != 0) snprintf(c->host, sizeof c->host, "?");
    m->node = MPI_COMM_NULL;
    m->shared = MPI_WIN_NULL;
    int inited = 0;
    MPI_Initialized(&inited);
#ifdef OPEN_MPI
    /* the ring for every buffer, unless the user chose; refined per call below (the file's
     * comment). OMPI_MCA_ variables are read by MPI_Init. */
    const int user_algo = getenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm") != NULL;
    if (!inited && !user_algo) setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 1);
#endif
    if (!inited) {
        int provided;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
            free(timer);
            free(m);
            free(c);
            crnn_fail(err, "MPI_Init failed; run under mpirun, or without it for one process");
            return NULL;
        }
        m->finalize = 1;
    }
    m->world = MPI_COMM_WORLD;
    MPI_Comm_set_errhandler(m->world, MPI_ERRORS_RETURN);
    m->algo = -1;
#ifdef OPEN_MPI
    int tlevel, index, count;
    if (!inited && !user_algo && MPI_T_init_thread(MPI_THREAD_SERIALIZED, &tlevel) == MPI_SUCCESS) {
        m->mpit = 1;
        m->algo_ctl = MPI_T_cvar_get_index("coll_libnbc_iallreduce_algorithm", &index) == MPI_SUCCESS &&
                      MPI_T_cvar_handle_alloc(index, NULL, &m->algo_handle, &count) == MPI_SUCCESS;
    }
#endif
    /* the communication thread of -allreduce overlap, unless CRNN_COMM_THREAD=0 */
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    const char *thread_env = getenv("CRNN_COMM_THREAD");
    m->serialized = level >= MPI_THREAD_SERIALIZED && !(thread_env && strcmp(thread_env, "0") == 0);
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
    c->under_launcher = 1;
    c->mpi_comm = &m->world;
    c->allreduce_mean = mpi_allreduce_mean;
    c->allreduce_mean_start = mpi_allreduce_mean_start;
    c->wait_all = mpi_wait_all;
    c->allreduce_max_int = mpi_allreduce_max_int;
    c->broadcast = mpi_broadcast;
    c->gather = mpi_gather;
    c->barrier = mpi_barrier;
    c->node_shared = mpi_node_shared;
    c->node_barrier = mpi_node_barrier;
    c->destroy = mpi_destroy;
    c->abort = mpi_abort;
    return c;
}
