/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11). */
#include "crnn/rng.h"

#include <math.h>

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

void rng_philox(const RngKey *k, uint32_t out[4]) {
    uint32_t c0 = k->position, c1 = k->stream, c2 = (uint32_t)k->iteration;
    uint32_t c3 = (uint32_t)(k->iteration >> 32) ^ (k->purpose << 24) ^ (k->layer << 8);
    uint32_t k0 = (uint32_t)k->seed, k1 = (uint32_t)(k->seed >> 32);
    /* the layer's high bits and the purpose's would collide with iteration's high bits only
     * past 2^40 iterations; layer is also folded into the key to keep layers apart */
    k1 ^= k->layer * 0x9E3779B9u;
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
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
