/* The CPU kernels built for generic (see cpu_kernels.inc and CMakeLists.txt for its flags). */
#include <math.h>

#define KERNEL_NAME(x) x##_generic
#define KERNEL_ISA "generic"
#include "cpu_kernels.inc"
