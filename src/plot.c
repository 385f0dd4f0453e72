/* crnn-plot's library: the metrics file (FORMATS.md section 4) read into series, and the two
 * panels drawn by a small SVG writer or, for PNG, by Debian's gnuplot run on a script written
 * to a temporary folder. Both writers use the same axis ranges and ticks. */
#include "crnn/plot.h"

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
        if (!nx) return crnn_fail(err, "out of memory reading the metrics");
        s->x = nx;
        double *ny = realloc(s->y, cap * sizeof *ny);
        if (!ny) return crnn_fail(err, "out of memory reading the metrics");
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

int plot_read_metrics(PlotData *data, const char *path, CrnnError *err) {
    memset(data, 0, sizeof *data);
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
                rc = crnn_fail(err, "out of memory reading %s", path);
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
        if (records == 0)
            rc = crnn_fail(err, "the metrics file %s holds no records; crnn-train writes one every -print_every iterations, so wait for the first or check the file name",
                           path);
        else
            rc = crnn_fail(err, "the metrics file %s holds no train or validation loss to plot (%zu records, %zu non-finite values skipped); is it a crnn-train metrics file?",
                           path, records, data->skipped);
    }
    if (rc == 0) rc = series_sort(&data->train_loss, err);
    if (rc == 0) rc = series_sort(&data->val_loss, err);
    if (rc == 0) rc = series_sort(&data->chars_per_s, err);
    if (rc) plot_data_free(data);
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

char *plot_default_output(const char *metrics_path, CrnnError *err) {
    size_t n = strlen(metrics_path);
    if (ends_with_nocase(metrics_path, ".jsonl")) n -= 6;
    char *out = crnn_malloc(n + 5, err);
    if (!out) return NULL;
    memcpy(out, metrics_path, n);
    memcpy(out + n, ".png", 5);
    return out;
}

/* ---------------------------------------------------------------------------------------- */
/* Axes, shared by both writers */

typedef struct Axis {
    double lo, hi, step; /* ticks at lo, lo + step, ..., hi */
    int ticks;
    int decimals; /* for tick labels */
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
    Axis a;
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
    a.step = step;
    a.ticks = (int)count + 1;
    a.decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (a.decimals > 10) a.decimals = 10;
    return a;
}

static double axis_tick(const Axis *a, int k) {
    double v = a->lo + k * a->step;
    return v > a->hi ? a->hi : v;
}

static void axis_label(const Axis *a, double v, char *out, size_t cap) {
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
    a.x = axis_fit(xlo, xhi, 0, 0.0, 1.0, 5);
    a.loss = axis_fit(llo, lhi, 0, 0.03, 0.0, 5);
    a.speed = axis_fit(slo, shi, 1, 0.05, 0.0, 3);
    return a;
}

/* ---------------------------------------------------------------------------------------- */
/* Writing atomically */

static char *tmp_name(const char *path, CrnnError *err) {
    size_t n = strlen(path);
    char *tmp = crnn_malloc(n + 5, err);
    if (!tmp) return NULL;
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    return tmp;
}

/* Creates (truncates) the .tmp file, so that a folder that is missing or not writable is
 * reported with its reason before any work. */
static int create_tmp(const char *path, const char *tmp, CrnnError *err) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0)
        return crnn_fail(err, "cannot write %s: cannot create %s: %s; check that the folder exists and is writable",
                         path, tmp, strerror(errno));
    close(fd);
    return 0;
}

/* fsyncs tmp and renames it onto path; on failure removes tmp. */
static int commit_tmp(const char *path, const char *tmp, CrnnError *err) {
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) < 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        unlink(tmp);
        return crnn_fail(err, "cannot write %s: cannot fsync %s: %s", path, tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return crnn_fail(err, "cannot write %s: cannot rename %s onto it: %s; check that %s is not a folder",
                         path, tmp, strerror(e), path);
    }
    return 0;
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
/* SVG */

enum { SVG_W = 900, SVG_H = 660, SVG_LEFT = 84, SVG_RIGHT = 870 };

