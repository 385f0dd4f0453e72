/* Command-line and -config parsing for every program. */
#include "crnn/flags.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Flag *flags_find(FlagSet *set, const char *name) {
    for (int k = 0; k < set->count; k++) {
        Flag *f = &set->flags[k];
        if (strcmp(f->name, name) == 0 || (f->alias && strcmp(f->alias, name) == 0)) return f;
    }
    return NULL;
}

static Flag *must_find(FlagSet *set, const char *name) {
    Flag *f = flags_find(set, name);
    if (!f) {
        fprintf(stderr, "internal error: flag -%s is not declared in %s\n", name, set->program);
        abort();
    }
    return f;
}

int64_t flags_int(FlagSet *set, const char *name) { return must_find(set, name)->i; }
double flags_real(FlagSet *set, const char *name) { return must_find(set, name)->d; }
const char *flags_str(FlagSet *set, const char *name) { return must_find(set, name)->s; }
int flags_given(FlagSet *set, const char *name) { return must_find(set, name)->set; }

static int looks_numeric(const char *s) {
    char *end;
    errno = 0;
    strtod(s, &end);
    return end != s && *end == '\0';
}

static int assign(FlagSet *set, Flag *f, const char *value, CrnnError *err) {
    char *end;
    switch (f->type) {
    case FLAG_INT: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (end == value || *end != '\0' || errno == ERANGE) {
            /* accept integral values written as reals (e.g. 1e3) */
            double d = strtod(value, &end);
            if (end == value || *end != '\0' || !isfinite(d) || d != floor(d) || fabs(d) > 9e18)
                return crnn_fail_usage(err, "-%s needs a whole number, got '%s'; see %s --help",
                                       f->name, value, set->program);
            v = (long long)d;
        }
        f->i = v;
        f->d = (double)v;
        break;
    }
    case FLAG_REAL: {
        errno = 0;
        double d = strtod(value, &end);
        if (end == value || *end != '\0' || errno == ERANGE || !isfinite(d))
            return crnn_fail_usage(err, "-%s needs a number, got '%s'; see %s --help", f->name,
                                   value, set->program);
        f->d = d;
        /* a real outside int64_t's range (e.g. 1e38) has no integer value: converting it is
           undefined, so clamp */
        f->i = fabs(d) < 9e18 ? (int64_t)d : d < 0 ? INT64_MIN : INT64_MAX;
        break;
    }
    case FLAG_SWITCH: /* alone it means 1; with a value, 0 or 1 */
        if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0)
            return crnn_fail_usage(err, "--%s is a switch: give it alone (on), or with 0 or 1 (--%s=0), got '%s'",
                                   f->name, f->name, value);
        f->i = value[0] - '0';
        f->d = (double)f->i;
        break;
    case FLAG_STRING:
        break;
    }
    if (f->type == FLAG_STRING) {
        if (f->choices) {
            /* value must be one of the '|'-separated choices */
            size_t n = strlen(value);
            const char *c = f->choices;
            int ok = 0;
            while (*c) {
                const char *bar = strchr(c, '|');
                size_t len = bar ? (size_t)(bar - c) : strlen(c);
                if (len == n && strncmp(c, value, n) == 0) ok = 1;
                c += len + (bar ? 1 : 0);
                if (!bar) break;
            }
            if (!ok)
                return crnn_fail_usage(err, "-%s must be one of %s, got '%s'", f->name, f->choices, value);
        }
        char *copy = strdup(value);
        if (!copy) return crnn_fail_nomem(err, "out of memory");
        free(f->s);
        f->s = copy;
    }
    return 0;
}

/* ---- unknown flags: the closest declared one, or what a char-rnn/torch-rnn flag became ----- */

