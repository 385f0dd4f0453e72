/* Fuzz target: the data file reader (src/io/dataset.c). Input: the .h5 file. Every split is
 * sized (dataset_split_size) and loaded as a few stream layouts (dataset_load, with and without
 * shrinking); each call either fails with a message naming the file or gives batches whose
 * every index is inside the vocabulary. Splits that declare more than FUZZ_MAX_TOKENS tokens
 * are sized but not loaded: the loader allocates what a split declares, as it must for real
 * corpora of many GB, and that is not what this target looks for. */
#include <stdlib.h>

#include "crnn/dataset.h"
#include "fuzz_common.h"

#define FUZZ_MAX_TOKENS (1 << 22)

static void check_batches(const Batches *b, int vocab_size) {
    FUZZ_ASSERT(b->N >= 1 && b->B >= 1 && b->S >= 1 && b->count >= 1, "N %d B %d count %lld",
                b->N, b->B, (long long)b->count);
    FUZZ_ASSERT(b->stream_len == b->count * b->S, "stream_len %lld", (long long)b->stream_len);
    FUZZ_ASSERT((int64_t)b->N * b->stream_len + 1 <= b->num, "streams past the split");
    int32_t *x = malloc((size_t)b->B * (size_t)b->S * sizeof *x);
    int32_t *y = malloc((size_t)b->B * (size_t)b->S * sizeof *y);
    FUZZ_ASSERT(x && y, "out of memory");
    for (int64_t k = 0; k < b->count; k++) {
        dataset_batch(b, k, x, y);
        for (int i = 0; i < b->B * b->S; i++)
            FUZZ_ASSERT(x[i] >= 0 && x[i] < vocab_size && y[i] >= 0 && y[i] < vocab_size,
                        "batch %lld: index %d/%d outside 0..%d", (long long)k, x[i], y[i],
                        vocab_size - 1);
    }
    free(x);
    free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    crnn_hdf5_quiet();
    if (fuzz_hdf5_known_hang(data, size)) return 0;
    const char *path = fuzz_write_file("data.h5", data, size);
    static const char *splits[] = {"train", "val", "test", "nosuch"};
    static const struct { int N, first, B, S, shrink, V; } layouts[] = {
        {2, 0, 2, 4, 0, 255}, {3, 1, 1, 2, 0, 65}, {50, 0, 50, 50, 1, 255}, {1, 0, 1, 1, 1, 100000},
    };
    for (size_t s = 0; s < CRNN_ARRAY_LEN(splits); s++) {
        int64_t num = -1;
        CrnnError err = {.msg = ""};
        if (dataset_split_size(path, splits[s], &num, &err) != 0) {
            FUZZ_ASSERT_NAMES(err, path);
            continue;
        }
        FUZZ_ASSERT(num >= 0, "/%s has %lld tokens", splits[s], (long long)num);
        if (num > FUZZ_MAX_TOKENS) continue;
        for (size_t l = 0; l < CRNN_ARRAY_LEN(layouts); l++) {
            Batches b;
            int shrunk = -1;
            if (dataset_load(&b, path, splits[s], layouts[l].N, layouts[l].first, layouts[l].B,
                             layouts[l].S, layouts[l].shrink, layouts[l].V, &shrunk, &err) != 0) {
                FUZZ_ASSERT_NAMES(err, path);
                FUZZ_ASSERT(b.tokens == NULL, "a failed load keeps its tokens");
                continue;
            }
            FUZZ_ASSERT(shrunk == 0 || shrunk == 1, "shrunk %d", shrunk);
            FUZZ_ASSERT(b.num == num, "num %lld, size %lld", (long long)b.num, (long long)num);
            check_batches(&b, layouts[l].V);
            dataset_free(&b);
        }
    }
    return 0;
}
