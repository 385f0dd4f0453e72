/* Randomness as a function: Philox4x32-10 keyed by the seed, counting on
 * (purpose, iteration, global stream, layer, position). The same call gives the same numbers on
 * any rank count and any device, so nothing is carried between ranks but the seed. */
#ifndef CRNN_RNG_H
#define CRNN_RNG_H

#include <stdint.h>

/* RNG_SAMPLE: crnn-sample's draws; RNG_TRAIN_SAMPLE: the samples crnn-train writes during
 * training (-sample_every), apart from every number training itself draws. */
typedef enum { RNG_INIT = 1, RNG_DROPOUT = 2, RNG_SAMPLE = 3, RNG_TRAIN_SAMPLE = 4 } RngPurpose;

typedef struct RngKey {
    uint64_t seed;
    uint32_t purpose;
    uint64_t iteration;
    uint32_t stream;
    uint32_t layer;
    uint32_t position;
} RngKey;

/* Four independent 32-bit words for the key. */
void rng_philox(const RngKey *k, uint32_t out[4]);
/* Uniform in [0, 1), 53 bits. */
double rng_uniform(const RngKey *k);
/* Standard normal (Box-Muller on the four words). */
double rng_normal(const RngKey *k);

#endif
