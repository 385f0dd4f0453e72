/* crnn-sample: text from a checkpoint, streamed as it is made. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crnn/checkpoint.h"
#include "crnn/flags.h"
#include "crnn/model.h"
#include "crnn/runtime.h"
#include "crnn/sampler.h"
#include "program.h"

static Flag sample_flags[] = {
    {.name = "checkpoint", .type = FLAG_STRING, .def = "", .help = "the checkpoint (.h5) to sample from; may also be given as the first argument"},
    {.name = "length", .type = FLAG_INT, .def = "2000", .help = "new characters to write after the start text"},
    {.name = "start_text", .type = FLAG_STRING, .def = "", .help = "text to start from, printed first", .alias = "primetext"},
    {.name = "start_text_file", .type = FLAG_STRING, .def = "", .help = "the start text from this file (all of it, as -start_text would take it)"},
    {.name = "sample", .type = FLAG_INT, .def = "1", .help = "1: draw from the distribution; 0: always the most likely character"},
    {.name = "temperature", .type = FLAG_REAL, .def = "1", .help = "above 0: lower is more conservative, higher more surprising"},
    {.name = "top_k", .type = FLAG_INT, .def = "0", .help = "draw only among the k most likely characters (0: all)"},
    {.name = "num_samples", .type = FLAG_INT, .def = "1", .help = "independent samples drawn together (one pass over the weights per step), printed one after another"},
    {.name = "seed", .type = FLAG_INT, .def = "123", .help = "seed of the random draws"},
    CRNN_DEVICE_FLAGS,
    {.name = "verbose", .type = FLAG_INT, .def = "0", .help = "1: describe the checkpoint on stderr first"},
};

/* The whole of -start_text_file, NUL-terminated (it may hold NULs of its own: *len counts them). */
static char *read_start_text(const char *path, size_t *len, CrnnError *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        crnn_fail(err, "cannot read the start text %s: %s; check the path given to -start_text_file", path,
                  strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *text = malloc(cap);
    while (text) {
        n += fread(text + n, 1, cap - 1 - n, fp);
        if (n < cap - 1) break; /* end of file or an error */
        char *grown = realloc(text, cap * 2);
        if (!grown) {
            free(text);
            text = NULL;
            break;
        }
        text = grown;
        cap *= 2;
    }
    int failed = !text || ferror(fp);
    int saved = errno;
    fclose(fp);
    if (failed) {
        if (text)
            crnn_fail(err, "cannot read the start text %s: %s; check the file given to -start_text_file", path,
                      strerror(saved));
        else
            crnn_fail(err, "out of memory reading the start text %s", path);
        free(text);
        return NULL;
    }
    text[n] = '\0';
    *len = n;
    return text;
}

/* Checks the flags: a checkpoint, one start text, and the sampling options o in range. */
static int check_options(FlagSet *flags, const char *path, const char *start_file, const SampleOptions *o,
                         CrnnError *err) {
    if (!*path)
        return crnn_fail_usage(err, "give the checkpoint to sample from: -checkpoint cv/checkpoint_N.h5");
    if (*start_file && flags_given(flags, "start_text"))
        return crnn_fail_usage(err, "give the start text once: -start_text TEXT or -start_text_file FILE, not both");
    if (o->length < 0)
        return crnn_fail_usage(err, "-length must be 0 or more, got %lld", (long long)o->length);
    if (o->sample != 0 && o->sample != 1)
        return crnn_fail_usage(err, "-sample must be 0 (most likely character) or 1 (draw), got %d", o->sample);
    if (!(o->temperature > 0))
        return crnn_fail_usage(err, "-temperature must be above 0, got %g; for the most likely character every time use -sample 0",
                               o->temperature);
    if (o->top_k < 0)
        return crnn_fail_usage(err, "-top_k must be 0 (off) or more, got %d", o->top_k);
    if (flags_int(flags, "num_samples") < 1 || flags_int(flags, "num_samples") > 100000)
        return crnn_fail_usage(err, "-num_samples must be between 1 and 100000, got %lld", (long long)flags_int(flags, "num_samples"));
    if (flags_int(flags, "seed") < 0)
        return crnn_fail_usage(err, "-seed must be 0 or more");
    return 0;
}

/* Reads -start_text_file into *text (freed by the caller) as o's start text. */
static int read_start_file(const char *start_file, SampleOptions *o, char **text, CrnnError *err) {
    size_t len = 0;
    *text = read_start_text(start_file, &len, err);
    if (!*text) return -1;
    o->start_text = *text;
    o->start_len = len;
    o->start_text_source = start_file;
    return 0;
}

int main(int argc, char **argv) {
    FlagSet flags = {.program = "crnn-sample",
                     .summary = "Writes text from a checkpoint of crnn-train.",
                     .flags = sample_flags,
                     .count = (int)(sizeof sample_flags / sizeof sample_flags[0]),
                     .positional = "checkpoint",
                     .has_config = 1};
    int status;
    if (!program_start(&flags, argc, argv, &status)) return status;
    CrnnError err = {.msg = ""};
    int rc = 1;
    Checkpoint ck = {0};
    Backend *be = NULL;
    Model model = {0};
    char *start_file_text = NULL;
    const char *start_file = flags_str(&flags, "start_text_file");
    SampleOptions o = {.length = flags_int(&flags, "length"),
                       .start_text = flags_str(&flags, "start_text"),
                       .sample = (int)flags_int(&flags, "sample"),
                       .temperature = flags_real(&flags, "temperature"),
                       .top_k = (int)flags_int(&flags, "top_k"),
                       .num_samples = (int)flags_int(&flags, "num_samples"),
                       .seed = (uint64_t)flags_int(&flags, "seed")};
    const char *path = flags_str(&flags, "checkpoint");
    if (check_options(&flags, path, start_file, &o, &err)) goto fail;
    if (*start_file && read_start_file(start_file, &o, &start_file_text, &err)) goto fail;
    if (checkpoint_read(path, &ck, 0, &err)) goto fail;
    if (flags_int(&flags, "verbose"))
        fprintf(stderr, "%s: %s %d x %d, vocabulary %d (%s), iteration %lld\n", path, ck.model.model_type,
                ck.model.L, ck.model.H, ck.vocab.size, ck.vocab.encoding == VOCAB_BYTES ? "bytes" : "utf-8",
                (long long)ck.iteration);
    char notice[CRNN_ERROR_MAX];
    be = runtime_backend(flags_int(&flags, "gpu"), flags_str(&flags, "gpu_backend"), 0, 1, notice, sizeof notice,
                         &err);
    if (be && notice[0]) fprintf(stderr, "%s: %s\n", flags.program, notice);
    if (!be) goto fail;
    if (model_create(&model, &ck.model, be, o.num_samples, 64, &err)) goto fail;
    model_set_params(&model, ck.params);
    if (sampler_run(&model, &ck.vocab, &o, stdout, &err) || backend_check(be, &err)) goto fail;
    rc = 0;
fail:
    if (rc) {
        program_error(flags.program, &err);
        rc = crnn_exit_status(&err);
    }
    free(start_file_text);
    model_destroy(&model);
    backend_destroy(be);
    checkpoint_free(&ck);
    flags_free(&flags);
    return rc;
}
