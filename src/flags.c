/* Command-line and -config parsing for every program. */
#include "crnn/flags.h"
#include "crnn/version.h"

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
                return crnn_fail(err, "-%s needs a whole number, got '%s'; see %s --help", f->name,
                                 value, set->program);
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
            return crnn_fail(err, "-%s needs a number, got '%s'; see %s --help", f->name, value,
                             set->program);
        f->d = d;
        /* a real outside int64_t's range (e.g. 1e38) has no integer value: converting it is
           undefined, so clamp */
        f->i = fabs(d) < 9e18 ? (int64_t)d : d < 0 ? INT64_MIN : INT64_MAX;
        break;
    }
    case FLAG_STRING:
    case FLAG_SWITCH:
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
                return crnn_fail(err, "-%s must be one of %s, got '%s'", f->name, f->choices, value);
        }
        char *copy = strdup(value);
        if (!copy) return crnn_fail(err, "out of memory");
        free(f->s);
        f->s = copy;
    }
    if (f->type == FLAG_SWITCH) f->i = 1;
    return 0;
}

int flags_set_text(FlagSet *set, const char *name, const char *value, CrnnError *err) {
    Flag *f = flags_find(set, name);
    if (!f) return crnn_fail(err, "unknown flag -%s; see %s --help", name, set->program);
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
        return crnn_fail(err, "cannot read the config file %s: %s; check the path given to -config",
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
            rc = crnn_fail(err, "%s:%d: expected 'name = value', got '%s'", path, lineno, s);
            break;
        }
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        while (*name == '-') name++;
        if (strcmp(name, "config") == 0) {
            rc = crnn_fail(err, "%s:%d: a config file cannot include another", path, lineno);
            break;
        }
        Flag *f = flags_find(set, name);
        if (!f) {
            rc = crnn_fail(err, "%s:%d: unknown flag '%s'; see %s --help", path, lineno, name,
                           set->program);
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
            flags_print_help(set);
            return FLAGS_HELP;
        }
        if (strcmp(argv[a], "--version") == 0 || strcmp(argv[a], "-version") == 0) {
            crnn_version_print(stdout, set->program);
            return FLAGS_HELP;
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
                if (a + 1 >= argc) return crnn_fail(err, "-config needs a file name");
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
            return crnn_fail(err, "unexpected argument '%s'; flags are written -name value (see %s --help)",
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
        if (!f) return crnn_fail(err, "unknown flag '%s'; see %s --help", arg, set->program);
        if (f->type == FLAG_SWITCH) {
            if (value) return crnn_fail(err, "--%s takes no value", f->name);
            f->i = 1;
            f->set = 1;
            continue;
        }
        if (!value) {
            if (a + 1 >= argc || (argv[a + 1][0] == '-' && argv[a + 1][1] != '\0' &&
                                  !looks_numeric(argv[a + 1])))
                return crnn_fail(err, "flag -%s needs a value (e.g. -%s %s); see %s --help", f->name,
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

void flags_print_help(const FlagSet *set) {
    printf("usage: %s [flags]%s%s%s\n%s\n\n", set->program, set->positional ? " [" : "",
           set->positional ? set->positional : "", set->positional ? "]" : "", set->summary);
    printf("Flags are written -name value, --name value or --name=value.\n");
    if (set->has_config) printf("  -config FILE  read 'name = value' lines first; flags given here win\n");
    for (int k = 0; k < set->count; k++) {
        const Flag *f = &set->flags[k];
        char head[128];
        if (f->type == FLAG_SWITCH)
            snprintf(head, sizeof head, "  --%s", f->name);
        else
            snprintf(head, sizeof head, "  -%s %s", f->name,
                     f->type == FLAG_STRING ? (f->choices ? f->choices : "TEXT")
                                            : (f->type == FLAG_INT ? "N" : "X"));
        printf("%-34s %s", head, f->help);
        if (f->type != FLAG_SWITCH) printf(" [default: %s]", f->def && *f->def ? f->def : "none");
        if (f->alias) printf(" (also -%s)", f->alias);
        printf("\n");
    }
}
