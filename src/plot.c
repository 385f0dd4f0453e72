/* crnn-plot's library: the metrics file (docs/FORMATS.md section 4) or a scaling benchmark's results
 * read into series, each made into a figure (two panels of styled series, legends and axes),
 * which a small SVG writer draws or, for PNG, Debian's gnuplot runs on a script written to a
 * temporary folder. Both writers draw the same figure with the same axis ranges and ticks. */
#include "crnn/plot.h"
#include "crnn/atomic_file.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* Reading the metrics */

static int series_push(PlotSeries *s, double x, double y, CrnnError *err) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        double *nx = realloc(s->x, cap * sizeof *nx);
        if (!nx) return crnn_fail_nomem(err, "out of memory reading the points");
        s->x = nx;
        double *ny = realloc(s->y, cap * sizeof *ny);
        if (!ny) return crnn_fail_nomem(err, "out of memory reading the points");
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
    return 0;
}

static void series_free(PlotSeries *s) {
    free(s->x);
    free(s->y);
    memset(s, 0, sizeof *s);
}

void plot_data_free(PlotData *data) {
    series_free(&data->train_loss);
    series_free(&data->val_loss);
    series_free(&data->chars_per_s);
}

typedef struct SortPoint {
    double x, y;
    size_t order;
} SortPoint;

static int sort_point_cmp(const void *a, const void *b) {
    const SortPoint *p = a, *q = b;
    if (p->x < q->x) return -1;
    if (p->x > q->x) return 1;
    return (p->order > q->order) - (p->order < q->order);
}

/* Sorts by x, keeping file order among equal x (a run's records are already in order; this
 * only matters for a file someone put together by hand). */
static int series_sort(PlotSeries *s, CrnnError *err) {
    size_t k = 1;
    while (k < s->n && s->x[k - 1] <= s->x[k]) k++;
    if (k >= s->n) return 0;
    SortPoint *p = crnn_malloc(s->n * sizeof *p, err);
    if (!p) return -1;
    for (size_t i = 0; i < s->n; i++) p[i] = (SortPoint){s->x[i], s->y[i], i};
    qsort(p, s->n, sizeof *p, sort_point_cmp);
    for (size_t i = 0; i < s->n; i++) {
        s->x[i] = p[i].x;
        s->y[i] = p[i].y;
    }
    free(p);
    return 0;
}

/* JSON has no NaN or infinity, but writers spell them NaN, Infinity (Python) or nan, inf
 * (printf). Outside strings, such a word becomes null, which the reader skips.
 * Returns a malloc'd copy, or NULL when out of memory. */
static char *nonfinite_to_null(const char *line) {
    static const char *words[] = {"infinity", "nan", "inf"};
    size_t n = strlen(line);
    char *out = malloc(2 * n + 8);
    if (!out) return NULL;
    size_t o = 0;
    int in_string = 0;
    for (size_t i = 0; i < n;) {
        char c = line[i];
        if (in_string) {
            out[o++] = c;
            if (c == '\\' && i + 1 < n) out[o++] = line[++i];
            else if (c == '"') in_string = 0;
            i++;
            continue;
        }
        if (c == '"') {
            in_string = 1;
            out[o++] = c;
            i++;
            continue;
        }
        int boundary = i == 0 || !(isalnum((unsigned char)line[i - 1]) || line[i - 1] == '.' ||
                                   line[i - 1] == '_');
        if (boundary) {
            size_t j = i + (c == '-' || c == '+');
            size_t matched = 0;
            for (size_t w = 0; w < CRNN_ARRAY_LEN(words) && !matched; w++) {
                size_t len = strlen(words[w]);
                if (strncasecmp(line + j, words[w], len) == 0 &&
                    !isalnum((unsigned char)line[j + len]) && line[j + len] != '_')
                    matched = j + len - i;
            }
            if (matched) {
                memcpy(out + o, "null", 4);
                o += 4;
                i += matched;
                continue;
            }
        }
        out[o++] = c;
        i++;
    }
    out[o] = '\0';
    return out;
}

/* 1: a finite number, stored in *v; 0: null or not finite (to skip); -1: missing or not a number. */
static int record_number(json_t *record, const char *key, double *v) {
    json_t *value = json_object_get(record, key);
    if (!value) return -1;
    if (json_is_null(value)) return 0;
    if (!json_is_number(value)) return -1;
    *v = json_number_value(value);
    return isfinite(*v) ? 1 : 0;
}

static const char *x_key(PlotX x) { return x == PLOT_X_TIME ? "time_s" : x == PLOT_X_EPOCH ? "epoch" : "iteration"; }

int plot_x_from_name(const char *name, PlotX *x, CrnnError *err) {
    if (strcmp(name, "iteration") == 0) *x = PLOT_X_ITERATION;
    else if (strcmp(name, "epoch") == 0) *x = PLOT_X_EPOCH;
    else if (strcmp(name, "time") == 0) *x = PLOT_X_TIME;
    else return crnn_fail(err, "-x %s: give iteration, epoch or time", name);
    return 0;
}

/* One parsed line: adds its points to data. */
static int read_record(PlotData *data, json_t *record, const char *path, size_t line_no,
                       CrnnError *err) {
    json_t *type = json_object_get(record, "type");
    if (!json_is_string(type)) return 0; /* not a record crnn-plot knows; the format grows */
    const char *t = json_string_value(type);
    int is_train = strcmp(t, "train") == 0, is_val = strcmp(t, "val") == 0;
    if (!is_train && !is_val) return 0;
    double iteration, v;
    if (record_number(record, "iteration", &iteration) != 1)
        return crnn_fail(err, "%s line %zu: a \"%s\" record without a numeric \"iteration\"; fix or delete that line",
                         path, line_no, t);
    if (data->x != PLOT_X_ITERATION) { /* the epoch or the time instead */
        const char *key = x_key(data->x);
        if (!json_object_get(record, key)) {
            data->without_x++;
            return 0;
        }
        int got = record_number(record, key, &iteration);
        if (got < 0)
            return crnn_fail(err, "%s line %zu: \"%s\" is not a number; fix or delete that line", path, line_no, key);
        if (got == 0) {
            data->skipped++;
            return 0;
        }
    }
    const char *key = is_train ? "loss" : "val_loss";
    int got = record_number(record, key, &v);
    if (got < 0)
        return crnn_fail(err, "%s line %zu: a \"%s\" record without a numeric \"%s\"; fix or delete that line",
                         path, line_no, t, key);
    if (got == 0) data->skipped++;
    else if (series_push(is_train ? &data->train_loss : &data->val_loss, iteration, v, err)) return -1;
    if (is_train && json_object_get(record, "chars_per_s")) {
        got = record_number(record, "chars_per_s", &v);
        if (got < 0)
            return crnn_fail(err, "%s line %zu: \"chars_per_s\" is not a number; fix or delete that line",
                             path, line_no);
        if (got == 0) data->skipped++;
        else if (series_push(&data->chars_per_s, iteration, v, err)) return -1;
    }
    return 0;
}

/* -x time: seconds, or minutes or hours when the run is long, with the axis's title. */
static void scale_time(PlotData *data) {
    PlotSeries *all[3] = {&data->train_loss, &data->val_loss, &data->chars_per_s};
    double hi = 0;
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < all[k]->n; i++) hi = fmax(hi, all[k]->x[i]);
    double unit = hi >= 2 * 3600 ? 3600 : hi >= 10 * 60 ? 60 : 1;
    data->x_title = unit == 3600 ? "time (h)" : unit == 60 ? "time (min)" : "time (s)";
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < all[k]->n; i++) all[k]->x[i] /= unit;
}

