/* The CPU kernels built for avx512 (see cpu_kernels.inc and CMakeLists.txt for its flags). */
#include <math.h>

#define KERNEL_NAME(x) x##_avx512
#define KERNEL_ISA "avx512"
#include "cpu_kernels.inc"
