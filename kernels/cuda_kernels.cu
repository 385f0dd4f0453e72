/* The CUDA backend's kernels. Each has a CPU reference in src/backend/backend_cpu.c and
 * kernels/cpu_kernels.inc, which tests/test_backend_cuda.c compares it with. Elementwise
 * kernels use grid-stride loops (any n, a bounded grid); reductions are deterministic (fixed
 * grids and fixed combination orders, no floating-point atomics), so that a run repeats bit for
 * bit on the same device. */
#include <cub/device/device_radix_sort.cuh>
#include <math.h>

#include "activation.h"
#include "crnn/philox.h"
#include "cuda_kernels.cuh"

/* kernel<<<grid, block, shared, stream>>>, spelled so that tests/cuemu can run the same launches
 * on the CPU (the launch syntax is nvcc's alone). */
#ifdef CUEMU
#define CUK_LAUNCH(kernel, grid, block, shared, stream) CUEMU_LAUNCH(kernel, grid, block, shared, stream)
#else
#define CUK_LAUNCH(kernel, grid, block, shared, stream) kernel<<<grid, block, shared, stream>>>
#endif

namespace {

constexpr int kThreads = 256;
constexpr unsigned kFullMask = 0xffffffffu;

/* Blocks for n elements at kThreads each, at most 2^20 (the loops stride over the rest). */
unsigned grid_for(size_t n) {
    size_t blocks = (n + kThreads - 1) / kThreads;
    if (blocks < 1) blocks = 1;
    return (unsigned)(blocks > ((size_t)1 << 20) ? ((size_t)1 << 20) : blocks);
}

__device__ __forceinline__ size_t global_index() { return (size_t)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ size_t global_stride() { return (size_t)gridDim.x * blockDim.x; }

/* tanh and sigmoid as the CPU kernels compute them (kernels/activation.h), so that both
 * backends apply the same function. */
__device__ __forceinline__ float tanh_r(float x) { return crnn_tanh_f(x); }
__device__ __forceinline__ float sigmoid_r(float x) { return crnn_sigmoid_f(x); }

/* ---- reductions within a block (blockDim.x a multiple of 32, at most 1024) ---------------- */

struct MaxOp {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumOp {
    __device__ double operator()(double a, double b) const { return a + b; }
};

template <typename T, typename Op> __device__ __forceinline__ T warp_reduce(T v, Op op) {
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(kFullMask, v, o));
    return v;
}
/* Every thread gets op over the block's values, combined in the same order every time;
 * `identity` stands in for the warps the block does not have. */
template <typename T, typename Op> __device__ T block_reduce(T v, T identity, Op op) {
    __shared__ T shared[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_reduce(v, op);
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : identity;
    v = warp_reduce(v, op);
    __syncthreads(); /* shared is reused by the next call */
    return v;
}
__device__ float block_max(float v) { return block_reduce(v, -INFINITY, MaxOp()); }
__device__ double block_sum(double v) { return block_reduce(v, 0.0, SumOp()); }

/* ---- dense helpers ---------------------------------------------------------------------- */

__global__ void rows_set_bias_kernel(float *dst, const float *b1, const float *b2, int M, int N) {
    const size_t n = (size_t)M * N;
    for (size_t k = global_index(); k < n; k += global_stride()) {
        const int col = (int)(k % (size_t)N);
        dst[k] = b1[col] + (b2 ? b2[col] : 0.0f);
    }
}

/* Block (32, 32): column blockIdx.x * 32 + threadIdx.x, rows threadIdx.y, +32, ... */
__global__ void col_sum_kernel(float *out, const float *in, int M, int N) {
    __shared__ double partial[32][33];
    const int col = blockIdx.x * 32 + threadIdx.x;
    double acc = 0;
    if (col < N)
        for (int m = threadIdx.y; m < M; m += 32) acc += in[(size_t)m * N + col];
    partial[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && col < N) {
        double s = 0;
        for (int r = 0; r < 32; r++) s += partial[r][threadIdx.x];
        out[col] = (float)s;
    }
}

__global__ void embedding_forward_kernel(float *out, const int32_t *idx, const float *table, int N, int D,
                                         int add) {
    const size_t n = (size_t)N * D;
    for (size_t k = global_index(); k < n; k += global_stride()) {
        const size_t row = k / (size_t)D, col = k % (size_t)D;
        const float w = table[(size_t)idx[row] * D + col];
        out[k] = add ? out[k] + w : w;
    }
}

__global__ void iota_kernel(int32_t *v, int N) {
    for (size_t k = global_index(); k < (size_t)N; k += global_stride()) v[k] = (int32_t)k;
}

/* grid (N sorted positions, column blocks): the first position of each run of equal keys adds
 * the run's gradient rows, in increasing original row (the sort is stable), onto dtable. */
__global__ void embedding_segments_kernel(float *dtable, const float *dout, const int32_t *keys,
                                          const int32_t *rows, int N, int D) {
    const int i = blockIdx.x;
    const int32_t key = keys[i];
    if (i > 0 && keys[i - 1] == key) return;
    const int col = blockIdx.y * blockDim.x + threadIdx.x;
    if (col >= D) return;
    float *dst = dtable + (size_t)key * D + col;
    float acc = *dst;
    for (int j = i; j < N && keys[j] == key; j++) acc += dout[(size_t)rows[j] * D + col];
    *dst = acc;
}

/* ---- cells: one thread per (row, unit) --------------------------------------------------- */

__global__ void lstm_forward_kernel(float *a, const float *c_prev, float *c, float *h, int B, int H) {
    const size_t n = (size_t)B * H;
    for (size_t k = global_index(); k < n; k += global_stride()) {
        const size_t b = k / (size_t)H, j = k % (size_t)H;
        float *ab = a + b * 4 * H;
        const float i = sigmoid_r(ab[j]), f = sigmoid_r(ab[H + j]), g = tanh_r(ab[2 * H + j]),
                    o = sigmoid_r(ab[3 * H + j]);
        ab[j] = i;
        ab[H + j] = f;
        ab[2 * H + j] = g;
        ab[3 * H + j] = o;
        const float cc = f * c_prev[k] + i * g;
        c[k] = cc;
        h[k] = o * tanh_r(cc);
    }
}

__global__ void lstm_backward_kernel(float *gates, const float *c_prev, const float *c, const float *dh,
                                     float *dc, int B, int H) {
    const size_t n = (size_t)B * H;
    for (size_t k = global_index(); k < n; k += global_stride()) {
        const size_t b = k / (size_t)H, j = k % (size_t)H;
        float *gb = gates + b * 4 * H;
        const float i = gb[j], f = gb[H + j], g = gb[2 * H + j], o = gb[3 * H + j];
        const float tc = tanh_r(c[k]);
        const float dct = dc[k] + dh[k] * o * (1 - tc * tc);
        gb[j] = dct * g * i * (1 - i);
        gb[H + j] = dct * c_prev[k] * f * (1 - f);
        gb[2 * H + j] = dct * i * (1 - g * g);
        gb[3 * H + j] = dh[k] * tc * o * (1 - o);
        dc[k] = dct * f;
    }
}

__global__ void gru_forward_kernel(float *a, const float *ah, const float *h_prev, float *h, int B, int H) {
    const size_t n = (size_t)B * H;
    for (size_t k = global_index(); k < n; k += global_stride()) {
        const size_t b = k / (size_t)H, j = k % (size_t)H;
        float *ab = a + b * 3 * H;
        const float *hb = ah + b * 3 * H;
        const float r = sigmoid_r(ab[j] + hb[j]), z = sigmoid_r(ab[H + j] + hb[H + j]);
        const float nn = tanh_r(ab[2 * H + j] + r * hb[2 * H + j]);
        ab[j] = r;
        ab[H + j] = z;
        ab[2 * H + j] = nn;
        h[k] = (1 - z) * nn + z * h_prev[k];
    }
}

__global__ void gru_backward_kernel(float *gates, float *ah, const float *h_prev, const float *dh,
                                    float *dh_prev, int B, int H) {
    const size_t n = (size_t)B * H;
    for (size_t k = global_index(); k < n; k += global_stride()) {
        const size_t b = k / (size_t)H, j = k % (size_t)H;
        float *gb = gates + b * 3 * H, *hb = ah + b * 3 * H;
        const float r = gb[j], z = gb[H + j], nn = gb[2 * H + j], d = dh[k];
        if (dh_prev) dh_prev[k] += d * z; /* the direct path h' = ... + z h */
        const float dn = d * (1 - z) * (1 - nn * nn);
        const float dz = d * (h_prev[k] - nn) * z * (1 - z);
        const float dr = dn * hb[2 * H + j] * r * (1 - r);
        gb[j] = dr;
        gb[H + j] = dz;
        gb[2 * H + j] = dn;
        hb[j] = dr;
        hb[H + j] = dz;
        hb[2 * H + j] = dn * r;
    }
}

__global__ void rnn_forward_kernel(float *a, float *h, size_t n) {
    for (size_t k = global_index(); k < n; k += global_stride()) {
        const float v = tanh_r(a[k]);
        a[k] = v;
        h[k] = v;
    }
}

__global__ void rnn_backward_kernel(float *gates, const float *dh, size_t n) {
    for (size_t k = global_index(); k < n; k += global_stride()) gates[k] = dh[k] * (1 - gates[k] * gates[k]);
}

__global__ void dropout_kernel(float *out, const float *x, int S, int B, int H, float p, float keep_scale,
                               uint64_t seed, uint64_t iteration, int first_stream, int layer) {
    const size_t n = (size_t)S * B * H;
    for (size_t k = global_index(); k < n; k += global_stride()) {
        const size_t row = k / (size_t)H;
        const int j = (int)(k % (size_t)H), b = (int)(row % (size_t)B), t = (int)(row / (size_t)B);
        const int keep = crnn_dropout_keep(seed, iteration, (uint32_t)(first_stream + b), (uint32_t)layer, t, j, H, p);
        out[k] = keep ? x[k] * keep_scale : 0.0f;
    }
}

/* One block per row; the CPU's order of float operations for the gradient (no fused
 * multiply-add: __fmul_rn and __fsub_rn are never contracted). */
__global__ void softmax_xent_kernel(const float *logits, const int32_t *y, float *dlogits, double *loss_rows,
                                    int V, float scale) {
    const size_t n = blockIdx.x;
    const float *row = logits + n * V;
    float mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, row[v]);
    mx = block_max(mx);
    double sum = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) sum += (double)expf(row[v] - mx);
    sum = block_sum(sum);
    const int target = y[n];
    if (threadIdx.x == 0) loss_rows[n] = log(sum) + (double)mx - (double)row[target];
    if (!dlogits) return;
    __syncthreads(); /* row[target] is read before dlogits (maybe the same row) is written */
    float *d = dlogits + n * V;
    const float inv = (float)(1.0 / sum);
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float g = __fmul_rn(__fmul_rn(expf(row[v] - mx), inv), scale);
        if (v == target) g = __fsub_rn(g, scale);
        d[v] = g;
    }
}

