/* Tokens <-> indices and torch-rnn's vocabulary JSON file (see include/crnn/vocab.h).
 *
 * Reading uses jansson. Jansson refuses a NUL byte inside an object key, and torch-rnn writes a
 * NUL token as the key "\u0000", so before parsing every JSON string that is exactly "\u0000"
 * becomes "[0]", the name vocab_parse_token_name reads as NUL. Writing is done by hand, to get
 * the bytes Python's json.dump writes (", " and ": " separators, lowercase \uXXXX escapes,
 * surrogate pairs above U+FFFF, keys in index order). */
#include "crnn/vocab.h"
#include "crnn/atomic_file.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VOCAB_JSON_MAX_BYTES (256u << 20) /* a full Unicode vocabulary is ~40 MB */
#define JSON_HINT "give the JSON written by crnn-preprocess with the same .h5"

/* ---------------------------------------------------------------------------------------- */
/* UTF-8 */

int utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
    if (len == 0) return 0;
    unsigned b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    int need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    uint32_t c;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
        c = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        c = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;      /* overlong */
        else if (b0 == 0xED) hi = 0x9F; /* surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        c = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;      /* overlong */
        else if (b0 == 0xF4) hi = 0x8F; /* > U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1 (overlong) or F5..FF */
    }
    if (len < (size_t)need + 1) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    c = (c << 6) | (s[1] & 0x3F);
    for (int k = 2; k <= need; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[k] & 0x3F);
    }
    *cp = c;
    return need + 1;
}

