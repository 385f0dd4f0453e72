/* The backend: memory and math on one device. The model is written in terms of these
 * operations only; the CPU backend (OpenBLAS + fused loops) implements them here, and a CUDA
 * backend implements the same table. All matrices are row-major. Pointers passed to an
 * operation live in the backend's memory (from be->alloc), except where noted "host". */
#ifndef CRNN_BACKEND_H
#define CRNN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "crnn/cell.h"
#include "crnn/common.h"

typedef struct Backend Backend;

/* One layer's recurrence over S steps for B streams, for any cell (cell.h, with G gates): the
 * buffers of the cell's row in Backend's cell table, which says which of them each cell reads
 * and writes; a cell ignores the others (they may be NULL). model.h's LayerBuffers holds them. */
typedef struct CellSeq {
    /* [S, B, G*H]. Forward: holds the input part of each step's pre-activations, and receives
     * the activations backward needs. Backward: overwritten with the pre-activation gradients. */
    real *gates;
    /* [S, B, G*H], cells whose recurrent bias stays apart (gru): the recurrent parts
     * h_{t-1} W_h + b_h (forward), then their gradients (backward). */
    real *gates_h;
    const real *W_h;   /* [H, G*H] */
    const real *b_h;   /* [G*H], cells whose recurrent bias stays apart */
    /* [(S+1), B, H]: slot 0 holds the initial state, slot t+1 receives step t's output. */
    real *hs;
    real *cs;          /* [(S+1), B, H] as hs, cells with a cell state (lstm) */
    /* [S, B, H] backward: holds the gradient on each step's output from above and is used as
     * scratch. The state entering the sequence gets no gradient (truncated backpropagation
     * through time). */
    real *dhs;
    real *dc;          /* [B, H] backward scratch, cells with a cell state */
    int S, B, H;
} CellSeq;

/* One row of Backend's cell table: a cell's forward and backward recurrence on that backend. */
typedef struct CellOps {
    void (*forward)(Backend *be, const CellSeq *q);
    void (*backward)(Backend *be, const CellSeq *q);
} CellOps;

/* The precision of the products (-precision, docs/FORMATS.md): float32, or bf16 operands with
 * float32 sums; the weights, states, softmax and optimizer stay float32 either way. */
typedef enum Precision { PRECISION_FLOAT32 = 0, PRECISION_BF16 = 1 } Precision;

struct Backend {
    const char *name; /* "cpu", "cuda" */
    /* Its buffers are host memory that the caller may read directly (the CPU's): a checkpoint
     * is written from them without a copy. */
    int host_memory;
    int device; /* the CUDA device it runs on; -1 on the CPU */
    void *(*alloc)(Backend *be, size_t bytes); /* zero-filled; NULL when out of memory */
    void (*free)(Backend *be, void *p);
    void (*to_device)(Backend *be, void *dst, const void *host_src, size_t bytes);
    void (*to_host)(Backend *be, void *host_dst, const void *src, size_t bytes);
    void (*copy)(Backend *be, void *dst, const void *src, size_t bytes);
    void (*zero)(Backend *be, void *dst, size_t bytes);

    /* C[M,N] = alpha * op(A) * op(B) + beta * C; op(A) is [M,K], op(B) is [K,N]. */
    void (*gemm)(Backend *be, int trans_a, int trans_b, int M, int N, int K, real alpha,
                 const real *A, int lda, const real *B, int ldb, real beta, real *C, int ldc);
    /* dst[m, :] = b1 + b2 (b2 may be NULL) for every row m of [M, N]. */
    void (*rows_set_bias)(Backend *be, real *dst, const real *b1, const real *b2, int M, int N);
    /* out[n] = sum over rows m of in[m, n], in is [M, N]. */
    void (*col_sum)(Backend *be, real *out, const real *in, int M, int N);

    /* out[n, :] = table[idx[n], :] for n < N; out [N, D], table [V, D], idx [N]. */
    void (*embedding_forward)(Backend *be, real *out, const int32_t *idx, const real *table, int N,
                              int D);
    /* out[n, :] += table[idx[n], :]: the same gather, added on (one-hot input times a weight
     * matrix, without the one-hot matrix). */
    void (*embedding_forward_add)(Backend *be, real *out, const int32_t *idx, const real *table,
                                  int N, int D);
    /* dtable[idx[n], :] += dout[n, :] (dtable is not zeroed here). */
    void (*embedding_backward)(Backend *be, real *dtable, const real *dout, const int32_t *idx,
                               int N, int D);