int flags_edit_distance(const char *a, const char *b) {
    /* optimal string alignment: insertions, deletions, substitutions and swaps of two neighbours
     * each cost 1; letters compare without case */
    enum { MAXLEN = 64 };
    size_t n = strlen(a), m = strlen(b);
    if (n > MAXLEN || m > MAXLEN) return (int)(n > m ? n : m);
    int d[MAXLEN + 1][MAXLEN + 1];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int ai = tolower((unsigned char)a[i - 1]), bj = tolower((unsigned char)b[j - 1]);
            int best = d[i - 1][j - 1] + (ai != bj);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == bj && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

const char *flags_suggest(const FlagSet *set, const char *name) {
    size_t n = strlen(name);
    /* close means: one edit for names of up to 5 characters, two for longer ones, fewer edits
     * than the candidate has characters; nothing for 1 or 2 characters (any flag is close) */
    int allowed = n <= 2 ? 0 : n <= 5 ? 1 : 2;
    const char *best = NULL;
    int best_d = allowed + 1;
    for (int k = 0; k < set->count; k++) {
        const char *names[2] = {set->flags[k].name, set->flags[k].alias};
        for (int j = 0; j < 2; j++) {
            if (!names[j]) continue;
            int d = flags_edit_distance(name, names[j]);
            if (d < best_d && (size_t)d < strlen(names[j])) {
                best = names[j];
                best_d = d;
            }
        }
    }
    if (set->has_config && !best && flags_edit_distance(name, "config") <= allowed) best = "config";
    return best;
}

/* Flags of char-rnn's and torch-rnn's scripts (and of the other crnn programs) that a program
 * does not take, and what to use instead. program NULL: any program that lacks the flag. */
static const struct {
    const char *program, *name, *hint;
} hints[] = {
    {"crnn-train", "train_frac", "char-rnn's -train_frac/-val_frac are crnn-preprocess's --val_frac/--test_frac: the split is made once when preprocessing (the rest is the training split); -data_dir DIR makes char-rnn's 5% validation split"},
    {"crnn-train", "val_frac", "char-rnn's -train_frac/-val_frac are crnn-preprocess's --val_frac/--test_frac: the split is made once when preprocessing (the rest is the training split); -data_dir DIR makes char-rnn's 5% validation split"},
    {"crnn-train", "test_frac", "-test_frac is crnn-preprocess's --test_frac: the split is made once when preprocessing"},
    {"crnn-train", "accurate_gpu_timing", "char-rnn's -accurate_gpu_timing is not needed: crnn-train times every step itself (the chars/s of its progress lines, and compute, communication and io times in <checkpoint_name>_metrics.jsonl)"},
    {"crnn-train", "checkpoint", "crnn-train names its checkpoints with -checkpoint_name; to continue a run give -resume FILE (or -resume auto), to start from a checkpoint's weights -init_from FILE"},
    {"crnn-train", "start_text", "-start_text is crnn-sample's: crnn-sample -checkpoint FILE -start_text TEXT"},
    {"crnn-train", "input_txt", "crnn-train reads preprocessed data: run crnn-preprocess --input_txt FILE first and give its -input_h5 and -input_json, or give char-rnn's -data_dir DIR (DIR/input.txt)"},
    {"crnn-preprocess", "data_dir", "-data_dir is crnn-train's (char-rnn's folder holding input.txt); crnn-preprocess reads --input_txt FILE"},
    {"crnn-preprocess", "input_h5", "crnn-preprocess writes data: --output_h5 FILE.h5 (and reads an existing vocabulary with --input_json)"},
    {"crnn-sample", "primetext_file", "the start text from a file is -start_text_file FILE"},
    {NULL, "opencl", "crnn runs on CUDA or the CPU (-gpu -1); drop -opencl"},
    {NULL, "config", "this program reads no -config file; give its flags on the command line"},
};

const char *flags_hint(const char *program, const char *name) {
    for (size_t k = 0; k < CRNN_ARRAY_LEN(hints); k++)
        if ((!hints[k].program || strcmp(hints[k].program, program) == 0) && strcmp(hints[k].name, name) == 0)
            return hints[k].hint;
    return NULL;
}

/* "unknown flag '-rnn_sise'; did you mean -rnn_size? (see crnn-train --help)". where: "" on the
 * command line, "FILE:LINE: " in a -config file (flags written there without dashes). */
static int unknown_flag(const FlagSet *set, const char *where, const char *dashes, const char *name,
                        CrnnError *err) {
    const char *hint = flags_hint(set->program, name);
    if (hint)
        return crnn_fail_usage(err, "%sunknown flag '%s%s': %s", where, dashes, name, hint);
    const char *close = flags_suggest(set, name);
    if (close)
        return crnn_fail_usage(err, "%sunknown flag '%s%s'; did you mean %s%s? (see %s --help)", where, dashes,
                               name, dashes, close, set->program);
    return crnn_fail_usage(err, "%sunknown flag '%s%s'; see %s --help", where, dashes, name, set->program);
}

int flags_set_text(FlagSet *set, const char *name, const char *value, CrnnError *err) {
    Flag *f = flags_find(set, name);
    if (!f) return unknown_flag(set, "", "-", name, err);
    if (assign(set, f, value, err)) return -1;
    f->set = 1;
    return 0;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static int read_config(FlagSet *set, const char *path, CrnnError *err) {
    FILE *fp = fopen(path, "r");
    if (!fp)
        return crnn_fail_usage(err, "cannot read the config file %s: %s; check the path given to -config",
                         path, strerror(errno));
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = crnn_fail_usage(err, "%s:%d: expected 'name = value', got '%s'", path, lineno, s);
            break;
        }
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        while (*name == '-') name++;
        if (strcmp(name, "config") == 0) {
            rc = crnn_fail_usage(err, "%s:%d: a config file cannot include another", path, lineno);
            break;
        }
        Flag *f = flags_find(set, name);
        if (!f) {
            char where[CRNN_ERROR_MAX / 2];
            snprintf(where, sizeof where, "%s:%d: ", path, lineno);
            rc = unknown_flag(set, where, "", name, err);
            break;
        }
        if (assign(set, f, value, err)) {
            rc = crnn_fail_context(err, "%s:%d", path, lineno);
            break;
        }
        f->set = 1;
    }
    fclose(fp);
    return rc;
}

