/* crnn-bench-allreduce: the allreduce time of crnn's own gradient buckets, under mpirun.
 *
 *   mpirun -np P crnn-bench-allreduce [-model_type lstm] [-rnn_size 512] [-num_layers 2]
 *                                     [-wordvec_size 64] [-vocab_size 65] [-repeat 10]
 *
 * Builds the model crnn-train would (CPU backend), takes the buckets model_backward hands to
 * -allreduce overlap (the decoder's, each layer's from the top, the embedding's), and times
 * crnn's Comm allreduce of each bucket, and of the whole buffer at once (-allreduce flat),
 * between barriers, REPEAT times. Rank 0 prints one line per bucket, its size in bytes and the
 * fastest and median time, then the whole buffer's; `-json FILE` writes the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crnn/backend.h"
#include "crnn/comm.h"
#include "crnn/flags.h"
#include "crnn/model.h"
#include "crnn/runtime.h"

static Flag bench_flags[] = {
    {.name = "model_type", .type = FLAG_STRING, .def = "lstm", .help = "lstm, gru or rnn", .choices = "lstm|gru|rnn"},
    {.name = "rnn_size", .type = FLAG_INT, .def = "512", .help = "H"},
    {.name = "num_layers", .type = FLAG_INT, .def = "2", .help = "L"},
    {.name = "wordvec_size", .type = FLAG_INT, .def = "64", .help = "D (0: one-hot)"},
    {.name = "vocab_size", .type = FLAG_INT, .def = "65", .help = "V (tiny-shakespeare's 65)"},
    {.name = "repeat", .type = FLAG_INT, .def = "10", .help = "timed repetitions of each allreduce"},
    {.name = "json", .type = FLAG_STRING, .def = "", .help = "also write the results to this JSON file"},
};

typedef struct Bucket {
    real *buf;
    size_t n;
} Bucket;

typedef struct Buckets {
    Bucket b[64];
    int count;
} Buckets;

static void record(void *ctx, real *grads, size_t n) {
    Buckets *bs = ctx;
    if (bs->count < 64) bs->b[bs->count++] = (Bucket){grads, n};
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* fastest and median of `repeat` allreduces of n reals at buf, the slowest rank's each time */
static int time_allreduce(Comm *c, real *buf, size_t n, int repeat, double *best, double *median, CrnnError *err) {
    double *t = calloc((size_t)repeat, sizeof *t);
    if (!t) return -1;
    for (int k = 0; k < repeat; k++) {
        if (c->barrier(c, err)) return free(t), -1;
        double t0 = now();
        if (c->allreduce_mean(c, buf, n, err)) return free(t), -1;
        int64_t us = (int64_t)((now() - t0) * 1e6);
        if (c->allreduce_max_int(c, &us, err)) return free(t), -1;
        t[k] = (double)us * 1e-6;
    }
    qsort(t, (size_t)repeat, sizeof *t, cmp);
    *best = t[0];
    *median = t[repeat / 2];
    free(t);
    return 0;
}

int main(int argc, char **argv) {
    FlagSet flags = {.program = "crnn-bench-allreduce",
                     .summary = "Times the allreduce of crnn's gradient buckets across MPI ranks.",
                     .flags = bench_flags,
                     .count = (int)(sizeof bench_flags / sizeof bench_flags[0])};
    int status;
    if (!runtime_start(&flags, argc, argv, &status)) return status;
    CrnnError err;
    Comm *c = comm_create(&argc, &argv, &err);
    if (!c) {
        crnn_print_error(flags.program, &err);
        return 1;
    }
    ModelConfig cfg = {.V = (int)flags_int(&flags, "vocab_size"), .D = (int)flags_int(&flags, "wordvec_size"),
                       .H = (int)flags_int(&flags, "rnn_size"), .L = (int)flags_int(&flags, "num_layers")};
    snprintf(cfg.model_type, sizeof cfg.model_type, "%s", flags_str(&flags, "model_type"));
    int repeat = (int)flags_int(&flags, "repeat");
    if (repeat < 1) repeat = 1;
    Backend *be = backend_cpu_create(1, &err);
    Model m;
    memset(&m, 0, sizeof m);
    int rc = 1;
    if (!be || model_config_check(&cfg, &err) || model_create(&m, &cfg, be, 1, 1, &err)) {
        crnn_print_error(flags.program, &err);
        goto done;
    }
    model_init_params(&m, 1);
    Buckets bs = {.count = 0};
    int32_t x = 0, y = 0;
    model_forward(&m, &x, &y, 1, 1);
    model_backward(&m, record, &bs);
    double best[65], median[65];
    for (int k = 0; k <= bs.count; k++) {
        real *buf = k < bs.count ? bs.b[k].buf : m.grads;
        size_t n = k < bs.count ? bs.b[k].n : m.num_params;
        if (time_allreduce(c, buf, n, repeat, &best[k], &median[k], &err)) {
            crnn_print_error(flags.program, &err);
            goto done;
        }
    }
    if (c->rank == 0) {
        printf("%s %d x %d, V %d, D %d: %zu parameters, %d buckets, %d ranks (best and median of %d)\n",
               cfg.model_type, cfg.L, cfg.H, cfg.V, cfg.D, m.num_params, bs.count, c->size, repeat);
        FILE *js = NULL;
        const char *jpath = flags_str(&flags, "json");
        if (*jpath && !(js = fopen(jpath, "w"))) fprintf(stderr, "crnn-bench-allreduce: cannot write %s\n", jpath);
        if (js)
            fprintf(js, "{\"model\": \"%s %dx%d\", \"ranks\": %d, \"repeat\": %d, \"buckets\": [", cfg.model_type,
                    cfg.L, cfg.H, c->size, repeat);
        for (int k = 0; k <= bs.count; k++) {
            size_t bytes = (k < bs.count ? bs.b[k].n : m.num_params) * sizeof(real);
            printf("%-8s %2d %12zu bytes %10.3f ms %10.3f ms\n", k < bs.count ? "bucket" : "all", k, bytes,
                   1e3 * best[k], 1e3 * median[k]);
            if (js)
                fprintf(js, "%s{\"bucket\": %d, \"bytes\": %zu, \"best_s\": %.6f, \"median_s\": %.6f}",
                        k ? ", " : "", k < bs.count ? k : -1, bytes, best[k], median[k]);
        }
        if (js) {
            fprintf(js, "]}\n");
            fclose(js);
        }
    }
    rc = 0;
done:
    model_destroy(&m);
    backend_destroy(be);
    c->destroy(c);
    flags_free(&flags);
    return rc;
}
