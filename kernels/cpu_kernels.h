/* The CPU backend's inner loops, built once per instruction set (AVX-512, AVX2+FMA, plain
 * x86-64 or whatever the compiler targets) and chosen at start-up by what the processor has.
 * Each function works on rows that one thread owns, so threads never share a write. */
#ifndef CRNN_CPU_KERNELS_H
#define CRNN_CPU_KERNELS_H

#include <stdint.h>

#include "crnn/common.h"

typedef struct CpuKernels {
    const char *isa; /* "avx512", "avx2", "generic" */
    int tile_n;      /* panel width of packed B */
    /* C[M,N] += A[M,K] B[K,N], row-major: the small products of one recurrence step, which
     * OpenBLAS would serialise across threads (its single-threaded calls take a global lock).
     * B comes packed (pack_b): panel p holds columns p*tile_n.. as K rows of tile_n, the
     * last panel zero-padded, so each panel is one contiguous read. */
    void (*gemm_acc)(int M, int N, int K, const real *A, int lda, const real *Bp, real *C, int ldc);
    /* Packs B [K, N] (row stride ldb), or with transpose set B^T where B is [N, K], into Bp
     * (cpu_packed_size reals) for gemm_acc. */
    void (*pack_b)(int K, int N, const real *B, int ldb, int transpose, real *Bp);
    /* The same product in bf16 with float32 sums (-precision bf16; NULL in the double build): A
     * as bf16 pairs [M, KP] (pairs_bf16, row stride lda words), B packed by
     * pack_b_bf16, KP = ceil(K / 2) pairs of k. */
    void (*gemm_acc_bf16)(int M, int N, int KP, const uint32_t *A, int lda, const uint32_t *Bp, real *C,
                          int ldc);
    int bf16_native; /* gemm_acc_bf16 runs on the processor's bf16 instructions (vdpbf16ps) */
    /* B [K, N] (row stride ldb; transpose: B is [N, K] and B^T is packed) rounded to bf16 into
     * gemm_acc_bf16's layout: panel p holds columns p*tile_n.. as ceil(K/2) rows of tile_n 32-bit
     * words, word j of row k = (B[2k, j] low half, B[2k+1, j] high half); an odd K's missing row
     * and the last panel's missing columns are zero. cpu_packed_bf16_size words. Rounding: to
     * the nearest bf16, ties to even, a NaN kept a (quiet) NaN. */
    void (*pack_b_bf16)(int K, int N, const float *B, int ldb, int transpose, uint32_t *Bp);
    /* A [M, K] (transpose: A is [K, M] and A^T is taken) as bf16 pairs: row m of Ap holds
     * ceil(K/2) words, word k = (A[m, 2k] low, A[m, 2k+1] high), row stride ldp words. */
    void (*pairs_bf16)(int M, int K, const float *A, int lda, int transpose, uint32_t *Ap, int ldp);
    /* One LSTM step for `rows` streams: a [rows, 4H] pre-activations of i, f, g, o, replaced by
     * their activations; c_prev -> c, h [rows, H]. */
    void (*lstm_cell_forward)(real *a, const real *c_prev, real *c, real *h, int rows, int H);
    /* Its backward: gates (activations) replaced by pre-activation gradients; dh the gradient
     * on h; dc the gradient on c from the next step, replaced by the gradient on c_prev. */
    void (*lstm_cell_backward)(real *gates, const real *c_prev, const real *c, const real *dh,
                               real *dc, int rows, int H);
    /* One GRU step (docs/FORMATS.md section 3) for `rows` streams: a [rows, 3H] the input parts
     * x W_x + b_x of blocks r, z, n, replaced by the activations r, z, n; ah [rows, 3H] the
     * recurrent parts h_prev W_h + b_h (kept: backward needs the n block); h_prev -> h. */
    void (*gru_cell_forward)(real *a, const real *ah, const real *h_prev, real *h, int rows, int H);
    /* Its backward: gates (activations r, z, n) replaced by the gradients of the input parts,
     * ah by the gradients of the recurrent parts (the n block: dn_pre * r); dh the gradient on
     * h; dh_prev (may be NULL) receives += the direct part z * dh. */
    void (*gru_cell_backward)(real *gates, real *ah, const real *h_prev, const real *dh,
                              real *dh_prev, int rows, int H);
    /* One tanh RNN step: a [rows, H] pre-activations replaced by h = tanh(a), also stored in h. */
    void (*rnn_cell_forward)(real *a, real *h, int rows, int H);
    /* Its backward: gates (h) replaced by the pre-activation gradients dh * (1 - h^2). */
    void (*rnn_cell_backward)(real *gates, const real *dh, int rows, int H);
    /* Dropout of one row [H] of a layer's output (philox.h's crnn_dropout_quad, here for many
     * quads of units at once so that Philox's rounds vectorise): out[j] = x[j] * scale where
     * unit j of step t of this stream is kept, else 0. out may be x. */
    void (*dropout_row)(real *out, const real *x, int H, float p, real scale, uint64_t seed,
                        uint64_t iteration, uint32_t stream, uint32_t layer, int t);
} CpuKernels;

/* Every set this processor runs, best first: fills sets (room for CPU_KERNEL_SETS) and returns
 * how many. */
#define CPU_KERNEL_SETS 4
int cpu_kernels_available(const CpuKernels **sets);
/* The best set this processor runs, or the one CRNN_CPU_ISA names (generic, avx2, avx512,
 * avx512bf16: for tests and measurements) when it runs that one. */
const CpuKernels *cpu_kernels_select(void);

/* Elements of a packed [K, N] matrix for panels of tile_n columns. */
size_t cpu_packed_size(int K, int N, int tile_n);

/* Words of a bf16-packed [K, N] matrix (pack_b_bf16) for panels of tile_n columns. */
size_t cpu_packed_bf16_size(int K, int N, int tile_n);

#endif
