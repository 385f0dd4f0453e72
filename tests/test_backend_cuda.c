/* The CUDA backend against the CPU backend, on fresh random inputs: `test_backend_cuda GROUP`
 * with GROUP one of
 *   ops      every operation of backend.h (relative error in norm under 1e-5 for elementwise
 *            work; for work containing float32 products a bound from the product's length);
 *            the embedding gradient and the optimisers bit for bit where the CPU's order of
 *            float operations is reproduced; the recurrences' CUDA graphs, captured and
 *            replayed, bit for bit as the launches issued directly (CRNN_CUDA_GRAPHS=0)
 *   dropout  the mask bit for bit (same Philox key, same keep test)
 *   train    the whole model (lstm, gru, rnn; with and without an embedding; Adam or RMSprop;
 *            dropout; clipping by element or by norm) for 20 steps: every loss within 1e-4 of
 *            the CPU's, the recurrences replayed from their graphs
 *   greedy   parameters CPU -> GPU -> CPU through host float32 (model_get/set_params, as a
 *            checkpoint moves them) unchanged, and the same greedy text for 100 characters
 *   nccl     the NCCL Comm over one rank: the mean of device buffers (flat and in buckets),
 *            host buffers through the inner Comm
 * Exit status 77 (a skip for CTest) when the build has no CUDA backend or there is no device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crnn/backend.h"
#include "crnn/comm.h"
#include "crnn/model.h"
#include "crnn/optim.h"
#include "crnn/rng.h"
#ifdef CRNN_HAVE_CUDA
#include "crnn/cuda.h"
#endif

static uint32_t counter = 0;

#ifdef CRNN_HAVE_CUDA

static Backend *cpu, *gpu;
static const double float_eps = 5.96e-8; /* 2^-24, float32's unit roundoff */

static float rnd(void) {
    RngKey k = {.seed = 11, .purpose = 9, .position = counter++};
    return (float)(2 * rng_uniform(&k) - 1);
}
static float *host_random(size_t n, float scale) {
    float *h = malloc((n ? n : 1) * sizeof *h);
    for (size_t k = 0; k < n; k++) h[k] = scale * rnd();
    return h;
}
/* The same host data in both backends' memory. */
typedef struct Pair {
    float *c, *g;
    size_t n;
} Pair;
static Pair pair_from(const float *host, size_t n) {
    Pair p = {cpu->alloc(cpu, n * sizeof(float)), gpu->alloc(gpu, n * sizeof(float)), n};
    if (!p.c || !p.g) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    cpu->to_device(cpu, p.c, host, n * sizeof(float));
    gpu->to_device(gpu, p.g, host, n * sizeof(float));
    return p;
}
static Pair pair_random(size_t n, float scale) {
    float *h = host_random(n, scale);
    Pair p = pair_from(h, n);
    free(h);
    return p;
}
static void pair_free(Pair *p) {
    cpu->free(cpu, p->c);
    gpu->free(gpu, p->g);
}
static void pair_cpu_to_gpu(Pair *p) {
    gpu->to_device(gpu, p->g, p->c, p->n * sizeof(float)); /* CPU memory is host memory */
}
static int32_t *idx_pair(const int32_t *host, int n, int32_t **dev) {
    int32_t *c = cpu->alloc(cpu, (size_t)n * sizeof *c);
    *dev = gpu->alloc(gpu, (size_t)n * sizeof **dev);
    cpu->to_device(cpu, c, host, (size_t)n * sizeof *c);
    gpu->to_device(gpu, *dev, host, (size_t)n * sizeof **dev);
    return c;
}

/* ||gpu - cpu|| / ||cpu|| (0 when both are 0); max_abs receives the largest difference. */
static double rel_error(const Pair *p, double *max_abs) {
    float *g = malloc(p->n * sizeof *g);
    gpu->to_host(gpu, g, p->g, p->n * sizeof *g);
    double diff = 0, ref = 0, mx = 0;
    for (size_t k = 0; k < p->n; k++) {
        double d = (double)g[k] - (double)p->c[k];
        if (isnan(d)) d = INFINITY;
        diff += d * d;
        ref += (double)p->c[k] * p->c[k];
        if (fabs(d) > mx) mx = fabs(d);
    }
    free(g);
    if (max_abs) *max_abs = mx;
    return diff == 0 ? 0 : ref == 0 ? INFINITY : sqrt(diff / ref);
}
static void expect_close(const char *what, const Pair *p, double tol) {
    double mx;
    double e = rel_error(p, &mx);
    CHECK(e <= tol, "%s: relative error %.3g > %.3g (largest difference %.3g)", what, e, tol, mx);
}
static void expect_equal(const char *what, const Pair *p) {
    double mx;
    double e = rel_error(p, &mx);
    CHECK(mx == 0, "%s: differs from the CPU (relative %.3g, largest %.3g); expected bit for bit", what, e, mx);
}

