/* The CUDA backend: every operation of include/crnn/backend.h on one device and one stream the
 * backend owns. Matrix products are cuBLAS sgemm on row-major data (C^T = op(B)^T op(A)^T in
 * cuBLAS's column-major view); the recurrences issue per step one sgemm (h_{t-1} W_h into the
 * gates, or dA_{t+1} W_h^T into dh_t) and one fused pointwise kernel; the rest are the kernels
 * of kernels/cuda_kernels.cu. Nothing waits for the device except to_host, to_device,
 * softmax_xent and sumsq, which hand values to the host.
 *
 * Errors: the table's operations return nothing, so the first failing CUDA or cuBLAS call is
 * recorded with its file and line, and be->status reports it. After a failure the operations go
 * on being issued (a sticky device error makes them fail too); softmax_xent and sumsq return
 * NaN, so a training loop that checks neither still stops.
 *
 * Built as float only: the finite-difference build (crnn64) stays on the CPU. */
extern "C" {
#include "crnn/backend.h"
#include "crnn/common.h"
}
#include "crnn/cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_kernels.cuh"

static_assert(sizeof(real) == sizeof(float), "the CUDA backend is float32");

namespace {

/* cuBLAS's workspace, set explicitly so that it never allocates while a stream is captured
 * into a CUDA graph (32 MiB: NVIDIA's recommendation for Hopper). */
constexpr size_t kBlasWorkspace = (size_t)32 << 20;

/* The recurrences' CUDA graphs. A recurrence issues two launches per time step (an sgemm and
 * the cell's kernel), and for a character model's small matrices the launches, not the
 * arithmetic, bound the time: so each recurrence is captured once per distinct set of
 * arguments and then replayed, one launch for all its steps. Replaying is exactly re-issuing
 * the captured calls with the same arguments (the pointers, the shapes and the loop's own
 * constants are the key), so the results are the same bit for bit. Recurrences of fewer than
 * kGraphMinSteps steps (sampling's one) are issued directly. */
constexpr int kGraphSlots = 64;
constexpr int kGraphMinSteps = 2;

struct GraphKey {
    int op;
    const void *p[6];
    int n[3];
};

struct GraphSlot {
    GraphKey key;
    cudaGraphExec_t exec; /* null: free */
    uint64_t used;
};

struct CudaImpl {
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_workspace;
    double *partials;  /* [CUK_SUMSQ_BLOCKS] */
    double *result;    /* one double on the device */
    double *host_result; /* pinned, for the reductions' values */
    void *loss_rows; /* per-row losses (double) of softmax_xent */
    size_t loss_rows_bytes;
    void *scratch; /* embedding_backward's sort (grows, never shrinks) */
    size_t scratch_bytes;
    GraphSlot graphs[kGraphSlots]; /* the recurrences' CUDA graphs, by their arguments */
    int graphs_off;                /* CRNN_CUDA_GRAPHS=0, or a capture failed */
    uint64_t clock;                /* for evicting the least recently used graph */
    long graphs_captured, graphs_replayed;
    int failed;
    char message[CRNN_ERROR_MAX];
};

CudaImpl *impl_of(Backend *be) { return (CudaImpl *)be->impl; }

const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

void record_failure(CudaImpl *im, const char *file, int line, const char *call, const char *what) {
    if (im->failed) return;
    im->failed = 1;
    snprintf(im->message, sizeof im->message, "%s:%d: %s: %s", base_name(file), line, call, what);
}

bool cuda_ok(CudaImpl *im, cudaError_t e, const char *call, const char *file, int line) {
    if (e == cudaSuccess) return true;
    char what[384];
    /* a kernel's fault surfaces at a later call, unless launches wait for their kernels */
    const char *blocking = getenv("CUDA_LAUNCH_BLOCKING");
    const bool async = (e == cudaErrorLaunchFailure || e == cudaErrorIllegalAddress) &&
                       !(blocking && strcmp(blocking, "1") == 0);
    snprintf(what, sizeof what, "%s (%s)%s", cudaGetErrorString(e), cudaGetErrorName(e),
             async ? "; an earlier kernel may have failed: with CUDA_LAUNCH_BLOCKING=1 the failing launch is named" : "");
    record_failure(im, file, line, call, what);
    return false;
}

bool blas_ok(CudaImpl *im, cublasStatus_t s, const char *call, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return true;
    char what[256];
    snprintf(what, sizeof what, "%s (%s)", cublasGetStatusString(s), cublasGetStatusName(s));
    record_failure(im, file, line, call, what);
    return false;
}

/* Every CUDA and cuBLAS call goes through one of these: false (and the failure recorded) when
 * it failed. */
#define CUDA_OK(im, call) cuda_ok((im), (call), #call, __FILE__, __LINE__)
#define BLAS_OK(im, call) blas_ok((im), (call), #call, __FILE__, __LINE__)

/* Grows a device buffer to at least `bytes` (the contents are not kept). Allocation happens
 * on the first steps only, so that a later step can be captured into a CUDA graph. */
bool ensure(CudaImpl *im, void **buf, size_t *cap, size_t bytes) {
    if (*cap >= bytes) return true;
    if (*buf && !CUDA_OK(im, cudaStreamSynchronize(im->stream))) return false;
    if (*buf) CUDA_OK(im, cudaFree(*buf));
    *buf = nullptr;
    *cap = 0;
    if (!CUDA_OK(im, cudaMalloc(buf, bytes))) {
        *buf = nullptr;
        return false;
    }
    *cap = bytes;
    return true;
}

bool same_key(const GraphKey &a, const GraphKey &b) {
    if (a.op != b.op) return false;
    for (int k = 0; k < 6; k++)
        if (a.p[k] != b.p[k]) return false;
    for (int k = 0; k < 3; k++)
        if (a.n[k] != b.n[k]) return false;
    return true;
}

/* Captures body()'s work on the stream into a graph in a free (or the least recently used)
 * slot; null when the capture did not work, after which graphs stay off and body() runs
 * directly. A failing call inside body() is recorded as it would be outside a capture. */
template <typename F> GraphSlot *capture(CudaImpl *im, const GraphKey &key, F &&body) {
    GraphSlot *slot = &im->graphs[0];
    for (GraphSlot &g : im->graphs) {
        if (!g.exec) {
            slot = &g;
            break;
        }
        if (g.used < slot->used) slot = &g;
    }
    if (slot->exec) { /* evicted: its last launch finishes first */
        if (!CUDA_OK(im, cudaStreamSynchronize(im->stream))) return nullptr;
        CUDA_OK(im, cudaGraphExecDestroy(slot->exec));
        slot->exec = nullptr;
    }
    cudaGraph_t graph = nullptr;
    /* thread-local: another thread's CUDA calls (NCCL's) do not disturb the capture */
    if (cudaStreamBeginCapture(im->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        (void)cudaGetLastError();
        im->graphs_off = 1;
        return nullptr;
    }
    body();
    cudaError_t e = cudaStreamEndCapture(im->stream, &graph);
    cudaGraphExec_t exec = nullptr;
    if (e == cudaSuccess && !im->failed) e = cudaGraphInstantiate(&exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (e != cudaSuccess || im->failed || !exec) {
        (void)cudaGetLastError();
        if (exec) cudaGraphExecDestroy(exec);
        im->graphs_off = 1;
        return nullptr;
    }
    slot->key = key;
    slot->exec = exec;
    im->graphs_captured++;
    return slot;
}

/* Issues body()'s work: through the graph of `key` (captured on first use) or directly. */
template <typename F> void issue(CudaImpl *im, const GraphKey &key, int steps, F &&body) {
    if (im->graphs_off || im->failed || steps < kGraphMinSteps) {
        body();
        return;
    }
    GraphSlot *slot = nullptr;
    for (GraphSlot &g : im->graphs)
        if (g.exec && same_key(g.key, key)) {
            slot = &g;
            break;
        }
    const bool fresh = !slot;
    if (fresh && !(slot = capture(im, key, body))) {
        if (!im->failed) body(); /* not captured: issued directly */
        return;
    }
    slot->used = ++im->clock;
    if (CUDA_OK(im, cudaGraphLaunch(slot->exec, im->stream)) && !fresh) im->graphs_replayed++;
}

/* ---- memory ------------------------------------------------------------------------------ */

void *cu_alloc(Backend *be, size_t bytes) {
    CudaImpl *im = impl_of(be);
    void *p = nullptr;
    /* cudaMalloc of 0 bytes gives NULL, which means out of memory here */
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError(); /* out of memory is the caller's to report, and not sticky */
        return nullptr;
    }
    if (!CUDA_OK(im, e)) return nullptr; /* anything else is the device's failure */
    if (!CUDA_OK(im, cudaMemsetAsync(p, 0, bytes ? bytes : 1, im->stream))) {
        cudaFree(p);
        return nullptr;
    }
    return p;
}

void cu_free(Backend *be, void *p) {
    if (p) CUDA_OK(impl_of(be), cudaFree(p));
}

/* Synchronous, as the table says: the host buffer may be reused (or read) on return. */
void cu_to_device(Backend *be, void *dst, const void *host_src, size_t bytes) {
    CudaImpl *im = impl_of(be);
    if (!bytes) return;
    if (CUDA_OK(im, cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, im->stream)))
        CUDA_OK(im, cudaStreamSynchronize(im->stream));
}

void cu_to_host(Backend *be, void *host_dst, const void *src, size_t bytes) {
    CudaImpl *im = impl_of(be);
    if (!bytes) return;
    if (CUDA_OK(im, cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, im->stream)))
        CUDA_OK(im, cudaStreamSynchronize(im->stream));
}