__global__ void sum_double_kernel(const double *x, int n, double *out) {
    double acc = 0;
    for (int k = threadIdx.x; k < n; k += blockDim.x) acc += x[k];
    acc = block_sum(acc);
    if (threadIdx.x == 0) *out = acc;
}

__global__ void sumsq_kernel(const float *x, size_t n, double *partials) {
    double acc = 0;
    for (size_t k = global_index(); k < n; k += global_stride()) {
        const double v = x[k];
        acc += v * v;
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void clamp_kernel(float *g, size_t n, float c) {
    for (size_t k = global_index(); k < n; k += global_stride()) {
        const float v = g[k];
        g[k] = v > c ? c : (v < -c ? -c : v);
    }
}

__global__ void scale_kernel(float *g, size_t n, float factor) {
    for (size_t k = global_index(); k < n; k += global_stride()) g[k] = __fmul_rn(g[k], factor);
}

/* the gradient as clamp_kernel leaves it, when c > 0 */
__device__ float clamped_grad(float g, float c) { return c > 0 ? (g > c ? c : (g < -c ? -c : g)) : g; }

__global__ void adam_kernel(float *x, const float *g, float *m, float *v, size_t n, float b1, float b2,
                            float eps, float step, float clamp) {
    const float c1 = __fsub_rn(1.0f, b1), c2 = __fsub_rn(1.0f, b2);
    for (size_t k = global_index(); k < n; k += global_stride()) {
        const float gk = clamped_grad(g[k], clamp);
        const float mk = __fadd_rn(__fmul_rn(b1, m[k]), __fmul_rn(c1, gk));
        const float vk = __fadd_rn(__fmul_rn(b2, v[k]), __fmul_rn(__fmul_rn(c2, gk), gk));
        m[k] = mk;
        v[k] = vk;
        x[k] = __fsub_rn(x[k], __fdiv_rn(__fmul_rn(step, mk), __fadd_rn(__fsqrt_rn(vk), eps)));
    }
}

__global__ void rmsprop_kernel(float *x, const float *g, float *v, size_t n, float alpha, float lr, float eps,
                               float clamp) {
    const float c = __fsub_rn(1.0f, alpha);
    for (size_t k = global_index(); k < n; k += global_stride()) {
        const float gk = clamped_grad(g[k], clamp);
        const float vk = __fadd_rn(__fmul_rn(alpha, v[k]), __fmul_rn(__fmul_rn(c, gk), gk));
        v[k] = vk;
        x[k] = __fsub_rn(x[k], __fdiv_rn(__fmul_rn(lr, gk), __fadd_rn(__fsqrt_rn(vk), eps)));
    }
}

/* Scratch layout of cuk_embedding_backward: sorted keys, row numbers, sorted row numbers (N
 * int32 each, 256-byte aligned), then CUB's temporary storage. */
size_t align256(size_t n) { return (n + 255) / 256 * 256; }

} // namespace

cudaError_t cuk_rows_set_bias(cudaStream_t s, float *dst, const float *b1, const float *b2, int M, int N) {
    if (M <= 0 || N <= 0) return cudaSuccess;
    CUK_LAUNCH(rows_set_bias_kernel, grid_for((size_t)M * N), kThreads, 0, s)(dst, b1, b2, M, N);
    return cudaGetLastError();
}

cudaError_t cuk_col_sum(cudaStream_t s, float *out, const float *in, int M, int N) {
    if (N <= 0) return cudaSuccess;
    CUK_LAUNCH(col_sum_kernel, (unsigned)((N + 31) / 32), dim3(32, 32), 0, s)(out, in, M, N);
    return cudaGetLastError();
}

cudaError_t cuk_embedding_forward(cudaStream_t s, float *out, const int32_t *idx, const float *table, int N,
                                  int D, int add) {
    if (N <= 0 || D <= 0) return cudaSuccess;
    CUK_LAUNCH(embedding_forward_kernel, grid_for((size_t)N * D), kThreads, 0, s)(out, idx, table, N, D, add);
    return cudaGetLastError();
}

static size_t cub_sort_bytes(int N) {
    size_t bytes = 0;
    cub::DeviceRadixSort::SortPairs(nullptr, bytes, (const int32_t *)nullptr, (int32_t *)nullptr,
                                    (const int32_t *)nullptr, (int32_t *)nullptr, N);
    return bytes;
}

size_t cuk_embedding_backward_scratch(int N) {
    if (N <= 0) return 0;
    return 3 * align256((size_t)N * sizeof(int32_t)) + align256(cub_sort_bytes(N));
}

cudaError_t cuk_embedding_backward(cudaStream_t s, float *dtable, const float *dout, const int32_t *idx, int N,
                                   int D, void *scratch, size_t scratch_bytes) {
    if (N <= 0 || D <= 0) return cudaSuccess;
    if (scratch_bytes < cuk_embedding_backward_scratch(N)) return cudaErrorInvalidValue;
    const size_t part = align256((size_t)N * sizeof(int32_t));
    char *base = (char *)scratch;
    int32_t *keys = (int32_t *)base, *rows_in = (int32_t *)(base + part), *rows = (int32_t *)(base + 2 * part);
    void *temp = base + 3 * part;
    size_t temp_bytes = scratch_bytes - 3 * part;
    CUK_LAUNCH(iota_kernel, grid_for((size_t)N), kThreads, 0, s)(rows_in, N);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    e = cub::DeviceRadixSort::SortPairs(temp, temp_bytes, idx, keys, rows_in, rows, N, 0, 32, s);
    if (e != cudaSuccess) return e;
    const int threads = D < 128 ? (D + 31) / 32 * 32 : 128;
    CUK_LAUNCH(embedding_segments_kernel, dim3((unsigned)N, (unsigned)((D + threads - 1) / threads)), threads, 0, s)(
        dtable, dout, keys, rows, N, D);
    return cudaGetLastError();
}

cudaError_t cuk_lstm_cell_forward(cudaStream_t s, float *a, const float *c_prev, float *c, float *h, int B, int H) {
    if (B <= 0 || H <= 0) return cudaSuccess;
    CUK_LAUNCH(lstm_forward_kernel, grid_for((size_t)B * H), kThreads, 0, s)(a, c_prev, c, h, B, H);
    return cudaGetLastError();
}

cudaError_t cuk_lstm_cell_backward(cudaStream_t s, float *gates, const float *c_prev, const float *c,
                                   const float *dh, float *dc, int B, int H) {
    if (B <= 0 || H <= 0) return cudaSuccess;
    CUK_LAUNCH(lstm_backward_kernel, grid_for((size_t)B * H), kThreads, 0, s)(gates, c_prev, c, dh, dc, B, H);
    return cudaGetLastError();
}

cudaError_t cuk_gru_cell_forward(cudaStream_t s, float *a, const float *ah, const float *h_prev, float *h,
                                 int B, int H) {
    if (B <= 0 || H <= 0) return cudaSuccess;
    CUK_LAUNCH(gru_forward_kernel, grid_for((size_t)B * H), kThreads, 0, s)(a, ah, h_prev, h, B, H);
    return cudaGetLastError();
}

cudaError_t cuk_gru_cell_backward(cudaStream_t s, float *gates, float *ah, const float *h_prev, const float *dh,
                                  float *dh_prev, int B, int H) {
    if (B <= 0 || H <= 0) return cudaSuccess;
    CUK_LAUNCH(gru_backward_kernel, grid_for((size_t)B * H), kThreads, 0, s)(gates, ah, h_prev, dh, dh_prev, B, H);
    return cudaGetLastError();
}

cudaError_t cuk_rnn_cell_forward(cudaStream_t s, float *a, float *h, int B, int H) {
    const size_t n = (size_t)(B > 0 ? B : 0) * (size_t)(H > 0 ? H : 0);
    if (n == 0) return cudaSuccess;
    CUK_LAUNCH(rnn_forward_kernel, grid_for(n), kThreads, 0, s)(a, h, n);
    return cudaGetLastError();
}

cudaError_t cuk_rnn_cell_backward(cudaStream_t s, float *gates, const float *dh, int B, int H) {
    const size_t n = (size_t)(B > 0 ? B : 0) * (size_t)(H > 0 ? H : 0);
    if (n == 0) return cudaSuccess;
    CUK_LAUNCH(rnn_backward_kernel, grid_for(n), kThreads, 0, s)(gates, dh, n);
    return cudaGetLastError();
}

cudaError_t cuk_dropout(cudaStream_t s, float *out, const float *x, int S, int B, int H, float p, float keep_scale,
                        uint64_t seed, uint64_t iteration, int first_stream, int layer) {
    if (S <= 0 || B <= 0 || H <= 0) return cudaSuccess;
    CUK_LAUNCH(dropout_kernel, grid_for((size_t)S * B * H), kThreads, 0, s)(out, x, S, B, H, p, keep_scale, seed,
                                                                    iteration, first_stream, layer);
    return cudaGetLastError();
}

cudaError_t cuk_softmax_xent(cudaStream_t s, const float *logits, const int32_t *y, float *dlogits,
                             double *loss_rows, int N, int V, float scale) {
    if (N <= 0 || V <= 0) return cudaSuccess;
    /* a warp per 32 columns up to 512 threads; small vocabularies (characters) get one block of
     * a few warps per row */
    int threads = (V + 31) / 32 * 32;
    if (threads > 512) threads = 512;
    CUK_LAUNCH(softmax_xent_kernel, (unsigned)N, threads, 0, s)(logits, y, dlogits, loss_rows, V, scale);
    return cudaGetLastError();
}

cudaError_t cuk_sum_double(cudaStream_t s, const double *x, int n, double *out) {
    CUK_LAUNCH(sum_double_kernel, 1, 1024, 0, s)(x, n, out);
    return cudaGetLastError();
}

cudaError_t cuk_sumsq(cudaStream_t s, const float *x, size_t n, double *partials, double *out) {
    /* the number of blocks depends on n alone, so the order of the additions does too */
    const unsigned blocks = grid_for(n) < CUK_SUMSQ_BLOCKS ? grid_for(n) : CUK_SUMSQ_BLOCKS;
    CUK_LAUNCH(sumsq_kernel, blocks, kThreads, 0, s)(x, n, partials);
    cudaError_t e = cudaGetLastError();
    return e != cudaSuccess ? e : cuk_sum_double(s, partials, (int)blocks, out);
}

cudaError_t cuk_clamp(cudaStream_t s, float *g, size_t n, float c) {
    if (n == 0) return cudaSuccess;
    CUK_LAUNCH(clamp_kernel, grid_for(n), kThreads, 0, s)(g, n, c);
    return cudaGetLastError();
}

cudaError_t cuk_scale(cudaStream_t s, float *g, size_t n, float factor) {
    if (n == 0) return cudaSuccess;
    CUK_LAUNCH(scale_kernel, grid_for(n), kThreads, 0, s)(g, n, factor);
    return cudaGetLastError();
}

cudaError_t cuk_adam(cudaStream_t s, float *x, const float *g, float *m, float *v, size_t n, float b1, float b2,
                     float eps, float step, float clamp) {
    if (n == 0) return cudaSuccess;
    CUK_LAUNCH(adam_kernel, grid_for(n), kThreads, 0, s)(x, g, m, v, n, b1, b2, eps, step, clamp);
    return cudaGetLastError();
}

cudaError_t cuk_rmsprop(cudaStream_t s, float *x, const float *g, float *v, size_t n, float alpha, float lr,
                        float eps, float clamp) {
    if (n == 0) return cudaSuccess;
    CUK_LAUNCH(rmsprop_kernel, grid_for(n), kThreads, 0, s)(x, g, v, n, alpha, lr, eps, clamp);
    return cudaGetLastError();
}