typedef struct Panel {
    double top, bottom; /* plot area, in pixels */
    const Axis *x, *y;
} Panel;

static double panel_px(const Panel *p, double x) {
    return SVG_LEFT + (x - p->x->lo) / (p->x->hi - p->x->lo) * (SVG_RIGHT - SVG_LEFT);
}

static double panel_py(const Panel *p, double y) {
    return p->bottom - (y - p->y->lo) / (p->y->hi - p->y->lo) * (p->bottom - p->top);
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

static void svg_axes(FILE *f, const Panel *p, const char *ytitle) {
    fprintf(f, "<rect class=\"frame\" x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n",
            SVG_LEFT, p->top, SVG_RIGHT - SVG_LEFT, p->bottom - p->top);
    char label[64];
    fputs("<g class=\"x-ticks\" text-anchor=\"middle\">\n", f);
    for (int k = 0; k < p->x->ticks; k++) {
        double v = axis_tick(p->x, k), px = panel_px(p, v);
        axis_label(p->x, v, label, sizeof label);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                   "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                px, p->top, px, p->bottom, px, p->bottom, px, p->bottom + 5, px, p->bottom + 18, label);
    }
    fputs("</g>\n<g class=\"y-ticks\" text-anchor=\"end\">\n", f);
    for (int k = 0; k < p->y->ticks; k++) {
        double v = axis_tick(p->y, k), py = panel_py(p, v);
        axis_label(p->y, v, label, sizeof label);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                   "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#444\"/>"
                   "<text x=\"%d\" y=\"%.1f\">%s</text>\n",
                SVG_LEFT, py, SVG_RIGHT, py, SVG_LEFT - 5, py, SVG_LEFT, py, SVG_LEFT - 8, py + 4, label);
    }
    fputs("</g>\n", f);
    fprintf(f, "<text class=\"x-title\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">iteration</text>\n",
            (SVG_LEFT + SVG_RIGHT) / 2.0, p->bottom + 36);
    double cy = (p->top + p->bottom) / 2;
    fprintf(f, "<text class=\"y-title\" x=\"0\" y=\"0\" text-anchor=\"middle\" transform=\"translate(22 %.1f) rotate(-90)\">%s</text>\n",
            cy, ytitle);
}

/* A series as one polyline (id and class `name`), and a dot when it has a single point. */
static void svg_series(FILE *f, const Panel *p, const PlotSeries *s, const char *name,
                       const char *color, double width) {
    if (s->n == 0) return;
    fprintf(f, "<polyline id=\"%s\" class=\"series %s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-linejoin=\"round\" points=\"",
            name, name, color, width);
    for (size_t i = 0; i < s->n; i++)
        fprintf(f, "%s%.1f,%.1f", i ? " " : "", panel_px(p, s->x[i]), panel_py(p, s->y[i]));
    fputs("\"/>\n", f);
    if (s->n == 1)
        fprintf(f, "<circle class=\"point %s-point\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", name,
                panel_px(p, s->x[0]), panel_py(p, s->y[0]), width + 2, color);
}

static void svg_legend_entry(FILE *f, double x, double y, const char *color, double width,
                             int marker, const char *text) {
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\"/>",
            x, y, x + 28, y, color, width);
    if (marker) fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>", x + 14, y, color);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x + 36, y + 4, text);
}

#define COLOR_TRAIN "#1f77b4"
#define COLOR_VAL "#d62728"
#define COLOR_SPEED "#2ca02c"

