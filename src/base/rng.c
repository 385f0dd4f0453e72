/* The generator of rng.h: Philox4x32-10 (philox.h), and uniforms and normals from its words. */
#include "crnn/rng.h"

#include "crnn/philox.h"

#include <math.h>

void rng_philox(const RngKey *k, uint32_t out[4]) {
    crnn_philox(k->seed, k->purpose, k->iteration, k->stream, k->layer, k->position, out);
}

double rng_uniform(const RngKey *k) {
    uint32_t w[4];
    rng_philox(k, w);
    uint64_t bits = ((uint64_t)w[0] << 32 | w[1]) >> 11;
    return (double)bits * 0x1.0p-53;
}

double rng_normal(const RngKey *k) {
    uint32_t w[4];
    rng_philox(k, w);
    uint64_t b1 = ((uint64_t)w[0] << 32 | w[1]) >> 11, b2 = ((uint64_t)w[2] << 32 | w[3]) >> 11;
    double u1 = ((double)b1 + 1.0) * 0x1.0p-53; /* (0, 1] */
    double u2 = (double)b2 * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}
