/* Unit tests of src/io/vocab.c: strict UTF-8, token names, the JSON file both ways (bytes equal to
 * Python's json.dump, and files Python wrote), vocab_encode's errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "crnn/vocab.h"

/* a message that must name something */
#define CHECK_MSG(err, needle) CHECK(strstr((err).msg, (needle)), "message \"%s\" lacks \"%s\"", (err).msg, (needle))

static void path_in_tmp(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s", tmp_path(name));
}

static void write_file(const char *path, const char *text, size_t len) {
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        exit(2);
    }
    fwrite(text, 1, len, fp);
    fclose(fp);
}

static char *read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    static char buf[1 << 16];
    *len = fread(buf, 1, sizeof buf - 1, fp);
    buf[*len] = '\0';
    fclose(fp);
    return buf;
}

/* ---------------------------------------------------------------------------------------- */

static int decodes(const char *bytes, size_t len, uint32_t want, int want_used) {
    uint32_t cp = 0xDEADBEEF;
    int used = utf8_decode((const unsigned char *)bytes, len, &cp);
    return used == want_used && (used == 0 || cp == want);
}

static void test_utf8(void) {
    /* valid, at every length boundary */
    CHECK(decodes("A", 1, 'A', 1));
    CHECK(decodes("\x00", 1, 0, 1));
    CHECK(decodes("\x7f", 1, 0x7F, 1));
    CHECK(decodes("\xc2\x80", 2, 0x80, 2));
    CHECK(decodes("\xc3\xa9", 2, 0xE9, 2));
    CHECK(decodes("\xdf\xbf", 2, 0x7FF, 2));
    CHECK(decodes("\xe0\xa0\x80", 3, 0x800, 3));
    CHECK(decodes("\xe2\x82\xac", 3, 0x20AC, 3));
    CHECK(decodes("\xed\x9f\xbf", 3, 0xD7FF, 3));
    CHECK(decodes("\xee\x80\x80", 3, 0xE000, 3));
    CHECK(decodes("\xef\xbf\xbf", 3, 0xFFFF, 3));
    CHECK(decodes("\xf0\x90\x80\x80", 4, 0x10000, 4));
    CHECK(decodes("\xf0\x9f\x98\x80", 4, 0x1F600, 4));
    CHECK(decodes("\xf4\x8f\xbf\xbf", 4, 0x10FFFF, 4));
    CHECK(decodes("\xc3\xa9zz", 4, 0xE9, 2)); /* stops after one character */
    /* invalid: overlong forms */
    CHECK(decodes("\xc0\x80", 2, 0, 0));
    CHECK(decodes("\xc1\xbf", 2, 0, 0));
    CHECK(decodes("\xe0\x80\x80", 3, 0, 0));
    CHECK(decodes("\xe0\x9f\xbf", 3, 0, 0));
    CHECK(decodes("\xf0\x80\x80\x80", 4, 0, 0));
    CHECK(decodes("\xf0\x8f\xbf\xbf", 4, 0, 0));
    /* surrogates */
    CHECK(decodes("\xed\xa0\x80", 3, 0, 0));
    CHECK(decodes("\xed\xbf\xbf", 3, 0, 0));
    /* above U+10FFFF and bytes that never start a character */
    CHECK(decodes("\xf4\x90\x80\x80", 4, 0, 0));
    CHECK(decodes("\xf5\x80\x80\x80", 4, 0, 0));
    CHECK(decodes("\xff", 1, 0, 0));
    CHECK(decodes("\xfe", 1, 0, 0));
    CHECK(decodes("\x80", 1, 0, 0));
    CHECK(decodes("\xbf", 1, 0, 0));
    /* truncated, and broken continuation bytes */
    CHECK(decodes("\xc3", 1, 0, 0));
    CHECK(decodes("\xe2\x82", 2, 0, 0));
    CHECK(decodes("\xf0\x9f\x98", 3, 0, 0));
    CHECK(decodes("\xe2\x28\xa1", 3, 0, 0));
    CHECK(decodes("\xe2\x82\x28", 3, 0, 0));
    CHECK(decodes("\xf0\x9f\x98\x28", 4, 0, 0));
    CHECK(decodes("\xc3\xc3", 2, 0, 0));
    CHECK(decodes("", 0, 0, 0));

    /* encode -> decode over every scalar value */
    int bad = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        char b[4];
        int n = utf8_encode(cp, b);
        int want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        uint32_t back;
        if (n != want || utf8_decode((unsigned char *)b, (size_t)n, &back) != n || back != cp)
            bad++;
    }
    CHECK(bad == 0);
}