static int set_defaults(FlagSet *set, CrnnError *err) {
    for (int k = 0; k < set->count; k++) {
        Flag *f = &set->flags[k];
        f->set = 0;
        f->i = 0;
        f->d = 0;
        f->s = NULL;
        if (f->type == FLAG_SWITCH) continue;
        if (assign(set, f, f->def ? f->def : "", err)) return -1;
    }
    return 0;
}

int flags_parse(FlagSet *set, int argc, char **argv, CrnnError *err) {
    if (set_defaults(set, err)) return -1;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-help") == 0 ||
            strcmp(argv[a], "-h") == 0) {
            return FLAGS_HELP;
        }
        if (strcmp(argv[a], "--version") == 0 || strcmp(argv[a], "-version") == 0) {
            return FLAGS_VERSION;
        }
    }
    /* -config first, so that the command line wins */
    if (set->has_config) {
        for (int a = 1; a < argc; a++) {
            const char *arg = argv[a];
            const char *name = arg[0] == '-' ? arg + (arg[1] == '-' ? 2 : 1) : NULL;
            if (!name) continue;
            if (strncmp(name, "config=", 7) == 0) {
                if (read_config(set, name + 7, err)) return -1;
            } else if (strcmp(name, "config") == 0) {
                if (a + 1 >= argc) return crnn_fail_usage(err, "-config needs a file name");
                if (read_config(set, argv[a + 1], err)) return -1;
            }
        }
    }
    int positional_used = 0;
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (arg[0] != '-' || arg[1] == '\0' || looks_numeric(arg)) {
            if (set->positional && !positional_used) {
                positional_used = 1;
                if (flags_set_text(set, set->positional, arg, err)) return -1;
                continue;
            }
            return crnn_fail_usage(err, "unexpected argument '%s'; flags are written -name value (see %s --help)",
                                   arg, set->program);
        }
        const char *name = arg + (arg[1] == '-' ? 2 : 1);
        char namebuf[256];
        const char *value = NULL;
        const char *eq = strchr(name, '=');
        if (eq) {
            size_t n = (size_t)(eq - name);
            if (n >= sizeof namebuf) n = sizeof namebuf - 1;
            memcpy(namebuf, name, n);
            namebuf[n] = '\0';
            name = namebuf;
            value = eq + 1;
        }
        if (set->has_config && strcmp(name, "config") == 0) {
            if (!value) a++;
            continue;
        }
        Flag *f = flags_find(set, name);
        if (!f) return unknown_flag(set, "", arg[1] == '-' ? "--" : "-", name, err);
        if (f->type == FLAG_SWITCH) {
            /* alone: on; --name=0|1, or a following 0 or 1, sets it (never another argument) */
            if (!value && a + 1 < argc && (strcmp(argv[a + 1], "0") == 0 || strcmp(argv[a + 1], "1") == 0))
                value = argv[++a];
            if (assign(set, f, value ? value : "1", err)) return -1;
            f->set = 1;
            continue;
        }
        if (!value) {
            if (a + 1 >= argc || (argv[a + 1][0] == '-' && argv[a + 1][1] != '\0' &&
                                  !looks_numeric(argv[a + 1])))
                return crnn_fail_usage(err, "flag -%s needs a value (e.g. -%s %s); see %s --help", f->name,
                                       f->name, f->def && *f->def ? f->def : "VALUE", set->program);
            value = argv[++a];
        }
        if (assign(set, f, value, err)) return -1;
        f->set = 1;
    }
    return FLAGS_OK;
}

