/* crnn-plot's reading: a crnn-train metrics file (docs/FORMATS.md section 4, one JSON object a
 * line) into PlotData's series, and a scaling benchmark's results (one JSON object) into
 * PlotScaling's groups. Drawing them is plot.c's (and plot_gnuplot.c's) job. */
#include "crnn/plot.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* The error for a metrics file read to its end without a loss to plot: why there is none (no x
 * of the kind asked for, no records, or none of them train or val). */
static int fail_nothing_to_plot(const PlotData *data, const char *path, size_t records,
                                CrnnError *err) {
    if (data->without_x > 0)
        return crnn_fail(err, "the metrics file %s has no \"%s\" in its train and val records (%zu of them; %s); plot it with -x iteration",
                         path, x_key(data->x), data->without_x,
                         data->x == PLOT_X_TIME ? "a crnn-train from before time_s was recorded wrote it"
                                                : "not a crnn-train metrics file?");
    if (records == 0)
        return crnn_fail(err, "the metrics file %s holds no records; crnn-train writes one every -print_every iterations, so wait for the first or check the file name",
                         path);
    return crnn_fail(err, "the metrics file %s holds no train or validation loss to plot (%zu records, %zu non-finite values skipped); is it a crnn-train metrics file?",
                     path, records, data->skipped);
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
    if (rc == 0 && data->train_loss.n == 0 && data->val_loss.n == 0)
        rc = fail_nothing_to_plot(data, path, records, err);
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