/* ---------------------------------------------------------------------------------------- */

static const uint32_t TRICKY[] = {'a', 0, '"', '\\', '\n', '\r', '\t', 0x7F, 0x01, 0xE9,
                                  0x20AC, 0x1F600, 0x2028, '/', '\b', '\f'};
/* json.dumps of torch-rnn's dict for TRICKY (Python 3.11) */
static const char TRICKY_JSON[] =
    "{\"token_to_idx\": {\"a\": 1, \"\\u0000\": 2, \"\\\"\": 3, \"\\\\\": 4, \"\\n\": 5, \"\\r\": "
    "6, \"\\t\": 7, \"\\u007f\": 8, \"\\u0001\": 9, \"\\u00e9\": 10, \"\\u20ac\": 11, "
    "\"\\ud83d\\ude00\": 12, \"\\u2028\": 13, \"/\": 14, \"\\b\": 15, \"\\f\": 16}, "
    "\"idx_to_token\": {\"1\": \"a\", \"2\": \"\\u0000\", \"3\": \"\\\"\", \"4\": \"\\\\\", "
    "\"5\": \"\\n\", \"6\": \"\\r\", \"7\": \"\\t\", \"8\": \"\\u007f\", \"9\": \"\\u0001\", "
    "\"10\": \"\\u00e9\", \"11\": \"\\u20ac\", \"12\": \"\\ud83d\\ude00\", \"13\": "
    "\"\\u2028\", \"14\": \"/\", \"15\": \"\\b\", \"16\": \"\\f\"}}";

static const uint32_t BYTES[] = {65, 200, 0, 10, 255, 128};
static const char BYTES_JSON[] =
    "{\"token_to_idx\": {\"A\": 1, \"[200]\": 2, \"\\u0000\": 3, \"\\n\": 4, \"[255]\": 5, "
    "\"[128]\": 6}, \"idx_to_token\": {\"1\": \"A\", \"2\": \"[200]\", \"3\": \"\\u0000\", "
    "\"4\": \"\\n\", \"5\": \"[255]\", \"6\": \"[128]\"}}";

