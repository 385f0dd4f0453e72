/* crnn-bench-allreduce: the allreduce time of crnn's own gradient buckets, under mpirun.
 *
 *   mpirun -np P crnn-bench-allreduce [-model_type lstm] [-rnn_size 512] [-num_layers 2]
 *                                     [-wordvec_size 64] [-vocab_size 65] [-repeat 10]
 *
 * Builds the model crnn-train would (CPU backend), takes the buckets model_backward hands to
 * -allreduce overlap (the decoder's, each layer's from the top, the embedding's), and times
 * crnn's Comm allreduce of each bucket, and of the whole buffer at once (-allreduce flat),
 * between barriers, REPEAT times. Rank 0 prints one line per bucket, its size in bytes and the
 * fastest and median time, then the whole buffer's; `-json FILE` writes the same.
 *
 * First it measures the links the way a ring allreduce loads them: every rank sends
 * -link_bytes to the next rank (r+1 mod P) while it receives as much from the one before, all at
 * once, REPEAT times, and prints each link's best rate in Mbit/s (10^6 bits). On hosts that
 * share cores (the emulated cluster) a rate below the links' setting says the machine, not the
 * network, limits that rank count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "crnn/backend.h"
#include "crnn/comm.h"
#include "crnn/flags.h"
#include "crnn/model.h"
#include "crnn/runtime.h"
#include "program.h"

static Flag bench_flags[] = {
    {.name = "model_type", .type = FLAG_STRING, .def = "lstm", .help = "lstm, gru or rnn", .choices = "lstm|gru|rnn"},
    {.name = "rnn_size", .type = FLAG_INT, .def = "512", .help = "H"},
    {.name = "num_layers", .type = FLAG_INT, .def = "2", .help = "L"},
    {.name = "wordvec_size", .type = FLAG_INT, .def = "64", .help = "D (0: one-hot)"},
    {.name = "vocab_size", .type = FLAG_INT, .def = "65", .help = "V (tiny-shakespeare's 65)"},
    {.name = "repeat", .type = FLAG_INT, .def = "10", .help = "timed repetitions of each allreduce"},
    {.name = "link_bytes", .type = FLAG_INT, .def = "4000000", .help = "bytes each rank sends its ring neighbour to measure the links (0: skip)"},
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
        double t0 = crnn_now_seconds();
        if (c->allreduce_mean(c, buf, n, err)) return free(t), -1;
        int64_t us = (int64_t)((crnn_now_seconds() - t0) * 1e6);
        if (c->allreduce_max_int(c, &us, err)) return free(t), -1;
        t[k] = (double)us * 1e-6;
    }
    qsort(t, (size_t)repeat, sizeof *t, cmp);
    *best = t[0];
    *median = t[repeat / 2];
    free(t);
    return 0;
}

/* Every rank sends bytes to rank+1 while receiving from rank-1 (all links loaded at once, as a
 * ring allreduce loads them), repeat times; mbit[r] on rank 0 gets link r -> r+1's best rate
 * in 10^6 bit/s, host[r] rank r's host name. */