/* Float32 products of length K: each result's error is at most about K u sum|a||b| in either
 * implementation (the classic bound), so the two differ by at most twice that; in norm: */
static double product_tol(int K) { return 2.0 * K * float_eps * 4; /* x4: |A||B| vs A B in norm */ }

static void test_gemm(int ta, int tb, int M, int N, int K) {
    int lda = ta ? M + 3 : K + 2, ldb = tb ? K + 1 : N + 5, ldc = N + 4;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    Pair A = pair_random(na, 1), B = pair_random(nb, 1), C = pair_random(nc, 1);
    cpu->gemm(cpu, ta, tb, M, N, K, 0.7f, A.c, lda, B.c, ldb, 0.3f, C.c, ldc);
    gpu->gemm(gpu, ta, tb, M, N, K, 0.7f, A.g, lda, B.g, ldb, 0.3f, C.g, ldc);
    char what[64];
    snprintf(what, sizeof what, "gemm(%d, %d, %d x %d x %d)", ta, tb, M, N, K);
    expect_close(what, &C, product_tol(K));
    pair_free(&A), pair_free(&B), pair_free(&C);
}

static void test_dense(void) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) test_gemm(ta, tb, 37, 29, 53);
    test_gemm(0, 0, 1, 300, 64); /* one row: the sampler's shape */
    test_gemm(1, 0, 64, 256, 2500); /* a weight gradient over S*B rows */

    const int M = 301, N = 70;
    Pair b1 = pair_random(N, 1), b2 = pair_random(N, 1), out = pair_random((size_t)M * N, 1);
    cpu->rows_set_bias(cpu, out.c, b1.c, b2.c, M, N);
    gpu->rows_set_bias(gpu, out.g, b1.g, b2.g, M, N);
    expect_equal("rows_set_bias(b1, b2)", &out);
    cpu->rows_set_bias(cpu, out.c, b1.c, NULL, M, N);
    gpu->rows_set_bias(gpu, out.g, b1.g, NULL, M, N);
    expect_equal("rows_set_bias(b1)", &out);

    Pair in = pair_random((size_t)M * N, 1), sum = pair_random(N, 1);
    cpu->col_sum(cpu, sum.c, in.c, M, N);
    gpu->col_sum(gpu, sum.g, in.g, M, N);
    expect_close("col_sum", &sum, 4 * float_eps); /* double sums rounded once to float */
    pair_free(&b1), pair_free(&b2), pair_free(&out), pair_free(&in), pair_free(&sum);
}

static void test_embedding(void) {
    const int N = 500, D = 24, V = 17;
    int32_t idx[500];
    for (int n = 0; n < N; n++) idx[n] = (int32_t)((rnd() + 1) * 0.5f * V) % V;
    idx[7] = V - 1;
    int32_t *gi, *ci = idx_pair(idx, N, &gi);
    Pair table = pair_random((size_t)V * D, 1), out = pair_random((size_t)N * D, 1);
    cpu->embedding_forward(cpu, out.c, ci, table.c, N, D);
    gpu->embedding_forward(gpu, out.g, gi, table.g, N, D);
    expect_equal("embedding_forward", &out);
    cpu->embedding_forward_add(cpu, out.c, ci, table.c, N, D);
    gpu->embedding_forward_add(gpu, out.g, gi, table.g, N, D);
    expect_equal("embedding_forward_add", &out);
    Pair dout = pair_random((size_t)N * D, 1), dtable = pair_random((size_t)V * D, 1);
    cpu->embedding_backward(cpu, dtable.c, dout.c, ci, N, D);
    gpu->embedding_backward(gpu, dtable.g, dout.g, gi, N, D);
    expect_equal("embedding_backward (onto a nonzero table, in row order)", &dtable);
    /* a second call reuses the backend's sort scratch */
    cpu->embedding_backward(cpu, dtable.c, dout.c, ci, N / 2, D);
    gpu->embedding_backward(gpu, dtable.g, dout.g, gi, N / 2, D);
    expect_equal("embedding_backward (again, fewer rows)", &dtable);
    cpu->free(cpu, ci), gpu->free(gpu, gi);
    pair_free(&table), pair_free(&out), pair_free(&dout), pair_free(&dtable);
}

