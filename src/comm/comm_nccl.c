/* The NCCL Comm: gradient reductions on the devices, everything else on the inner Comm (MPI or
 * the single process). A bucket's reduction is ordered after the backward kernels that produced
 * it by an event recorded on the backend's stream, runs on this Comm's own stream (so that the
 * backward of the layers below goes on meanwhile), and wait_all makes the backend's stream wait
 * for all of them: no host synchronisation anywhere, as a CUDA graph of the step would need;
 * except while -comm_timeout bounds the step's collectives: then the host polls them, bounded.
 * A failure aborts the communicator (ncclCommAbort) and every later call reports it. */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crnn/cuda.h"

_Static_assert(sizeof(real) == sizeof(float), "NCCL reduces float32 gradients");

typedef struct NcclImpl {
    Comm *inner;
    int device;
    ncclComm_t nccl;
    cudaStream_t stream;  /* the reductions */
    cudaStream_t compute; /* the backend's */
    cudaEvent_t ready, done;
    int pending; /* reductions issued since the last wait_all */
    int aborted;
} NcclImpl;

static NcclImpl *impl_of(Comm *c) { return c->impl; }

static void abort_comm(NcclImpl *m) {
    if (m->nccl && !m->aborted) ncclCommAbort(m->nccl);
    m->aborted = 1;
}

static int nccl_failed(Comm *c, const char *what, ncclResult_t r, CrnnError *err) {
    NcclImpl *m = impl_of(c);
    const char *detail = m->nccl ? ncclGetLastError(m->nccl) : NULL;
    abort_comm(m);
    /* a CUDA error inside NCCL is the device's; any other NCCL failure is a peer or the network */
    return crnn_fail_kind(err, r == ncclUnhandledCudaError ? CRNN_ERR_DEVICE : CRNN_ERR_PEER_LOST,
                     "rank %d of %d: NCCL %s failed: %s%s%s; the communicator was aborted", c->rank,
                     c->size, what, ncclGetErrorString(r), detail && *detail ? ": " : "", detail ? detail : "");
}

static int cuda_failed(Comm *c, const char *what, cudaError_t e, CrnnError *err) {
    abort_comm(impl_of(c));
    return crnn_fail_device(err, "rank %d of %d: %s failed: %s; the NCCL communicator was aborted", c->rank, c->size,
                     what, cudaGetErrorString(e));
}

#define NCCL_TRY(c, call, what, err)                                     \
    do {                                                                 \
        ncclResult_t r_ = (call);                                        \
        if (r_ != ncclSuccess) return nccl_failed((c), (what), r_, (err)); \
    } while (0)