static int measure_links(Comm *c, size_t bytes, int repeat, double *mbit, char (*host)[64], CrnnError *err) {
    if (c->gather(c, c->host, sizeof c->host, host, 0, err)) return -1;
    if (c->size < 2 || bytes == 0) return 0;
    MPI_Comm world = *(MPI_Comm *)c->mpi_comm;
    char *out = malloc(bytes), *in = malloc(bytes);
    if (!out || !in) return free(out), free(in), crnn_fail(err, "out of memory for %zu bytes", bytes);
    memset(out, 1, bytes);
    int next = (c->rank + 1) % c->size, prev = (c->rank + c->size - 1) % c->size;
    double best = 1e30;
    for (int k = 0; k < repeat; k++) {
        MPI_Barrier(world);
        double t0 = crnn_now_seconds();
        int rc = MPI_Sendrecv(out, (int)bytes, MPI_BYTE, next, 7, in, (int)bytes, MPI_BYTE, prev, 7, world,
                              MPI_STATUS_IGNORE);
        double t = crnn_now_seconds() - t0;
        if (rc != MPI_SUCCESS) return free(out), free(in), crnn_fail(err, "MPI_Sendrecv failed on rank %d", c->rank);
        if (t < best) best = t;
    }
    free(out);
    free(in);
    /* the time to receive from prev is the link prev -> rank's: gather and rotate */
    double rate = 8.0 * (double)bytes / best / 1e6, *rates = c->rank == 0 ? calloc((size_t)c->size, sizeof *rates) : NULL;
    if (c->rank == 0 && !rates) return crnn_fail(err, "out of memory");
    if (c->gather(c, &rate, sizeof rate, rates, 0, err)) return free(rates), -1;
    if (c->rank == 0) {
        for (int r = 0; r < c->size; r++) mbit[r] = rates[(r + 1) % c->size];
        free(rates);
    }
    return 0;
}

int main(int argc, char **argv) {
    FlagSet flags = {.program = "crnn-bench-allreduce",
                     .summary = "Times the allreduce of crnn's gradient buckets across MPI ranks.",
                     .flags = bench_flags,
                     .count = (int)(sizeof bench_flags / sizeof bench_flags[0])};
    int status;
    if (!program_start(&flags, argc, argv, &status)) return status;
    CrnnError err;
    Comm *c = comm_create(&argc, &argv, &err);
    if (!c) {
        program_error(flags.program, &err);
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
    double *mbit = NULL;
    char(*host)[64] = NULL;
    if (!be || model_config_check(&cfg, &err) || model_create(&m, &cfg, be, 1, 1, &err)) {
        program_error(flags.program, &err);
        goto done;
    }
    model_init_params(&m, 1);
    Buckets bs = {.count = 0};
    int32_t x = 0, y = 0;
    model_forward(&m, &x, &y, 1, 1);
    model_backward(&m, record, &bs);
    double best[65], median[65];
    const size_t link_bytes = (size_t)(flags_int(&flags, "link_bytes") > 0 ? flags_int(&flags, "link_bytes") : 0);
    mbit = calloc((size_t)c->size, sizeof *mbit);
    host = calloc((size_t)c->size, sizeof *host);
    if (!mbit || !host) {
        crnn_fail(&err, "out of memory");
        program_error(flags.program, &err);
        goto done;
    }
    if (measure_links(c, link_bytes, repeat, mbit, host, &err)) {
        program_error(flags.program, &err);
        goto done;
    }
    for (int k = 0; k <= bs.count; k++) {
        real *buf = k < bs.count ? bs.b[k].buf : m.grads;
        size_t n = k < bs.count ? bs.b[k].n : m.num_params;
        if (time_allreduce(c, buf, n, repeat, &best[k], &median[k], &err)) {
            program_error(flags.program, &err);
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
            fprintf(js, "{\"model\": \"%s %dx%d\", \"ranks\": %d, \"repeat\": %d, \"links\": [", cfg.model_type,
                    cfg.L, cfg.H, c->size, repeat);
        for (int r = 0; link_bytes && c->size > 1 && r < c->size; r++) {
            printf("link %s -> %s: %.1f Mbit/s\n", host[r], host[(r + 1) % c->size], mbit[r]);
            if (js)
                fprintf(js, "%s{\"from\": \"%s\", \"to\": \"%s\", \"mbit_s\": %.2f}", r ? ", " : "", host[r],
                        host[(r + 1) % c->size], mbit[r]);
        }
        if (js) fprintf(js, "], \"buckets\": [");
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
    free(mbit);
    free(host);
    model_destroy(&m);
    backend_destroy(be);
    c->destroy(c);
    flags_free(&flags);
    return rc;
}