/* The cell of G gates, whose recurrence runs through each backend's cell table. */
static CellId cell_of(int G) { return G == 4 ? CELL_LSTM : G == 3 ? CELL_GRU : CELL_RNN; }
/* p's buffer on the CPU (side 0) or on the GPU (side 1). */
static float *side_of(const Pair *p, int side) { return side ? p->g : p->c; }

/* One cell type's forward and backward over S steps: every buffer the ops write. The tolerance:
 * S steps of products of length H (forward) or G*H (backward), each within product_tol, carried
 * through bounded activations. */
static void test_recurrence(int G) {
    const int S = 6, B = 5, H = 33;
    const size_t BH = (size_t)B * H;
    Pair gates = pair_random((size_t)S * B * G * H, 1), W = pair_random((size_t)H * G * H, 0.3f);
    Pair hs = pair_random((S + 1) * BH, 0.5f), cs = pair_random((S + 1) * BH, 0.5f);
    Pair gates_h = pair_random((size_t)S * B * 3 * H, 1), b_h = pair_random((size_t)3 * H, 0.5f);
    Pair dhs = pair_random((size_t)S * BH, 1), dc = pair_random(BH, 1);
    const char *name = G == 4 ? "lstm" : G == 3 ? "gru" : "rnn";
    const double tol = S * product_tol(G * H);
    char what[64];
    CellSeq q[2]; /* the CPU's buffers, the GPU's */
    for (int s = 0; s < 2; s++)
        q[s] = (CellSeq){.gates = side_of(&gates, s), .gates_h = side_of(&gates_h, s), .W_h = side_of(&W, s),
                         .b_h = side_of(&b_h, s), .hs = side_of(&hs, s), .cs = side_of(&cs, s),
                         .dhs = side_of(&dhs, s), .dc = side_of(&dc, s), .S = S, .B = B, .H = H};
    const CellId id = cell_of(G);
    backend_cell_forward(cpu, id, &q[0]);
    backend_cell_forward(gpu, id, &q[1]);
    snprintf(what, sizeof what, "%s_forward: gates", name);
    expect_close(what, &gates, tol);
    snprintf(what, sizeof what, "%s_forward: hs", name);
    expect_close(what, &hs, tol);
    if (G == 4) expect_close("lstm_forward: cs", &cs, tol);
    if (G == 3) expect_close("gru_forward: gates_h", &gates_h, tol);
    /* backward from the same (CPU) activations and states on both sides */
    pair_cpu_to_gpu(&gates), pair_cpu_to_gpu(&gates_h), pair_cpu_to_gpu(&hs), pair_cpu_to_gpu(&cs);
    backend_cell_backward(cpu, id, &q[0]);
    backend_cell_backward(gpu, id, &q[1]);
    if (G == 4) expect_close("lstm_backward: dc", &dc, tol);
    if (G == 3) expect_close("gru_backward: dA_h", &gates_h, tol);
    snprintf(what, sizeof what, "%s_backward: dA", name);
    expect_close(what, &gates, tol);
    snprintf(what, sizeof what, "%s_backward: dhs", name);
    expect_close(what, &dhs, tol);
    pair_free(&gates), pair_free(&W), pair_free(&hs), pair_free(&cs), pair_free(&gates_h), pair_free(&b_h);
    pair_free(&dhs), pair_free(&dc);
}

