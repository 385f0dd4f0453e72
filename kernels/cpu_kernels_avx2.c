/* The CPU kernels built for avx2 (see cpu_kernels.inc and CMakeLists.txt for its flags). */
#include <math.h>

#define KERNEL_NAME(x) x##_avx2
#define KERNEL_ISA "avx2"
#include "cpu_kernels.inc"