void cu_copy(Backend *be, void *dst, const void *src, size_t bytes) {
    CudaImpl *im = impl_of(be);
    if (bytes && dst != src) CUDA_OK(im, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, im->stream));
}

void cu_zero(Backend *be, void *dst, size_t bytes) {
    CudaImpl *im = impl_of(be);
    if (bytes) CUDA_OK(im, cudaMemsetAsync(dst, 0, bytes, im->stream));
}

/* ---- products ---------------------------------------------------------------------------- */

/* Row-major C[M,N] = alpha op(A) op(B) + beta C is column-major C^T = alpha op(B)^T op(A)^T +
 * beta C^T, where each row-major matrix read column-major is its transpose: so B comes first,
 * each with its own transposition, and M, N swap. */
void gemm_on(CudaImpl *im, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc, const char *file, int line) {
    if (M <= 0 || N <= 0) return;
    blas_ok(im,
            cublasSgemm(im->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                        &alpha, B, ldb, A, lda, &beta, C, ldc),
            "cublasSgemm", file, line);
}
#define GEMM(im, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) \
    gemm_on((im), (ta), (tb), (M), (N), (K), (alpha), (A), (lda), (B), (ldb), (beta), (C), (ldc), __FILE__, __LINE__)

void cu_gemm(Backend *be, int trans_a, int trans_b, int M, int N, int K, real alpha, const real *A, int lda,
             const real *B, int ldb, real beta, real *C, int ldc) {
    GEMM(impl_of(be), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void cu_rows_set_bias(Backend *be, real *dst, const real *b1, const real *b2, int M, int N) {
    CudaImpl *im = impl_of(be);
    CUDA_OK(im, cuk_rows_set_bias(im->stream, dst, b1, b2, M, N));
}

void cu_col_sum(Backend *be, real *out, const real *in, int M, int N) {
    CudaImpl *im = impl_of(be);
    CUDA_OK(im, cuk_col_sum(im->stream, out, in, M, N));
}

void cu_embedding_forward(Backend *be, real *out, const int32_t *idx, const real *table, int N, int D) {
    CudaImpl *im = impl_of(be);
    CUDA_OK(im, cuk_embedding_forward(im->stream, out, idx, table, N, D, 0));
}

void cu_embedding_forward_add(Backend *be, real *out, const int32_t *idx, const real *table, int N, int D) {
    CudaImpl *im = impl_of(be);
    CUDA_OK(im, cuk_embedding_forward(im->stream, out, idx, table, N, D, 1));
}

void cu_embedding_backward(Backend *be, real *dtable, const real *dout, const int32_t *idx, int N, int D) {
    CudaImpl *im = impl_of(be);
    if (N <= 0 || D <= 0) return;
    if (!ensure(im, &im->scratch, &im->scratch_bytes, cuk_embedding_backward_scratch(N))) return;
    CUDA_OK(im, cuk_embedding_backward(im->stream, dtable, dout, idx, N, D, im->scratch, im->scratch_bytes));
}

/* ---- recurrences: the rows of backend.h's cell table ------------------------------------- */

void cu_lstm_forward(Backend *be, const CellSeq *q) {
    CudaImpl *im = impl_of(be);
    real *gates = q->gates, *hs = q->hs, *cs = q->cs;
    const real *W_h = q->W_h;
    const int S = q->S, B = q->B, H = q->H;
    const size_t BH = (size_t)B * H;
    issue(im, GraphKey{1, {gates, W_h, hs, cs}, {S, B, H}}, S, [&] {
        for (int t = 0; t < S; t++) {
            real *a = gates + (size_t)t * B * 4 * H;
            GEMM(im, 0, 0, B, 4 * H, H, 1.0f, hs + t * BH, H, W_h, 4 * H, 1.0f, a, 4 * H);
            CUDA_OK(im, cuk_lstm_cell_forward(im->stream, a, cs + t * BH, cs + (t + 1) * BH, hs + (t + 1) * BH, B, H));
        }
    });
}

void cu_lstm_backward(Backend *be, const CellSeq *q) {
    CudaImpl *im = impl_of(be);
    real *gates = q->gates, *dhs = q->dhs, *dc = q->dc;
    const real *W_h = q->W_h, *cs = q->cs;
    const int S = q->S, B = q->B, H = q->H;
    const size_t BH = (size_t)B * H;
    if (S <= 0 || BH == 0) return;
    issue(im, GraphKey{2, {gates, W_h, cs, dhs, dc}, {S, B, H}}, S, [&] {
        CUDA_OK(im, cudaMemsetAsync(dc, 0, BH * sizeof *dc, im->stream));
        for (int t = S - 1; t >= 0; t--) {
            real *dh = dhs + t * BH;
            if (t < S - 1) /* the recurrent gradient from step t+1: dA_{t+1} W_h^T */
                GEMM(im, 0, 1, B, H, 4 * H, 1.0f, gates + (size_t)(t + 1) * B * 4 * H, 4 * H, W_h, 4 * H, 1.0f, dh, H);
            CUDA_OK(im, cuk_lstm_cell_backward(im->stream, gates + (size_t)t * B * 4 * H, cs + t * BH,
                                               cs + (t + 1) * BH, dh, dc, B, H));
        }
    });
}

void cu_gru_forward(Backend *be, const CellSeq *q) {
    CudaImpl *im = impl_of(be);
    real *gates = q->gates, *gates_h = q->gates_h, *hs = q->hs;
    const real *W_h = q->W_h, *b_h = q->b_h;
    const int S = q->S, B = q->B, H = q->H;
    const size_t BH = (size_t)B * H;
    issue(im, GraphKey{3, {gates, gates_h, W_h, b_h, hs}, {S, B, H}}, S, [&] {
        /* every step's recurrent part starts from b_h: all S steps at once */
        CUDA_OK(im, cuk_rows_set_bias(im->stream, gates_h, b_h, nullptr, S * B, 3 * H));
        for (int t = 0; t < S; t++) {
            real *ah = gates_h + (size_t)t * B * 3 * H;
            const real *h_prev = hs + t * BH;
            GEMM(im, 0, 0, B, 3 * H, H, 1.0f, h_prev, H, W_h, 3 * H, 1.0f, ah, 3 * H);
            CUDA_OK(im, cuk_gru_cell_forward(im->stream, gates + (size_t)t * B * 3 * H, ah, h_prev, hs + (t + 1) * BH,
                                             B, H));
        }
    });
}

void cu_gru_backward(Backend *be, const CellSeq *q) {
    CudaImpl *im = impl_of(be);
    real *gates = q->gates, *gates_h = q->gates_h, *dhs = q->dhs;
    const real *W_h = q->W_h, *hs = q->hs;
    const int S = q->S, B = q->B, H = q->H;
    const size_t BH = (size_t)B * H;
    issue(im, GraphKey{4, {gates, gates_h, W_h, hs, dhs}, {S, B, H}}, S, [&] {
        for (int t = S - 1; t >= 0; t--) {
            real *dh = dhs + t * BH;
            if (t < S - 1) /* the recurrent gradient from step t+1: dA_h,{t+1} W_h^T */
                GEMM(im, 0, 1, B, H, 3 * H, 1.0f, gates_h + (size_t)(t + 1) * B * 3 * H, 3 * H, W_h, 3 * H, 1.0f, dh,
                     H);
            CUDA_OK(im, cuk_gru_cell_backward(im->stream, gates + (size_t)t * B * 3 * H,
                                              gates_h + (size_t)t * B * 3 * H, hs + t * BH, dh,
                                              t > 0 ? dh - BH : nullptr, B, H));
        }
    });
}

void cu_rnn_forward(Backend *be, const CellSeq *q) {
    CudaImpl *im = impl_of(be);
    real *gates = q->gates, *hs = q->hs;
    const real *W_h = q->W_h;
    const int S = q->S, B = q->B, H = q->H;
    const size_t BH = (size_t)B * H;
    issue(im, GraphKey{5, {gates, W_h, hs}, {S, B, H}}, S, [&] {
        for (int t = 0; t < S; t++) {
            real *a = gates + t * BH;
            GEMM(im, 0, 0, B, H, H, 1.0f, hs + t * BH, H, W_h, H, 1.0f, a, H);
            CUDA_OK(im, cuk_rnn_cell_forward(im->stream, a, hs + (t + 1) * BH, B, H));
        }
    });
}

void cu_rnn_backward(Backend *be, const CellSeq *q) {
    CudaImpl *im = impl_of(be);
    real *gates = q->gates, *dhs = q->dhs;
    const real *W_h = q->W_h;
    const int S = q->S, B = q->B, H = q->H;
    const size_t BH = (size_t)B * H;
    issue(im, GraphKey{6, {gates, W_h, dhs}, {S, B, H}}, S, [&] {
        for (int t = S - 1; t >= 0; t--) {
            real *dh = dhs + t * BH;
            if (t < S - 1) GEMM(im, 0, 1, B, H, H, 1.0f, gates + (t + 1) * BH, H, W_h, H, 1.0f, dh, H);
            CUDA_OK(im, cuk_rnn_cell_backward(im->stream, gates + t * BH, dh, B, H));
        }
    });
}

void cu_dropout(Backend *be, real *out, const real *x, int S, int B, int H, real p, uint64_t seed,
                uint64_t iteration, int first_stream, int layer) {
    CudaImpl *im = impl_of(be);
    const float keep_scale = (float)(1.0 / (1.0 - (double)p)); /* as the CPU backend rounds it */
    CUDA_OK(im, cuk_dropout(im->stream, out, x, S, B, H, p, keep_scale, seed, iteration, first_stream, layer));
}

/* ---- values for the host ------------------------------------------------------------------- */

/* Copies the device's *result to the host and waits: NaN after any failure. */
double result_to_host(CudaImpl *im) {
    if (!CUDA_OK(im, cudaMemcpyAsync(im->host_result, im->result, sizeof(double), cudaMemcpyDeviceToHost,
                                     im->stream)) ||
        !CUDA_OK(im, cudaStreamSynchronize(im->stream)) || im->failed)
        return NAN;
    return *im->host_result;
}

double cu_softmax_xent(Backend *be, const real *logits, const int32_t *y, real *dlogits, int N, int V, real scale) {
    CudaImpl *im = impl_of(be);
    if (N <= 0) return 0;
    if (!ensure(im, &im->loss_rows, &im->loss_rows_bytes, (size_t)N * sizeof(double))) return NAN;
    double *rows = (double *)im->loss_rows;
    if (!CUDA_OK(im, cuk_softmax_xent(im->stream, logits, y, dlogits, rows, N, V, scale)) ||
        !CUDA_OK(im, cuk_sum_double(im->stream, rows, N, im->result)))
        return NAN;
    return result_to_host(im);
}

double cu_sumsq(Backend *be, const real *x, size_t n) {
    CudaImpl *im = impl_of(be);
    if (!CUDA_OK(im, cuk_sumsq(im->stream, x, n, im->partials, im->result))) return NAN;
    return result_to_host(im);
}

void cu_clamp(Backend *be, real *g, size_t n, real c) {
    CudaImpl *im = impl_of(be);
    CUDA_OK(im, cuk_clamp(im->stream, g, n, c));
}

void cu_scale(Backend *be, real *g, size_t n, real s) {
    CudaImpl *im = impl_of(be);
    CUDA_OK(im, cuk_scale(im->stream, g, n, s));
}

void cu_adam(Backend *be, real *x, const real *g, real *m, real *v, size_t n, double lr, double b1, double b2,
             double eps, int64_t t, real clamp) {
    CudaImpl *im = impl_of(be);
    /* the CPU backend's bias-corrected step, in double, then rounded to float */
    const double step = lr * sqrt(1 - pow(b2, (double)t)) / (1 - pow(b1, (double)t));
    CUDA_OK(im, cuk_adam(im->stream, x, g, m, v, n, (float)b1, (float)b2, (float)eps, (float)step, clamp));
}

void cu_rmsprop(Backend *be, real *x, const real *g, real *v, size_t n, double lr, double alpha, double eps,
                real clamp) {
    CudaImpl *im = impl_of(be);
    CUDA_OK(im, cuk_rmsprop(im->stream, x, g, v, n, (float)alpha, (float)lr, (float)eps, clamp));
}

int cu_status(Backend *be, CrnnError *err) {
    CudaImpl *im = impl_of(be);
    if (!im->failed) return 0;
    return crnn_fail_device(err, "CUDA device %d: %s", be->device, im->message);
}

void cu_destroy(Backend *be) {
    CudaImpl *im = impl_of(be);
    if (im) {
        /* no cudaDeviceReset: a NCCL communicator may still use the device */
        if (im->stream) cudaStreamSynchronize(im->stream);
        for (GraphSlot &g : im->graphs)
            if (g.exec) cudaGraphExecDestroy(g.exec);
        if (im->blas) cublasDestroy(im->blas);
        cudaFree(im->blas_workspace);
        cudaFree(im->partials);
        cudaFree(im->result);
        cudaFree(im->loss_rows);
        cudaFree(im->scratch);
        if (im->host_result) cudaFreeHost(im->host_result);
        if (im->stream) cudaStreamDestroy(im->stream);
        (void)cudaGetLastError();
        free(im);
    }
    free(be);
}

} // namespace

extern "C" int backend_cuda_device_count(int *count, CrnnError *err) {
    *count = 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return crnn_fail_device(err, "%s", cudaGetErrorString(e));
    }
    *count = n;
    return 0;
}