static void test_build(void) {
    Vocab v;
    CrnnError err = {.msg = ""};
    uint32_t dup[] = {'a', 'b', 'a'};
    CHECK(vocab_from_tokens(&v, VOCAB_UTF8, dup, 3, &err) == -1);
    CHECK_MSG(err, "'a'");
    CHECK_MSG(err, "twice");
    uint32_t big[] = {'a', 256};
    CHECK(vocab_from_tokens(&v, VOCAB_BYTES, big, 2, &err) == -1);
    uint32_t sur[] = {0xD800};
    CHECK(vocab_from_tokens(&v, VOCAB_UTF8, sur, 1, &err) == -1);
    uint32_t huge[] = {0x110000};
    CHECK(vocab_from_tokens(&v, VOCAB_UTF8, huge, 1, &err) == -1);
    CHECK(vocab_from_tokens(&v, VOCAB_UTF8, NULL, 0, &err) == -1);

    CHECK(vocab_from_tokens(&v, VOCAB_UTF8, TRICKY, (int)CRNN_ARRAY_LEN(TRICKY), &err) == 0);
    CHECK(v.size == (int)CRNN_ARRAY_LEN(TRICKY));
    CHECK(vocab_index(&v, 0x1F600) == 11);
    CHECK(vocab_index(&v, 0) == 1);
    CHECK(vocab_index(&v, 'z') == -1);
    CHECK(vocab_index(&v, 0x10FFFF) == -1);
    char b[4];
    CHECK(vocab_token_bytes(&v, 11, b) == 4 && memcmp(b, "\xf0\x9f\x98\x80", 4) == 0);
    CHECK(vocab_token_bytes(&v, 9, b) == 2 && memcmp(b, "\xc3\xa9", 2) == 0);
    /* names round trip; NUL is "[0]" */
    for (int i = 0; i < v.size; i++) {
        char name[16];
        uint32_t t = 0xFFFFFFFF;
        vocab_token_name(&v, i, name);
        CHECK(vocab_parse_token_name(VOCAB_UTF8, name, &t) == 0 && t == v.tokens[i]);
    }
    char name[16];
    vocab_token_name(&v, 1, name);
    CHECK(strcmp(name, "[0]") == 0);
    vocab_token_name(&v, 9, name);
    CHECK(strcmp(name, "\xc3\xa9") == 0);
    uint32_t t;
    CHECK(vocab_parse_token_name(VOCAB_UTF8, "ab", &t) == -1);
    CHECK(vocab_parse_token_name(VOCAB_UTF8, "[200]", &t) == -1);
    CHECK(vocab_parse_token_name(VOCAB_UTF8, "", &t) == -1);
    CHECK(vocab_parse_token_name(VOCAB_UTF8, "\xed\xa0\x80", &t) == -1);
    CHECK(vocab_parse_token_name(VOCAB_UTF8, "[", &t) == 0 && t == '[');
    CHECK(vocab_parse_token_name(VOCAB_BYTES, "[200]", &t) == 0 && t == 200);
    CHECK(vocab_parse_token_name(VOCAB_BYTES, "[256]", &t) == -1);
    CHECK(vocab_parse_token_name(VOCAB_BYTES, "[020]", &t) == -1);
    CHECK(vocab_parse_token_name(VOCAB_BYTES, "\xc3\xa9", &t) == -1);
    CHECK(vocab_parse_token_name(VOCAB_BYTES, "x", &t) == 0 && t == 'x');

    Vocab w;
    CHECK(vocab_from_tokens(&w, VOCAB_UTF8, TRICKY, (int)CRNN_ARRAY_LEN(TRICKY), &err) == 0);
    CHECK(vocab_equal(&v, &w));
    vocab_free(&w);
    CHECK(vocab_from_tokens(&w, VOCAB_UTF8, TRICKY, (int)CRNN_ARRAY_LEN(TRICKY) - 1, &err) == 0);
    CHECK(!vocab_equal(&v, &w));
    vocab_free(&w);
    CHECK(vocab_from_tokens(&w, VOCAB_BYTES, BYTES, (int)CRNN_ARRAY_LEN(BYTES), &err) == 0);
    CHECK(!vocab_equal(&v, &w));
    vocab_token_name(&w, 1, name);
    CHECK(strcmp(name, "[200]") == 0);
    vocab_token_name(&w, 2, name);
    CHECK(strcmp(name, "[0]") == 0);
    vocab_token_name(&w, 0, name);
    CHECK(strcmp(name, "A") == 0);
    CHECK(vocab_token_bytes(&w, 1, b) == 1 && (unsigned char)b[0] == 200);
    vocab_free(&w);
    vocab_free(&v);
}

/* ---------------------------------------------------------------------------------------- */

