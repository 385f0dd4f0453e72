/* Unit tests of src/base/flags.c: the edit distance and the flag it suggests for a typo, the hints for
 * char-rnn's and torch-rnn's flags, switches with and without 0/1, -config lines, and that every
 * error of the flags is a usage error (exit status 2). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "crnn/flags.h"

static Flag declared[] = {
    {.name = "rnn_size", .type = FLAG_INT, .def = "128", .help = "an int"},
    {.name = "num_layers", .type = FLAG_INT, .def = "2", .help = "an int"},
    {.name = "learning_rate", .type = FLAG_REAL, .def = "2e-3", .help = "a real"},
    {.name = "checkpoint_every", .type = FLAG_INT, .def = "1000", .help = "an alias", .alias = "eval_val_every"},
    {.name = "model_type", .type = FLAG_STRING, .def = "lstm", .help = "a choice", .choices = "lstm|gru|rnn"},
    {.name = "seed", .type = FLAG_INT, .def = "123", .help = "short"},
    {.name = "gpu", .type = FLAG_INT, .def = "0", .help = "may be negative"},
    {.name = "o", .type = FLAG_STRING, .def = "", .help = "one letter"},
    {.name = "input", .type = FLAG_STRING, .def = "", .help = "the positional one"},
    {.name = "quiet", .type = FLAG_SWITCH, .def = "0", .help = "a switch"},
};

static FlagSet make_set(const char *program) {
    FlagSet set = {.program = program, .summary = "test", .flags = declared,
                   .count = (int)CRNN_ARRAY_LEN(declared), .positional = "input", .has_config = 1};
    return set;
}

/* parses a NULL-terminated list of arguments; returns flags_parse's result */
static int parse(FlagSet *set, CrnnError *err, ...) {
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)set->program;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) && argc < 31;) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    flags_free(set);
    err->msg[0] = '\0';
    err->code = -1;
    return flags_parse(set, argc, argv, err);
}

static void test_distance(void) {
    CHECK(flags_edit_distance("rnn_size", "rnn_size") == 0, "same");
    CHECK(flags_edit_distance("rnn_sise", "rnn_size") == 1, "a substitution");
    CHECK(flags_edit_distance("lenght", "length") == 1, "a swap of neighbours is one edit");
    CHECK(flags_edit_distance("rnnsize", "rnn_size") == 1, "a deletion");
    CHECK(flags_edit_distance("RNN_SIZE", "rnn_size") == 0, "case does not count");
    CHECK(flags_edit_distance("", "abc") == 3, "from nothing");
    CHECK(flags_edit_distance("abc", "xyz") == 3, "nothing in common");
    CHECK(flags_edit_distance("ca", "abc") == 3, "optimal string alignment: %d", flags_edit_distance("ca", "abc"));
}

static void test_suggest(void) {
    FlagSet set = make_set("crnn-test");
    const char *s;
    CHECK((s = flags_suggest(&set, "rnn_sise")) && strcmp(s, "rnn_size") == 0, "%s", s ? s : "NULL");
    CHECK((s = flags_suggest(&set, "rnn-size")) && strcmp(s, "rnn_size") == 0, "%s", s ? s : "NULL");
    CHECK((s = flags_suggest(&set, "num_layer")) && strcmp(s, "num_layers") == 0, "%s", s ? s : "NULL");
    CHECK((s = flags_suggest(&set, "learning_rat")) && strcmp(s, "learning_rate") == 0, "%s", s ? s : "NULL");
    CHECK((s = flags_suggest(&set, "eval_val_evry")) && strcmp(s, "eval_val_every") == 0, "an alias: %s",
          s ? s : "NULL");
    CHECK((s = flags_suggest(&set, "sed")) && strcmp(s, "seed") == 0, "%s", s ? s : "NULL");
    CHECK((s = flags_suggest(&set, "confg")) && strcmp(s, "config") == 0, "-config: %s", s ? s : "NULL");
    /* nothing close: no suggestion */
    CHECK(flags_suggest(&set, "xyzzy") == NULL, "xyzzy");
    CHECK(flags_suggest(&set, "rnn_sizzzze") == NULL, "three edits away");
    CHECK(flags_suggest(&set, "x") == NULL, "one letter is close to every short flag");
    CHECK((s = flags_suggest(&set, "gpx")) && strcmp(s, "gpu") == 0, "%s", s ? s : "NULL");
    CHECK(flags_suggest(&set, "abc") == NULL, "abc");
    /* the closest of several */
    CHECK((s = flags_suggest(&set, "sead")) && strcmp(s, "seed") == 0, "%s", s ? s : "NULL");
}