int plot_read_metrics(PlotData *data, const char *path, CrnnError *err) {
    return plot_read_metrics_x(data, path, PLOT_X_ITERATION, err);
}

int plot_read_metrics_x(PlotData *data, const char *path, PlotX x, CrnnError *err) {
    memset(data, 0, sizeof *data);
    data->x = x;
    data->x_title = x == PLOT_X_EPOCH ? "epoch" : "iteration";
    FILE *f = fopen(path, "r");
    if (!f)
        return crnn_fail(err, "cannot read the metrics file %s: %s; give the <checkpoint_name>_metrics.jsonl that crnn-train writes",
                         path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, line_no = 0, records = 0;
    ssize_t len;
    int rc = 0;
    errno = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        line_no++;
        int has_newline = len > 0 && line[len - 1] == '\n';
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (strlen(line) != (size_t)len) {
            rc = crnn_fail(err, "%s line %zu holds a NUL byte, so it is not JSON; is this a metrics file written by crnn-train?",
                           path, line_no);
            break;
        }
        size_t lead = strspn(line, " \t");
        if (line[lead] == '\0') continue;
        json_error_t jerr;
        json_t *record = json_loads(line, 0, &jerr);
        if (!record) {
            char *fixed = nonfinite_to_null(line);
            if (!fixed) {
                rc = crnn_fail_nomem(err, "out of memory reading %s", path);
                break;
            }
            json_error_t jerr2;
            record = json_loads(fixed, 0, &jerr2);
            free(fixed);
        }
        if (!record) {
            if (!has_newline) { /* the last line, cut off: a run still writing it */
                data->partial_last_line = 1;
                break;
            }
            rc = crnn_fail(err, "%s line %zu is not JSON (%s at column %d); fix or delete that line",
                           path, line_no, jerr.text, jerr.column);
            break;
        }
        if (!json_is_object(record)) {
            json_decref(record);
            rc = crnn_fail(err, "%s line %zu is not a JSON object; each line of a metrics file is one record such as {\"type\": \"train\", ...}",
                           path, line_no);
            break;
        }
        records++;
        rc = read_record(data, record, path, line_no, err);
        json_decref(record);
        if (rc) break;
        errno = 0;
    }
    if (rc == 0 && ferror(f))
        rc = crnn_fail(err, "cannot read the metrics file %s: %s; give the <checkpoint_name>_metrics.jsonl that crnn-train writes",
                       path, strerror(errno ? errno : EIO));
    free(line);
    fclose(f);
    if (rc == 0 && data->train_loss.n == 0 && data->val_loss.n == 0) {
        if (data->without_x > 0)
            rc = crnn_fail(err, "the metrics file %s has no \"%s\" in its train and val records (%zu of them; %s); plot it with -x iteration",
                           path, x_key(x), data->without_x,
                           x == PLOT_X_TIME ? "a crnn-train from before time_s was recorded wrote it"
                                            : "not a crnn-train metrics file?");
        else if (records == 0)
            rc = crnn_fail(err, "the metrics file %s holds no records; crnn-train writes one every -print_every iterations, so wait for the first or check the file name",
                           path);
        else
            rc = crnn_fail(err, "the metrics file %s holds no train or validation loss to plot (%zu records, %zu non-finite values skipped); is it a crnn-train metrics file?",
                           path, records, data->skipped);
    }
    if (rc == 0) rc = series_sort(&data->train_loss, err);
    if (rc == 0) rc = series_sort(&data->val_loss, err);
    if (rc == 0) rc = series_sort(&data->chars_per_s, err);
    if (rc == 0 && x == PLOT_X_TIME) scale_time(data);
    if (rc) plot_data_free(data);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading a scaling benchmark's results */

enum { PLOT_RESULTS_MAX = 64 << 20 }; /* a results file is a few kB; a file this big is not one */

/* The whole file as a NUL-terminated string (malloc'd), or NULL with err. */
static char *read_text(const char *path, CrnnError *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        crnn_fail(err, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t n = 0, cap = 4096;
    char *text = crnn_malloc(cap, err);
    errno = 0;
    while (text) {
        if (n + 1 == cap) {
            char *bigger = cap < PLOT_RESULTS_MAX ? realloc(text, 2 * cap) : NULL;
            if (!bigger) {
                free(text);
                text = NULL;
                if (cap < PLOT_RESULTS_MAX) crnn_fail_nomem(err, "out of memory reading %s", path);
                else crnn_fail(err, "%s is over %d MiB, too big for a benchmark's results", path, PLOT_RESULTS_MAX >> 20);
                break;
            }
            text = bigger;
            cap *= 2;
        }
        size_t got = fread(text + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0 || feof(f) || ferror(f)) break;
    }
    if (text && ferror(f)) {
        crnn_fail(err, "cannot read %s: %s", path, strerror(errno ? errno : EIO));
        free(text);
        text = NULL;
    }
    fclose(f);
    if (text) text[n] = '\0';
    return text;
}

/* text parsed as JSON; NaN, Infinity and the like (as Python writes them) read as null. flags:
 * jansson's decoding flags. NULL with jerr when it is not JSON. */
static json_t *load_json_text(const char *text, size_t flags, json_error_t *jerr) {
    json_t *value = json_loads(text, flags, jerr);
    if (value) return value;
    char *fixed = nonfinite_to_null(text);
    if (!fixed) return NULL;
    value = json_loads(fixed, flags, jerr);
    free(fixed);
    return value;
}

int plot_input_kind(const char *path, PlotInput *kind, CrnnError *err) {
    *kind = PLOT_INPUT_METRICS;
    FILE *f = fopen(path, "rb");
    if (!f) return 0; /* the metrics reader says why */
    json_error_t jerr;
    /* the first JSON value: a metrics file's first record, or a results file's whole object */
    json_t *first = json_loadf(f, JSON_DISABLE_EOF_CHECK, &jerr);
    fclose(f);
    if (!first) { /* perhaps a NaN in it, as Python writes one */
        CrnnError ignored;
        char *text = read_text(path, &ignored);
        if (text) first = load_json_text(text, JSON_DISABLE_EOF_CHECK, &jerr);
        free(text);
    }
    json_t *benchmark = json_is_object(first) ? json_object_get(first, "benchmark") : NULL;
    int rc = 0;
    if (benchmark && json_is_string(benchmark) && strcmp(json_string_value(benchmark), "scaling") == 0) {
        *kind = PLOT_INPUT_SCALING;
    } else if (benchmark) {
        char *shown = json_dumps(benchmark, JSON_ENCODE_ANY | JSON_COMPACT);
        rc = crnn_fail(err, "%s holds the results of a benchmark that crnn-plot cannot draw (\"benchmark\": %.60s); it draws crnn-train metrics files and \"scaling\" benchmark results",
                       path, shown ? shown : "?");
        free(shown);
    }
    json_decref(first);
    return rc;
}

static void scaling_group_free(PlotScalingGroup *g) {
    free(g->label);
    free(g->slug);
    free(g->scaling);
    free(g->allreduce);
    series_free(&g->efficiency);
    series_free(&g->compute_ms);
    series_free(&g->comm_ms);
    series_free(&g->io_ms);
}

void plot_scaling_free(PlotScaling *sc) {
    for (size_t k = 0; k < sc->n_groups; k++) scaling_group_free(&sc->groups[k]);
    free(sc->groups);
    free(sc->title);
    memset(sc, 0, sizeof *sc);
}

static char *dup_or_null(const char *s, CrnnError *err) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = crnn_malloc(n, err);
    if (d) memcpy(d, s, n);
    return d;
}

static int same_or_both_null(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* "weak, flat" -> "weak-flat": letters and digits, lower case, anything else one '-'. Made
 * unique among the groups before index by appending "-<index>". */
static char *group_slug(const PlotScaling *sc, size_t index, const char *label, CrnnError *err) {
    char slug[64];
    size_t o = 0;
    int gap = 0;
    for (const unsigned char *c = (const unsigned char *)label; *c && o < 40; c++) {
        if (*c < 0x80 && isalnum(*c)) {
            if (gap && o) slug[o++] = '-';
            slug[o++] = (char)tolower(*c);
            gap = 0;
        } else {
            gap = 1;
        }
    }
    slug[o] = '\0';
    int taken = o == 0;
    for (size_t k = 0; k < index && !taken; k++) taken = strcmp(sc->groups[k].slug, slug) == 0;
    if (taken) snprintf(slug + o, sizeof slug - o, "%sgroup-%zu", o ? "-" : "", index);
    return dup_or_null(slug, err);
}

/* The group of runs with this (scaling, allreduce) pair, made when it is the first such run. */
static PlotScalingGroup *scaling_group(PlotScaling *sc, const char *scaling, const char *allreduce,
                                       CrnnError *err) {
    for (size_t k = 0; k < sc->n_groups; k++)
        if (same_or_both_null(sc->groups[k].scaling, scaling) &&
            same_or_both_null(sc->groups[k].allreduce, allreduce))
            return &sc->groups[k];
    PlotScalingGroup *groups = realloc(sc->groups, (sc->n_groups + 1) * sizeof *groups);
    if (!groups) {
        crnn_fail_nomem(err, "out of memory reading the runs");
        return NULL;
    }
    sc->groups = groups;
    PlotScalingGroup *g = &groups[sc->n_groups];
    memset(g, 0, sizeof *g);
    size_t n = (scaling ? strlen(scaling) : 0) + (allreduce ? strlen(allreduce) : 0) + 8;
    g->label = crnn_malloc(n, err);
    if (!g->label) return NULL;
    if (scaling && allreduce) snprintf(g->label, n, "%s, %s", scaling, allreduce);
    else snprintf(g->label, n, "%s", scaling ? scaling : allreduce ? allreduce : "runs");
    sc->n_groups++; /* from here on plot_scaling_free frees it */
    g->slug = group_slug(sc, sc->n_groups - 1, g->label, err);
    if (!g->slug) return NULL;
    if ((scaling && !(g->scaling = dup_or_null(scaling, err))) ||
        (allreduce && !(g->allreduce = dup_or_null(allreduce, err))))
        return NULL;
    return g;
}

/* A run's "scaling" or "allreduce": its text, or NULL when absent or null. */
static int run_string(json_t *run, const char *key, const char *examples, const char **out,
                      const char *path, size_t i, CrnnError *err) {
    json_t *value = json_object_get(run, key);
    *out = NULL;
    if (!value || json_is_null(value)) return 0;
    if (!json_is_string(value))
        return crnn_fail(err, "%s: runs[%zu]: \"%s\" is not a string such as %s; fix or delete that run",
                         path, i, key, examples);
    *out = json_string_value(value);
    return 0;
}

/* A run's value of key as a point (ranks, value * scale) of s: nothing when the key is absent,
 * skipped and counted when null or not finite, an error when not a number. */
static int run_point(PlotScaling *sc, PlotSeries *s, json_t *run, const char *key, double ranks,
                     double scale, const char *path, size_t i, CrnnError *err) {
    if (!json_object_get(run, key)) return 0;
    double v;
    int got = record_number(run, key, &v);
    if (got < 0)
        return crnn_fail(err, "%s: runs[%zu]: \"%s\" is not a number; fix or delete that run", path, i, key);
    if (got == 0) {
        sc->skipped++;
        return 0;
    }
    return series_push(s, ranks, v * scale, err);
}

static int read_run(PlotScaling *sc, json_t *run, const char *path, size_t i, CrnnError *err) {
    if (!json_is_object(run))
        return crnn_fail(err, "%s: runs[%zu] is not a JSON object; each run is one object such as {\"scaling\": \"weak\", \"ranks\": 2, ...}",
                         path, i);
    json_t *value = json_object_get(run, "ranks");
    if (!value)
        return crnn_fail(err, "%s: runs[%zu] has no \"ranks\"; each run needs its number of ranks, a positive integer",
                         path, i);
    double ranks = json_is_integer(value) ? (double)json_integer_value(value)
                   : json_is_real(value)  ? json_real_value(value)
                                          : NAN;
    if (!(ranks >= 1 && ranks == floor(ranks) && isfinite(ranks))) {
        char *shown = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
        int rc = crnn_fail(err, "%s: runs[%zu]: \"ranks\" is %.40s, not a positive integer; fix or delete that run",
                           path, i, shown ? shown : "not a number");
        free(shown);
        return rc;
    }
    const char *scaling, *allreduce;
    if (run_string(run, "scaling", "\"weak\" or \"strong\"", &scaling, path, i, err) ||
        run_string(run, "allreduce", "\"flat\" or \"overlap\"", &allreduce, path, i, err))
        return -1;
    PlotScalingGroup *g = scaling_group(sc, scaling, allreduce, err);
    if (!g) return -1;
    if (run_point(sc, &g->efficiency, run, "efficiency", ranks, 100.0, path, i, err) ||
        run_point(sc, &g->compute_ms, run, "compute_ms", ranks, 1.0, path, i, err) ||
        run_point(sc, &g->comm_ms, run, "comm_ms", ranks, 1.0, path, i, err) ||
        run_point(sc, &g->io_ms, run, "io_ms", ranks, 1.0, path, i, err))
        return -1;
    return 0;
}

/* "scaling: <model>, <launcher>", or the file's name when the results name neither. */
static char *scaling_title(json_t *doc, const char *path, CrnnError *err) {
    const char *model = json_string_value(json_object_get(doc, "model"));
    const char *launcher = json_string_value(json_object_get(doc, "launcher"));
    const char *slash = strrchr(path, '/');
    if (!model && !launcher) model = slash ? slash + 1 : path;
    size_t n = (model ? strlen(model) : 0) + (launcher ? strlen(launcher) : 0) + 16;
    char *title = crnn_malloc(n, err);
    if (!title) return NULL;
    if (model && launcher) snprintf(title, n, "scaling: %s, %s", model, launcher);
    else snprintf(title, n, "scaling: %s", model ? model : launcher);
    return title;
}

static int read_scaling_doc(PlotScaling *sc, json_t *doc, const char *path, CrnnError *err) {
    if (!json_is_object(doc))
        return crnn_fail(err, "%s is not a JSON object; a scaling benchmark's results are one object {\"benchmark\": \"scaling\", \"runs\": [...]}",
                         path);
    json_t *runs = json_object_get(doc, "runs");
    if (!runs)
        return crnn_fail(err, "%s has no \"runs\"; a scaling benchmark's results list their runs as \"runs\": [{\"ranks\": 2, ...}, ...]",
                         path);
    if (!json_is_array(runs))
        return crnn_fail(err, "%s: \"runs\" is not an array; a scaling benchmark's results list their runs as \"runs\": [{\"ranks\": 2, ...}, ...]",
                         path);
    if (json_array_size(runs) == 0)
        return crnn_fail(err, "%s: \"runs\" is empty, so there is nothing to plot; did the benchmark finish?", path);
    sc->title = scaling_title(doc, path, err);
    if (!sc->title) return -1;
    sc->runs = json_array_size(runs);
    for (size_t i = 0; i < sc->runs; i++)
        if (read_run(sc, json_array_get(runs, i), path, i, err)) return -1;
    size_t points = 0;
    for (size_t k = 0; k < sc->n_groups; k++) {
        PlotScalingGroup *g = &sc->groups[k];
        points += g->efficiency.n + g->compute_ms.n + g->comm_ms.n + g->io_ms.n;
        if (series_sort(&g->efficiency, err) || series_sort(&g->compute_ms, err) ||
            series_sort(&g->comm_ms, err) || series_sort(&g->io_ms, err))
            return -1;
    }
    if (points == 0)
        return crnn_fail(err, "%s holds no efficiency or step times to plot (%zu runs, %zu non-finite values skipped)",
                         path, sc->runs, sc->skipped);
    return 0;
}

int plot_read_scaling(PlotScaling *sc, const char *path, CrnnError *err) {
    memset(sc, 0, sizeof *sc);
    char *text = read_text(path, err);
    if (!text) return -1;
    json_error_t jerr;
    json_t *doc = load_json_text(text, 0, &jerr);
    free(text);
    if (!doc)
        return crnn_fail(err, "%s is not JSON (%s at line %d, column %d); a scaling benchmark's results are one JSON object",
                         path, jerr.text, jerr.line, jerr.column);
    int rc = read_scaling_doc(sc, doc, path, err);
    json_decref(doc);
    if (rc) plot_scaling_free(sc);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Names */

static int ends_with_nocase(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

int plot_format_from_name(const char *path, PlotFormat *format, CrnnError *err) {
    if (ends_with_nocase(path, ".png")) *format = PLOT_PNG;
    else if (ends_with_nocase(path, ".svg")) *format = PLOT_SVG;
    else
        return crnn_fail(err, "cannot tell the picture format of %s from its name; end it in .png or .svg",
                         path);
    return 0;
}

char *plot_default_output(const char *input_path, CrnnError *err) {
    size_t n = strlen(input_path);
    if (ends_with_nocase(input_path, ".jsonl")) n -= 6;
    else if (ends_with_nocase(input_path, ".json")) n -= 5;
    char *out = crnn_malloc(n + 5, err);
    if (!out) return NULL;
    memcpy(out, input_path, n);
    memcpy(out + n, ".png", 5);
    return out;
}

/* ---------------------------------------------------------------------------------------- */
/* Axes, shared by both writers */

/* Ticks at first, first + step, ..., up to hi, within the range [lo, hi]. On a log2 axis lo, hi,
 * first and step are powers of two's exponents, and a tick is labelled with the power itself. */
typedef struct Axis {
    double lo, hi, first, step;
    int ticks;
    int decimals; /* for tick labels */
    int log2;
} Axis;

static double nice_step(double raw) {
    double e = floor(log10(raw)), base = pow(10.0, e), f = raw / base;
    double nice = f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0;
    return nice * base;
}

static void series_extent(const PlotSeries *s, int use_y, double *lo, double *hi) {
    for (size_t i = 0; i < s->n; i++) {
        double v = use_y ? s->y[i] : s->x[i];
        if (v < *lo) *lo = v;
        if (v > *hi) *hi = v;
    }
}

/* An axis over [lo, hi] (lo > hi: no data) widened to whole ticks. A constant widens by 10%
 * (or 1 around zero) so that nothing divides by zero; otherwise margin (a fraction of the span)
 * is added at both ends. min_step: 1 for iterations; intervals: about how many tick intervals. */
static Axis axis_fit(double lo, double hi, int include_zero, double margin, double min_step,
                     int intervals) {
    Axis a = {0};
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (include_zero) {
        if (lo > 0) lo = 0;
        if (hi < 0) hi = 0;
        if (lo == 0 && hi == 0) hi = 1;
    }
    if (hi - lo <= 1e-12 * fmax(fabs(lo), fabs(hi))) {
        double pad = fabs(lo) > 0 ? 0.1 * fabs(lo) : 1.0;
        if (pad < min_step) pad = min_step;
        lo -= pad;
        hi += pad;
    } else if (margin > 0) { /* room so that no point sits on the frame */
        double span = hi - lo, was_lo = lo;
        if (!(include_zero && lo == 0)) lo -= margin * span;
        if (was_lo >= 0 && lo < 0) lo = 0;
        hi += margin * span;
    }
    double step = (hi - lo) / intervals;
    if (isfinite(step) && step > 0) step = nice_step(step);
    if (step < min_step) step = min_step;
    double nlo = floor(lo / step) * step, nhi = ceil(hi / step) * step;
    if (isfinite(nlo) && isfinite(nhi) && nhi > nlo) lo = nlo, hi = nhi;
    double count = floor((hi - lo) / step + 1e-6);
    if (!(count >= 1 && count <= 40)) { /* enormous values: just the two ends */
        step = hi - lo;
        count = 1;
    }
    a.lo = lo;
    a.hi = hi;
    a.first = lo;
    a.step = step;
    a.ticks = (int)count + 1;
    a.decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (a.decimals > 10) a.decimals = 10;
    return a;
}

/* A log2 axis over the positive [lo, hi] (lo > hi: no data): ticks at the powers of two from
 * the one at or below lo to the one at or above hi (every other one, or fewer, past 12
 * intervals), and a fifth of a doubling of room at both ends so that no point sits on the frame.
 * A single power p spans p/2 to 2p (1 to 2 for p = 1). */
static Axis axis_fit_log2(double lo, double hi) {
    Axis a = {0};
    if (!(lo <= hi) || !(lo > 0)) lo = hi = 1;
    double elo = floor(log2(lo) + 1e-9), ehi = ceil(log2(hi) - 1e-9);
    if (ehi <= elo) {
        ehi = elo + 1;
        if (elo >= 1) elo -= 1;
    }
    double step = ceil((ehi - elo) / 12);
    elo = floor(elo / step) * step;
    ehi = ceil(ehi / step) * step;
    a.log2 = 1;
    a.first = elo;
    a.step = step;
    a.ticks = (int)((ehi - elo) / step + 0.5) + 1;
    a.lo = elo - 0.2;
    a.hi = ehi + 0.2;
    return a;
}

/* A tick's position in the axis's units (an exponent on a log2 axis). */
static double axis_tick(const Axis *a, int k) {
    double v = a->first + k * a->step;
    return v > a->hi ? a->hi : v;
}

/* A value in the axis's units, and back. */
static double axis_units(const Axis *a, double value) {
    return a->log2 ? log2(value) : value;
}

static double axis_value(const Axis *a, double units) {
    return a->log2 ? exp2(units) : units;
}

static void axis_label(const Axis *a, double v, char *out, size_t cap) {
    if (a->log2) {
        snprintf(out, cap, "%.0f", exp2(v));
        return;
    }
    if (fabs(v) < 1e-9 * a->step) v = 0; /* no "-0.00" */
    if (fmax(fabs(a->lo), fabs(a->hi)) >= 1e9) snprintf(out, cap, "%.3g", v);
    else snprintf(out, cap, "%.*f", a->decimals, v);
}

typedef struct PlotAxes {
    Axis x, loss, speed;
} PlotAxes;

static PlotAxes plot_axes(const PlotData *d) {
    double xlo = INFINITY, xhi = -INFINITY, llo = INFINITY, lhi = -INFINITY, slo = INFINITY,
           shi = -INFINITY;
    series_extent(&d->train_loss, 0, &xlo, &xhi);
    series_extent(&d->val_loss, 0, &xlo, &xhi);
    series_extent(&d->chars_per_s, 0, &xlo, &xhi);
    series_extent(&d->train_loss, 1, &llo, &lhi);
    series_extent(&d->val_loss, 1, &llo, &lhi);
    series_extent(&d->chars_per_s, 1, &slo, &shi);
    PlotAxes a;
    a.x = axis_fit(xlo, xhi, 0, 0.0, d->x == PLOT_X_ITERATION ? 1.0 : 0.0, 5);
    a.loss = axis_fit(llo, lhi, 0, 0.03, 0.0, 5);
    a.speed = axis_fit(slo, shi, 1, 0.05, 0.0, 3);
    return a;
}

/* Text safe for XML and gnuplot: control characters and bytes that are not UTF-8 become '?'. */
static void clean_text(const char *in, char *out, size_t cap) {
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)in;
    while (*s && o + 5 < cap) {
        int len = *s < 0x80 ? 1 : (*s & 0xE0) == 0xC0 ? 2 : (*s & 0xF0) == 0xE0 ? 3 : (*s & 0xF8) == 0xF0 ? 4 : 0;
        int ok = len > 0 && !(len == 1 && *s < 0x20) && !(len == 2 && *s < 0xC2);
        for (int k = 1; ok && k < len; k++) ok = (s[k] & 0xC0) == 0x80;
        if (!ok) {
            out[o++] = '?';
            s++;
            continue;
        }
        for (int k = 0; k < len; k++) out[o++] = (char)s[k];
        s += len;
    }
    out[o] = '\0';
}

/* ---------------------------------------------------------------------------------------- */
/* Figures: what both writers draw */

enum { LINE_SOLID = 1, LINE_DASHED = 2, LINE_DOTTED = 3 }; /* gnuplot's dash types */

typedef struct FigureStyle {
    const char *color;
    double width;
    int dash;    /* LINE_* */
    int markers; /* 1: a dot at every point */
} FigureStyle;

typedef struct FigureSeries {
    const PlotSeries *points; /* at least one */
    FigureStyle style;
    char id[80];          /* the SVG polyline's id and class */
    char markers_id[96];  /* the SVG group of its dots, when style.markers */
} FigureSeries;

typedef struct FigureKey { /* a legend entry */
    const char *text;
    FigureStyle style;
} FigureKey;

typedef enum { KEY_TOP_RIGHT, KEY_BOTTOM_LEFT } KeyPlace;

typedef struct FigurePanel {
    const char *id, *legend_id; /* SVG ids of the panel's group and of its legend */
    const char *x_title, *y_title;
    const char *no_data; /* the note in a panel without series */
    Axis x, y;
    double top, bottom;         /* SVG: the plot area, in pixels from the top */
    double gp_origin, gp_size;  /* gnuplot: the panel's place, as fractions of the height */
    KeyPlace key_place;
    FigureSeries *series;
    size_t n_series, cap_series;
    FigureKey *keys;
    size_t n_keys, cap_keys;
} FigurePanel;

typedef struct Figure {
    const char *title;
    FigurePanel panels[2];
    int n_panels;
} Figure;

static void figure_free(Figure *fig) {
    for (int k = 0; k < 2; k++) {
        free(fig->panels[k].series);
        free(fig->panels[k].keys);
    }
    memset(fig, 0, sizeof *fig);
}

/* Room for up to max_series series and max_keys legend entries. */
static int panel_alloc(FigurePanel *p, size_t max_series, size_t max_keys, CrnnError *err) {
    p->series = crnn_calloc(max_series ? max_series : 1, sizeof *p->series, err);
    p->keys = crnn_calloc(max_keys ? max_keys : 1, sizeof *p->keys, err);
    if (!p->series || !p->keys) return -1;
    p->cap_series = max_series;
    p->cap_keys = max_keys;
    return 0;
}

/* Adds s (when it has points) with its SVG id prefix + suffix; markers go in "<id>-markers"
 * unless markers_id names their group. */
static void panel_add_series(FigurePanel *p, const PlotSeries *s, FigureStyle style,
                             const char *prefix, const char *suffix, const char *markers_id) {
    if (s->n == 0 || p->n_series == p->cap_series) return;
    FigureSeries *fs = &p->series[p->n_series++];
    fs->points = s;
    fs->style = style;
    snprintf(fs->id, sizeof fs->id, "%s%s", prefix, suffix);
    if (markers_id) snprintf(fs->markers_id, sizeof fs->markers_id, "%s", markers_id);
    else snprintf(fs->markers_id, sizeof fs->markers_id, "%s-markers", fs->id);
}

static void panel_add_key(FigurePanel *p, const char *text, FigureStyle style) {
    if (p->n_keys < p->cap_keys) p->keys[p->n_keys++] = (FigureKey){text, style};
}

#define COLOR_TRAIN "#1f77b4"
#define COLOR_VAL "#d62728"
#define COLOR_SPEED "#2ca02c"
#define COLOR_KEY "#555555" /* legend entries that show a line's dash, not a group's colour */

/* The metrics figure: train and validation loss against the iteration (epoch, time); chars/s
 * below. */
static int figure_metrics(Figure *fig, const PlotData *d, const char *title, CrnnError *err) {
    memset(fig, 0, sizeof *fig);
    PlotAxes axes = plot_axes(d);
    fig->title = title;
    fig->n_panels = 2;
    FigurePanel *loss = &fig->panels[0], *speed = &fig->panels[1];
    const char *x_title = d->x_title ? d->x_title : "iteration";
    *loss = (FigurePanel){.id = "loss-panel", .legend_id = "legend", .x_title = x_title,
                          .y_title = "loss (nats per character)", .no_data = "no loss in the metrics",
                          .x = axes.x, .y = axes.loss, .top = 48, .bottom = 388, .gp_origin = 0.36,
                          .gp_size = 0.58, .key_place = KEY_TOP_RIGHT};
    *speed = (FigurePanel){.id = "speed-panel", .x_title = x_title, .y_title = "chars/s",
                           .no_data = "no chars/s in the metrics", .x = axes.x, .y = axes.speed,
                           .top = 458, .bottom = 606, .gp_origin = 0, .gp_size = 0.36};
    if (panel_alloc(loss, 2, 2, err) || panel_alloc(speed, 1, 0, err)) return -1;
    FigureStyle train = {COLOR_TRAIN, 1.0, LINE_SOLID, 0}, val = {COLOR_VAL, 2.5, LINE_SOLID, 1},
                cps = {COLOR_SPEED, 1.5, LINE_SOLID, 0};
    panel_add_series(loss, &d->train_loss, train, "train-loss", "", NULL);
    panel_add_series(loss, &d->val_loss, val, "val-loss", "", "val-markers");
    if (d->train_loss.n) panel_add_key(loss, "train loss", train);
    if (d->val_loss.n) panel_add_key(loss, "validation loss", val);
    panel_add_series(speed, &d->chars_per_s, cps, "chars-per-s", "", NULL);
    return 0;
}

static const char *const group_colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                           "#9467bd", "#8c564b", "#e377c2", "#17becf"};

/* The scaling figure: efficiency against ranks, one line per (scaling, allreduce) group; below,
 * milliseconds per step against ranks, compute solid, exposed communication dashed, io dotted,
 * in the group's colour. The groups' legend is on the efficiency panel (or, when that has
 * nothing, on the other), the dashes' legend on the milliseconds panel. */
static int figure_scaling(Figure *fig, const PlotScaling *sc, CrnnError *err) {
    memset(fig, 0, sizeof *fig);
    double xlo = INFINITY, xhi = -INFINITY, elo = INFINITY, ehi = -INFINITY, mlo = INFINITY,
           mhi = -INFINITY;
    size_t n_eff = 0, n_compute = 0, n_comm = 0, n_io = 0;
    for (size_t k = 0; k < sc->n_groups; k++) {
        const PlotScalingGroup *g = &sc->groups[k];
        const PlotSeries *ms[] = {&g->compute_ms, &g->comm_ms, &g->io_ms};
        series_extent(&g->efficiency, 0, &xlo, &xhi);
        series_extent(&g->efficiency, 1, &elo, &ehi);
        for (size_t j = 0; j < CRNN_ARRAY_LEN(ms); j++) {
            series_extent(ms[j], 0, &xlo, &xhi);
            series_extent(ms[j], 1, &mlo, &mhi);
        }
        n_eff += g->efficiency.n;
        n_compute += g->compute_ms.n;
        n_comm += g->comm_ms.n;
        n_io += g->io_ms.n;
    }
    if (!(elo <= ehi)) elo = 0, ehi = 100;
    if (ehi < 100) ehi = 100; /* full efficiency always in view */
    Axis x = axis_fit_log2(xlo, xhi);
    fig->title = sc->title;
    fig->n_panels = 2;
    FigurePanel *eff = &fig->panels[0], *ms = &fig->panels[1];
    *eff = (FigurePanel){.id = "efficiency-panel", .legend_id = "efficiency-legend",
                         .x_title = "ranks", .y_title = "parallel efficiency (%)",
                         .no_data = "no efficiency in the results", .x = x,
                         .y = axis_fit(elo, ehi, 1, 0.05, 0.0, 6), .top = 48, .bottom = 300,
                         .gp_origin = 0.5, .gp_size = 0.44, .key_place = KEY_BOTTOM_LEFT};
    *ms = (FigurePanel){.id = "ms-panel", .legend_id = "ms-legend", .x_title = "ranks",
                        .y_title = "ms per step", .no_data = "no step times in the results", .x = x,
                        .y = axis_fit(mlo, mhi, 1, 0.05, 0.0, 5), .top = 370, .bottom = 606,
                        .gp_origin = 0, .gp_size = 0.5, .key_place = KEY_TOP_RIGHT};
    FigurePanel *groups_legend = n_eff ? eff : ms;
    if (panel_alloc(eff, sc->n_groups, n_eff ? sc->n_groups : 0, err) ||
        panel_alloc(ms, 3 * sc->n_groups, 3 + (n_eff ? 0 : sc->n_groups), err))
        return -1;
    for (size_t k = 0; k < sc->n_groups; k++) {
        const PlotScalingGroup *g = &sc->groups[k];
        const char *color = group_colors[k % CRNN_ARRAY_LEN(group_colors)];
        FigureStyle line = {color, 2.0, LINE_SOLID, 1};
        panel_add_series(eff, &g->efficiency, line, "efficiency-", g->slug, NULL);
        panel_add_series(ms, &g->compute_ms, line, "compute-", g->slug, NULL);
        panel_add_series(ms, &g->comm_ms, (FigureStyle){color, 2.0, LINE_DASHED, 1}, "comm-", g->slug, NULL);
        panel_add_series(ms, &g->io_ms, (FigureStyle){color, 1.2, LINE_DOTTED, 0}, "io-", g->slug, NULL);
        if (g->efficiency.n + g->compute_ms.n + g->comm_ms.n + g->io_ms.n)
            panel_add_key(groups_legend, g->label, line);
    }
    if (n_compute) panel_add_key(ms, "compute", (FigureStyle){COLOR_KEY, 2.0, LINE_SOLID, 1});
    if (n_comm) panel_add_key(ms, "exposed comm", (FigureStyle){COLOR_KEY, 2.0, LINE_DASHED, 1});
    if (n_io) panel_add_key(ms, "io", (FigureStyle){COLOR_KEY, 1.2, LINE_DOTTED, 0});
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* SVG */

enum { SVG_W = 900, SVG_H = 660, SVG_LEFT = 84, SVG_RIGHT = 870 };

/* A data point's place in a panel, in pixels. */
static double panel_px(const FigurePanel *p, double x) {
    return SVG_LEFT + (axis_units(&p->x, x) - p->x.lo) / (p->x.hi - p->x.lo) * (SVG_RIGHT - SVG_LEFT);
}

static double panel_py(const FigurePanel *p, double y) {
    return p->bottom - (axis_units(&p->y, y) - p->y.lo) / (p->y.hi - p->y.lo) * (p->bottom - p->top);
}

static void svg_text(FILE *f, const char *text) {
    char clean[1024];
    clean_text(text, clean, sizeof clean);
    for (const char *c = clean; *c; c++) {
        switch (*c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*c, f);
        }
    }
}

static void svg_axes(FILE *f, const FigurePanel *p) {
    fprintf(f, "<rect class=\"frame\" x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n",
            SVG_LEFT, p->top, SVG_RIGHT - SVG_LEFT, p->bottom - p->top);
    char label[64];
    fputs("<g class=\"x-ticks\" text-anchor=\"middle\">\n", f);
    for (int k = 0; k < p->x.ticks; k++) {
        double v = axis_tick(&p->x, k), px = panel_px(p, axis_value(&p->x, v));
        axis_label(&p->x, v, label, sizeof label);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                   "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                px, p->top, px, p->bottom, px, p->bottom, px, p->bottom + 5, px, p->bottom + 18, label);
    }
    fputs("</g>\n<g class=\"y-ticks\" text-anchor=\"end\">\n", f);
    for (int k = 0; k < p->y.ticks; k++) {
        double v = axis_tick(&p->y, k), py = panel_py(p, axis_value(&p->y, v));
        axis_label(&p->y, v, label, sizeof label);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                   "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#444\"/>"
                   "<text x=\"%d\" y=\"%.1f\">%s</text>\n",
                SVG_LEFT, py, SVG_RIGHT, py, SVG_LEFT - 5, py, SVG_LEFT, py, SVG_LEFT - 8, py + 4, label);
    }
    fputs("</g>\n", f);
    fprintf(f, "<text class=\"x-title\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
            (SVG_LEFT + SVG_RIGHT) / 2.0, p->bottom + 36);
    svg_text(f, p->x_title);
    double cy = (p->top + p->bottom) / 2;
    fprintf(f, "</text>\n<text class=\"y-title\" x=\"0\" y=\"0\" text-anchor=\"middle\" transform=\"translate(22 %.1f) rotate(-90)\">",
            cy);
    svg_text(f, p->y_title);
    fputs("</text>\n", f);
}

static const char *svg_dash(int dash) {
    return dash == LINE_DASHED ? " stroke-dasharray=\"7 4\"" : dash == LINE_DOTTED ? " stroke-dasharray=\"2 3\"" : "";
}

/* A series as one polyline (id and class its id); its dots in a group of their own when it has
 * markers, else a dot when it has a single point. */
static void svg_series(FILE *f, const FigurePanel *p, const FigureSeries *fs) {
    const PlotSeries *s = fs->points;
    const FigureStyle *st = &fs->style;
    fprintf(f, "<polyline id=\"%s\" class=\"series %s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"%s stroke-linejoin=\"round\" points=\"",
            fs->id, fs->id, st->color, st->width, svg_dash(st->dash));
    for (size_t i = 0; i < s->n; i++)
        fprintf(f, "%s%.1f,%.1f", i ? " " : "", panel_px(p, s->x[i]), panel_py(p, s->y[i]));
    fputs("\"/>\n", f);
    if (st->markers) {
        fprintf(f, "<g id=\"%s\" class=\"markers\">", fs->markers_id);
        for (size_t i = 0; i < s->n; i++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>", panel_px(p, s->x[i]),
                    panel_py(p, s->y[i]), st->color);
        fputs("</g>\n", f);
    } else if (s->n == 1) {
        fprintf(f, "<circle class=\"point %s-point\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", fs->id,
                panel_px(p, s->x[0]), panel_py(p, s->y[0]), st->width + 2, st->color);
    }
}

static void svg_legend(FILE *f, const FigurePanel *p) {
    size_t longest = 0;
    for (size_t k = 0; k < p->n_keys; k++)
        if (strlen(p->keys[k].text) > longest) longest = strlen(p->keys[k].text);
    double w = fmax(160, 52 + 7.0 * (double)longest), h = 8 + 20.0 * (double)p->n_keys;
    double lx = p->key_place == KEY_TOP_RIGHT ? SVG_RIGHT - 10 - w : SVG_LEFT + 10;
    double ly = p->key_place == KEY_TOP_RIGHT ? p->top + 10 : p->bottom - 10 - h;
    fprintf(f, "<g id=\"%s\" class=\"legend\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999\"/>\n",
            p->legend_id, lx, ly, w, h);
    for (size_t k = 0; k < p->n_keys; k++) {
        const FigureStyle *st = &p->keys[k].style;
        double x = lx + 8, y = ly + 14 + 20.0 * (double)k;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\"%s/>",
                x, y, x + 28, y, st->color, st->width, svg_dash(st->dash));
        if (st->markers) fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>", x + 14, y, st->color);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", x + 36, y + 4);
        svg_text(f, p->keys[k].text);
        fputs("</text>\n", f);
    }
    fputs("</g>\n", f);
}