    /* The recurrence of one layer, one row per cell of cell.h: cell[id].forward and
     * cell[id].backward, set by each backend's create function and reached through
     * backend_cell_forward and backend_cell_backward (below). What each cell's row reads and
     * writes of its CellSeq (shapes at CellSeq; the rest of the CellSeq is not touched):
     *
     * lstm (G = 4, blocks i, f, g, o). forward (gates, W_h, hs, cs): gates holds the input part
     *   of the pre-activations, x W_x + b_x + b_h; each step adds h_{t-1} W_h and applies the
     *   cell, leaving the activations sigma(i), sigma(f), tanh(g), sigma(o) in gates, and its
     *   h and c in hs and cs. backward (gates, W_h, cs, dhs, dc): gates (the activations) is
     *   overwritten with the pre-activation gradients dA [S, B, 4H]; dhs and dc are scratch.
     * gru (G = 3, blocks r, z, n; docs/FORMATS.md section 3, PyTorch's nn.GRU). forward (gates,
     *   gates_h, W_h, b_h, hs): gates holds the input part x W_x + b_x -- without b_h, since r
     *   multiplies the n block's h W_hn + b_hn. Each step writes its recurrent part
     *   h_{t-1} W_h + b_h to gates_h (kept for backward) and applies the cell, leaving the
     *   activations r, z, n in gates and its h in hs. backward (gates, gates_h, W_h, hs, dhs;
     *   hs is forward's): gates is overwritten with dA [S, B, 3H], the gradients of the input
     *   parts, and gates_h with dA_h [S, B, 3H], those of the recurrent parts (dA in blocks r
     *   and z, dA_n * r in block n); dhs is scratch.
     * rnn (G = 1, tanh). forward (gates, W_h, hs): gates holds x W_x + b_x + b_h; each step
     *   adds h_{t-1} W_h and leaves h_t = tanh(.) in gates and in hs (slot t+1). backward
     *   (gates, W_h, dhs): gates (the outputs) is overwritten with the pre-activation gradients
     *   dA [S, B, H] (of the input and the recurrent parts alike); dhs is scratch. */
    CellOps cell[CELL_COUNT];

    /* Inverted dropout (docs/FORMATS.md section 3) of x [S, B, H], the output of layer `layer` at
     * training iteration `iteration`, whose B streams are the global streams first_stream ..
     * first_stream + B - 1: out = x / (1 - p) where crnn_dropout_keep (philox.h) keeps an
     * element, else 0. out may be x. The mask is a function of its key, so applying the same
     * call to the gradient on out is the backward, with nothing stored. */
    void (*dropout)(Backend *be, real *out, const real *x, int S, int B, int H, real p,
                    uint64_t seed, uint64_t iteration, int first_stream, int layer);

    /* Softmax cross-entropy over rows: logits [N, V], targets y [N] (0-based).
     * Returns the summed loss in nats (double). When dlogits is not NULL it receives
     * scale * (softmax - onehot(y)); it may be logits itself. */
    double (*softmax_xent)(Backend *be, const real *logits, const int32_t *y, real *dlogits,
                           int N, int V, real scale);

    /* g = clamp(g, -c, c) over n elements. */
    void (*clamp)(Backend *be, real *g, size_t n, real c);
    /* Sum of squares of n elements (double accumulation). */
    double (*sumsq)(Backend *be, const real *x, size_t n);
    /* g *= s over n elements. */
    void (*scale)(Backend *be, real *g, size_t n, real s);
    /* Adam as torch/optim (and torch-rnn) does it, bias-corrected:
     * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
     * x -= lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps). t counts from 1.
     * clamp > 0: each g is first clamped to [-clamp, clamp] as clamp() does (torch-rnn's
     * -grad_clip), in the same pass; g itself is left as it is. */
    void (*adam)(Backend *be, real *x, const real *g, real *m, real *v, size_t n, double lr,
                 double b1, double b2, double eps, int64_t t, real clamp);
    /* RMSprop as char-rnn (torch/optim) does it: v = alpha v + (1-alpha) g^2;
     * x -= lr * g / (sqrt(v) + eps). clamp as adam's. */
    void (*rmsprop)(Backend *be, real *x, const real *g, real *v, size_t n, double lr,
                    double alpha, double eps, real clamp);

    /* Sets the precision of every later product (a single row's, as sampling does, may stay
     * float32); 0, or -1 with err filled when the backend has no such precision. NULL: float32
     * only (backend_set_precision). */
    int (*set_precision)(Backend *be, Precision p, CrnnError *err);
    /* What the user should know about the precision set, or NULL (e.g. bf16 without the
     * processor's bf16 instructions: the same results, slower than float32). */
    const char *precision_note;

    /* 0 when every operation so far succeeded, else -1 with the first failure in err. A device
     * runs operations asynchronously: a failure shows here after the next operation that waits
     * for the device (to_host, softmax_xent, sumsq), or later. The CPU's never fail. */
    int (*status)(Backend *be, CrnnError *err);

    void (*destroy)(Backend *be);
    void *impl;
};

/* The forward and the backward recurrence of cell id (id < CELL_COUNT): be->cell[id], the one
 * way the model runs a cell. A backend without that row is an internal error (a message and
 * abort). */
void backend_cell_forward(Backend *be, CellId id, const CellSeq *q);
void backend_cell_backward(Backend *be, CellId id, const CellSeq *q);

/* The CPU backend: OpenBLAS, single-threaded inside, driven by a pool of `threads` threads
 * (at least 1) that split each matrix product by rows and each recurrence by streams. */
Backend *backend_cpu_create(int threads, CrnnError *err);
/* be->status, for a table that may lack it: 0 when all went well, else -1 with err filled. */
int backend_check(Backend *be, CrnnError *err);
/* be->set_precision, for a table that may lack it (float32 only). */
int backend_set_precision(Backend *be, Precision p, CrnnError *err);
/* Frees the backend (be may be NULL). */
void backend_destroy(Backend *be);

#endif