void flags_free(FlagSet *set) {
    for (int k = 0; k < set->count; k++) {
        free(set->flags[k].s);
        set->flags[k].s = NULL;
    }
}

void flags_real_text(double d, char *out, size_t cap) {
    /* the fewest significant digits that strtod reads back to d: 17 always do */
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(out, cap, "%.*g", digits, d);
        if (strtod(out, NULL) == d || !isfinite(d)) return;
    }
}

void flags_value_text(const Flag *f, char *out, size_t cap) {
    switch (f->type) {
    case FLAG_INT:
    case FLAG_SWITCH: snprintf(out, cap, "%" PRId64, f->i); break;
    case FLAG_REAL: flags_real_text(f->d, out, cap); break;
    case FLAG_STRING: snprintf(out, cap, "%s", f->s ? f->s : ""); break;
    }
}

void flags_write_help(const FlagSet *set, FILE *out) {
    fprintf(out, "usage: %s [flags]%s%s%s\n%s\n\n", set->program, set->positional ? " [" : "",
            set->positional ? set->positional : "", set->positional ? "]" : "", set->summary);
    fprintf(out, "Flags are written -name value, --name value or --name=value.\n");
    if (set->has_config) fprintf(out, "  -config FILE  read 'name = value' lines first; flags given here win\n");
    for (int k = 0; k < set->count; k++) {
        const Flag *f = &set->flags[k];
        char head[128];
        if (f->type == FLAG_SWITCH)
            snprintf(head, sizeof head, "  --%s [0|1]", f->name);
        else
            snprintf(head, sizeof head, "  -%s %s", f->name,
                     f->type == FLAG_STRING ? (f->choices ? f->choices : "TEXT")
                                            : (f->type == FLAG_INT ? "N" : "X"));
        fprintf(out, "%-34s %s", head, f->help);
        if (f->type != FLAG_SWITCH) fprintf(out, " [default: %s]", f->def && *f->def ? f->def : "none");
        if (f->alias) fprintf(out, " (also -%s)", f->alias);
        fprintf(out, "\n");
    }
    fprintf(out, "\nexit status: 0 done, 1 runtime error, 2 flag or value error%s\n",
            set->stops_on_signal ? ", 75 stopped by a signal after a checkpoint (continue with -resume auto)" : "");
}
