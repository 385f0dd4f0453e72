/* cuemu's device side, for kernels compiled as C++ (included by cuda_runtime.h).
 *
 * A launch is queued on its stream like any other work and runs when the stream is made to
 * (tests/cuemu/README.md): then every block of the grid runs in turn, and within a block every
 * CUDA thread is a coroutine with its own stack. A thread runs until it finishes or reaches a
 * barrier: __syncthreads() releases when every thread of the block still running waits there,
 * a warp shuffle when all 32 lanes of the warp wait in one; anything else (a barrier some
 * threads skip, a shuffle with lanes missing) is reported as the deadlock it is on a device, and
 * aborts. __shared__ variables are static: blocks never run at the same time. */
#ifndef CUEMU_DEVICE_H
#define CUEMU_DEVICE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
typedef dim3 uint3;

namespace cuemu {

/* The CUDA thread running now (only while a kernel runs). */
struct ThreadState {
    uint3 idx;
    unsigned linear; /* x + y bx + z bx by */
};
extern ThreadState *current;
extern uint3 block_idx, block_dim, grid_dim;

void syncthreads();
/* Lane `src_lane` of the calling warp's `value` (size bytes) into out: every lane of the warp
 * must call it with the same mask (the full warp: that is all cuemu emulates). */
void shuffle(unsigned mask, const void *value, void *out, size_t size, int src_lane);
inline int lane_id() { return (int)(current->linear & 31u); }

/* Queues a launch on stream s (cudaGetLastError reports a bad configuration); ptrs are the
 * pointer arguments, checked against device memory when the launch is issued. */
void enqueue_kernel(cudaStream_t s, const char *name, dim3 grid, dim3 block, size_t shared,
                    std::function<void()> body, const void *const *ptrs, size_t nptrs);

template <typename T> void collect_pointer(const T &v, const void **ptrs, size_t *n) {
    if constexpr (std::is_pointer_v<T>) ptrs[(*n)++] = (const void *)v;
}

template <typename... P> struct Launch {
    const char *name;
    void (*fn)(P...);
    dim3 grid, block;
    size_t shared;
    cudaStream_t stream;
    template <typename... A> void operator()(A &&...a) const {
        static_assert(sizeof...(A) == sizeof...(P), "a kernel takes each of its arguments");
        std::tuple<std::decay_t<P>...> args(std::forward<A>(a)...);
        const void *ptrs[sizeof...(P) + 1];
        size_t n = 0;
        std::apply([&](const auto &...v) { (collect_pointer(v, ptrs, &n), ...); }, args);
        auto f = fn;
        enqueue_kernel(stream, name, grid, block, shared, [f, args] { std::apply(f, args); }, ptrs, n);
    }
};

template <typename... P>
Launch<P...> launch(const char *name, void (*fn)(P...), dim3 grid, dim3 block, size_t shared, cudaStream_t s) {
    return Launch<P...>{name, fn, grid, block, shared, s};
}

template <typename T> T shfl(unsigned mask, T v, int src) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "a shuffle moves at most 8 bytes");
    T out;
    shuffle(mask, &v, &out, sizeof v, src & 31);
    return out;
}

} // namespace cuemu

/* kernel<<<grid, block, shared, stream>>>(args) is spelled CUEMU_LAUNCH(kernel, grid, block,
 * shared, stream)(args): the launch syntax itself is nvcc's alone. */
#define CUEMU_LAUNCH(kernel, grid, block, shared, stream) \
    ::cuemu::launch(#kernel, kernel, (grid), (block), (shared), (stream))

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define threadIdx (::cuemu::current->idx)
#define blockIdx (::cuemu::block_idx)
#define blockDim (::cuemu::block_dim)
#define gridDim (::cuemu::grid_dim)
#define warpSize 32

inline void __syncthreads() { ::cuemu::syncthreads(); }
template <typename T> T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    (void)width;
    return ::cuemu::shfl(mask, v, ::cuemu::lane_id() ^ lane_mask);
}
template <typename T> T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    (void)width;
    const int src = ::cuemu::lane_id() + (int)delta;
    const T other = ::cuemu::shfl(mask, v, src > 31 ? ::cuemu::lane_id() : src);
    return other;
}
template <typename T> T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
    (void)width;
    return ::cuemu::shfl(mask, v, src_lane);
}

/* Correctly rounded float operations, never contracted into a fused multiply-add (the
 * emulation is compiled with -ffp-contract=off). */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }

#endif
