/* Command-line flags, torch-rnn style: `-name value`, `--name value` or `--name=value`;
 * a value may start with '-' when it is a number (`-gpu -1`). A switch (`--quiet`) is on alone,
 * or takes 0 or 1 as `--quiet=0` or a following `0`/`1`, never another argument. `-config FILE`
 * reads `name = value` lines first; the command line wins. `--help` lists every flag
 * (flags_write_help). An unknown flag's message names the closest declared flag, or what a flag
 * of char-rnn's or torch-rnn's scripts became. Every error of the flags, an unreadable -config file included, is
 * a usage error (CRNN_EXIT_USAGE). */
#ifndef CRNN_FLAGS_H
#define CRNN_FLAGS_H

#include <stdint.h>
#include <stdio.h>

#include "crnn/common.h"

typedef enum { FLAG_INT, FLAG_REAL, FLAG_STRING, FLAG_SWITCH } FlagType;

/* What a resumed run (crnn-train -resume) does with a flag whose checkpoint /config holds a value:
 * a flag not given takes that value, except FLAG_RESUME_OWN; a given one that differs from it is
 * handled as below. */
typedef enum {
    FLAG_RESUME_NOTED = 0,  /* used, and a note says it changed (the default) */
    FLAG_RESUME_FREE,       /* used silently: how long, how often, where and on what the run goes on */
    FLAG_RESUME_KEPT,       /* fixes the model or its data view: an error */
    FLAG_RESUME_GENERATOR,  /* seeds a generator the checkpoint carries on: ignored, with a note */
    FLAG_RESUME_OWN,        /* says how this run starts: never taken from the checkpoint */
} FlagResume;

typedef struct Flag {
    const char *name;    /* "batch_size" */
    FlagType type;
    const char *def;     /* default, as text ("50", "2e-3", ""); switches: "0" (off) */
    const char *help;    /* one line */
    const char *alias;   /* another accepted name (char-rnn's), or NULL */
    const char *choices; /* "lstm|gru|rnn" for strings with a fixed set, or NULL */
    FlagResume resume;   /* crnn-train's resume policy for the flag */
    /* parsed value (the default until given) */
    int64_t i;
    double d;
    char *s;
    int set; /* 1 when given on the command line or in a -config file */
} Flag;

typedef struct FlagSet {
    const char *program; /* "crnn-train" */
    const char *summary; /* one line for --help */
    Flag *flags;
    int count;
    const char *positional; /* a flag a lone positional argument fills, or NULL */
    int has_config;         /* accept -config FILE */
    int stops_on_signal;    /* --help lists exit status 75 (crnn-train) */
} FlagSet;

enum { FLAGS_OK = 0, FLAGS_HELP = 1, FLAGS_VERSION = 2 };

/* Parses argv into set. Returns FLAGS_OK, FLAGS_HELP (--help, -help or -h) or FLAGS_VERSION
 * (--version or -version), which the program answers and exits 0 (program.h), or -1 with
 * err filled (unknown flag, missing value, malformed number, bad choice, unreadable config). */
int flags_parse(FlagSet *set, int argc, char **argv, CrnnError *err);
void flags_free(FlagSet *set);
Flag *flags_find(FlagSet *set, const char *name);
int64_t flags_int(FlagSet *set, const char *name);
double flags_real(FlagSet *set, const char *name);
const char *flags_str(FlagSet *set, const char *name);
int flags_given(FlagSet *set, const char *name);
/* Sets a flag's value from text, as if given on the command line. */
int flags_set_text(FlagSet *set, const char *name, const char *value, CrnnError *err);
/* The --help text: usage, every flag with its default, the exit statuses; written to out. */
void flags_write_help(const FlagSet *set, FILE *out);
/* The declared flag name (or alias, or "config") closest to an unknown name by
 * flags_edit_distance, within 1 edit for names of up to 5 characters and 2 for longer ones;
 * NULL when none is that close. */
const char *flags_suggest(const FlagSet *set, const char *name);
/* What to use instead of a flag of char-rnn's or torch-rnn's scripts (or another crnn program's)
 * that `program` does not take, or NULL. */
const char *flags_hint(const char *program, const char *name);
/* Damerau-Levenshtein distance (optimal string alignment; letters compare without case). */
int flags_edit_distance(const char *a, const char *b);
/* Writes d as the shortest text that reads back (strtod) to the same double: 0.95, not
 * 0.94999999999999996; 1e-05; 0.1 + 0.2 stays 0.30000000000000004. */
void flags_real_text(double d, char *out, size_t cap);
/* Writes the value as text (for messages and the checkpoint's /config); reals as
 * flags_real_text. */
void flags_value_text(const Flag *f, char *out, size_t cap);

#endif
