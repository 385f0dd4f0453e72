/* Fuzz target: the vocabulary JSON reader (vocab_read_json, src/io/vocab.c). Input: the file.
 * It either fails with a message naming the file, or gives a vocabulary that writes
 * (vocab_write_json) and reads back to the same one, and whose token names parse back. */
#include "crnn/vocab.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_file("vocab.json", data, size);
    Vocab v;
    CrnnError err = {.msg = ""};
    if (vocab_read_json(&v, path, &err) != 0) {
        FUZZ_ASSERT_NAMES(err, path);
        return 0;
    }
    FUZZ_ASSERT(v.size >= 1 && v.tokens && v.lookup, "V %d", v.size);
    for (int i = 0; i < v.size; i++) {
        FUZZ_ASSERT(vocab_index(&v, v.tokens[i]) == i, "lookup of token %d", i);
        char name[16], bytes[4];
        vocab_token_name(&v, i, name);
        uint32_t t;
        FUZZ_ASSERT(vocab_parse_token_name(v.encoding, name, &t) == 0 && t == v.tokens[i],
                    "token %d name '%s'", i, name);
        int n = vocab_token_bytes(&v, i, bytes);
        FUZZ_ASSERT(n >= 1 && n <= 4, "token %d is %d bytes", i, n);
        int32_t *idx;
        size_t count;
        CrnnError e2;
        FUZZ_ASSERT(vocab_encode(&v, bytes, (size_t)n, &idx, &count, &e2) == 0 && count == 1 &&
                        idx[0] == i,
                    "token %d does not encode to itself: %s", i, e2.msg);
        free(idx);
    }
    const char *copy = fuzz_path("copy.json");
    FUZZ_ASSERT(vocab_write_json(&v, copy, &err) == 0, "%s", err.msg);
    Vocab w;
    FUZZ_ASSERT(vocab_read_json(&w, copy, &err) == 0, "%s", err.msg);
    FUZZ_ASSERT(vocab_equal(&v, &w), "the written vocabulary reads back different");
    vocab_free(&w);
    vocab_free(&v);
    return 0;
}