static void test_json(void) {
    CrnnError err = {.msg = ""};
    char path[512];
    Vocab v, r;

    /* writes what Python writes, byte for byte, and reads it back */
    path_in_tmp(path, sizeof path, "tricky.json");
    CHECK(vocab_from_tokens(&v, VOCAB_UTF8, TRICKY, (int)CRNN_ARRAY_LEN(TRICKY), &err) == 0);
    CHECK(vocab_write_json(&v, path, &err) == 0);
    size_t len;
    char *text = read_file(path, &len);
    CHECK(text && len == strlen(TRICKY_JSON) && memcmp(text, TRICKY_JSON, len) == 0);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0);
    CHECK(vocab_read_json(&r, path, &err) == 0);
    CHECK(vocab_equal(&v, &r) && r.encoding == VOCAB_UTF8);
    vocab_free(&r);
    vocab_free(&v);

    path_in_tmp(path, sizeof path, "bytes.json");
    CHECK(vocab_from_tokens(&v, VOCAB_BYTES, BYTES, (int)CRNN_ARRAY_LEN(BYTES), &err) == 0);
    CHECK(vocab_write_json(&v, path, &err) == 0);
    text = read_file(path, &len);
    CHECK(text && len == strlen(BYTES_JSON) && memcmp(text, BYTES_JSON, len) == 0);
    CHECK(vocab_read_json(&r, path, &err) == 0);
    CHECK(vocab_equal(&v, &r) && r.encoding == VOCAB_BYTES);
    vocab_free(&r);
    vocab_free(&v);

    /* a file Python wrote with keys in another order (Python 2 dicts), pretty-printed */
    static const char py2[] =
        "{\"idx_to_token\": {\"3\": \"\\u0000\", \"1\": \"x\", \"2\": \"\\ud83d\\ude00\"},\n"
        " \"token_to_idx\": {\"\\ud83d\\ude00\": 2, \"\\u0000\": 3, \"x\": 1}}\n";
    path_in_tmp(path, sizeof path, "py2.json");
    write_file(path, py2, sizeof py2 - 1);
    CHECK(vocab_read_json(&r, path, &err) == 0);
    CHECK(r.size == 3 && r.encoding == VOCAB_UTF8 && r.tokens[0] == 'x' &&
          r.tokens[1] == 0x1F600 && r.tokens[2] == 0);
    vocab_free(&r);

    /* bytes mode read, a string with an escaped quote before a NUL string, no idx_to_token */
    static const char noi2t[] = "{\"token_to_idx\": {\"\\\"\": 2, \"\\u0000\": 1, \"[195]\": 3}}";
    path_in_tmp(path, sizeof path, "noi2t.json");
    write_file(path, noi2t, sizeof noi2t - 1);
    CHECK(vocab_read_json(&r, path, &err) == 0);
    CHECK(r.size == 3 && r.encoding == VOCAB_BYTES && r.tokens[0] == 0 && r.tokens[1] == '"' &&
          r.tokens[2] == 195);
    vocab_free(&r);

    /* errors name the file and say what to do */
    struct {
        const char *name, *text, *needle;
    } bad[] = {
        {"notjson.json", "{\"token_to_idx\": {\"a\": 1", "not a valid JSON file"},
        {"nokey.json", "{\"opt\": {}}", "not a vocabulary file (no token_to_idx)"},
        {"array.json", "[1, 2]", "no token_to_idx"},
        {"empty.json", "{\"token_to_idx\": {}}", "empty"},
        {"range.json", "{\"token_to_idx\": {\"a\": 1, \"b\": 3}}", "1..2"},
        {"zero.json", "{\"token_to_idx\": {\"a\": 0}}", "1..1"},
        {"float.json", "{\"token_to_idx\": {\"a\": 1.5}}", "1..1"},
        {"dupidx.json", "{\"token_to_idx\": {\"a\": 1, \"b\": 1}}", "twice"},
        {"dupkey.json", "{\"token_to_idx\": {\"a\": 1, \"a\": 2}}", "duplicate"},
        {"multi.json", "{\"token_to_idx\": {\"ab\": 1}}", "\"ab\""},
        {"nonbyte.json", "{\"token_to_idx\": {\"[200]\": 1, \"\\u00e9\": 2}}", "bytes"},
        {"samebyte.json", "{\"token_to_idx\": {\"[200]\": 1, \"A\": 2, \"[65]\": 3}}", "twice"},
        {"i2tsize.json", "{\"token_to_idx\": {\"a\": 1}, \"idx_to_token\": {}}", "idx_to_token"},
        {"i2tkey.json", "{\"token_to_idx\": {\"a\": 1}, \"idx_to_token\": {\"01\": \"a\"}}",
         "\"01\""},
        {"i2tval.json", "{\"token_to_idx\": {\"a\": 1, \"b\": 2}, \"idx_to_token\": "
                        "{\"1\": \"b\", \"2\": \"a\"}}",
         "does not match"},
    };
    for (size_t k = 0; k < CRNN_ARRAY_LEN(bad); k++) {
        path_in_tmp(path, sizeof path, bad[k].name);
        write_file(path, bad[k].text, strlen(bad[k].text));
        memset(&err, 0, sizeof err);
        int rc = vocab_read_json(&r, path, &err);
        CHECK(rc == -1);
        if (rc == 0) {
            fprintf(stderr, "  %s was accepted\n", bad[k].name);
            vocab_free(&r);
            continue;
        }
        CHECK_MSG(err, path);
        CHECK_MSG(err, bad[k].needle);
        CHECK_MSG(err, "crnn-preprocess");
    }
    path_in_tmp(path, sizeof path, "missing.json");
    CHECK(vocab_read_json(&r, path, &err) == -1);
    CHECK_MSG(err, path);
    CHECK_MSG(err, "No such file");

    /* writing into a missing folder fails cleanly */
    path_in_tmp(path, sizeof path, "nofolder/v.json");
    CHECK(vocab_from_tokens(&v, VOCAB_UTF8, TRICKY, 3, &err) == 0);
    CHECK(vocab_write_json(&v, path, &err) == -1);
    CHECK_MSG(err, "nofolder/v.json.tmp");
    vocab_free(&v);
}

