/* Fuzz target: the flag and -config parser (src/base/flags.c). Input: command-line arguments
 * separated by NUL bytes; after a first "\n==\n", the text of a -config file, which is then
 * given as -config FILE. flags_parse either succeeds, with every value of its declared type and
 * choices, or fails with a message; the values then print (flags_value_text) and parse back
 * (flags_set_text) to the same values. */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>

#include "crnn/flags.h"
#include "fuzz_common.h"

#define MAX_ARGS 64

static Flag declared[] = {
    {.name = "input_h5", .type = FLAG_STRING, .def = "", .help = "a file"},
    {.name = "batch_size", .type = FLAG_INT, .def = "50", .help = "an int"},
    {.name = "model_type", .type = FLAG_STRING, .def = "lstm", .help = "a choice", .alias = "model", .choices = "lstm|gru|rnn"},
    {.name = "learning_rate", .type = FLAG_REAL, .def = "2e-3", .help = "a real"},
    {.name = "checkpoint_every", .type = FLAG_INT, .def = "1000", .help = "an alias", .alias = "eval_val_every"},
    {.name = "gpu", .type = FLAG_INT, .def = "0", .help = "may be negative", .alias = "gpuid"},
    {.name = "start_text", .type = FLAG_STRING, .def = "", .help = "any text", .alias = "primetext"},
    {.name = "checkpoint", .type = FLAG_STRING, .def = "", .help = "the positional one"},
    {.name = "quiet", .type = FLAG_SWITCH, .def = "0", .help = "a switch"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet_stdout = 0;
    if (!quiet_stdout) { /* the parser prints nothing; if it ever did, not into the log */
        quiet_stdout = 1;
        if (!freopen("/dev/null", "w", stdout)) abort();
    }
    char *text = malloc(size + 1);
    FUZZ_ASSERT(text, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    size_t args_len = size;
    char *sep = memmem(text, size, "\n==\n", 4);
    char *argv[MAX_ARGS + 3];
    int argc = 0;
    argv[argc++] = "crnn-fuzz";
    if (sep) {
        args_len = (size_t)(sep - text);
        const char *cfg = fuzz_write_file("flags.conf", (const uint8_t *)sep + 4,
                                          size - args_len - 4);
        argv[argc++] = "-config";
        argv[argc++] = (char *)cfg;
    }
    for (size_t p = 0; p < args_len && argc < MAX_ARGS;) {
        argv[argc++] = text + p;
        p += strnlen(text + p, args_len - p) + 1;
        if (p <= args_len) text[p - 1] = '\0';
    }
    if (sep) *sep = '\0';

    FlagSet set = {.program = "crnn-fuzz", .summary = "flags", .flags = declared,
                   .count = (int)CRNN_ARRAY_LEN(declared), .positional = "checkpoint",
                   .has_config = 1};
    CrnnError err = {.msg = ""};
    int rc = flags_parse(&set, argc, argv, &err);
    FUZZ_ASSERT(rc == FLAGS_OK || rc == FLAGS_HELP || rc == FLAGS_VERSION || (rc == -1 && err.msg[0]),
                "rc %d", rc);
    if (rc == FLAGS_OK) {
        const char *mt = flags_str(&set, "model_type");
        FUZZ_ASSERT(mt && (!strcmp(mt, "lstm") || !strcmp(mt, "gru") || !strcmp(mt, "rnn")),
                    "model_type '%s'", mt ? mt : "(null)");
        FUZZ_ASSERT(flags_str(&set, "input_h5") && flags_str(&set, "checkpoint"), "strings");
        /* every value prints and reads back to itself */
        for (int k = 0; k < set.count; k++) {
            Flag *f = &set.flags[k];
            if (f->type == FLAG_SWITCH) continue;
            char value[8192];
            flags_value_text(f, value, sizeof value);
            int64_t i = f->i;
            double d = f->d;
            char *s = f->s ? strdup(f->s) : NULL;
            CrnnError e2;
            if (f->type != FLAG_STRING || strlen(s) < sizeof value - 1) {
                FUZZ_ASSERT(flags_set_text(&set, f->name, value, &e2) == 0, "-%s '%s': %s",
                            f->name, value, e2.msg);
                FUZZ_ASSERT(f->type != FLAG_INT || f->i == i, "-%s", f->name);
                FUZZ_ASSERT(f->type != FLAG_REAL || f->d == d, "-%s", f->name);
                FUZZ_ASSERT(f->type != FLAG_STRING || strcmp(f->s, s) == 0, "-%s", f->name);
            }
            free(s);
        }
    }
    flags_free(&set);
    free(text);
    return 0;
}