static void svg_document(FILE *f, const Figure *fig) {
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n<title>",
            SVG_W, SVG_H, SVG_W, SVG_H);
    svg_text(f, fig->title);
    fputs("</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n", f);
    fprintf(f, "<text class=\"title\" x=\"%d\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">", SVG_W / 2);
    svg_text(f, fig->title);
    fputs("</text>\n", f);
    for (int k = 0; k < fig->n_panels; k++) {
        const FigurePanel *p = &fig->panels[k];
        fprintf(f, "<g id=\"%s\" class=\"panel\">\n", p->id);
        svg_axes(f, p);
        for (size_t j = 0; j < p->n_series; j++) svg_series(f, p, &p->series[j]);
        if (p->n_series == 0)
            fprintf(f, "<text class=\"no-data\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#777\">%s</text>\n",
                    (SVG_LEFT + SVG_RIGHT) / 2.0, (p->top + p->bottom) / 2 + 4, p->no_data);
        else if (p->n_keys)
            svg_legend(f, p);
        fputs("</g>\n", f);
    }
    fputs("</svg>\n", f);
}

static int figure_write_svg(const Figure *fig, const char *path, CrnnError *err) {
    AtomicFile af;
    if (atomic_file_create(&af, path, err)) return -1;
    FILE *f = atomic_file_stream(&af, err);
    if (!f) {
        atomic_file_abandon(&af);
        return -1;
    }
    svg_document(f, fig);
    return atomic_file_commit(&af, err);
}

