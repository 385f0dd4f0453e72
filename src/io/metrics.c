/* The metrics file and torch-rnn's sidecar JSON (see metrics.h). */
#include "crnn/metrics.h"
#include "crnn/atomic_file.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A real number, always with a fraction or an exponent so that readers (Python's json) see a
 * float even when it is integral (epoch 2, a learning rate of 1); JSON has no NaN or infinity:
 * such a value is written as null. */
static void put_number(FILE *fp, double v) {
    if (!isfinite(v)) {
        fputs("null", fp);
        return;
    }
    char buf[40];
    snprintf(buf, sizeof buf, "%.9g", v);
    fputs(buf, fp);
    if (!strpbrk(buf, ".e")) fputs(".0", fp);
}

/* , "time_s": T, "wall": W -- the run's clock, and the Unix time now, both in seconds with
 * microseconds (a Unix time of 1.7e9 needs more digits than put_number's nine). */
static void put_clock(FILE *fp, double time_s) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!(time_s >= 0) || !isfinite(time_s)) time_s = 0;
    fprintf(fp, ", \"time_s\": %.6f, \"wall\": %.6f", time_s, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
}

/* Keeps the lines whose "iteration" is at most `last`. */
static int truncate_after(const char *path, int64_t last, CrnnError *err) {
    FILE *in = fopen(path, "r");
    if (!in) return errno == ENOENT ? 0 : crnn_fail_io(err, "cannot read the metrics file %s: %s", path, strerror(errno));
    AtomicFile af;
    FILE *out = atomic_file_open(&af, path, err);
    if (!out) {
        fclose(in);
        return crnn_fail_context(err, "cannot rewrite the metrics file %s", path);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, in)) > 0) {
        json_t *rec = json_loads(line, 0, NULL);
        json_t *it = rec ? json_object_get(rec, "iteration") : NULL;
        int keep = it && json_is_integer(it) && json_integer_value(it) <= last;
        json_decref(rec);
        if (keep) fwrite(line, 1, (size_t)n, out);
    }
    free(line);
    int bad = ferror(in);
    fclose(in);
    if (bad) {
        atomic_file_abandon(&af);
        return crnn_fail_io(err, "cannot read the metrics file %s: %s", path, strerror(errno));
    }
    if (atomic_file_commit(&af, err)) return crnn_fail_context(err, "cannot rewrite the metrics file %s", path);
    return 0;
}

int metrics_open(Metrics *m, const char *checkpoint_name, int64_t resumed_iteration, CrnnError *err) {
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s_metrics.jsonl", checkpoint_name);
    if (resumed_iteration >= 0 && truncate_after(m->path, resumed_iteration, err)) return -1;
    m->fp = fopen(m->path, resumed_iteration >= 0 ? "a" : "w");
    if (!m->fp)
        return crnn_fail(err, "cannot write the metrics file %s: %s; choose another -checkpoint_name",
                         m->path, strerror(errno));
    return 0;
}

void metrics_close(Metrics *m) {
    if (m->fp) fclose(m->fp);
    m->fp = NULL;
}

void metrics_train(Metrics *m, double time_s, int64_t iteration, double epoch, double loss, double learning_rate,
                   double grad_norm, double chars_per_s, const double *times, int ranks) {
    if (!m->fp) return;
    FILE *fp = m->fp;
    fprintf(fp, "{\"type\": \"train\", \"iteration\": %" PRId64, iteration);
    put_clock(fp, time_s);
    fputs(", \"epoch\": ", fp);
    put_number(fp, epoch);
    fputs(", \"loss\": ", fp);
    put_number(fp, loss);
    fputs(", \"learning_rate\": ", fp);
    put_number(fp, learning_rate);
    fputs(", \"grad_norm\": ", fp);
    put_number(fp, grad_norm);
    fputs(", \"chars_per_s\": ", fp);
    put_number(fp, chars_per_s);
    static const char *const parts[3] = {"compute", "comm", "io"};
    fputs(", \"time\": {", fp);
    for (int p = 0; p < 3; p++) {
        fprintf(fp, "%s\"%s\": [", p ? ", " : "", parts[p]);
        for (int r = 0; r < ranks; r++) {
            if (r) fputs(", ", fp);
            put_number(fp, times[r * 3 + p]);
        }
        fputc(']', fp);
    }
    fputs("}}\n", fp);
    fflush(fp);
}