static void test_softmax(void) {
    const int N = 123, V = 67;
    Pair logits = pair_random((size_t)N * V, 4), d = pair_random((size_t)N * V, 1);
    int32_t y[123];
    for (int n = 0; n < N; n++) y[n] = (int32_t)((rnd() + 1) * 0.5f * V) % V;
    int32_t *gy, *cy = idx_pair(y, N, &gy);
    double lc = cpu->softmax_xent(cpu, logits.c, cy, d.c, N, V, 0.01f);
    double lg = gpu->softmax_xent(gpu, logits.g, gy, d.g, N, V, 0.01f);
    CHECK(fabs(lg - lc) <= 1e-6 * fabs(lc), "softmax_xent loss: %.9g on the GPU, %.9g on the CPU", lg, lc);
    expect_close("softmax_xent gradient", &d, 1e-5);
    double l0 = gpu->softmax_xent(gpu, logits.g, gy, NULL, N, V, 1);
    CHECK(l0 == lg, "softmax_xent without a gradient: %.17g, with one %.17g", l0, lg);
    /* in place, as the model calls it */
    cpu->softmax_xent(cpu, logits.c, cy, logits.c, N, V, 0.5f);
    gpu->softmax_xent(gpu, logits.g, gy, logits.g, N, V, 0.5f);
    expect_close("softmax_xent in place", &logits, 1e-5);
    /* a large vocabulary: several threads per row and more than one warp per block */
    const int N2 = 9, V2 = 3001;
    Pair big = pair_random((size_t)N2 * V2, 10);
    int32_t y2[9] = {0, 1, 3000, 17, 2999, 1500, 5, 6, 7};
    int32_t *gy2, *cy2 = idx_pair(y2, N2, &gy2);
    lc = cpu->softmax_xent(cpu, big.c, cy2, big.c, N2, V2, 1);
    lg = gpu->softmax_xent(gpu, big.g, gy2, big.g, N2, V2, 1);
    CHECK(fabs(lg - lc) <= 1e-6 * fabs(lc), "softmax_xent (V %d) loss: %.9g on the GPU, %.9g on the CPU", V2, lg, lc);
    expect_close("softmax_xent (large V) gradient", &big, 1e-5);
    cpu->free(cpu, cy), gpu->free(gpu, gy), cpu->free(cpu, cy2), gpu->free(gpu, gy2);
    pair_free(&logits), pair_free(&d), pair_free(&big);
}

static void test_flat(void) {
    const size_t n = 300001; /* more than one grid's stride of the reductions */
    Pair g = pair_random(n, 2);
    double sc = cpu->sumsq(cpu, g.c, n), sg = gpu->sumsq(gpu, g.g, n);
    CHECK(fabs(sg - sc) <= 1e-12 * sc, "sumsq: %.17g on the GPU, %.17g on the CPU", sg, sc);
    CHECK(gpu->sumsq(gpu, g.g, n) == sg, "sumsq is not deterministic");
    CHECK(gpu->sumsq(gpu, g.g, 0) == 0, "sumsq of nothing is not 0");
    cpu->clamp(cpu, g.c, n, 1.25f);
    gpu->clamp(gpu, g.g, n, 1.25f);
    expect_equal("clamp", &g);
    cpu->scale(cpu, g.c, n, 0.37f);
    gpu->scale(gpu, g.g, n, 0.37f);
    expect_equal("scale", &g);
    Pair x = pair_random(n, 1), m = pair_random(n, 0.1f), v = pair_random(n, 0.01f);
    float *h = malloc(n * sizeof *h);
    for (size_t k = 0; k < n; k++) h[k] = fabsf(0.01f * rnd());
    cpu->to_device(cpu, v.c, h, n * sizeof *h);
    gpu->to_device(gpu, v.g, h, n * sizeof *h);
    free(h);
    for (int64_t t = 1; t <= 3; t++) {
        cpu->adam(cpu, x.c, g.c, m.c, v.c, n, 2e-3, 0.9, 0.999, 1e-8, t, t == 2 ? 0.3f : 0);
        gpu->adam(gpu, x.g, g.g, m.g, v.g, n, 2e-3, 0.9, 0.999, 1e-8, t, t == 2 ? 0.3f : 0);
    }
    /* the CPU's operations in its order, none fused: equal unless the CPU build fuses them */
    expect_close("adam: x", &x, 1e-6);
    expect_close("adam: m", &m, 1e-6);
    expect_close("adam: v", &v, 1e-6);
    for (int t = 0; t < 3; t++) {
        cpu->rmsprop(cpu, x.c, g.c, v.c, n, 2e-3, 0.95, 1e-8, t == 2 ? 0.3f : 0);
        gpu->rmsprop(gpu, x.g, g.g, v.g, n, 2e-3, 0.95, 1e-8, t == 2 ? 0.3f : 0);
    }
    expect_close("rmsprop: x", &x, 1e-6);
    expect_close("rmsprop: v", &v, 1e-6);
    /* memory: copy, zero, a zero-filled alloc */
    Pair z = pair_random(1000, 1);
    cpu->copy(cpu, z.c, x.c, 1000 * sizeof(float));
    gpu->copy(gpu, z.g, x.g, 1000 * sizeof(float));
    expect_close("copy", &z, 1e-6);
    cpu->zero(cpu, z.c, 500 * sizeof(float));
    gpu->zero(gpu, z.g, 500 * sizeof(float));
    expect_close("zero", &z, 1e-6);
    float *fresh = gpu->alloc(gpu, 4096 * sizeof(float)), *back = malloc(4096 * sizeof(float));
    gpu->to_host(gpu, back, fresh, 4096 * sizeof(float));
    int nonzero = 0;
    for (int k = 0; k < 4096; k++) nonzero += back[k] != 0;
    CHECK(nonzero == 0, "alloc: %d of 4096 elements are not zero", nonzero);
    gpu->free(gpu, fresh);
    free(back);
    pair_free(&g), pair_free(&x), pair_free(&m), pair_free(&v), pair_free(&z);
}

