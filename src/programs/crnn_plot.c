/* crnn-plot: a crnn-train metrics file drawn as train and validation loss against iteration
 * (or epoch, or the run's time), and chars/s, to a PNG (through gnuplot) or an SVG; or a scaling benchmark's results
 * (benchmarks/scaling.sh) drawn as efficiency and milliseconds per step against ranks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crnn/flags.h"
#include "crnn/plot.h"
#include "program.h"

static Flag plot_flags[] = {
    {.name = "metrics", .type = FLAG_STRING, .def = "", .help = "the metrics file (<checkpoint_name>_metrics.jsonl), or a scaling benchmark's results (one JSON object with \"benchmark\": \"scaling\"); may also be given as the first argument"},
    {.name = "x", .type = FLAG_STRING, .def = "iteration", .help = "what a metrics file's losses are drawn against: iteration, epoch, or time (the run's seconds of training, time_s; minutes or hours when long)", .choices = "iteration|epoch|time"},
    {.name = "o", .type = FLAG_STRING, .def = "", .help = "the picture to write, OUT.png (drawn by gnuplot) or OUT.svg; when not given, the file's name with .png in place of .jsonl or .json"},
};

int main(int argc, char **argv) {
    FlagSet flags = {.program = "crnn-plot",
                     .summary = "Draws training and validation loss against iterations (-x epoch, -x time: against epochs or\n"
                                "the run's time), and chars/s, from a crnn-train metrics file;\n"
                                "or, from a scaling benchmark's results, parallel efficiency and compute, exposed communication "
                                "and io milliseconds per step against ranks (log2), one line per scaling and allreduce pair.",
                     .flags = plot_flags,
                     .count = (int)(sizeof plot_flags / sizeof plot_flags[0]),
                     .positional = "metrics"};
    CrnnError err = {.msg = ""};
    int status;
    if (!program_flags(&flags, argc, argv, &status)) {
        flags_free(&flags);
        return status;
    }
    int rc = 1;
    PlotData data = {0};
    PlotScaling scaling = {0};
    char *out = NULL;
    const char *metrics = flags_str(&flags, "metrics");
    if (!*metrics) {
        crnn_fail_usage(&err, "give the metrics file to plot: crnn-plot cv/checkpoint_metrics.jsonl [-o OUT.png|OUT.svg]");
        goto done;
    }
    out = *flags_str(&flags, "o") ? strdup(flags_str(&flags, "o")) : plot_default_output(metrics, &err);
    if (!out) {
        if (*flags_str(&flags, "o")) crnn_fail_nomem(&err, "out of memory");
        goto done;
    }
    PlotFormat format;
    if (plot_format_from_name(out, &format, &err)) goto done;
    PlotInput kind;
    if (plot_input_kind(metrics, &kind, &err)) goto done;
    if (kind == PLOT_INPUT_SCALING) {
        if (plot_read_scaling(&scaling, metrics, &err)) goto done;
        if (scaling.skipped)
            fprintf(stderr, "crnn-plot: note: %zu NaN, infinite or null values in %s were left out\n",
                    scaling.skipped, metrics);
        if (plot_write_scaling(&scaling, out, &err)) goto done;
        printf("wrote %s\n", out);
        rc = 0;
        goto done;
    }
    PlotX x;
    if (plot_x_from_name(flags_str(&flags, "x"), &x, &err) || plot_read_metrics_x(&data, metrics, x, &err)) goto done;
    if (data.partial_last_line)
        fprintf(stderr, "crnn-plot: note: the last line of %s is unfinished (a run still writing it?) and was left out\n",
                metrics);
    if (data.skipped)
        fprintf(stderr, "crnn-plot: note: %zu NaN, infinite or null values in %s were left out\n",
                data.skipped, metrics);
    if (data.without_x)
        fprintf(stderr, "crnn-plot: note: %zu train and val records of %s have no \"%s\" (written before crnn-train recorded it) and were left out\n",
                data.without_x, metrics, x == PLOT_X_TIME ? "time_s" : "epoch");
    const char *slash = strrchr(metrics, '/');
    if (plot_write(&data, slash ? slash + 1 : metrics, out, &err)) goto done;
    printf("wrote %s\n", out);
    rc = 0;
done:
    if (rc) {
        program_error(flags.program, &err);
        rc = crnn_exit_status(&err);
    }
    plot_data_free(&data);
    plot_scaling_free(&scaling);
    free(out);
    flags_free(&flags);
    return rc;
}
