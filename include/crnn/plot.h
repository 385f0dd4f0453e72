/* crnn-plot's library: reads a crnn-train metrics file (docs/FORMATS.md section 4, one JSON object a
 * line) into (x, value) series, x the iteration, the epoch or the run's time (time_s), and draws
 * them as two panels (train and validation loss against x; chars/s against x) to an SVG written
 * here, or to a PNG made by
 * Debian's gnuplot. It draws a scaling benchmark's results (benchmarks/scaling.sh, one JSON
 * object) the same way: efficiency, and compute/communication/io milliseconds per step, against
 * ranks. Every write goes to `OUT.tmp` first and is renamed onto OUT. */
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

/* What the x axis shows: the records' "iteration", "epoch" or "time_s" (the run's seconds of
 * training, continuing across resumes), the last in seconds, minutes or hours by its length. */
typedef enum { PLOT_X_ITERATION, PLOT_X_EPOCH, PLOT_X_TIME } PlotX;

typedef struct PlotData {
    PlotSeries train_loss;  /* train records: (x, loss) */
    PlotSeries val_loss;    /* val records: (x, val_loss) */
    PlotSeries chars_per_s; /* train records: (x, chars_per_s) */
    size_t skipped;         /* values left out because they were NaN, inf or null */
    int partial_last_line;  /* 1: the last line had no newline and was not JSON (a run still
                               writing it) and was left out */
    PlotX x;
    const char *x_title;    /* "iteration", "epoch", "time (s)", "time (min)" or "time (h)" */
    size_t without_x;       /* train and val records left out because they have no x (-x time:
                               records written before crnn-train recorded time_s) */
} PlotData;

typedef enum { PLOT_PNG, PLOT_SVG } PlotFormat;

/* Reads a metrics file. Records of other types and unknown keys are ignored; non-finite
 * values (null, NaN, Infinity, as JSON writers spell them) are skipped and counted. A line that
 * is not a JSON object, or a train/val record without a numeric iteration, is an error naming
 * the file and line. A file with no point to draw is an error too. */
int plot_read_metrics(PlotData *data, const char *path, CrnnError *err);
/* The same with x the epoch or time_s instead of the iteration (which every train and val record
 * still needs). A record without that key is left out and counted (without_x); a file where no
 * record has it is an error that names the key and suggests -x iteration. Times are drawn in
 * seconds, in minutes from 10 minutes, in hours from 2 hours. */
int plot_read_metrics_x(PlotData *data, const char *path, PlotX x, CrnnError *err);
/* The PlotX named "iteration", "epoch" or "time"; -1 with err otherwise. */
int plot_x_from_name(const char *name, PlotX *x, CrnnError *err);
void plot_data_free(PlotData *data);

/* The format named by a file's extension (.png or .svg, any case); -1 with err otherwise. */
int plot_format_from_name(const char *path, PlotFormat *format, CrnnError *err);

/* The default output for a metrics file or a benchmark's results: its name with ".png" in place
 * of ".jsonl" or ".json" (appended when it ends in neither). Returns a malloc'd string, or NULL
 * with err. */
char *plot_default_output(const char *input_path, CrnnError *err);

/* Writes the two panels to path (atomically) as SVG, or as PNG through gnuplot. title is
 * printed above the panels (e.g. the metrics file's name). The PNG writer needs `gnuplot` on the
 * PATH and says so, naming the package and the SVG alternative, when it is missing. */
int plot_write_svg(const PlotData *data, const char *title, const char *path, CrnnError *err);
int plot_write_png(const PlotData *data, const char *title, const char *path, CrnnError *err);
int plot_write(const PlotData *data, const char *title, const char *path, CrnnError *err);

/* A scaling benchmark's results: one object {"benchmark": "scaling", "model": ..., "launcher":
 * ..., "runs": [{"scaling": "weak", "allreduce": "flat", "ranks": 2, "efficiency": 0.95,
 * "compute_ms": ..., "comm_ms": ..., "io_ms": ...}, ...]}. The runs are grouped by their
 * (scaling, allreduce) pair, in the order the pairs first appear. */
typedef struct PlotScalingGroup {
    char *label;           /* "weak, flat"; the one named when runs name only one; "runs" when neither */
    char *slug;            /* the label for SVG ids, "weak-flat"; unique among the groups */
    PlotSeries efficiency; /* (ranks, efficiency in percent) */
    PlotSeries compute_ms, comm_ms, io_ms; /* (ranks, milliseconds per step) */
    char *scaling, *allreduce; /* as in the file; NULL when the runs have no such key */
} PlotScalingGroup;

typedef struct PlotScaling {
    char *title;  /* "scaling: <model>, <launcher>" (the file's name when it has neither) */
    PlotScalingGroup *groups;
    size_t n_groups;
    size_t runs;
    size_t skipped; /* values left out because they were NaN, inf or null */
} PlotScaling;

/* What a file holds, judged by its content: a single JSON object with "benchmark": "scaling" is
 * a scaling benchmark's results; anything else is taken for a metrics file (whose reader reports
 * what is wrong with it). An object naming another benchmark is an error. */
typedef enum { PLOT_INPUT_METRICS, PLOT_INPUT_SCALING } PlotInput;
int plot_input_kind(const char *path, PlotInput *kind, CrnnError *err);

/* Reads a scaling benchmark's results. Unknown keys are ignored; a null or non-finite value is
 * skipped (that point is not drawn) and counted. Missing or non-array "runs", a run that is not
 * an object, a run without a positive integer "ranks", or a value of the wrong type is an error
 * naming the file and the run (runs[i]). A file with no point to draw is an error too. */
int plot_read_scaling(PlotScaling *scaling, const char *path, CrnnError *err);
void plot_scaling_free(PlotScaling *scaling);

/* Writes the scaling figure to path (atomically), as SVG or PNG by its extension: efficiency
 * against ranks, and milliseconds per step (compute solid, exposed communication dashed, io
 * dotted) against ranks, one colour per (scaling, allreduce) group, ranks on a log2 axis. */
int plot_write_scaling(const PlotScaling *scaling, const char *path, CrnnError *err);

#endif