/* ---------------------------------------------------------------------------------------- */
/* PNG through gnuplot */

/* A gnuplot single-quoted string: ' doubles, nothing else is special. */
static void gp_quoted(FILE *f, const char *text) {
    char clean[4096];
    clean_text(text, clean, sizeof clean);
    fputc('\'', f);
    for (const char *c = clean; *c; c++) {
        if (*c == '\'') fputc('\'', f);
        fputc(*c, f);
    }
    fputc('\'', f);
}

static int gp_write_data(const char *file, const PlotSeries *s, CrnnError *err) {
    FILE *f = fopen(file, "w");
    if (!f) return crnn_fail(err, "cannot write %s: %s", file, strerror(errno));
    for (size_t i = 0; i < s->n; i++) fprintf(f, "%.17g %.9g\n", s->x[i], s->y[i]);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return crnn_fail(err, "cannot write %s (disk full?)", file);
    return 0;
}

static void gp_axis(FILE *f, const char *name, const Axis *a) {
    if (a->log2) {
        double last = a->first + (a->ticks - 1) * a->step;
        fprintf(f, "set logscale %s 2\nunset m%stics\nset %srange [%.17g:%.17g]\nset %stics %.17g, %.17g, %.17g\n"
                   "set format %s \"%%.0f\"\n",
                name, name, name, exp2(a->lo), exp2(a->hi), name, exp2(a->first), exp2(a->step),
                exp2(last), name);
        return;
    }
    fprintf(f, "unset logscale %s\nset %srange [%.17g:%.17g]\nset %stics %.17g, %.17g, %.17g\n", name,
            name, a->lo, a->hi, name, a->first, a->step, a->hi);
    if (fmax(fabs(a->lo), fabs(a->hi)) >= 1e9) fprintf(f, "set format %s \"%%.3g\"\n", name);
    else fprintf(f, "set format %s \"%%.%df\"\n", name, a->decimals);
}