static void test_hints(void) {
    const char *h = flags_hint("crnn-train", "train_frac");
    CHECK(h && strstr(h, "crnn-preprocess") && strstr(h, "--val_frac") && strstr(h, "--test_frac"), "%s",
          h ? h : "NULL");
    CHECK(flags_hint("crnn-train", "val_frac") != NULL, "val_frac in crnn-train");
    CHECK(flags_hint("crnn-preprocess", "val_frac") == NULL, "crnn-preprocess has --val_frac");
    h = flags_hint("crnn-sample", "opencl");
    CHECK(h && strstr(h, "CUDA") && strstr(h, "-gpu -1"), "%s", h ? h : "NULL");
    CHECK(flags_hint("crnn-train", "opencl") != NULL, "opencl in crnn-train");
    CHECK(flags_hint("crnn-train", "accurate_gpu_timing") != NULL, "accurate_gpu_timing");
    CHECK(flags_hint("crnn-train", "no_such_flag") == NULL, "no hint");

    /* the hint is the message, in place of a suggestion */
    FlagSet set = make_set("crnn-train");
    CrnnError err;
    CHECK(parse(&set, &err, "-opencl", "1", NULL) == -1 && strstr(err.msg, "unknown flag '-opencl'") &&
              strstr(err.msg, "-gpu -1") && err.code == CRNN_EXIT_USAGE,
          "%s", err.msg);
    CHECK(parse(&set, &err, "--train_frac=0.9", NULL) == -1 && strstr(err.msg, "unknown flag '--train_frac'") &&
              strstr(err.msg, "crnn-preprocess"),
          "%s", err.msg);
    flags_free(&set);
}

static void test_messages(void) {
    FlagSet set = make_set("crnn-test");
    CrnnError err;
    CHECK(parse(&set, &err, "-rnn_sise", "32", NULL) == -1 &&
              strstr(err.msg, "unknown flag '-rnn_sise'; did you mean -rnn_size?") && err.code == CRNN_EXIT_USAGE,
          "%s", err.msg);
    CHECK(parse(&set, &err, "--rnn_sise=32", NULL) == -1 && strstr(err.msg, "did you mean --rnn_size?"), "%s",
          err.msg);
    CHECK(parse(&set, &err, "-xyzzy", "1", NULL) == -1 && strstr(err.msg, "unknown flag '-xyzzy'; see crnn-test --help") &&
              !strstr(err.msg, "did you mean"),
          "%s", err.msg);
    CHECK(parse(&set, &err, "-rnn_size", "abc", NULL) == -1 && err.code == CRNN_EXIT_USAGE, "%s", err.msg);
    CHECK(parse(&set, &err, "-model_type", "lstn", NULL) == -1 && err.code == CRNN_EXIT_USAGE, "%s", err.msg);
    CHECK(parse(&set, &err, "-rnn_size", NULL) == -1 && err.code == CRNN_EXIT_USAGE, "%s", err.msg);
    CHECK(parse(&set, &err, "a", "b", NULL) == -1 && err.code == CRNN_EXIT_USAGE, "%s", err.msg);

    /* -config: the file and line, and the suggestion without dashes */
    const char *cfg = tmp_path("run.cfg");
    FILE *fp = fopen(cfg, "w");
    fputs("# a preset\nrnn_size = 64\n\nnum_layres = 3\n", fp);
    fclose(fp);
    char want[600];
    snprintf(want, sizeof want, "%s:4: unknown flag 'num_layres'; did you mean num_layers?", cfg);
    CHECK(parse(&set, &err, "-config", cfg, NULL) == -1 && strstr(err.msg, want) && err.code == CRNN_EXIT_USAGE,
          "%s", err.msg);
    CHECK(parse(&set, &err, "-config", tmp_path("no_such.cfg"), NULL) == -1 && strstr(err.msg, "no_such.cfg") &&
              err.code == CRNN_EXIT_USAGE,
          "%s", err.msg);
    fp = fopen(cfg, "w");
    fputs("rnn_size = big\n", fp);
    fclose(fp);
    CHECK(parse(&set, &err, "-config", cfg, NULL) == -1 && strstr(err.msg, ":1:") && err.code == CRNN_EXIT_USAGE,
          "%s", err.msg);
    flags_free(&set);
}