/* One forward and backward of a G-gate recurrence on be, `rounds` times over the same device
 * buffers from the same host inputs: every output of each round, one round after another. */
enum { REC_GATES, REC_W, REC_HS, REC_CS, REC_GATES_H, REC_BH, REC_DHS, REC_DC, REC_N };
static float *recurrence_rounds(Backend *be, int G, float *const *host, const size_t *n, int rounds, int S, int B,
                                int H) {
    float *dev[REC_N];
    size_t total = 0;
    for (int k = 0; k < REC_N; k++) total += n[k], dev[k] = be->alloc(be, n[k] * sizeof(float));
    float *out = malloc((size_t)rounds * total * sizeof *out), *o = out;
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < REC_N; k++) be->to_device(be, dev[k], host[k], n[k] * sizeof(float));
        const CellSeq q = {.gates = dev[REC_GATES], .gates_h = dev[REC_GATES_H], .W_h = dev[REC_W],
                           .b_h = dev[REC_BH], .hs = dev[REC_HS], .cs = dev[REC_CS], .dhs = dev[REC_DHS],
                           .dc = dev[REC_DC], .S = S, .B = B, .H = H};
        backend_cell_forward(be, cell_of(G), &q);
        backend_cell_backward(be, cell_of(G), &q);
        for (int k = 0; k < REC_N; k++) {
            be->to_host(be, o, dev[k], n[k] * sizeof(float));
            o += n[k];
        }
    }
    for (int k = 0; k < REC_N; k++) be->free(be, dev[k]);
    return out;
}

/* The recurrences' CUDA graphs: the first round on a set of buffers captures a graph for the
 * forward and one for the backward, the second replays them, and both rounds give bit for bit
 * what a backend that issues every launch directly (CRNN_CUDA_GRAPHS=0) gives. */
static void test_graphs(void) {
    const int S = 7, B = 3, H = 20;
    CrnnError err = {.msg = ""};
    setenv("CRNN_CUDA_GRAPHS", "0", 1);
    Backend *direct = backend_cuda_create(0, &err);
    unsetenv("CRNN_CUDA_GRAPHS");
    CHECK(direct != NULL, "a second CUDA backend: %s", err.msg);
    if (!direct) return;
    for (int G = 1; G <= 4; G++) {
        if (G == 2) continue;
        const size_t BH = (size_t)B * H;
        const size_t n[REC_N] = {(size_t)S * B * G * H, (size_t)H * G * H, (S + 1) * BH, (S + 1) * BH,
                                 (size_t)S * B * 3 * H, 3 * (size_t)H, (size_t)S * BH, BH};
        float *host[REC_N];
        size_t total = 0;
        for (int k = 0; k < REC_N; k++) host[k] = host_random(n[k], k == REC_W ? 0.3f : 1), total += n[k];
        long c0 = 0, r0 = 0, c1 = 0, r1 = 0, cd = 0, rd = 0;
        backend_cuda_graphs(gpu, &c0, &r0);
        float *graphs = recurrence_rounds(gpu, G, host, n, 2, S, B, H);
        const int on = backend_cuda_graphs(gpu, &c1, &r1);
        float *plain = recurrence_rounds(direct, G, host, n, 1, S, B, H);
        const int direct_on = backend_cuda_graphs(direct, &cd, &rd);
        CHECK(on == 1 && c1 - c0 == 2 && r1 - r0 == 2,
              "G %d: graphs on %d, %ld captured and %ld replayed (expected on, 2 and 2)", G, on, c1 - c0, r1 - r0);
        CHECK(direct_on == 0 && cd == 0 && rd == 0, "CRNN_CUDA_GRAPHS=0: graphs on %d, %ld captured, %ld replayed",
              direct_on, cd, rd);
        CHECK(memcmp(graphs, graphs + total, total * sizeof *graphs) == 0,
              "G %d: the replayed graphs differ from their first launch", G);
        CHECK(memcmp(graphs, plain, total * sizeof *graphs) == 0, "G %d: the graphs differ from direct launches", G);
        free(graphs), free(plain);
        for (int k = 0; k < REC_N; k++) free(host[k]);
    }
    CHECK(backend_check(direct, &err) == 0, "the direct CUDA backend failed: %s", err.msg);
    backend_destroy(direct);
}