void metrics_val(Metrics *m, double time_s, int64_t iteration, double epoch, double val_loss, int64_t batches, int64_t total,
                 double seconds) {
    if (!m->fp) return;
    fprintf(m->fp, "{\"type\": \"val\", \"iteration\": %" PRId64, iteration);
    put_clock(m->fp, time_s);
    fputs(", \"epoch\": ", m->fp);
    put_number(m->fp, epoch);
    fputs(", \"val_loss\": ", m->fp);
    put_number(m->fp, val_loss);
    fprintf(m->fp, ", \"val_batches\": %" PRId64 ", \"val_batches_total\": %" PRId64 ", \"val_seconds\": ", batches,
            total);
    put_number(m->fp, seconds);
    fputs("}\n", m->fp);
    fflush(m->fp);
}

/* {"type": TYPE, "iteration": I, "time_s": T, "wall": W, "seconds": S} */
static void timing_record(Metrics *m, const char *type, double time_s, int64_t iteration, double seconds) {
    if (!m->fp) return;
    fprintf(m->fp, "{\"type\": \"%s\", \"iteration\": %" PRId64, type, iteration);
    put_clock(m->fp, time_s);
    fputs(", \"seconds\": ", m->fp);
    put_number(m->fp, seconds);
    fputs("}\n", m->fp);
    fflush(m->fp);
}

void metrics_start(Metrics *m, double time_s, int64_t iteration, double seconds) {
    timing_record(m, "start", time_s, iteration, seconds);
}

void metrics_checkpoint(Metrics *m, double time_s, int64_t iteration, double seconds) {
    timing_record(m, "checkpoint", time_s, iteration, seconds);
}

/* The length of the well-formed UTF-8 sequence at s (n bytes left), or 0 when it is not one
 * (a stray continuation byte, a truncated, overlong or surrogate sequence, or past U+10FFFF). */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
    if (s[0] < 0x80) return 1;
    size_t len = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    uint32_t cp = s[0] & (0x7F >> len);
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

void metrics_sample(Metrics *m, double time_s, int64_t iteration, const char *text, size_t n) {
    if (!m->fp) return;
    /* the text as UTF-8, each byte that is not part of a character replaced by U+FFFD */
    char *clean = malloc(3 * n + 1);
    if (!clean) return;
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_sequence(s + i, n - i);
        if (len == 0) {
            memcpy(clean + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(clean + o, s + i, len);
            o += len;
            i += len;
        }
    }
    json_t *str = json_stringn(clean, o); /* jansson escapes quotes, control characters, NUL */
    char *quoted = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
    json_decref(str);
    free(clean);
    if (!quoted) return;
    fprintf(m->fp, "{\"type\": \"sample\", \"iteration\": %" PRId64, iteration);
    put_clock(m->fp, time_s);
    fprintf(m->fp, ", \"text\": %s}\n", quoted);
    fflush(m->fp);
    free(quoted);
}

static json_t *float_array(const float *v, int64_t n) {
    json_t *a = json_array();
    for (int64_t k = 0; k < n; k++) json_array_append_new(a, isfinite(v[k]) ? json_real(v[k]) : json_null());
    return a;
}

int metrics_write_sidecar(const char *path, FlagSet *flags, int64_t iteration,
                          const float *train_loss, int64_t n_train, const float *val_loss,
                          const int64_t *val_iteration, int64_t n_val, const float *step_times,
                          int64_t n_steps, CrnnError *err) {
    json_t *opt = json_object();
    for (int k = 0; k < flags->count; k++) {
        const Flag *f = &flags->flags[k];
        json_t *v = f->type == FLAG_STRING ? json_string(f->s ? f->s : "")
                    : f->type == FLAG_REAL ? json_real(f->d)
                                           : json_integer(f->i);
        json_object_set_new(opt, f->name, v);
    }
    json_t *its = json_array();
    for (int64_t k = 0; k < n_val; k++) json_array_append_new(its, json_integer(val_iteration[k]));
    json_t *root = json_object();
    json_object_set_new(root, "opt", opt);
    json_object_set_new(root, "i", json_integer(iteration));
    json_object_set_new(root, "train_loss_history", float_array(train_loss, n_train));
    json_object_set_new(root, "val_loss_history", float_array(val_loss, n_val));
    json_object_set_new(root, "val_loss_history_it", its);
    json_object_set_new(root, "forward_backward_times", float_array(step_times, n_steps));
    AtomicFile af;
    FILE *fp = atomic_file_open(&af, path, err);
    int rc = fp ? json_dumpf(root, fp, JSON_COMPACT) : -1;
    json_decref(root);
    if (rc != 0) {
        if (fp)
            crnn_fail_io(err, "cannot write %s: %s; check the space and permissions of the checkpoint folder", af.tmp,
                         strerror(errno));
        atomic_file_abandon(&af);
        return -1;
    }
    return atomic_file_commit(&af, err);
}
