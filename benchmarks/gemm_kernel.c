/* crnn's float32 product kernel (kernels/cpu_kernels.inc's gemm_acc) alone, on one core, against
 * OpenBLAS on the shapes of a training step: the measurements behind the kernel's K blocks, its
 * prefetch and the products it takes from OpenBLAS (benchmarks/NOTES.md, "Float32 on Zen 4:
 * closing the gap").
 *
 *   cc -O3 -fno-trapping-math -march=native -Ikernels -Iinclude -DK_BLOCK=512 \
 *      benchmarks/gemm_kernel.c -o gemm_kernel -lopenblas -lm
 *   ./gemm_kernel step M K N [PAD_A PAD_C]   C[M,N] += A[M,K] Bp, 20 calls on the same packed B
 *                                            (a recurrence's steps); PAD_A, PAD_C reals added to
 *                                            A's and C's row strides (default 0)
 *   ./gemm_kernel nn M K N                   C = A B: OpenBLAS against B packed once and the
 *   ./gemm_kernel nt M K N                   kernel over chunks of A's rows (crnn's gemm_packed);
 *                                            nt: C = A B^T, B [N, K] packed transposed
 *   ./gemm_kernel tn M K N                   C = A^T B (A [K, M]: the weight gradients): OpenBLAS
 *                                            against A^T copied, B packed, the kernel
 * Each prints the best of 5 (step) or 4 runs in GFLOP/s, with the copies' time where there are
 * copies (plain loops here; crnn's packing is blocked and runs on its pool) and, for nn, nt and
 * tn, the largest difference of the kernel's C from OpenBLAS's relative to OpenBLAS's largest
 * element (max_rel_diff). K_BLOCK and TILE_M as the AVX-512 sets have them unless given with -D;
 * the kernel is compiled for whatever -march says. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KERNEL_NAME(x) x##_bench
#define KERNEL_ISA "bench"
#ifndef TILE_M
#define TILE_M 5
#endif
#ifndef K_BLOCK
#define K_BLOCK 512
#endif
#include "../kernels/cpu_kernels.inc"

void openblas_set_num_threads(int num_threads);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *filled(size_t n, int mod) {
    float *p = aligned_alloc(64, (n * sizeof *p + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "gemm_kernel: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = (float)(i % (size_t)mod) * 0.01f;
    return p;
}

/* B [K, N] (transpose: B^T of B [N, K]) in the kernel's panels (pack_b's layout) */
static void pack(int K, int N, const float *B, int transpose, float *Bp) {
    for (int n0 = 0; n0 < N; n0 += TILE_N)
        for (int k = 0; k < K; k++)
            for (int j = 0; j < TILE_N; j++)
                Bp[(size_t)(n0 / TILE_N) * K * TILE_N + (size_t)k * TILE_N + j] =
                    n0 + j >= N ? 0 : transpose ? B[(size_t)(n0 + j) * K + k] : B[(size_t)k * N + n0 + j];
}

/* the kernel over chunks of A's rows (about 256 KB of them), every panel passing over each */
static void chunked(int M, int N, int K, const float *A, const float *Bp, float *C) {
    int chunk = (65536 / K) / 60 * 60;
    if (chunk < 60) chunk = 60;
    for (int m = 0; m < M; m += chunk)
        gemm_acc_bench(M - m < chunk ? M - m : chunk, N, K, A + (size_t)m * K, K, Bp, C + (size_t)m * N, N);
}

int main(int argc, char **argv) {
    if (argc < 5 || (strcmp(argv[1], "step") && strcmp(argv[1], "nn") && strcmp(argv[1], "nt") && strcmp(argv[1], "tn"))) {
        fprintf(stderr, "usage: gemm_kernel step|nn|nt|tn M K N [PAD_A PAD_C]\n");
        return 2;
    }
    openblas_set_num_threads(1);
    const char *mode = argv[1];
    const int M = atoi(argv[2]), K = atoi(argv[3]), N = atoi(argv[4]);
    if (M < 1 || K < 1 || N < 1 || N % TILE_N) {
        fprintf(stderr, "gemm_kernel: M, K, N must be positive and N a multiple of %d\n", TILE_N);
        return 2;
    }
    const double gflop = 2.0 * M * N * K / 1e9;
    if (!strcmp(mode, "step")) {
        const int pa = argc > 5 ? atoi(argv[5]) : 0, pc = argc > 6 ? atoi(argv[6]) : 0, calls = 20;
        const int lda = K + pa, ldc = N + pc;
        float *A = filled((size_t)M * lda, 7), *C = filled((size_t)M * ldc, 1), *Bp = filled((size_t)K * N, 5);
        double best = 1e30;
        for (int r = 0; r < 5; r++) {
            double t = now();
            for (int c = 0; c < calls; c++) gemm_acc_bench(M, N, K, A, lda, Bp, C, ldc);
            t = now() - t;
            if (t < best) best = t;
        }
        printf("RESULT mode=step M=%d K=%d N=%d K_BLOCK=%d pad_a=%d pad_c=%d gflops=%.1f\n", M, K, N, K_BLOCK, pa, pc,
               gflop * calls / best);
        return 0;
    }
    const int tn = !strcmp(mode, "tn"), nt = !strcmp(mode, "nt");
    float *A = filled((size_t)M * K, 7), *B = filled((size_t)K * N, 5), *C = filled((size_t)M * N, 1);
    float *Cb = filled((size_t)M * N, 1);
    float *Bp = filled((size_t)K * N, 1), *At = tn ? filled((size_t)M * K, 1) : NULL;
    double blas = 1e30, own = 1e30, copies = 1e30;
    for (int r = 0; r < 4; r++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, tn ? CblasTrans : CblasNoTrans, nt ? CblasTrans : CblasNoTrans, M, N, K, 1, A,
                    tn ? M : K, B, nt ? K : N, 0, Cb, N);
        t = now() - t;
        if (t < blas) blas = t;
        t = now();
        if (tn) /* A is [K, M]: its transpose, as the kernel reads rows */
            for (int k = 0; k < K; k++)
                for (int m = 0; m < M; m++) At[(size_t)m * K + k] = A[(size_t)k * M + m];
        pack(K, N, B, nt, Bp);
        const double tc = now() - t;
        memset(C, 0, (size_t)M * N * sizeof *C);
        chunked(M, N, K, tn ? At : A, Bp, C);
        t = now() - t;
        if (t < own) own = t;
        if (tc < copies) copies = tc;
    }
    double diff = 0, big = 0;
    for (size_t i = 0; i < (size_t)M * N; i++) {
        const double d = Cb[i] > C[i] ? Cb[i] - C[i] : C[i] - Cb[i], b = Cb[i] > 0 ? Cb[i] : -Cb[i];
        if (d > diff) diff = d;
        if (b > big) big = b;
    }
    printf("RESULT mode=%s M=%d K=%d N=%d K_BLOCK=%d openblas_gflops=%.1f kernel_gflops=%.1f copies_ms=%.2f "
           "kernel_ms=%.2f max_rel_diff=%.3g\n", mode, M, K, N, K_BLOCK, gflop / blas, gflop / own, copies * 1e3,
           own * 1e3, big > 0 ? diff / big : diff);
    return 0;
}
