/* The CPU kernels built for avx512 (see cpu_kernels.inc and CMakeLists.txt for its flags). */
#include <math.h>

#define KERNEL_NAME(x) x##_avx512
#define KERNEL_ISA "avx512"
/* 5 x 64 tiles: 20 of the 32 vector registers hold C, and 50 streams (25 a thread) divide into
 * whole tiles. K blocks of 512 (128 KB of the panel, in L2): on Zen 4 the step products run at
 * 113-115 GFLOP/s at H = 512 and 104-106 at 1024, against 105-107 and 95 with blocks of 64
 * (each block stores and reloads the C tiles, whose rows alias in L1; NOTES.md). */
#define TILE_M 5
#define K_BLOCK 512
#include "cpu_kernels.inc"