/* " with ... lc rgb '...'" for a series (single: it has one point) or a legend entry. */
static void gp_with(FILE *f, const FigureStyle *st, int single) {
    fprintf(f, " with %s lw %.1f dt %d lc rgb '%s'",
            st->markers ? "linespoints pt 7 ps 0.9" : single ? "linespoints pt 7 ps 0.8" : "lines",
            st->width, st->dash, st->color);
}

/* files: the series' data files, panel after panel. A legend entry is a NaN function, which
 * draws nothing but its entry. */
static void gp_script(FILE *f, const Figure *fig, const char *out, char *const *files) {
    fputs("# written by crnn-plot\n"
          "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
          "  set terminal pngcairo size 1000,750 noenhanced font 'DejaVu Sans,10'\n"
          "} else {\n"
          "  set terminal png size 1000,750 noenhanced\n"
          "}\n"
          "set output ", f);
    gp_quoted(f, out);
    fputs("\nset multiplot title ", f);
    gp_quoted(f, fig->title);
    fputs(" font ',13'\n"
          "set lmargin 12\nset rmargin 4\n"
          "set grid xtics ytics lt 1 lc rgb '#e0e0e0' lw 1\n"
          "set border lc rgb '#444444'\n",
          f);
    size_t file = 0;
    for (int k = 0; k < fig->n_panels; k++) {
        const FigurePanel *p = &fig->panels[k];
        fprintf(f, "set origin 0, %g\nset size 1, %g\nset xlabel ", p->gp_origin, p->gp_size);
        gp_quoted(f, p->x_title);
        fputs("\nset ylabel ", f);
        gp_quoted(f, p->y_title);
        fputs("\n", f);
        gp_axis(f, "x", &p->x);
        gp_axis(f, "y", &p->y);
        if (p->n_series == 0) {
            /* nothing to draw: an empty frame with a note (a line below the range draws nothing) */
            fputs("unset key\nset label 1 ", f);
            gp_quoted(f, p->no_data);
            fprintf(f, " at graph 0.5, 0.5 center tc rgb '#777777'\nplot %.17g notitle\nunset label 1\n",
                    p->y.lo - (p->y.hi - p->y.lo));
            continue;
        }
        if (p->n_keys == 0) fputs("unset key\n", f);
        else if (p->key_place == KEY_TOP_RIGHT) fputs("set key top right box opaque width 1\n", f);
        else fputs("set key bottom left box opaque width 1\n", f);
        fputs("plot ", f);
        for (size_t j = 0; j < p->n_keys; j++) {
            fputs(j ? ", NaN" : "NaN", f);
            gp_with(f, &p->keys[j].style, 0);
            fputs(" title ", f);
            gp_quoted(f, p->keys[j].text);
        }
        for (size_t j = 0; j < p->n_series; j++) {
            if (j || p->n_keys) fputs(", ", f);
            gp_quoted(f, files[file++]);
            fputs(" using 1:2", f);
            gp_with(f, &p->series[j].style, p->series[j].points->n == 1);
            fputs(" notitle", f);
        }
        fputs("\n", f);
    }
    fputs("unset multiplot\nset output\n", f);
}

