/* crnn's Philox4x32-10 (include/crnn/philox.h) against Random123, the generator's own
 * reference (Salmon et al., SC'11):
 *  - the known-answer vectors Random123 publishes (its tests/kat_vectors, the three
 *    "philox4x32 10" lines: counter, key -> the four words);
 *  - Random123's own philox4x32 (Debian's librandom123-dev headers) on 100,000 counters and
 *    keys drawn by a generator unrelated to Philox, and on the counters crnn's key mapping
 *    makes (crnn_philox = Philox4x32-10 of (position, stream, c2, c3) and (k0, k1)). */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <Random123/philox.h>

#include "check.h"
#include "crnn/philox.h"
#include "crnn/rng.h"

/* Random123 tests/kat_vectors (release 1.14.0):
 * philox4x32 10 CTR[4] KEY[2] EXPECTED[4] */
static const uint32_t kat[][10] = {
    {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
     0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
    {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
     0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
     0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
};

/* splitmix64: inputs from a generator that is not the one under test */
static uint64_t mix_state = 0x0123456789abcdefULL;
static uint64_t splitmix64(void) {
    uint64_t z = (mix_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void random123(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    philox4x32_ctr_t c = {{ctr[0], ctr[1], ctr[2], ctr[3]}};
    philox4x32_key_t k = {{key[0], key[1]}};
    philox4x32_ctr_t r = philox4x32_R(10, c, k);
    memcpy(out, r.v, sizeof r.v);
}

int main(void) {
    /* 1. the published answers, through crnn's function and through Random123's */
    for (size_t n = 0; n < sizeof kat / sizeof kat[0]; n++) {
        uint32_t mine[4], theirs[4];
        crnn_philox4x32_10(kat[n], kat[n] + 4, mine);
        random123(kat[n], kat[n] + 4, theirs);
        for (int w = 0; w < 4; w++) {
            CHECK(mine[w] == kat[n][6 + w], "vector %zu word %d: %08" PRIx32 ", published %08" PRIx32, n, w,
                  mine[w], kat[n][6 + w]);
            CHECK(theirs[w] == kat[n][6 + w], "Random123's own, vector %zu word %d: %08" PRIx32, n, w, theirs[w]);
        }
    }
    /* 2. against Random123 on many inputs */
    int differ = 0;
    for (int n = 0; n < 100000; n++) {
        uint64_t a = splitmix64(), b = splitmix64(), c = splitmix64();
        uint32_t ctr[4] = {(uint32_t)a, (uint32_t)(a >> 32), (uint32_t)b, (uint32_t)(b >> 32)};
        uint32_t key[2] = {(uint32_t)c, (uint32_t)(c >> 32)};
        uint32_t mine[4], theirs[4];
        crnn_philox4x32_10(ctr, key, mine);
        random123(ctr, key, theirs);
        differ += memcmp(mine, theirs, sizeof mine) != 0;
    }
    CHECK(differ == 0, "%d of 100000 random counters and keys differ from Random123's philox4x32", differ);
    /* 3. crnn's keyed draws (rng.h) are Philox4x32-10 of the counter and key philox.h documents */
    differ = 0;
    for (int n = 0; n < 10000; n++) {
        uint64_t a = splitmix64(), b = splitmix64(), c = splitmix64();
        RngKey k = {.seed = a, .purpose = (uint32_t)(b & 3), .iteration = b >> 20, .stream = (uint32_t)c,
                    .layer = (uint32_t)(c >> 32) & 7, .position = (uint32_t)(c >> 40)};
        uint32_t mine[4], theirs[4], ctr[4] = {k.position, k.stream, 0, 0}, key[2];
        rng_philox(&k, mine);
        ctr[2] = (uint32_t)k.iteration;
        ctr[3] = (uint32_t)(k.iteration >> 32) ^ (k.purpose << 24) ^ (k.layer << 8);
        key[0] = (uint32_t)k.seed;
        key[1] = (uint32_t)(k.seed >> 32) ^ k.layer * 0x9E3779B9u;
        random123(ctr, key, theirs);
        differ += memcmp(mine, theirs, sizeof mine) != 0;
    }
    CHECK(differ == 0, "%d of 10000 rng_philox draws differ from Random123 on philox.h's counter and key", differ);
    if (!failures) printf("Philox4x32-10: Random123's 3 known answers and 110000 draws against its philox4x32 agree\n");
    return check_exit("test_philox");
}
