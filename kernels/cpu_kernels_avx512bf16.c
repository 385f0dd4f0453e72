/* The CPU kernels built for AVX-512 with AVX512_BF16 (see cpu_kernels.inc and CMakeLists.txt for
 * its flags): the avx512 set, whose bf16 products (-precision bf16) run on vdpbf16ps. */
#include <math.h>

#define KERNEL_NAME(x) x##_avx512bf16
#define KERNEL_ISA "avx512bf16"
/* as the avx512 set; blocks of 512 pairs: 190 -> 220 GFLOP/s on the step products (NOTES.md) */
#define TILE_M 5
#define K_BLOCK 512
#include "cpu_kernels.inc"
