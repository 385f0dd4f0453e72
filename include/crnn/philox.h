/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) over
 * crnn's key (rng.h), as an inline function that host C and CUDA device code share, so that a
 * dropout mask or a sample is the same on every device. */
#ifndef CRNN_PHILOX_H
#define CRNN_PHILOX_H

#include <stdint.h>

#ifdef __CUDACC__
#define CRNN_HD __host__ __device__ __forceinline__
#else
#define CRNN_HD static inline
#endif

/* Philox4x32-10's round multipliers and key increments. */
#define CRNN_PHILOX_M0 0xD2511F53u
#define CRNN_PHILOX_M1 0xCD9E8D57u
#define CRNN_PHILOX_W0 0x9E3779B9u
#define CRNN_PHILOX_W1 0xBB67AE85u

/* The counter words c2, c3 and the key k0, k1 of (seed, purpose, iteration, layer); c0 is the
 * position and c1 the stream. The layer's high bits and the purpose's would collide with
 * iteration's high bits only past 2^40 iterations; layer is also folded into the key to keep
 * layers apart. */
CRNN_HD void crnn_philox_key(uint64_t seed, uint32_t purpose, uint64_t iteration, uint32_t layer,
                             uint32_t *c2, uint32_t *c3, uint32_t *k0, uint32_t *k1) {
    *c2 = (uint32_t)iteration;
    *c3 = (uint32_t)(iteration >> 32) ^ (purpose << 24) ^ (layer << 8);
    *k0 = (uint32_t)seed;
    *k1 = (uint32_t)(seed >> 32) ^ layer * CRNN_PHILOX_W0;
}

/* Philox4x32-10 itself, as Random123's philox4x32(ctr, key): ten rounds on the counter
 * (c0, c1, c2, c3) with the key (k0, k1), bumped by the Weyl constants between rounds.
 * Checked against Random123's published known answers and its own implementation
 * (tests/test_philox.c). */
CRNN_HD void crnn_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)CRNN_PHILOX_M0 * c0, p1 = (uint64_t)CRNN_PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += CRNN_PHILOX_W0;
        k1 += CRNN_PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* The four words for (seed, purpose, iteration, stream, layer, position): Philox4x32-10 of the
 * counter (position, stream, c2, c3) and key (k0, k1) of crnn_philox_key. */
CRNN_HD void crnn_philox(uint64_t seed, uint32_t purpose, uint64_t iteration, uint32_t stream,
                         uint32_t layer, uint32_t position, uint32_t out[4]) {
    uint32_t ctr[4] = {position, stream, 0, 0}, key[2];
    crnn_philox_key(seed, purpose, iteration, layer, &ctr[2], &ctr[3], &key[0], &key[1]);
    crnn_philox4x32_10(ctr, key, out);
}

/* The purpose of dropout's numbers (rng.h's RNG_DROPOUT). */
#define CRNN_PHILOX_DROPOUT 2u

/* Whether Philox word w keeps its unit under dropout p: u = (w >> 8) * 2^-24 >= p. */
CRNN_HD int crnn_dropout_keeps(uint32_t w, float p) { return (float)(w >> 8) * 0x1.0p-24f >= p; }

/* Dropout (docs/FORMATS.md section 3): units 4q .. 4q+3 of step t of global stream s in layer l's
 * output [S, B, H] share one call, crnn_philox(seed, RNG_DROPOUT = 2, iteration, s, l,
 * t * ceil(H / 4) + q); unit j is kept when u >= p, u = (w >> 8) * 2^-24 uniform in [0, 1) from
 * word j % 4. Kept units are scaled by 1 / (1 - p) (inverted dropout), so that evaluation uses
 * the weights as they are. keep[k] says whether unit 4q + k is kept. */
CRNN_HD void crnn_dropout_quad(uint64_t seed, uint64_t iteration, uint32_t stream, uint32_t layer,
                               int t, int q, int H, float p, int keep[4]) {
    uint32_t w[4];
    uint32_t quads = (uint32_t)(H + 3) / 4;
    crnn_philox(seed, CRNN_PHILOX_DROPOUT, iteration, stream, layer, (uint32_t)t * quads + (uint32_t)q, w);
    for (int k = 0; k < 4; k++) keep[k] = crnn_dropout_keeps(w[k], p);
}

/* Whether unit j of step t is kept: one unit of crnn_dropout_quad. */
CRNN_HD int crnn_dropout_keep(uint64_t seed, uint64_t iteration, uint32_t stream, uint32_t layer,
                              int t, int j, int H, float p) {
    int keep[4];
    crnn_dropout_quad(seed, iteration, stream, layer, t, j / 4, H, p, keep);
    return keep[j % 4];
}

#endif