static int group_ops(void) {
    test_dense();
    test_embedding();
    for (int G = 1; G <= 4; G++)
        if (G != 2) test_recurrence(G);
    test_graphs();
    test_softmax();
    test_flat();
    return 0;
}

static int group_dropout(void) {
    const int S = 7, B = 9, H = 37; /* H not a multiple of 4: the last quad is partial */
    const size_t n = (size_t)S * B * H;
    for (int layer = 0; layer < 3; layer++) {
        Pair x = pair_random(n, 1), out = pair_random(n, 1);
        const float p = layer == 2 ? 0.9f : 0.3f;
        cpu->dropout(cpu, out.c, x.c, S, B, H, p, 123, 4567 + (uint64_t)layer, 11, layer);
        gpu->dropout(gpu, out.g, x.g, S, B, H, p, 123, 4567 + (uint64_t)layer, 11, layer);
        expect_equal("dropout", &out);
        /* in place, as the backward applies it to the gradient */
        cpu->dropout(cpu, x.c, x.c, S, B, H, p, 123, 4567 + (uint64_t)layer, 11, layer);
        gpu->dropout(gpu, x.g, x.g, S, B, H, p, 123, 4567 + (uint64_t)layer, 11, layer);
        expect_equal("dropout in place", &x);
        pair_free(&x), pair_free(&out);
    }
    return 0;
}

static void tokens(int32_t *x, int n, int V) {
    for (int k = 0; k < n; k++) x[k] = (int32_t)((rnd() + 1) * 0.5f * V) % V;
}

/* 20 steps of one model on both backends from the same parameters and tokens: with dropout p
 * (masks keyed by the step), the optimizer `optim`, and clipping by element (clamp 5) or by
 * norm (to 0.05, which these gradients exceed). */
static int train_one(const char *type, int D, double p_drop, const char *optim, int clip_norm) {
    ModelConfig cfg = {.V = 23, .D = D, .H = 48, .L = 2, .dropout = p_drop};
    snprintf(cfg.model_type, sizeof cfg.model_type, "%s", type);
    const int B = 8, S = 12, steps = 20;
    Model mc, mg;
    Optimizer oc, og;
    CrnnError err;
    if (model_create(&mc, &cfg, cpu, B, S, &err) || model_create(&mg, &cfg, gpu, B, S, &err) ||
        optim_create(&oc, cpu, optim, mc.num_params, 2e-3, 0.95, &err) ||
        optim_create(&og, gpu, optim, mg.num_params, 2e-3, 0.95, &err)) {
        fprintf(stderr, "FAIL: %s\n", err.msg);
        return 1;
    }
    model_init_params(&mc, 7);
    float *p = malloc(mc.num_params * sizeof *p);
    model_get_params(&mc, p);
    model_set_params(&mg, p);
    int32_t *x = malloc((size_t)B * S * sizeof *x), *y = malloc((size_t)B * S * sizeof *y);
    double worst = 0;
    for (int step = 0; step < steps; step++) {
        tokens(x, B * S, cfg.V);
        tokens(y, B * S, cfg.V);
        model_set_dropout(&mc, p_drop > 0, 31, (uint64_t)step, 0);
        model_set_dropout(&mg, p_drop > 0, 31, (uint64_t)step, 0);
        double lc = model_forward(&mc, x, y, B, S), lg = model_forward(&mg, x, y, B, S);
        model_backward(&mc, NULL, NULL);
        model_backward(&mg, NULL, NULL);
        if (clip_norm && step == 0) {
            const double norm = sqrt(cpu->sumsq(cpu, mc.grads, mc.num_params));
            CHECK(norm > 0.05, "%s: the gradient's norm %.3g does not reach the clip (0.05)", type, norm);
        }
        if (clip_norm) { /* as train.c: the norm scales first, the clamp is the optimizer's */
            optim_clip(cpu, mc.grads, mc.num_params, 0.05, 1);
            optim_clip(gpu, mg.grads, mg.num_params, 0.05, 1);
        }
        optim_step(&oc, mc.params, mc.grads, clip_norm ? 0 : 5);
        optim_step(&og, mg.params, mg.grads, clip_norm ? 0 : 5);
        if (fabs(lg - lc) > worst) worst = fabs(lg - lc);
        CHECK(fabs(lg - lc) <= 1e-4, "%s (D %d, dropout %g, %s, clip %s) step %d: loss %.7f on the GPU, %.7f on the CPU",
              type, D, p_drop, optim, clip_norm ? "norm" : "clamp", step, lg, lc);
    }
    CHECK(backend_check(gpu, &err) == 0, "the CUDA backend failed: %s", err.msg);
    printf("%s D=%d dropout %g %s clip %s: %d steps, largest loss difference %.3g\n", type, D, p_drop, optim,
           clip_norm ? "norm" : "clamp", steps, worst);
    free(p), free(x), free(y);
    optim_destroy(&oc), optim_destroy(&og);
    model_destroy(&mc), model_destroy(&mg);
    return 0;
}

