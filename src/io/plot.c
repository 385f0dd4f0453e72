/* crnn-plot's figures: the series that plot_read.c read made into a figure (two panels of styled
 * series, legends and axes), which a small SVG writer here draws or, for PNG, plot_gnuplot.c has
 * Debian's gnuplot draw. Both writers draw the same figure with the same axis ranges and ticks. */
#include "crnn/plot.h"
#include "crnn/atomic_file.h"
#include "plot_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
void plot_clean_text(const char *in, char *out, size_t cap) {
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
    plot_clean_text(text, clean, sizeof clean);
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
    FILE *f = atomic_file_open(&af, path, err);
    if (!f) return -1;
    svg_document(f, fig);
    return atomic_file_commit(&af, err);
}

static int figure_write(const Figure *fig, const char *path, CrnnError *err) {
    PlotFormat format;
    if (plot_format_from_name(path, &format, err)) return -1;
    return format == PLOT_SVG ? figure_write_svg(fig, path, err) : plot_figure_write_png(fig, path, err);
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
    if (rc == 0) rc = plot_figure_write_png(&fig, path, err);
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
