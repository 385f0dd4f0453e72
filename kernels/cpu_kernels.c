/* Chooses the CPU kernels for this processor. */
#include "cpu_kernels.h"

extern const CpuKernels cpu_kernels_generic;
#if defined(__x86_64__) && !defined(CRNN_DOUBLE)
extern const CpuKernels cpu_kernels_avx512, cpu_kernels_avx2;
#endif

const CpuKernels *cpu_kernels_select(void) {
#if defined(__x86_64__) && !defined(CRNN_DOUBLE)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return &cpu_kernels_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &cpu_kernels_avx2;
#endif
    return &cpu_kernels_generic;
}