static int group_train(void) {
    int rc = 0;
    rc |= train_one("lstm", 16, 0, "adam", 0);
    rc |= train_one("gru", 16, 0, "adam", 0);
    rc |= train_one("rnn", 16, 0, "adam", 0);
    rc |= train_one("lstm", 0, 0, "adam", 0); /* one-hot input: the embedding kernels on W_x */
    /* dropout (its masks regenerated in backward), RMSprop, and clipping by norm */
    rc |= train_one("lstm", 16, 0.3, "rmsprop", 1);
    rc |= train_one("gru", 0, 0.5, "adam", 1);
    long captured = 0, replayed = 0;
    const int on = backend_cuda_graphs(gpu, &captured, &replayed);
    /* every step after the first replays each layer's forward and backward */
    CHECK(on == 1 && captured > 0 && replayed >= 4 * 19 * 2, "training replayed %ld graphs (%ld captured, on %d)",
          replayed, captured, on);
    return rc;
}

/* 100 characters chosen greedily, one step at a time, from token 0. */
static void greedy(Model *m, int32_t *out, int n) {
    float *logits = malloc((size_t)m->cfg.V * sizeof *logits);
    int32_t x = 0;
    model_reset_state(m);
    for (int k = 0; k < n; k++) {
        model_forward(m, &x, NULL, 1, 1);
        m->be->to_host(m->be, logits, model_logits(m), (size_t)m->cfg.V * sizeof *logits);
        int best = 0;
        for (int v = 1; v < m->cfg.V; v++)
            if (logits[v] > logits[best]) best = v;
        out[k] = x = best;
    }
    free(logits);
}

static int group_greedy(void) {
    ModelConfig cfg = {.model_type = "lstm", .V = 31, .D = 16, .H = 64, .L = 2, .dropout = 0};
    Model mc, mg;
    CrnnError err;
    if (model_create(&mc, &cfg, cpu, 1, 1, &err) || model_create(&mg, &cfg, gpu, 1, 1, &err)) {
        fprintf(stderr, "FAIL: %s\n", err.msg);
        return 1;
    }
    model_init_params(&mg, 99); /* initialised on the GPU, as a GPU run's checkpoint would be */
    float *p = malloc(mg.num_params * sizeof *p), *back = malloc(mg.num_params * sizeof *back);
    model_get_params(&mg, p);
    model_set_params(&mc, p);
    model_get_params(&mc, back);
    CHECK(memcmp(p, back, mg.num_params * sizeof *p) == 0, "parameters changed on the way GPU -> host -> CPU");
    model_set_params(&mg, back);
    model_get_params(&mg, p);
    CHECK(memcmp(p, back, mg.num_params * sizeof *p) == 0, "parameters changed on the way CPU -> host -> GPU");
    int32_t tc[100], tg[100];
    greedy(&mc, tc, 100);
    greedy(&mg, tg, 100);
    int first = -1;
    for (int k = 0; k < 100 && first < 0; k++)
        if (tc[k] != tg[k]) first = k;
    CHECK(first < 0, "greedy text differs from character %d (GPU %d, CPU %d)", first, first >= 0 ? tg[first] : 0,
          first >= 0 ? tc[first] : 0);
    free(p), free(back);
    model_destroy(&mc), model_destroy(&mg);
    return 0;
}

