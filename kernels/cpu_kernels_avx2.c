/* The CPU kernels built for avx2 (see cpu_kernels.inc and CMakeLists.txt for its flags). */
#include <math.h>

#define KERNEL_NAME(x) x##_avx2
#define KERNEL_ISA "avx2"
/* 32-byte registers, 16 of them: 3 x 4 accumulators and the panel's row of 4 */
#define VEC_BYTES 32
#define TILE_M 3
#include "cpu_kernels.inc"