/* Runs `gnuplot script` with its output in log; 0 when it exited 0. */
static int gp_run(const char *script, const char *log, CrnnError *err) {
    int pipefd[2];
    if (pipe(pipefd) < 0) return crnn_fail(err, "cannot start gnuplot: pipe: %s", strerror(errno));
    fcntl(pipefd[1], F_SETFD, FD_CLOEXEC);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pipefd[0]);
        close(pipefd[1]);
        return crnn_fail(err, "cannot start gnuplot: fork: %s", strerror(e));
    }
    if (pid == 0) {
        close(pipefd[0]);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        char *argv[] = {"gnuplot", (char *)script, NULL};
        execvp("gnuplot", argv);
        int e = errno; /* exec failed: tell the parent why */
        if (write(pipefd[1], &e, sizeof e) < 0) _exit(127);
        _exit(127);
    }
    close(pipefd[1]);
    int exec_errno = 0;
    ssize_t got;
    do got = read(pipefd[0], &exec_errno, sizeof exec_errno);
    while (got < 0 && errno == EINTR);
    close(pipefd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got == (ssize_t)sizeof exec_errno) {
        if (exec_errno == ENOENT)
            return crnn_fail(err, "gnuplot is not installed, and PNG output needs it; install it (Debian: apt-get install gnuplot-nox) or write an SVG instead with -o NAME.svg");
        return crnn_fail(err, "cannot run gnuplot: %s; write an SVG instead with -o NAME.svg",
                         strerror(exec_errno));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    char text[600] = "";
    FILE *lf = fopen(log, "r");
    if (lf) {
        size_t n = fread(text, 1, sizeof text - 1, lf);
        text[n] = '\0';
        fclose(lf);
        for (char *c = text; *c; c++)
            if (*c == '\n' || *c == '\r') *c = ' ';
    }
    if (WIFSIGNALED(status))
        return crnn_fail(err, "gnuplot was killed by signal %d (%s); write an SVG instead with -o NAME.svg",
                         WTERMSIG(status), text);
    return crnn_fail(err, "gnuplot failed (exit %d: %s); write an SVG instead with -o NAME.svg",
                     WEXITSTATUS(status), text);
}