static void svg_document(FILE *f, const PlotData *d, const char *title) {
    PlotAxes axes = plot_axes(d);
    Panel loss = {.top = 48, .bottom = 388, .x = &axes.x, .y = &axes.loss};
    Panel speed = {.top = 458, .bottom = 606, .x = &axes.x, .y = &axes.speed};
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n<title>",
            SVG_W, SVG_H, SVG_W, SVG_H);
    svg_text(f, title);
    fputs("</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n", f);
    fprintf(f, "<text class=\"title\" x=\"%d\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">", SVG_W / 2);
    svg_text(f, title);
    fputs("</text>\n", f);

    fputs("<g id=\"loss-panel\" class=\"panel\">\n", f);
    svg_axes(f, &loss, "loss (nats per character)");
    svg_series(f, &loss, &d->train_loss, "train-loss", COLOR_TRAIN, 1.0);
    svg_series(f, &loss, &d->val_loss, "val-loss", COLOR_VAL, 2.5);
    if (d->val_loss.n) {
        fputs("<g id=\"val-markers\" class=\"markers\">", f);
        for (size_t i = 0; i < d->val_loss.n; i++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"" COLOR_VAL "\"/>",
                    panel_px(&loss, d->val_loss.x[i]), panel_py(&loss, d->val_loss.y[i]));
        fputs("</g>\n", f);
    }
    int entries = (d->train_loss.n > 0) + (d->val_loss.n > 0);
    double lx = SVG_RIGHT - 170, ly = loss.top + 10;
    fprintf(f, "<g id=\"legend\" class=\"legend\"><rect x=\"%.1f\" y=\"%.1f\" width=\"160\" height=\"%d\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999\"/>\n",
            lx, ly, 8 + 20 * entries);
    double ey = ly + 14;
    if (d->train_loss.n) svg_legend_entry(f, lx + 8, ey, COLOR_TRAIN, 1.0, 0, "train loss"), ey += 20;
    if (d->val_loss.n) svg_legend_entry(f, lx + 8, ey, COLOR_VAL, 2.5, 1, "validation loss");
    fputs("</g>\n</g>\n", f);

    fputs("<g id=\"speed-panel\" class=\"panel\">\n", f);
    svg_axes(f, &speed, "chars/s");
    if (d->chars_per_s.n)
        svg_series(f, &speed, &d->chars_per_s, "chars-per-s", COLOR_SPEED, 1.5);
    else
        fprintf(f, "<text class=\"no-data\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#777\">no chars/s in the metrics</text>\n",
                (SVG_LEFT + SVG_RIGHT) / 2.0, (speed.top + speed.bottom) / 2 + 4);
    fputs("</g>\n</svg>\n", f);
}

int plot_write_svg(const PlotData *data, const char *title, const char *path, CrnnError *err) {
    char *tmp = tmp_name(path, err);
    if (!tmp) return -1;
    int rc = create_tmp(path, tmp, err);
    if (rc == 0) {
        FILE *f = fopen(tmp, "w");
        if (!f) {
            rc = crnn_fail(err, "cannot write %s: cannot open %s: %s", path, tmp, strerror(errno));
        } else {
            svg_document(f, data, title);
            int bad = ferror(f);
            if (fclose(f) != 0 || bad)
                rc = crnn_fail(err, "cannot write %s: writing %s failed (disk full?)", path, tmp);
        }
        if (rc) unlink(tmp);
        else rc = commit_tmp(path, tmp, err);
    }
    free(tmp);
    return rc;
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
    fprintf(f, "set %srange [%.17g:%.17g]\nset %stics %.17g, %.17g, %.17g\n", name, a->lo, a->hi, name,
            a->lo, a->step, a->hi);
    if (fmax(fabs(a->lo), fabs(a->hi)) >= 1e9) fprintf(f, "set format %s \"%%.3g\"\n", name);
    else fprintf(f, "set format %s \"%%.%df\"\n", name, a->decimals);
}

