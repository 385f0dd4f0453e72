/* The CPU kernels built for avx512 (see cpu_kernels.inc and CMakeLists.txt for its flags). */
#include <math.h>

#define KERNEL_NAME(x) x##_avx512
#define KERNEL_ISA "avx512"
/* 5 x 64 tiles: 20 of the 32 vector registers hold C, and 50 streams (25 a thread) divide into
 * whole tiles; 2x512 recurrence 39 -> 34 ms a layer and direction with the K blocks (NOTES.md). */
#define TILE_M 5
#define K_BLOCK 64
#include "cpu_kernels.inc"