extern "C" Backend *backend_cuda_create(int device, CrnnError *err) {
    Backend *be = (Backend *)crnn_calloc(1, sizeof *be, err);
    CudaImpl *im = (CudaImpl *)crnn_calloc(1, sizeof *im, err);
    if (!be || !im) {
        free(be);
        free(im);
        return nullptr;
    }
    be->impl = im;
    be->destroy = cu_destroy;
    be->device = device;
    const char *graphs = getenv("CRNN_CUDA_GRAPHS");
    im->graphs_off = graphs && strcmp(graphs, "0") == 0; /* to measure what they bring */
    /* stream-ordered set-up: each call checked; the first failure says what and where */
    bool ok = CUDA_OK(im, cudaSetDevice(device)) &&
              CUDA_OK(im, cudaStreamCreateWithFlags(&im->stream, cudaStreamNonBlocking)) &&
              BLAS_OK(im, cublasCreate(&im->blas)) && BLAS_OK(im, cublasSetStream(im->blas, im->stream)) &&
              BLAS_OK(im, cublasSetMathMode(im->blas, CUBLAS_DEFAULT_MATH)) && /* FP32, no TF32 */
              CUDA_OK(im, cudaMalloc(&im->blas_workspace, kBlasWorkspace)) &&
              BLAS_OK(im, cublasSetWorkspace(im->blas, im->blas_workspace, kBlasWorkspace)) &&
              CUDA_OK(im, cudaMalloc((void **)&im->partials, CUK_SUMSQ_BLOCKS * sizeof(double))) &&
              CUDA_OK(im, cudaMalloc((void **)&im->result, sizeof(double))) &&
              CUDA_OK(im, cudaMallocHost((void **)&im->host_result, sizeof(double)));
    if (!ok) {
        crnn_fail_device(err, "cannot start CUDA device %d: %s", device, im->message);
        cu_destroy(be);
        return nullptr;
    }
    be->name = "cuda";
    be->alloc = cu_alloc;
    be->free = cu_free;
    be->to_device = cu_to_device;
    be->to_host = cu_to_host;
    be->copy = cu_copy;
    be->zero = cu_zero;
    be->gemm = cu_gemm;
    be->rows_set_bias = cu_rows_set_bias;
    be->col_sum = cu_col_sum;
    be->embedding_forward = cu_embedding_forward;
    be->embedding_forward_add = cu_embedding_forward_add;
    be->embedding_backward = cu_embedding_backward;
    be->cell[CELL_LSTM] = CellOps{cu_lstm_forward, cu_lstm_backward};
    be->cell[CELL_GRU] = CellOps{cu_gru_forward, cu_gru_backward};
    be->cell[CELL_RNN] = CellOps{cu_rnn_forward, cu_rnn_backward};
    be->dropout = cu_dropout;
    be->softmax_xent = cu_softmax_xent;
    be->clamp = cu_clamp;
    be->sumsq = cu_sumsq;
    be->scale = cu_scale;
    be->adam = cu_adam;
    be->rmsprop = cu_rmsprop;
    be->status = cu_status;
    return be;
}

extern "C" int backend_is_cuda(const Backend *be) { return be && be->destroy == cu_destroy; }

extern "C" int backend_cuda_device(const Backend *be) {
    return backend_is_cuda(be) ? be->device : -1;
}

extern "C" void *backend_cuda_stream(const Backend *be) {
    return backend_is_cuda(be) ? (void *)((const CudaImpl *)be->impl)->stream : nullptr;
}

extern "C" const CudaApi *crnn_cuda_api(void) {
    static const CudaApi api = {CRNN_CUDA_ABI, sizeof(Backend), sizeof(Comm), backend_cuda_device_count,
                                backend_cuda_create, comm_nccl_create};
    return &api;
}

extern "C" int backend_cuda_graphs(const Backend *be, long *captured, long *replayed) {
    if (!backend_is_cuda(be)) return -1;
    const CudaImpl *im = (const CudaImpl *)be->impl;
    *captured = im->graphs_captured;
    *replayed = im->graphs_replayed;
    return im->graphs_off ? 0 : 1;
}