static void gp_script(FILE *f, const PlotData *d, const char *title, const char *out,
                      const char *train, const char *val, const char *speed) {
    PlotAxes axes = plot_axes(d);
    fputs("# written by crnn-plot\n"
          "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
          "  set terminal pngcairo size 1000,750 noenhanced font 'DejaVu Sans,10'\n"
          "} else {\n"
          "  set terminal png size 1000,750 noenhanced\n"
          "}\n"
          "set output ", f);
    gp_quoted(f, out);
    fputs("\nset multiplot title ", f);
    gp_quoted(f, title);
    fputs(" font ',13'\n"
          "set lmargin 12\nset rmargin 4\n"
          "set grid xtics ytics lt 1 lc rgb '#e0e0e0' lw 1\n"
          "set border lc rgb '#444444'\n"
          "set xlabel 'iteration'\n",
          f);
    gp_axis(f, "x", &axes.x);

    fputs("set origin 0, 0.36\nset size 1, 0.58\n"
          "set ylabel 'loss (nats per character)'\n"
          "set key top right box opaque\n",
          f);
    gp_axis(f, "y", &axes.loss);
    fputs("plot ", f);
    int first = 1;
    if (d->train_loss.n) {
        gp_quoted(f, train);
        fprintf(f, " using 1:2 with %s lw 1 lc rgb '" COLOR_TRAIN "' title 'train loss'",
                d->train_loss.n == 1 ? "linespoints pt 7 ps 0.8" : "lines");
        first = 0;
    }
    if (d->val_loss.n) {
        if (!first) fputs(", ", f);
        gp_quoted(f, val);
        fputs(" using 1:2 with linespoints lw 2.5 pt 7 ps 0.9 lc rgb '" COLOR_VAL "' title 'validation loss'", f);
    }
    fputs("\n", f);

    fputs("set origin 0, 0\nset size 1, 0.36\nset ylabel 'chars/s'\n", f);
    gp_axis(f, "y", &axes.speed);
    if (d->chars_per_s.n) {
        fputs("set key top right box opaque\nplot ", f);
        gp_quoted(f, speed);
        fprintf(f, " using 1:2 with %s lw 1.5 lc rgb '" COLOR_SPEED "' title 'chars/s'\n",
                d->chars_per_s.n == 1 ? "linespoints pt 7 ps 0.8" : "lines");
    } else {
        /* nothing to draw: an empty frame with a note (a line below the range draws nothing) */
        fprintf(f, "unset key\nset label 1 'no chars/s in the metrics' at graph 0.5, 0.5 center tc rgb '#777777'\n"
                   "plot %.17g notitle\nunset label 1\n",
                axes.speed.lo - (axes.speed.hi - axes.speed.lo));
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

int plot_write_png(const PlotData *data, const char *title, const char *path, CrnnError *err) {
    char *tmp = tmp_name(path, err);
    if (!tmp) return -1;
    if (create_tmp(path, tmp, err)) {
        free(tmp);
        return -1;
    }
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    char dir[4096], train[4200], val[4200], speed[4200], script[4200], log[4200];
    int rc = 0;
    if ((size_t)snprintf(dir, sizeof dir, "%s/crnn-plot-XXXXXX", base) >= sizeof dir || !mkdtemp(dir)) {
        rc = crnn_fail(err, "cannot make a temporary folder in %s: %s; set TMPDIR to a writable folder",
                       base, strerror(errno));
        unlink(tmp);
        free(tmp);
        return rc;
    }
    snprintf(train, sizeof train, "%s/train.dat", dir);
    snprintf(val, sizeof val, "%s/val.dat", dir);
    snprintf(speed, sizeof speed, "%s/speed.dat", dir);
    snprintf(script, sizeof script, "%s/plot.gp", dir);
    snprintf(log, sizeof log, "%s/gnuplot.log", dir);
    if (gp_write_data(train, &data->train_loss, err) || gp_write_data(val, &data->val_loss, err) ||
        gp_write_data(speed, &data->chars_per_s, err))
        rc = -1;
    if (rc == 0) {
        FILE *f = fopen(script, "w");
        if (!f) {
            rc = crnn_fail(err, "cannot write %s: %s", script, strerror(errno));
        } else {
            gp_script(f, data, title, tmp, train, val, speed);
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
    unlink(train);
    unlink(val);
    unlink(speed);
    unlink(script);
    unlink(log);
    rmdir(dir);
    if (rc) unlink(tmp);
    else rc = commit_tmp(path, tmp, err);
    free(tmp);
    return rc;
}

int plot_write(const PlotData *data, const char *title, const char *path, CrnnError *err) {
    PlotFormat format;
    if (plot_format_from_name(path, &format, err)) return -1;
    return format == PLOT_SVG ? plot_write_svg(data, title, path, err)
                              : plot_write_png(data, title, path, err);
}