static void test_switch(void) {
    FlagSet set = make_set("crnn-test");
    CrnnError err;
    CHECK(parse(&set, &err, NULL) == FLAGS_OK && flags_int(&set, "quiet") == 0 && !flags_given(&set, "quiet"),
          "default off");
    CHECK(parse(&set, &err, "-quiet", NULL) == FLAGS_OK && flags_int(&set, "quiet") == 1, "bare -quiet");
    CHECK(parse(&set, &err, "--quiet", NULL) == FLAGS_OK && flags_int(&set, "quiet") == 1, "bare --quiet");
    CHECK(parse(&set, &err, "-quiet", "1", NULL) == FLAGS_OK && flags_int(&set, "quiet") == 1 &&
              !*flags_str(&set, "input"),
          "-quiet 1 takes the 1");
    CHECK(parse(&set, &err, "-quiet", "0", NULL) == FLAGS_OK && flags_int(&set, "quiet") == 0 &&
              flags_given(&set, "quiet"),
          "-quiet 0");
    CHECK(parse(&set, &err, "--quiet=0", NULL) == FLAGS_OK && flags_int(&set, "quiet") == 0, "--quiet=0");
    CHECK(parse(&set, &err, "--quiet=1", NULL) == FLAGS_OK && flags_int(&set, "quiet") == 1, "--quiet=1");
    /* never a file name: the positional argument stays one */
    CHECK(parse(&set, &err, "-quiet", "data.txt", NULL) == FLAGS_OK && flags_int(&set, "quiet") == 1 &&
              strcmp(flags_str(&set, "input"), "data.txt") == 0,
          "-quiet data.txt: %s", flags_str(&set, "input"));
    CHECK(parse(&set, &err, "-quiet", "-rnn_size", "5", NULL) == FLAGS_OK && flags_int(&set, "quiet") == 1 &&
              flags_int(&set, "rnn_size") == 5,
          "-quiet then a flag");
    CHECK(parse(&set, &err, "--quiet=yes", NULL) == -1 && strstr(err.msg, "0 or 1") && err.code == CRNN_EXIT_USAGE,
          "%s", err.msg);
    /* in a -config file, and the command line wins */
    const char *cfg = tmp_path("quiet.cfg");
    FILE *fp = fopen(cfg, "w");
    fputs("quiet = 1\n", fp);
    fclose(fp);
    CHECK(parse(&set, &err, "-config", cfg, NULL) == FLAGS_OK && flags_int(&set, "quiet") == 1, "quiet = 1");
    CHECK(parse(&set, &err, "-config", cfg, "-quiet", "0", NULL) == FLAGS_OK && flags_int(&set, "quiet") == 0,
          "-quiet 0 over the file");
    fp = fopen(cfg, "w");
    fputs("quiet = 0\n", fp);
    fclose(fp);
    CHECK(parse(&set, &err, "-config", cfg, NULL) == FLAGS_OK && flags_int(&set, "quiet") == 0, "quiet = 0");
    /* flags_set_text and flags_value_text, as a checkpoint's /config stores it */
    CHECK(flags_set_text(&set, "quiet", "1", &err) == 0 && flags_int(&set, "quiet") == 1, "set 1");
    char text[16];
    flags_value_text(flags_find(&set, "quiet"), text, sizeof text);
    CHECK(strcmp(text, "1") == 0, "%s", text);
    CHECK(flags_set_text(&set, "quiet", "0", &err) == 0 && flags_int(&set, "quiet") == 0, "set 0");
    flags_free(&set);
}

int main(void) {
    if (check_tmpdir("crnn-test-flags")) return 1;
    FILE *devnull = freopen("/dev/null", "w", stdout); /* --help would print */
    (void)devnull;
    test_distance();
    test_suggest();
    test_hints();
    test_messages();
    test_switch();
    check_tmpdir_remove();
    return check_exit("test_flags");
}
