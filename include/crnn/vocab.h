/* Tokens <-> indices: torch-rnn's vocabulary. A token is a Unicode code point (utf-8
 * encoding) or a byte (bytes encoding); indices are 1-based in the JSON file and 0-based in
 * memory. The JSON file is torch-rnn's {"token_to_idx": ..., "idx_to_token": ...}; in bytes
 * mode a byte >= 128 is written as the token "[b]" (e.g. "[195]"). */
#ifndef CRNN_VOCAB_H
#define CRNN_VOCAB_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "crnn/common.h"

typedef enum { VOCAB_UTF8 = 0, VOCAB_BYTES = 1 } VocabEncoding;

typedef struct Vocab {
    VocabEncoding encoding;
    int size;           /* V */
    uint32_t *tokens;   /* [V]: token i (0-based) as a code point (utf-8) or byte value (bytes) */
    int32_t *lookup;    /* code point/byte -> 0-based index or -1; [lookup_len] */
    uint32_t lookup_len;
} Vocab;

/* Builds from tokens in index order (tokens[0] has index 1 in the JSON). */
int vocab_from_tokens(Vocab *v, VocabEncoding enc, const uint32_t *tokens, int n, CrnnError *err);
/* Reads torch-rnn's JSON. The encoding is bytes when a token has the "[b]" form, else utf-8.
 * Errors name the file: unreadable, not JSON, missing keys, indices not 1..V, duplicates. */
int vocab_read_json(Vocab *v, const char *path, CrnnError *err);
/* Writes the JSON as torch-rnn's preprocess.py does (json.dump, ASCII-escaped), atomically. */
int vocab_write_json(const Vocab *v, const char *path, CrnnError *err);
/* Writes the same JSON to a stream (an AtomicFile's, for callers that commit several files
 * together: crnn-preprocess); 0, or -1 when the stream reports an error. */
int vocab_write_json_stream(const Vocab *v, FILE *fp);
void vocab_free(Vocab *v);

/* 0-based index of a code point/byte, or -1. */
static inline int vocab_index(const Vocab *v, uint32_t token) {
    return token < v->lookup_len ? v->lookup[token] : -1;
}
/* The bytes that print token i: its UTF-8 encoding (utf-8) or the byte itself (bytes).
 * Returns the byte count (1..4). */
int vocab_token_bytes(const Vocab *v, int index, char out[4]);
/* The token's text as stored in JSON and in checkpoints: the character itself, or "[b]" for a
 * byte >= 128 in bytes mode, and "[0]" for a NUL (checkpoints cannot hold NUL in strings). */
void vocab_token_name(const Vocab *v, int index, char out[16]);
/* A token for messages: 'a', 'é' (U+00E9), U+000A, byte 195 (0xC3). */
void vocab_describe_token(VocabEncoding enc, uint32_t token, char *out, size_t cap);
/* Parses a token name as vocab_token_name writes it (for reading checkpoints). */
int vocab_parse_token_name(VocabEncoding enc, const char *name, uint32_t *token);
/* Encodes text (UTF-8 decoded in utf-8 mode, byte by byte in bytes mode) to 0-based indices.
 * A character outside the vocabulary or invalid UTF-8 is an error naming it and its byte offset
 * (a usage error: the text is the user's). *out is malloc'd. */
int vocab_encode(const Vocab *v, const char *text, size_t len, int32_t **out, size_t *n,
                 CrnnError *err);
/* 1 when both have the same encoding and the same tokens in the same order. */
int vocab_equal(const Vocab *a, const Vocab *b);

/* Strict UTF-8 decoding of one code point at s[0..len): returns bytes consumed (1..4) and sets
 * *cp, or 0 for invalid UTF-8 (overlong forms, surrogates, > U+10FFFF, truncated). */
int utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);
/* Encodes cp; returns 1..4. */
int utf8_encode(uint32_t cp, char out[4]);

#endif
