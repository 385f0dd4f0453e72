/* Generation from a trained model: feed the start text, then draw one character at a time,
 * writing each as soon as it is made. */
#ifndef CRNN_SAMPLER_H
#define CRNN_SAMPLER_H

#include <stdint.h>
#include <stdio.h>

#include "crnn/model.h"
#include "crnn/vocab.h"

typedef struct SampleOptions {
    int64_t length;         /* new characters to write */
    const char *start_text; /* UTF-8 (utf-8 vocabularies) or raw bytes (bytes vocabularies) */
    size_t start_len;       /* its length in bytes (it may hold NULs), or 0: strlen(start_text) */
    const char *start_text_source; /* the file it was read from, for messages, or NULL */
    int sample;             /* 1: draw from the distribution; 0: argmax */
    double temperature;     /* > 0: logits are divided by it */
    int top_k;              /* > 0: draw among the k most likely only */
    int num_samples;        /* samples drawn together, one stream each (>= 1) */
    uint64_t seed;
    uint32_t purpose;       /* the generator's purpose (rng.h); 0: RNG_SAMPLE, crnn-sample's */
    uint32_t position;      /* the key's position word, telling apart the samples of one seed
                               (crnn-train's: the iteration); 0 for crnn-sample */
} SampleOptions;

/* The model must have been created with max_B >= num_samples. Writes the start text then
 * `length` characters to out, flushing after each, and a newline. An empty start text: the
 * first character is drawn uniformly from the vocabulary and counts toward length. With several
 * samples, one pass over the weights per step serves all of them: the first is written as it is
 * made, the others after it, each followed by a blank line. */
int sampler_run(Model *m, const Vocab *v, const SampleOptions *o, FILE *out, CrnnError *err);

#endif