static int group_nccl(void) {
    CrnnError err;
    Comm *single = comm_single_create(&err);
    Comm *c = single ? comm_nccl_create(single, gpu, &err) : NULL;
    if (!c) {
        fprintf(stderr, "FAIL: %s\n", err.msg);
        if (single) single->destroy(single);
        return 1;
    }
    CHECK(comm_is_nccl(c) && c->size == 1 && c->rank == 0, "the NCCL Comm is not one rank");
    const size_t n = 100003;
    Pair a = pair_random(n, 1), b = pair_random(n, 1);
    CHECK(c->allreduce_mean(c, a.g, n, &err) == 0, "allreduce_mean: %s", err.msg);
    expect_equal("NCCL mean over one rank (flat)", &a);
    /* buckets, then work on the backend's stream that must see the reduced values */
    CHECK(c->allreduce_mean_start(c, a.g, n / 2, &err) == 0, "allreduce_mean_start: %s", err.msg);
    CHECK(c->allreduce_mean_start(c, a.g + n / 2, n - n / 2, &err) == 0, "allreduce_mean_start: %s", err.msg);
    CHECK(c->allreduce_mean_start(c, b.g, n, &err) == 0, "allreduce_mean_start: %s", err.msg);
    CHECK(c->wait_all(c, &err) == 0, "wait_all: %s", err.msg);
    cpu->scale(cpu, a.c, n, 2.0f);
    gpu->scale(gpu, a.g, n, 2.0f);
    expect_equal("NCCL mean over one rank (buckets), then the backend's stream", &a);
    expect_equal("NCCL mean over one rank (a second buffer)", &b);
    real host = 3.5f;
    CHECK(c->allreduce_mean(c, &host, 1, &err) == 0 && host == 3.5f, "a host buffer through the inner Comm");
    int64_t v = 42;
    CHECK(c->allreduce_max_int(c, &v, &err) == 0 && v == 42, "allreduce_max_int through the inner Comm");
    CHECK(backend_check(gpu, &err) == 0, "the CUDA backend failed: %s", err.msg);
    pair_free(&a), pair_free(&b);
    c->destroy(c); /* destroys the single Comm too */
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s ops|dropout|train|greedy|nccl\n", argv[0]);
        return 2;
    }
    int count = 0;
    CrnnError err = {.msg = ""};
    if (backend_cuda_device_count(&count, &err) || count == 0) {
        printf("SKIP: no CUDA device (%s)\n", count == 0 && err.msg[0] ? err.msg : "none found");
        return CHECK_SKIP;
    }
    cpu = backend_cpu_create(1, &err);
    gpu = cpu ? backend_cuda_create(0, &err) : NULL;
    if (!gpu) {
        fprintf(stderr, "FAIL: %s\n", err.msg);
        return 1;
    }
    int rc;
    if (strcmp(argv[1], "ops") == 0)
        rc = group_ops();
    else if (strcmp(argv[1], "dropout") == 0)
        rc = group_dropout();
    else if (strcmp(argv[1], "train") == 0)
        rc = group_train();
    else if (strcmp(argv[1], "greedy") == 0)
        rc = group_greedy();
    else if (strcmp(argv[1], "nccl") == 0)
        rc = group_nccl();
    else {
        fprintf(stderr, "unknown group '%s'\n", argv[1]);
        return 2;
    }
    if (backend_check(gpu, &err)) {
        FAIL("the CUDA backend reports: %s", err.msg);
    }
    backend_destroy(gpu);
    backend_destroy(cpu);
    CHECK(rc == 0, "group %s stopped early", argv[1]);
    return check_exit(argv[1]);
}

#else

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    (void)counter;
    printf("SKIP: no CUDA device (this build has no CUDA backend: CRNN_CUDA=OFF or no toolkit)\n");
    return CHECK_SKIP;
}

#endif
