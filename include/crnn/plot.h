/* crnn-plot's library: reads a crnn-train metrics file (FORMATS.md section 4, one JSON object a
 * line) into (iteration, value) series, and draws them as two panels (train and validation loss
 * against iteration; chars/s against iteration) to an SVG written here, or to a PNG made by
 * Debian's gnuplot. Every write goes to `OUT.tmp` first and is renamed onto OUT. */
#ifndef CRNN_PLOT_H
#define CRNN_PLOT_H

#include <stddef.h>

#include "crnn/common.h"

/* Points (x[i], y[i]), i < n, sorted by x (stable: file order among equal x). */
typedef struct PlotSeries {
    double *x;
    double *y;
    size_t n, cap;
} PlotSeries;

typedef struct PlotData {
    PlotSeries train_loss;  /* train records: (iteration, loss) */
    PlotSeries val_loss;    /* val records: (iteration, val_loss) */
    PlotSeries chars_per_s; /* train records: (iteration, chars_per_s) */
    size_t skipped;         /* values left out because they were NaN, inf or null */
    int partial_last_line;  /* 1: the last line had no newline and was not JSON (a run still
                               writing it) and was left out */
} PlotData;

typedef enum { PLOT_PNG, PLOT_SVG } PlotFormat;

/* Reads a metrics file. Records of other types and unknown keys are ignored; non-finite
 * values (null, NaN, Infinity, as JSON writers spell them) are skipped and counted. A line that
 * is not a JSON object, or a train/val record without a numeric iteration, is an error naming
 * the file and line. A file with no point to draw is an error too. */
int plot_read_metrics(PlotData *data, const char *path, CrnnError *err);
void plot_data_free(PlotData *data);

/* The format named by a file's extension (.png or .svg, any case); -1 with err otherwise. */
int plot_format_from_name(const char *path, PlotFormat *format, CrnnError *err);

/* The default output for a metrics file: its name with ".png" in place of ".jsonl" (appended
 * when it does not end in ".jsonl"). Returns a malloc'd string, or NULL with err. */
char *plot_default_output(const char *metrics_path, CrnnError *err);

/* Writes the two panels to path (atomically) as SVG, or as PNG through gnuplot. title is
 * printed above the panels (e.g. the metrics file's name). The PNG writer needs `gnuplot` on the
 * PATH and says so, naming the package and the SVG alternative, when it is missing. */
int plot_write_svg(const PlotData *data, const char *title, const char *path, CrnnError *err);
int plot_write_png(const PlotData *data, const char *title, const char *path, CrnnError *err);
int plot_write(const PlotData *data, const char *title, const char *path, CrnnError *err);

#endif