int utf8_encode(uint32_t cp, char out[4]) {
    if (cp > 0x10FFFF) cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A token for messages: 'a', 'é' (U+00E9), U+000A, byte 195 (0xC3). */
static void describe_token(VocabEncoding enc, uint32_t t, char *out, size_t cap) {
    if (t >= 0x20 && t < 0x7F && t != '\'') {
        snprintf(out, cap, "'%c'", (char)t);
    } else if (enc == VOCAB_BYTES) {
        snprintf(out, cap, "byte %" PRIu32 " (0x%02" PRIX32 ")", t, t);
    } else if (t >= 0xA0 && !(t >= 0xD800 && t <= 0xDFFF) && t <= 0x10FFFF) {
        char b[5] = {0};
        b[utf8_encode(t, b)] = '\0';
        snprintf(out, cap, "'%s' (U+%04" PRIX32 ")", b, t);
    } else {
        snprintf(out, cap, "U+%04" PRIX32, t);
    }
}

void vocab_describe_token(VocabEncoding enc, uint32_t token, char *out, size_t cap) {
    describe_token(enc, token, out, cap);
}

/* ---------------------------------------------------------------------------------------- */
/* Building */

int vocab_from_tokens(Vocab *v, VocabEncoding enc, const uint32_t *tokens, int n,
                      CrnnError *err) {
    memset(v, 0, sizeof *v);
    if (n < 1) return crnn_fail_corrupt(err, "empty vocabulary (no tokens)");
    uint32_t limit = enc == VOCAB_BYTES ? 0xFF : 0x10FFFF;
    uint32_t max = 0;
    for (int i = 0; i < n; i++) {
        uint32_t t = tokens[i];
        if (t > limit || (enc == VOCAB_UTF8 && t >= 0xD800 && t <= 0xDFFF))
            return crnn_fail_corrupt(err, "token %d (%" PRIu32 ") is not a %s", i + 1, t,
                             enc == VOCAB_BYTES ? "byte (0..255)" : "Unicode scalar value");
        if (t > max) max = t;
    }
    v->encoding = enc;
    v->size = n;
    v->lookup_len = max + 1;
    v->tokens = crnn_malloc((size_t)n * sizeof *v->tokens, err);
    v->lookup = crnn_malloc((size_t)v->lookup_len * sizeof *v->lookup, err);
    if (!v->tokens || !v->lookup) {
        vocab_free(v);
        return -1;
    }
    memcpy(v->tokens, tokens, (size_t)n * sizeof *tokens);
    memset(v->lookup, 0xFF, (size_t)v->lookup_len * sizeof *v->lookup); /* all -1 */
    for (int i = 0; i < n; i++) {
        if (v->lookup[tokens[i]] >= 0) {
            char d[48];
            describe_token(enc, tokens[i], d, sizeof d);
            int first = v->lookup[tokens[i]] + 1;
            vocab_free(v);
            return crnn_fail_corrupt(err, "token %s appears twice in the vocabulary (indices %d and %d)",
                             d, first, i + 1);
        }
        v->lookup[tokens[i]] = i;
    }
    return 0;
}

void vocab_free(Vocab *v) {
    if (!v) return;
    free(v->tokens);
    free(v->lookup);
    memset(v, 0, sizeof *v);
}

int vocab_equal(const Vocab *a, const Vocab *b) {
    if (a->encoding != b->encoding || a->size != b->size) return 0;
    return a->size == 0 || memcmp(a->tokens, b->tokens, (size_t)a->size * sizeof *a->tokens) == 0;
}

int vocab_token_bytes(const Vocab *v, int index, char out[4]) {
    uint32_t t = v->tokens[index];
    if (v->encoding == VOCAB_BYTES) {
        out[0] = (char)(unsigned char)t;
        return 1;
    }
    return utf8_encode(t, out);
}

void vocab_token_name(const Vocab *v, int index, char out[16]) {
    uint32_t t = v->tokens[index];
    if (t == 0 || (v->encoding == VOCAB_BYTES && t >= 128)) {
        snprintf(out, 16, "[%" PRIu32 "]", t);
        return;
    }
    int n = v->encoding == VOCAB_BYTES ? (out[0] = (char)t, 1) : utf8_encode(t, out);
    out[n] = '\0';
}

/* "[b]" with b a decimal 0..255 written without leading zeros: sets *b and returns 1. */
static int bracket_byte(const char *name, size_t len, uint32_t *b) {
    if (len < 3 || len > 5 || name[0] != '[' || name[len - 1] != ']') return 0;
    uint32_t x = 0;
    for (size_t k = 1; k + 1 < len; k++) {
        if (name[k] < '0' || name[k] > '9') return 0;
        x = x * 10 + (uint32_t)(name[k] - '0');
    }
    if (len > 3 && name[1] == '0') return 0;
    if (x > 255) return 0;
    *b = x;
    return 1;
}

static int parse_name_len(VocabEncoding enc, const char *name, size_t len, uint32_t *token) {
    uint32_t b;
    if (bracket_byte(name, len, &b)) {
        if (enc == VOCAB_BYTES || b == 0) {
            *token = b;
            return 0;
        }
        return -1;
    }
    if (enc == VOCAB_BYTES) {
        if (len == 1 && (unsigned char)name[0] < 128) {
            *token = (unsigned char)name[0];
            return 0;
        }
        return -1;
    }
    uint32_t cp;
    int used = utf8_decode((const unsigned char *)name, len, &cp);
    if (used == 0 || (size_t)used != len) return -1;
    *token = cp;
    return 0;
}

int vocab_parse_token_name(VocabEncoding enc, const char *name, uint32_t *token) {
    size_t len = strlen(name);
    if (len == 0) { /* a C string cannot hold the NUL character itself */
        return -1;
    }
    return parse_name_len(enc, name, len, token);
}

/* ---------------------------------------------------------------------------------------- */
/* Encoding text */

int vocab_encode(const Vocab *v, const char *text, size_t len, int32_t **out, size_t *n,
                 CrnnError *err) {
    *out = NULL;
    *n = 0;
    int32_t *idx = crnn_malloc((len ? len : 1) * sizeof *idx, err);
    if (!idx) return -1;
    const unsigned char *s = (const unsigned char *)text;
    size_t count = 0, pos = 0;
    while (pos < len) {
        uint32_t t;
        int used;
        if (v->encoding == VOCAB_BYTES) {
            t = s[pos];
            used = 1;
        } else {
            used = utf8_decode(s + pos, len - pos, &t);
            if (used == 0) {
                free(idx);
                return crnn_fail_usage(err,
                                 "invalid UTF-8 at byte %zu of the text (byte 0x%02X); the "
                                 "vocabulary is utf-8, so the text must be UTF-8",
                                 pos, s[pos]);
            }
        }
        int i = vocab_index(v, t);
        if (i < 0) {
            char d[48];
            describe_token(v->encoding, t, d, sizeof d);
            free(idx);
            return crnn_fail_usage(err,
                             "the character %s at byte %zu of the text is not in the "
                             "vocabulary; use only characters of the training text",
                             d, pos);
        }
        idx[count++] = i;
        pos += (size_t)used;
    }
    *out = idx;
    *n = count;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading JSON */

/* Reads the whole file; *len bytes, NUL-terminated. */
static char *read_small_file(const char *path, size_t *len, CrnnError *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        crnn_fail_io(err, "cannot read the vocabulary file %s: %s; check the path (" JSON_HINT ")",
                  path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = crnn_malloc(cap + 1, err);
    while (buf) {
        if (n == cap) {
            if (cap >= VOCAB_JSON_MAX_BYTES) {
                crnn_fail_corrupt(err, "%s: too large for a vocabulary file (over %u MB); " JSON_HINT,
                          path, VOCAB_JSON_MAX_BYTES >> 20);
                free(buf);
                buf = NULL;
                break;
            }
            char *bigger = realloc(buf, 2 * cap + 1);
            if (!bigger) {
                crnn_fail_nomem(err, "%s: out of memory reading the vocabulary", path);
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) {
            if (ferror(fp)) {
                crnn_fail_io(err, "cannot read the vocabulary file %s: %s", path, strerror(errno));
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    fclose(fp);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/* Replaces, in place, every JSON string that is exactly "\u0000" with "[0]" (the text only
 * shrinks). Strings are tracked so that a quote inside a string is never taken for one. */
static size_t rename_nul_strings(char *s, size_t len) {
    size_t r = 0, w = 0;
    int in_string = 0;
    while (r < len) {
        char c = s[r];
        if (!in_string) {
            if (c == '"') {
                if (r + 8 <= len && memcmp(s + r, "\"\\u0000\"", 8) == 0) {
                    memcpy(s + w, "\"[0]\"", 5);
                    w += 5;
                    r += 8;
                    continue;
                }
                in_string = 1;
            }
            s[w++] = s[r++];
        } else {
            if (c == '\\' && r + 1 < len) {
                s[w++] = s[r++];
            } else if (c == '"') {
                in_string = 0;
            }
            s[w++] = s[r++];
        }
    }
    s[w] = '\0';
    return w;
}

static int parse_index_key(const char *key, int V, int *idx) {
    if (!*key || *key == '0' || strlen(key) > 9) return 0;
    long x = 0;
    for (const char *p = key; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        x = x * 10 + (*p - '0');
    }
    if (x < 1 || x > V) return 0;
    *idx = (int)x;
    return 1;
}

/* Shows a JSON key in a message (shortened, control characters as '?'). */
static void show_key(const char *key, size_t keylen, char *out, size_t cap) {
    size_t n = keylen < cap - 4 ? keylen : cap - 4;
    for (size_t k = 0; k < n; k++) out[k] = (unsigned char)key[k] < 0x20 ? '?' : key[k];
    if (n < keylen) memcpy(out + n, "...", 3), n += 3;
    out[n] = '\0';
}

/* Reads path and parses it as JSON; NULL after an error. */
static json_t *load_json(const char *path, CrnnError *err) {
    size_t len;
    char *text = read_small_file(path, &len, err);
    if (!text) return NULL;
    len = rename_nul_strings(text, len);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root)
        crnn_fail_corrupt(err, "%s: not a valid JSON file (line %d: %s); " JSON_HINT, path,
                         jerr.line, jerr.text);
    return root;
}

/* Finds root's token_to_idx (*t2i) and checks its number of entries (*V). */
static int find_token_to_idx(const char *path, json_t *root, json_t **t2i, int *V, CrnnError *err) {
    *t2i = json_is_object(root) ? json_object_get(root, "token_to_idx") : NULL;
    if (!json_is_object(*t2i))
        return crnn_fail_corrupt(err, "%s: not a vocabulary file (no token_to_idx); " JSON_HINT, path);
    size_t size = json_object_size(*t2i);
    if (size == 0)
        return crnn_fail_corrupt(err, "%s: the vocabulary is empty (token_to_idx has no entries); " JSON_HINT,
                  path);
    if (size > 0x110000)
        return crnn_fail_corrupt(err, "%s: token_to_idx has %zu entries, more than there are characters; " JSON_HINT,
                  path, size);
    *V = (int)size;
    return 0;
}

/* The encoding: bytes when some token is written "[b]" with b >= 128. */
static VocabEncoding token_to_idx_encoding(json_t *t2i) {
    VocabEncoding enc = VOCAB_UTF8;
    const char *key;
    json_t *val;
    json_object_foreach(t2i, key, val) {
        uint32_t b;
        if (bracket_byte(key, strlen(key), &b) && b >= 128) enc = VOCAB_BYTES;
    }
    return enc;
}

/* Reads token_to_idx's V entries into tokens [V], in the order of their indices, each index once. */
static int read_token_to_idx(const char *path, json_t *t2i, int V, VocabEncoding enc, uint32_t *tokens,
                             CrnnError *err) {
    uint8_t *seen = crnn_calloc((size_t)V, 1, err);
    if (!seen) return -1;
    int rc = -1;
    const char *key;
    json_t *val;
    json_object_foreach(t2i, key, val) {
        char shown[64];
        show_key(key, strlen(key), shown, sizeof shown);
        json_int_t idx = json_is_integer(val) ? json_integer_value(val) : 0;
        if (idx < 1 || idx > V) {
            crnn_fail_corrupt(err, "%s: token_to_idx[\"%s\"] is not an index in 1..%d; " JSON_HINT, path,
                      shown, V);
            goto done;
        }
        uint32_t t;
        if (parse_name_len(enc, key, strlen(key), &t)) {
            crnn_fail_corrupt(err,
                      "%s: the token \"%s\" of token_to_idx is not %s; " JSON_HINT, path, shown,
                      enc == VOCAB_BYTES ? "one ASCII character or a byte written [b] (the "
                                           "vocabulary is bytes)"
                                         : "one character");
            goto done;
        }
        if (seen[idx - 1]) {
            crnn_fail_corrupt(err, "%s: index %" JSON_INTEGER_FORMAT " appears twice in token_to_idx; " JSON_HINT,
                      path, idx);
            goto done;
        }
        seen[idx - 1] = 1;
        tokens[idx - 1] = t;
    }
    rc = 0;
done:
    free(seen);
    return rc;
}

/* Checks root's idx_to_token, when there is one, against tokens [V] read from token_to_idx. */
static int check_idx_to_token(const char *path, json_t *root, int V, VocabEncoding enc,
                              const uint32_t *tokens, CrnnError *err) {
    json_t *i2t = json_object_get(root, "idx_to_token");
    if (!i2t) return 0;
    if (!json_is_object(i2t) || json_object_size(i2t) != (size_t)V)
        return crnn_fail_corrupt(err, "%s: idx_to_token does not have the %d entries of token_to_idx; " JSON_HINT,
                  path, V);
    const char *key;
    json_t *val;
    json_object_foreach(i2t, key, val) {
        char shown[64];
        show_key(key, strlen(key), shown, sizeof shown);
        int idx;
        if (!parse_index_key(key, V, &idx))
            return crnn_fail_corrupt(err, "%s: idx_to_token has the key \"%s\", not an index in 1..%d; " JSON_HINT,
                      path, shown, V);
        uint32_t t;
        if (!json_is_string(val) ||
            parse_name_len(enc, json_string_value(val), json_string_length(val), &t) ||
            t != tokens[idx - 1])
            return crnn_fail_corrupt(err, "%s: idx_to_token[\"%d\"] does not match token_to_idx; " JSON_HINT,
                      path, idx);
    }
    return 0;
}

int vocab_read_json(Vocab *v, const char *path, CrnnError *err) {
    memset(v, 0, sizeof *v);
    json_t *root = load_json(path, err);
    if (!root) return -1;

    int rc = -1;
    uint32_t *tokens = NULL;
    json_t *t2i = NULL;
    int V = 0;
    if (find_token_to_idx(path, root, &t2i, &V, err)) goto done;
    VocabEncoding enc = token_to_idx_encoding(t2i);

    tokens = crnn_malloc((size_t)V * sizeof *tokens, err);
    if (!tokens) goto done;
    if (read_token_to_idx(path, t2i, V, enc, tokens, err)) goto done;
    if (check_idx_to_token(path, root, V, enc, tokens, err)) goto done;
    CrnnError inner;
    if (vocab_from_tokens(v, enc, tokens, V, &inner)) {
        crnn_fail_kind(err, crnn_error_kind(&inner), "%s: %s; " JSON_HINT, path, inner.msg);
        goto done;
    }
    rc = 0;
done:
    free(tokens);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Writing JSON */

static void put_u16_escape(FILE *fp, uint32_t u) { fprintf(fp, "\\u%04" PRIx32, u); }

/* The token as a JSON string, escaped as Python's json.dump(ensure_ascii=True) does. */
static void put_token_string(FILE *fp, VocabEncoding enc, uint32_t t) {
    putc('"', fp);
    if (enc == VOCAB_BYTES && t >= 128) {
        fprintf(fp, "[%" PRIu32 "]", t);
    } else if (t == '"') {
        fputs("\\\"", fp);
    } else if (t == '\\') {
        fputs("\\\\", fp);
    } else if (t == '\n') {
        fputs("\\n", fp);
    } else if (t == '\r') {
        fputs("\\r", fp);
    } else if (t == '\t') {
        fputs("\\t", fp);
    } else if (t == '\b') {
        fputs("\\b", fp);
    } else if (t == '\f') {
        fputs("\\f", fp);
    } else if (t >= 0x20 && t <= 0x7E) {
        putc((int)t, fp);
    } else if (t < 0x10000) {
        put_u16_escape(fp, t);
    } else {
        uint32_t u = t - 0x10000;
        put_u16_escape(fp, 0xD800 | (u >> 10));
        put_u16_escape(fp, 0xDC00 | (u & 0x3FF));
    }
    putc('"', fp);
}

int vocab_write_json_stream(const Vocab *v, FILE *fp) {
    fputs("{\"token_to_idx\": {", fp);
    for (int i = 0; i < v->size; i++) {
        if (i) fputs(", ", fp);
        put_token_string(fp, v->encoding, v->tokens[i]);
        fprintf(fp, ": %d", i + 1);
    }
    fputs("}, \"idx_to_token\": {", fp);
    for (int i = 0; i < v->size; i++) {
        if (i) fputs(", ", fp);
        fprintf(fp, "\"%d\": ", i + 1);
        put_token_string(fp, v->encoding, v->tokens[i]);
    }
    fputs("}}", fp);
    return ferror(fp) ? -1 : 0;
}

int vocab_write_json(const Vocab *v, const char *path, CrnnError *err) {
    AtomicFile af;
    FILE *fp = atomic_file_open(&af, path, err);
    if (!fp) return -1;
    if (vocab_write_json_stream(v, fp) != 0) {
        crnn_fail_io(err, "cannot write %s: %s; check the free space of its disk", af.tmp, strerror(errno));
        atomic_file_abandon(&af);
        return -1;
    }
    return atomic_file_commit(&af, err);
}
