/* The CPU kernels built for generic (see cpu_kernels.inc and CMakeLists.txt for its flags). */
#include <math.h>

#define KERNEL_NAME(x) x##_generic
#define KERNEL_ISA "generic"
/* 16-byte registers, 16 of them: 3 x 4 accumulators and the panel's row of 4 */
#define VEC_BYTES 16
#define TILE_M 3
#include "cpu_kernels.inc"
