/* Text -> torch-rnn's data files (docs/FORMATS.md section 1): the HDF5 file with /train, /val,
 * /test and the vocabulary JSON, exactly as torch-rnn's scripts/preprocess.py writes them.
 *
 * Streams: two passes over the input with a fixed read buffer (pass 1 counts tokens and
 * builds the vocabulary in order of first appearance, pass 2 writes the splits in chunks), so
 * memory stays at a few tens of MB whatever the input size. An input that cannot be read twice
 * (standard input, given as "-", when it is a pipe; a named pipe) is first copied to an unnamed
 * temporary file in $TMPDIR, or without TMPDIR in the folder of the output .h5. With an existing
 * vocabulary (input_json) pass 1 checks that every token is in it. Both outputs are written to
 * "<name>.tmp" and renamed into place only when both are complete; on error the temporary
 * files are removed and existing outputs are never touched. Used by crnn-preprocess and by
 * crnn-train's -data_dir. */
#ifndef CRNN_PREPROCESS_H
#define CRNN_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "crnn/common.h"
#include "crnn/vocab.h"

typedef struct PreprocessOptions {
    const char *input_txt;   /* the text; "-" is standard input */
    const char *output_h5;   /* the splits */
    const char *output_json; /* the vocabulary; with input_json, a copy of it ("" or the same file:
                                none is written) */
    const char *input_json;  /* NULL or "": make the vocabulary; else encode with this one (the
                                data of a checkpoint, so that it can go on training or evaluate) */
    double val_frac;         /* in [0, 1); val = floor(val_frac * N) */
    double test_frac;        /* in [0, 1); test = floor(test_frac * N); val_frac + test_frac < 1 */
    VocabEncoding encoding;  /* tokens are code points (utf-8) or bytes */
    int encoding_given;      /* the user chose encoding: with input_json it must agree with the
                                vocabulary's (an all-ASCII vocabulary fits either) */
} PreprocessOptions;

typedef struct PreprocessSummary {
    int vocab_size;                 /* V */
    int64_t total;                  /* N, tokens in the file */
    int64_t train_size, val_size, test_size;
    int elem_size;                  /* 1 (uint8, V <= 255) or 4 (uint32) */
} PreprocessSummary;

/* torch-rnn's defaults: val_frac 0.1, test_frac 0.1, utf-8; paths NULL. */
void preprocess_default_options(PreprocessOptions *opt);

/* Checks the options alone (fractions, distinct paths) without touching any file; its errors
 * are usage errors (CRNN_EXIT_USAGE). */
int preprocess_check_options(const PreprocessOptions *opt, CrnnError *err);

/* Reads opt->input_txt and writes opt->output_h5 and opt->output_json. summary may be NULL.
 * Errors name the file and what to do: a missing or empty input, fewer than 2 tokens, invalid
 * UTF-8 in utf-8 mode (with its byte offset), characters outside opt->input_json's vocabulary
 * (each with the byte offset of its first appearance), an output folder that is missing or not
 * writable, a failed write. Nothing is written on error. */
int preprocess_run(const PreprocessOptions *opt, PreprocessSummary *summary, CrnnError *err);

/* torch-rnn's summary lines ("Total vocabulary size: 65\n..."), as its script prints them. */
void preprocess_summary_text(const PreprocessSummary *s, char *out, size_t cap);

/* 1 when either output is missing or older than the input (char-rnn's rule for -data_dir),
 * 0 when both are up to date, -1 with err when the input cannot be read. */
int preprocess_needs_update(const char *input_txt, const char *output_h5,
                            const char *output_json, CrnnError *err);

#endif
