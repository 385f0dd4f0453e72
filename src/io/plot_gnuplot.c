/* crnn-plot's PNG: a figure (plot_internal.h) written as a gnuplot script and data files in a
 * temporary folder, which Debian's gnuplot runs to draw the picture onto the output's OUT.tmp. */
#include "crnn/plot.h"
#include "crnn/atomic_file.h"
#include "plot_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* A gnuplot single-quoted string: ' doubles, nothing else is special. */
static void gp_quoted(FILE *f, const char *text) {
    char clean[4096];
    plot_clean_text(text, clean, sizeof clean);
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

int plot_figure_write_png(const Figure *fig, const char *path, CrnnError *err) {
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
