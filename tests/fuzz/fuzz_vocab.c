/* Fuzz target: crnn-preprocess's text decoder and vocabulary builder (src/io/preprocess.c,
 * src/io/vocab.c). Input: one options byte (bit 0: --encoding bytes; bits 1-3 and 4-6: val_frac
 * and test_frac in eighths) and then the text. preprocess_run either fails with a message
 * naming the input, or writes files that read back to the same text: the JSON's vocabulary
 * encodes the text (vocab_encode) to the very indices stored in /train, /val and /test. */
#include <stdlib.h>

#include "crnn/dataset.h"
#include "crnn/preprocess.h"
#include "crnn/vocab.h"
#include "fuzz_common.h"

/* The text's tokens through the in-memory decoder, to compare with the files. */
static void check_files(const uint8_t *text, size_t len, VocabEncoding enc,
                        const PreprocessSummary *sum, const char *h5, const char *json) {
    CrnnError err;
    Vocab v;
    FUZZ_ASSERT(vocab_read_json(&v, json, &err) == 0, "%s", err.msg);
    /* a bytes vocabulary of ASCII only reads back as utf-8 (the JSON cannot tell them apart) */
    for (int i = 0; i < v.size && v.encoding != enc; i++)
        FUZZ_ASSERT(enc == VOCAB_BYTES && v.tokens[i] < 128, "encoding %d, wrote %d", v.encoding,
                    enc);
    FUZZ_ASSERT(v.size == sum->vocab_size, "V %d, summary %d", v.size, sum->vocab_size);
    int32_t *idx;
    size_t n;
    FUZZ_ASSERT(vocab_encode(&v, (const char *)text, len, &idx, &n, &err) == 0, "%s", err.msg);
    FUZZ_ASSERT((int64_t)n == sum->total, "%zu tokens, summary %lld", n, (long long)sum->total);
    /* every token of the vocabulary appears, in order of first appearance */
    int32_t next = 0;
    for (size_t i = 0; i < n; i++) {
        FUZZ_ASSERT(idx[i] <= next, "token %zu has index %d before %d appeared", i, idx[i], next);
        if (idx[i] == next) next++;
    }
    FUZZ_ASSERT(next == v.size, "%d of %d tokens seen", next, v.size);
    /* the names round trip */
    for (int i = 0; i < v.size; i++) {
        char name[16];
        uint32_t t;
        vocab_token_name(&v, i, name);
        if (name[0]) {
            FUZZ_ASSERT(vocab_parse_token_name(v.encoding, name, &t) == 0 && t == v.tokens[i],
                        "token %d name '%s'", i, name);
        }
    }
    /* the splits hold the indices, 1-based */
    const char *splits[3] = {"train", "val", "test"};
    int64_t sizes[3] = {sum->train_size, sum->val_size, sum->test_size}, at = 0;
    for (int s = 0; s < 3; s++) {
        int64_t num;
        FUZZ_ASSERT(dataset_split_size(h5, splits[s], &num, &err) == 0, "%s", err.msg);
        FUZZ_ASSERT(num == sizes[s], "/%s has %lld tokens, summary %lld", splits[s],
                    (long long)num, (long long)sizes[s]);
        if (num >= 2) { /* one stream of length 1: every token but the last is an x */
            Batches b;
            FUZZ_ASSERT(dataset_load(&b, h5, splits[s], 1, 0, 1, 1, 0, v.size, NULL, &err) == 0,
                        "%s", err.msg);
            FUZZ_ASSERT(b.count == num - 1, "%lld batches", (long long)b.count);
            for (int64_t k = 0; k < b.count; k++) {
                int32_t x, y;
                dataset_batch(&b, k, &x, &y);
                FUZZ_ASSERT(x == idx[at + k] && y == idx[at + k + 1], "token %lld",
                            (long long)(at + k));
            }
            dataset_free(&b);
        }
        at += num;
    }
    free(idx);
    vocab_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t options = data[0];
    const uint8_t *text = data + 1;
    size_t len = size - 1;

    PreprocessOptions opt;
    preprocess_default_options(&opt);
    opt.encoding = (options & 1) ? VOCAB_BYTES : VOCAB_UTF8;
    opt.val_frac = ((options >> 1) & 7) / 8.0;
    opt.test_frac = ((options >> 4) & 7) / 8.0;
    opt.input_txt = fuzz_write_file("input.txt", text, len);
    opt.output_h5 = fuzz_path("data.h5");
    opt.output_json = fuzz_path("data.json");
    unlink(opt.output_h5);
    unlink(opt.output_json);

    PreprocessSummary sum;
    CrnnError err = {.msg = ""};
    int rc = preprocess_run(&opt, &sum, &err);
    if (rc != 0) {
        /* the options' own checks name flags; everything else names the input */
        if (opt.val_frac + opt.test_frac < 1) FUZZ_ASSERT_NAMES(err, opt.input_txt);
        FUZZ_ASSERT(access(opt.output_h5, F_OK) != 0 && access(opt.output_json, F_OK) != 0,
                    "a failed run left an output");
        return 0;
    }
    FUZZ_ASSERT(sum.total >= 2 && sum.vocab_size >= 1, "total %lld", (long long)sum.total);
    FUZZ_ASSERT(sum.train_size + sum.val_size + sum.test_size == sum.total, "split sizes");
    check_files(text, len, opt.encoding, &sum, opt.output_h5, opt.output_json);
    return 0;
}