#define CUDA_TRY(c, call, err)                                                       \
    do {                                                                             \
        cudaError_t e_ = (call);                                                     \
        if (e_ != cudaSuccess) return cuda_failed((c), #call " (" __FILE__ ")", e_, (err)); \
    } while (0)

/* Device (or managed) memory goes through NCCL; host memory (e.g. the loss) through MPI. */
static int on_device(const void *p) {
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

static int usable(Comm *c, CrnnError *err) {
    if (impl_of(c)->aborted)
        return crnn_fail(err, "rank %d of %d: the NCCL communicator was aborted after an earlier failure", c->rank,
                         c->size);
    return 0;
}

static int nccl_start(Comm *c, real *buf, size_t n, CrnnError *err) {
    NcclImpl *m = impl_of(c);
    if (!on_device(buf)) return m->inner->allreduce_mean_start(m->inner, buf, n, err);
    if (usable(c, err)) return -1;
    if (n == 0) return 0;
    CUDA_TRY(c, cudaEventRecord(m->ready, m->compute), err);
    CUDA_TRY(c, cudaStreamWaitEvent(m->stream, m->ready, 0), err);
    NCCL_TRY(c, ncclAllReduce(buf, buf, n, ncclFloat32, ncclAvg, m->nccl, m->stream), "allreduce of a gradient bucket",
             err);
    m->pending++;
    return 0;
}

/* NCCL's asynchronous errors (a peer gone, a network failure): a failure, or 0. */
static int check_async(Comm *c, CrnnError *err) {
    ncclResult_t async = ncclSuccess;
    NCCL_TRY(c, ncclCommGetAsyncError(impl_of(c)->nccl, &async), "ncclCommGetAsyncError", err);
    if (async != ncclSuccess && async != ncclInProgress) return nccl_failed(c, "a gradient allreduce", async, err);
    return 0;
}

/* Waits on the host for the reductions up to m->done, at most timer->timeout seconds: polls the
 * event and NCCL's asynchronous error, sleeping a few microseconds growing to 1 ms between polls
 * (NCCL's documented way to bound a collective). At the deadline the communicator is aborted (a
 * hung collective's only way out) and the timeout ends the job, as the inner Comm's would. */
static int wait_bounded(Comm *c, CrnnError *err) {
    NcclImpl *m = impl_of(c);
    const double deadline = crnn_now_seconds() + c->timer->timeout;
    for (long pause_ns = 2000;; pause_ns = pause_ns < 1000000 ? 2 * pause_ns : 1000000) {
        cudaError_t e = cudaEventQuery(m->done);
        if (e == cudaSuccess) return 0;
        if (e != cudaErrorNotReady) return cuda_failed(c, "cudaEventQuery of the gradient reductions", e, err);
        if (check_async(c, err)) return -1;
        if (crnn_now_seconds() > deadline) {
            /* a hung collective's only way out; the timeout's message says so */
            abort_comm(m);
            comm_timeout_error(c, err);
            size_t used = strlen(err->msg);
            snprintf(err->msg + used, sizeof err->msg - used, "; this rank's NCCL communicator was aborted");
            return -1;
        }
        struct timespec pause = {0, pause_ns};
        nanosleep(&pause, NULL);
    }
}

/* The backend's stream waits for the reductions issued so far: asynchronously, or while the
 * timer is on (-comm_timeout) on the host, bounded, since a device synchronisation later would
 * wait for ever on a lost peer's reduction. NCCL's asynchronous errors (a peer gone, a network
 * failure) are polled here. */
static int nccl_finish(Comm *c, CrnnError *err) {
    NcclImpl *m = impl_of(c);
    if (usable(c, err)) return -1;
    if (m->pending) {
        m->pending = 0;
        CUDA_TRY(c, cudaEventRecord(m->done, m->stream), err);
        /* timed: the host waits for them itself, so the work it issues next follows them */
        if (comm_bounded(c)) return wait_bounded(c, err);
        CUDA_TRY(c, cudaStreamWaitEvent(m->compute, m->done, 0), err);
    }
    return check_async(c, err);
}

static int nccl_wait_all(Comm *c, CrnnError *err) {
    NcclImpl *m = impl_of(c);
    int rc = m->inner->wait_all(m->inner, err);
    if (nccl_finish(c, err)) return -1;
    return rc;
}

static int nccl_allreduce_mean(Comm *c, real *buf, size_t n, CrnnError *err) {
    NcclImpl *m = impl_of(c);
    if (!on_device(buf)) return m->inner->allreduce_mean(m->inner, buf, n, err);
    if (nccl_start(c, buf, n, err)) return -1;
    return nccl_finish(c, err);
}

static int nccl_gather(Comm *c, const void *send, size_t bytes, void *recv, int root, CrnnError *err) {
    Comm *in = impl_of(c)->inner;
    return in->gather(in, send, bytes, recv, root, err);
}
static int nccl_allreduce_max_int(Comm *c, int64_t *v, CrnnError *err) {
    Comm *in = impl_of(c)->inner;
    return in->allreduce_max_int(in, v, err);
}
static int nccl_broadcast(Comm *c, void *buf, size_t bytes, int root, CrnnError *err) {
    Comm *in = impl_of(c)->inner;
    return in->broadcast(in, buf, bytes, root, err);
}
static int nccl_barrier(Comm *c, CrnnError *err) {
    Comm *in = impl_of(c)->inner;
    return in->barrier(in, err);
}

/* Frees what create made; the inner Comm only when `with_inner`. */
static void release(Comm *c, int with_inner) {
    NcclImpl *m = impl_of(c);
    if (m) {
        if (m->stream) cudaStreamSynchronize(m->stream);
        if (m->nccl && !m->aborted) ncclCommDestroy(m->nccl);
        if (m->ready) cudaEventDestroy(m->ready);
        if (m->done) cudaEventDestroy(m->done);
        if (m->stream) cudaStreamDestroy(m->stream);
        (void)cudaGetLastError();
        if (with_inner && m->inner) m->inner->destroy(m->inner);
        free(m);
    }
    free(c);
}

static void nccl_destroy(Comm *c) { release(c, 1); }

/* The devices' reductions are abandoned (a lost peer would leave them waiting for ever), then
 * the inner Comm ends the job. */
static void nccl_abort(Comm *c, int code) {
    abort_comm(impl_of(c));
    impl_of(c)->inner->abort(impl_of(c)->inner, code);
}

int comm_is_nccl(const Comm *c) { return c && c->destroy == nccl_destroy; }

/* Rank 0's ncclUniqueId, broadcast over the inner Comm, with whether rank 0 could make one (so
 * that a failure there does not leave the others waiting in ncclCommInitRank). */
typedef struct IdMessage {
    int ok;
    ncclUniqueId id;
} IdMessage;

static int start_nccl(Comm *c, CrnnError *err) {
    NcclImpl *m = impl_of(c);
    CUDA_TRY(c, cudaSetDevice(m->device), err);
    CUDA_TRY(c, cudaStreamCreateWithFlags(&m->stream, cudaStreamNonBlocking), err);
    CUDA_TRY(c, cudaEventCreateWithFlags(&m->ready, cudaEventDisableTiming), err);
    CUDA_TRY(c, cudaEventCreateWithFlags(&m->done, cudaEventDisableTiming), err);
    IdMessage msg;
    memset(&msg, 0, sizeof msg);
    ncclResult_t id_rc = ncclSuccess;
    if (c->rank == 0) {
        id_rc = ncclGetUniqueId(&msg.id);
        msg.ok = id_rc == ncclSuccess;
    }
    if (m->inner->broadcast(m->inner, &msg, sizeof msg, 0, err)) return -1;
    if (c->rank == 0 && !msg.ok) return nccl_failed(c, "ncclGetUniqueId", id_rc, err);
    if (!msg.ok) return crnn_fail(err, "rank %d of %d: rank 0 could not start NCCL (its message says why)", c->rank, c->size);
    NCCL_TRY(c, ncclCommInitRank(&m->nccl, c->size, msg.id, c->rank), "ncclCommInitRank", err);
    return 0;
}

Comm *comm_nccl_create(Comm *inner, Backend *be, CrnnError *err) {
    if (!backend_is_cuda(be)) {
        crnn_fail(err, "NCCL reduces gradients on CUDA devices; the backend is %s", be ? be->name : "missing");
        return NULL;
    }
    Comm *c = crnn_calloc(1, sizeof *c, err);
    NcclImpl *m = crnn_calloc(1, sizeof *m, err);
    if (!c || !m) {
        free(c);
        free(m);
        return NULL;
    }
    c->impl = m;
    m->inner = inner;
    m->device = backend_cuda_device(be);
    m->compute = (cudaStream_t)backend_cuda_stream(be);
    c->name = inner->name;
    c->under_launcher = inner->under_launcher;
    c->rank = inner->rank;
    c->size = inner->size;
    c->local_rank = inner->local_rank;
    c->local_size = inner->local_size;
    memcpy(c->host, inner->host, sizeof c->host);
    c->timer = inner->timer; /* the inner Comm's: -comm_timeout bounds its waits */
    c->mpi_comm = inner->mpi_comm;
    c->allreduce_mean = nccl_allreduce_mean;
    c->allreduce_mean_start = nccl_start;
    c->wait_all = nccl_wait_all;
    c->gather = nccl_gather;
    c->allreduce_max_int = nccl_allreduce_max_int;
    c->broadcast = nccl_broadcast;
    c->barrier = nccl_barrier;
    c->destroy = nccl_destroy;
    c->abort = nccl_abort;
    if (start_nccl(c, err)) {
        release(c, 0);
        return NULL;
    }
    return c;
}