static int figure_write_png(const Figure *fig, const char *path, CrnnError *err) {
    AtomicFile af; /* gnuplot writes the picture to af.tmp */
    if (atomic_file_create(&af, path, err)) return -1;
    const char *tmp = af.tmp;
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    char dir[4096], script[4200], log[4200];
    int rc = 0;
    if ((size_t)snprintf(dir, sizeof dir, "%s/crnn-plot-XXXXXX", base) >= sizeof dir || !mkdtemp(dir)) {
        rc = crnn_fail(err, "cannot make a temporary folder in %s: %s; set TMPDIR to a writable folder",
                       base, strerror(errno));
        atomic_file_abandon(&af);
        return rc;
    }
    snprintf(script, sizeof script, "%s/plot.gp", dir);
    snprintf(log, sizeof log, "%s/gnuplot.log", dir);
    size_t n_files = 0, written = 0;
    for (int k = 0; k < fig->n_panels; k++) n_files += fig->panels[k].n_series;
    char **files = crnn_calloc(n_files ? n_files : 1, sizeof *files, err);
    if (!files) rc = -1;
    for (int k = 0; k < fig->n_panels && rc == 0; k++) {
        for (size_t j = 0; j < fig->panels[k].n_series && rc == 0; j++) {
            files[written] = crnn_malloc(strlen(dir) + 40, err);
            if (!files[written]) {
                rc = -1;
                break;
            }
            sprintf(files[written], "%s/panel%d-%zu.dat", dir, k, j);
            written++;
            rc = gp_write_data(files[written - 1], fig->panels[k].series[j].points, err);
        }
    }
    if (rc == 0) {
        FILE *f = fopen(script, "w");
        if (!f) {
            rc = crnn_fail(err, "cannot write %s: %s", script, strerror(errno));
        } else {
            gp_script(f, fig, tmp, files);
            int bad = ferror(f);
            if (fclose(f) != 0 || bad) rc = crnn_fail(err, "cannot write %s (disk full?)", script);
        }
    }
    if (rc == 0) rc = gp_run(script, log, err);
    if (rc == 0) {
        /* gnuplot can exit 0 after an error in a script line; the picture must be there */
        unsigned char magic[8] = {0};
        FILE *f = fopen(tmp, "rb");
        size_t n = f ? fread(magic, 1, sizeof magic, f) : 0;
        if (f) fclose(f);
        if (n != 8 || memcmp(magic, "\x89PNG\r\n\x1a\n", 8) != 0)
            rc = crnn_fail(err, "gnuplot did not write a PNG to %s; write an SVG instead with -o NAME.svg", tmp);
    }
    if (rc) crnn_fail_context(err, "cannot write %s", path);
    for (size_t k = 0; k < written; k++) {
        unlink(files[k]);
        free(files[k]);
    }
    free(files);
    unlink(script);
    unlink(log);
    rmdir(dir);
    if (rc) atomic_file_abandon(&af);
    else rc = atomic_file_commit(&af, err);
    return rc;
}