/* ---------------------------------------------------------------------------------------- */

static void test_encode(void) {
    CrnnError err = {.msg = ""};
    Vocab v;
    uint32_t toks[] = {'h', 0xE9, 0x1F600, '\n'};
    CHECK(vocab_from_tokens(&v, VOCAB_UTF8, toks, 4, &err) == 0);
    int32_t *idx;
    size_t n;
    const char *text = "h\xc3\xa9\xf0\x9f\x98\x80\nh";
    CHECK(vocab_encode(&v, text, strlen(text), &idx, &n, &err) == 0);
    CHECK(n == 5 && idx[0] == 0 && idx[1] == 1 && idx[2] == 2 && idx[3] == 3 && idx[4] == 0);
    free(idx);
    CHECK(vocab_encode(&v, "", 0, &idx, &n, &err) == 0 && n == 0);
    free(idx);

    CHECK(vocab_encode(&v, "hz", 2, &idx, &n, &err) == -1 && idx == NULL);
    CHECK_MSG(err, "'z'");
    CHECK_MSG(err, "not in the vocabulary");
    CHECK(vocab_encode(&v, "h\xe2\x82\xac", 4, &idx, &n, &err) == -1);
    CHECK_MSG(err, "U+20AC");
    CHECK(vocab_encode(&v, "h\t", 2, &idx, &n, &err) == -1);
    CHECK_MSG(err, "U+0009");
    CHECK(vocab_encode(&v, "hh\xff", 3, &idx, &n, &err) == -1);
    CHECK_MSG(err, "invalid UTF-8");
    CHECK_MSG(err, "byte 2");
    vocab_free(&v);

    uint32_t btoks[] = {'a', 0xC3, 0};
    CHECK(vocab_from_tokens(&v, VOCAB_BYTES, btoks, 3, &err) == 0);
    CHECK(vocab_encode(&v, "a\xc3\0a", 4, &idx, &n, &err) == 0);
    CHECK(n == 4 && idx[0] == 0 && idx[1] == 1 && idx[2] == 2 && idx[3] == 0);
    free(idx);
    CHECK(vocab_encode(&v, "a\xa9", 2, &idx, &n, &err) == -1);
    CHECK_MSG(err, "byte 169");
    vocab_free(&v);
}

int main(void) {
    if (check_tmpdir("test_vocab")) return 2;
    test_utf8();
    test_build();
    test_json();
    test_encode();
    check_tmpdir_remove();
    return check_exit("test_vocab");
}
