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

size_t cpu_packed_bf16_size(int K, int N, int tile_n) {
    return (size_t)((N + tile_n - 1) / tile_n) * ((K + 1) / 2) * tile_n;
}
