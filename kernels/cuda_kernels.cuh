/* The CUDA backend's kernels (kernels/cuda_kernels.cu), each behind a host launcher that takes
 * the stream and returns the launch's error (cudaGetLastError), so that the backend can name
 * the call that failed. Shapes and semantics are those of the op of the same name in
 * include/crnn/backend.h; matrices are row-major, activations time-major. Every launcher
 * returns cudaSuccess without launching when there is nothing to do. */
#ifndef CRNN_CUDA_KERNELS_CUH
#define CRNN_CUDA_KERNELS_CUH

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

/* dst[m, :] = b1 + b2 (b2 may be NULL) for the M rows of [M, N]. */
cudaError_t cuk_rows_set_bias(cudaStream_t s, float *dst, const float *b1, const float *b2, int M, int N);
/* out[n] = sum over m of in[m, n], accumulated in double in increasing m per 32-row lane and
 * combined in a fixed order: deterministic. */
cudaError_t cuk_col_sum(cudaStream_t s, float *out, const float *in, int M, int N);

/* out[n, :] = table[idx[n], :] (add: +=). */
cudaError_t cuk_embedding_forward(cudaStream_t s, float *out, const int32_t *idx, const float *table,
                                  int N, int D, int add);
/* Scratch for cuk_embedding_backward: the bytes it needs for N indices. */
size_t cuk_embedding_backward_scratch(int N);
/* dtable[idx[n], :] += dout[n, :], deterministically and bit for bit as the CPU does it: the
 * indices are sorted stably (CUB radix sort), and each (row, column) adds its gradients onto
 * dtable in increasing n. scratch holds cuk_embedding_backward_scratch(N) bytes. */
cudaError_t cuk_embedding_backward(cudaStream_t s, float *dtable, const float *dout, const int32_t *idx,
                                   int N, int D, void *scratch, size_t scratch_bytes);

/* One step of each cell for B rows (kernels/cpu_kernels.h describes the arguments). */
cudaError_t cuk_lstm_cell_forward(cudaStream_t s, float *a, const float *c_prev, float *c, float *h, int B, int H);
cudaError_t cuk_lstm_cell_backward(cudaStream_t s, float *gates, const float *c_prev, const float *c,
                                   const float *dh, float *dc, int B, int H);
cudaError_t cuk_gru_cell_forward(cudaStream_t s, float *a, const float *ah, const float *h_prev, float *h,
                                 int B, int H);
cudaError_t cuk_gru_cell_backward(cudaStream_t s, float *gates, float *ah, const float *h_prev,
                                  const float *dh, float *dh_prev, int B, int H);
cudaError_t cuk_rnn_cell_forward(cudaStream_t s, float *a, float *h, int B, int H);
cudaError_t cuk_rnn_cell_backward(cudaStream_t s, float *gates, const float *dh, int B, int H);

/* Inverted dropout of x [S, B, H] with crnn_dropout_keep's mask (philox.h). */
cudaError_t cuk_dropout(cudaStream_t s, float *out, const float *x, int S, int B, int H, float p,
                        float keep_scale, uint64_t seed, uint64_t iteration, int first_stream, int layer);

/* Softmax cross-entropy, one block per row: loss_rows[n] (double) = log sum exp - logit[y];
 * dlogits (may be NULL, may be logits) = scale * (softmax - onehot(y)). */
cudaError_t cuk_softmax_xent(cudaStream_t s, const float *logits, const int32_t *y, float *dlogits,
                             double *loss_rows, int N, int V, float scale);
/* *out = sum of x[0..n) (double), in a fixed order. */
cudaError_t cuk_sum_double(cudaStream_t s, const double *x, int n, double *out);
/* The most blocks of cuk_sumsq's first pass (one per 256 elements up to this): partials holds this many doubles. */
#define CUK_SUMSQ_BLOCKS 512
/* *out = sum of x[k]^2 in double: per-block partials, then one block over them (deterministic). */
cudaError_t cuk_sumsq(cudaStream_t s, const float *x, size_t n, double *partials, double *out);

cudaError_t cuk_clamp(cudaStream_t s, float *g, size_t n, float c);
cudaError_t cuk_scale(cudaStream_t s, float *g, size_t n, float factor);
/* The optimizers with the CPU backend's float operations in its order, none fused
 * (step = lr sqrt(1 - b2^t) / (1 - b1^t), computed in double on the host as the CPU does);
 * clamp > 0: each gradient clamped to [-clamp, clamp] first, as cuk_clamp does. */
cudaError_t cuk_adam(cudaStream_t s, float *x, const float *g, float *m, float *v, size_t n, float b1,
                     float b2, float eps, float step, float clamp);
cudaError_t cuk_rmsprop(cudaStream_t s, float *x, const float *g, float *v, size_t n, float alpha,
                        float lr, float eps, float clamp);

#endif
