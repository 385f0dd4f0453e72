/* Chooses the CPU kernels for this processor, and packs matrices for them. */
#include "cpu_kernels.h"

#include <stdlib.h>
#include <string.h>

extern const CpuKernels cpu_kernels_generic;
#if defined(__x86_64__) && !defined(CRNN_DOUBLE)
extern const CpuKernels cpu_kernels_avx512bf16, cpu_kernels_avx512, cpu_kernels_avx2;
#endif

int cpu_kernels_available(const CpuKernels **sets) {
    int n = 0;
#if defined(__x86_64__) && !defined(CRNN_DOUBLE)
    __builtin_cpu_init();
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    if (avx512 && __builtin_cpu_supports("avx512bf16")) sets[n++] = &cpu_kernels_avx512bf16;
    if (avx512) sets[n++] = &cpu_kernels_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) sets[n++] = &cpu_kernels_avx2;
#endif
    sets[n++] = &cpu_kernels_generic;
    return n;
}

const CpuKernels *cpu_kernels_select(void) {
    const CpuKernels *sets[CPU_KERNEL_SETS];
    const int n = cpu_kernels_available(sets);
    const char *want = getenv("CRNN_CPU_ISA");
    for (int i = 0; want && *want && i < n; i++)
        if (strcmp(sets[i]->isa, want) == 0) return sets[i];
    return sets[0];
}

size_t cpu_packed_size(int K, int N, int tile_n) {
    return (size_t)((N + tile_n - 1) / tile_n) * K * tile_n;
}

void cpu_pack_b(int K, int N, const real *B, int ldb, int transpose, int tile_n, real *Bp) {
    enum { KB = 16 }; /* the transpose's blocks: KB reals of each of the panel's rows of B */
    for (int n0 = 0; n0 < N; n0 += tile_n) {
        real *panel = Bp + (size_t)(n0 / tile_n) * K * tile_n;
        int w = N - n0 < tile_n ? N - n0 : tile_n;
        if (!transpose) {
            for (int k = 0; k < K; k++) {
                real *row = panel + (size_t)k * tile_n;
                memcpy(row, B + (size_t)k * ldb + n0, (size_t)w * sizeof *row);
                for (int j = w; j < tile_n; j++) row[j] = 0;
            }
            continue;
        }
        /* B's rows n0.. lie ldb apart, often a power of two, so that walking them a column at a
         * time sets every read against the same few L1 sets: move blocks of KB x KB instead, KB
         * consecutive reals of each row (one cache line for float) read into a block that is
         * written out as KB rows of the panel (2x512's W_h^T: 2.9 -> 0.8-1.1 ms) */
        for (int k0 = 0; k0 < K; k0 += KB) {
            const int kb = K - k0 < KB ? K - k0 : KB;
            real *dst = panel + (size_t)k0 * tile_n;
            for (int j0 = 0; j0 < w; j0 += KB) {
                const int jb = w - j0 < KB ? w - j0 : KB;
                real t[KB][KB];
                for (int j = 0; j < jb; j++) {
                    const real *src = B + (size_t)(n0 + j0 + j) * ldb + k0;
                    for (int k = 0; k < kb; k++) t[k][j] = src[k];
                }
                for (int k = 0; k < kb; k++)
                    for (int j = 0; j < jb; j++) dst[(size_t)k * tile_n + j0 + j] = t[k][j];
            }
            for (int k = 0; k < kb; k++)
                for (int j = w; j < tile_n; j++) dst[(size_t)k * tile_n + j] = 0;
        }
    }
}

size_t cpu_packed_bf16_size(int K, int N, int tile_n) {
    return (size_t)((N + tile_n - 1) / tile_n) * ((K + 1) / 2) * tile_n;
}