static int figure_write(const Figure *fig, const char *path, CrnnError *err) {
    PlotFormat format;
    if (plot_format_from_name(path, &format, err)) return -1;
    return format == PLOT_SVG ? figure_write_svg(fig, path, err) : figure_write_png(fig, path, err);
}

/* ---------------------------------------------------------------------------------------- */
/* The figures' writers */

int plot_write_svg(const PlotData *data, const char *title, const char *path, CrnnError *err) {
    Figure fig;
    int rc = figure_metrics(&fig, data, title, err);
    if (rc == 0) rc = figure_write_svg(&fig, path, err);
    figure_free(&fig);
    return rc;
}

int plot_write_png(const PlotData *data, const char *title, const char *path, CrnnError *err) {
    Figure fig;
    int rc = figure_metrics(&fig, data, title, err);
    if (rc == 0) rc = figure_write_png(&fig, path, err);
    figure_free(&fig);
    return rc;
}

int plot_write(const PlotData *data, const char *title, const char *path, CrnnError *err) {
    Figure fig;
    int rc = figure_metrics(&fig, data, title, err);
    if (rc == 0) rc = figure_write(&fig, path, err);
    figure_free(&fig);
    return rc;
}

int plot_write_scaling(const PlotScaling *scaling, const char *path, CrnnError *err) {
    Figure fig;
    int rc = figure_scaling(&fig, scaling, err);
    if (rc == 0) rc = figure_write(&fig, path, err);
    figure_free(&fig);
    return rc;
}
