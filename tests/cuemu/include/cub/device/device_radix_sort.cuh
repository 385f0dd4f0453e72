/* cuemu: cub::DeviceRadixSort::SortPairs as CUB documents it (tests/cuemu/README.md): a stable
 * sort of (key, value) pairs by bits [begin_bit, end_bit) of the keys, signed keys in their
 * numeric order; the first call (no temporary storage) says how much it needs, the second is
 * queued on the stream. */
#ifndef CUEMU_CUB_DEVICE_RADIX_SORT_CUH
#define CUEMU_CUB_DEVICE_RADIX_SORT_CUH

#include <cuda_runtime.h>
#include <stdint.h>

namespace cuemu {
cudaError_t sort_pairs_i32(void *temp, size_t &temp_bytes, const int32_t *keys_in, int32_t *keys_out,
                           const int32_t *values_in, int32_t *values_out, int n, int begin_bit, int end_bit,
                           cudaStream_t s);
}

namespace cub {
struct DeviceRadixSort {
    static cudaError_t SortPairs(void *temp, size_t &temp_bytes, const int32_t *keys_in, int32_t *keys_out,
                                 const int32_t *values_in, int32_t *values_out, int num_items, int begin_bit = 0,
                                 int end_bit = 32, cudaStream_t stream = 0) {
        return cuemu::sort_pairs_i32(temp, temp_bytes, keys_in, keys_out, values_in, values_out, num_items,
                                     begin_bit, end_bit, stream);
    }
};
} // namespace cub

#endif
