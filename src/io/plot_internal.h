/* What crnn-plot's writers share: the figure both draw (panels of styled series, legends and
 * axes) and what plot.c does for plot_gnuplot.c. Private to src/plot*.c; the public interface is
 * include/crnn/plot.h.
 *
 *   plot_read.c     the metrics file and a scaling benchmark's results into series
 *   plot.c          names, axes, the figures, the SVG writer, the public writers
 *   plot_gnuplot.c  the PNG: a gnuplot script and data files, run through gnuplot */
#ifndef CRNN_PLOT_INTERNAL_H
#define CRNN_PLOT_INTERNAL_H

#include <stddef.h>

#include "crnn/common.h"
#include "crnn/plot.h"

/* Ticks at first, first + step, ..., up to hi, within the range [lo, hi]. On a log2 axis lo, hi,
 * first and step are powers of two's exponents, and a tick is labelled with the power itself. */
typedef struct Axis {
    double lo, hi, first, step;
    int ticks;
    int decimals; /* for tick labels */
    int log2;
} Axis;

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

/* Text safe for XML and gnuplot: control characters and bytes that are not UTF-8 become '?'. */
void plot_clean_text(const char *in, char *out, size_t cap);

/* fig as a PNG at path, drawn by gnuplot (plot_gnuplot.c). */
int plot_figure_write_png(const Figure *fig, const char *path, CrnnError *err);

#endif
