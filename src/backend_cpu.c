/* The CPU backend: OpenBLAS for the matrix products, plain loops for the rest. Compiled as
 * float for the programs and as double (CRNN_DOUBLE) for the finite-difference checks. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crnn/backend.h"

#ifdef CRNN_DOUBLE
#define GEMM cblas_dgemm
#define EXP exp
#define TANH tanh
#define LOG log
#define SQRT sqrt
#else
#define GEMM cblas_sgemm
#define EXP expf
#define TANH tanhf
#define LOG logf
#define SQRT sqrtf
#endif

/* OpenBLAS's thread control (declared in its cblas.h, but not in every BLAS's). */
void openblas_set_num_threads(int num_threads);

static void *cpu_alloc(Backend *be, size_t bytes) {
    (void)be;
    /* 64-byte alignment for vector loads; rounded up as aligned_alloc requires */
    size_t n = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, n ? n : 64);
    if (p) memset(p, 0, n ? n : 64);
    return p;
}
static void cpu_free(Backend *be, void *p) {
    (void)be;
    free(p);
}
static void cpu_copy(Backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memmove(dst, src, bytes);
}
static void cpu_zero(Backend *be, void *dst, size_t bytes) {
    (void)be;
    if (bytes) memset(dst, 0, bytes);
}

static void cpu_gemm(Backend *be, int trans_a, int trans_b, int M, int N, int K, real alpha,
                     const real *A, int lda, const real *B, int ldb, real beta, real *C, int ldc) {
    (void)be;
    if (M == 0 || N == 0) return;
    GEMM(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
         M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void cpu_rows_set_bias(Backend *be, real *dst, const real *b1, const real *b2, int M,
                              int N) {
    (void)be;
    if (M == 0) return;
    real *row0 = dst;
    for (int n = 0; n < N; n++) row0[n] = b1[n] + (b2 ? b2[n] : 0);
    for (int m = 1; m < M; m++) memcpy(dst + (size_t)m * N, row0, (size_t)N * sizeof(real));
}

static void cpu_col_sum(Backend *be, real *out, const real *in, int M, int N) {
    (void)be;
    /* double accumulation keeps the bias gradients as exact as the GEMM ones */
    double *acc = calloc((size_t)N, sizeof *acc);
    if (!acc) { /* degrade to real accumulation rather than fail */
        for (int n = 0; n < N; n++) out[n] = 0;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) out[n] += in[(size_t)m * N + n];
        return;
    }
    for (int m = 0; m < M; m++) {
        const real *row = in + (size_t)m * N;
        for (int n = 0; n < N; n++) acc[n] += row[n];
    }
    for (int n = 0; n < N; n++) out[n] = (real)acc[n];
    free(acc);
}

static void cpu_embedding_forward(Backend *be, real *out, const int32_t *idx, const real *table,
                                  int N, int D) {
    (void)be;
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * D, table + (size_t)idx[n] * D, (size_t)D * sizeof(real));
}

static void cpu_embedding_backward(Backend *be, real *dtable, const real *dout,
                                   const int32_t *idx, int N, int D) {
    (void)be;
    for (int n = 0; n < N; n++) {
        real *row = dtable + (size_t)idx[n] * D;
        const real *g = dout + (size_t)n * D;
        for (int d = 0; d < D; d++) row[d] += g[d];
    }
}

static inline real sigmoid(real x) { return 1 / (1 + EXP(-x)); }

static void cpu_lstm_forward(Backend *be, real *a, const real *c_prev, real *c, real *h, int B,
                             int H) {
    (void)be;
    for (int b = 0; b < B; b++) {
        real *ai = a + (size_t)b * 4 * H, *af = ai + H, *ag = af + H, *ao = ag + H;
        const real *cp = c_prev + (size_t)b * H;
        real *cn = c + (size_t)b * H, *hn = h + (size_t)b * H;
        for (int j = 0; j < H; j++) {
            real i = sigmoid(ai[j]), f = sigmoid(af[j]), g = TANH(ag[j]), o = sigmoid(ao[j]);
            ai[j] = i;
            af[j] = f;
            ag[j] = g;
            ao[j] = o;
            real cc = f * cp[j] + i * g;
            cn[j] = cc;
            hn[j] = o * TANH(cc);
        }
    }
}

static void cpu_lstm_backward(Backend *be, real *gates, const real *c_prev, const real *c,
                              const real *dh, real *dc, int B, int H) {
    (void)be;
    for (int b = 0; b < B; b++) {
        real *gi = gates + (size_t)b * 4 * H, *gf = gi + H, *gg = gf + H, *go = gg + H;
        const real *cp = c_prev + (size_t)b * H, *cn = c + (size_t)b * H;
        const real *dhb = dh + (size_t)b * H;
        real *dcb = dc + (size_t)b * H;
        for (int j = 0; j < H; j++) {
            real i = gi[j], f = gf[j], g = gg[j], o = go[j];
            real tc = TANH(cn[j]);
            real dct = dcb[j] + dhb[j] * o * (1 - tc * tc);
            gi[j] = dct * g * i * (1 - i);
            gf[j] = dct * cp[j] * f * (1 - f);
            gg[j] = dct * i * (1 - g * g);
            go[j] = dhb[j] * tc * o * (1 - o);
            dcb[j] = dct * f;
        }
    }
}

static double cpu_softmax_xent(Backend *be, const real *logits, const int32_t *y, real *dlogits,
                               int N, int V, real scale) {
    (void)be;
    double total = 0;
    for (int n = 0; n < N; n++) {
        const real *row = logits + (size_t)n * V;
        real mx = row[0];
        for (int v = 1; v < V; v++)
            if (row[v] > mx) mx = row[v];
        double sum = 0;
        for (int v = 0; v < V; v++) sum += EXP(row[v] - mx);
        total += log(sum) + (double)mx - (double)row[y[n]];
        if (dlogits) {
            real *d = dlogits + (size_t)n * V;
            real inv = (real)(1.0 / sum);
            for (int v = 0; v < V; v++) d[v] = EXP(row[v] - mx) * inv * scale;
            d[y[n]] -= scale;
        }
    }
    return total;
}

static void cpu_clamp(Backend *be, real *g, size_t n, real c) {
    (void)be;
    for (size_t k = 0; k < n; k++) g[k] = g[k] > c ? c : (g[k] < -c ? -c : g[k]);
}

static double cpu_sumsq(Backend *be, const real *x, size_t n) {
    (void)be;
    double s = 0;
    for (size_t k = 0; k < n; k++) s += (double)x[k] * x[k];
    return s;
}

static void cpu_scale(Backend *be, real *g, size_t n, real s) {
    (void)be;
    for (size_t k = 0; k < n; k++) g[k] *= s;
}

static void cpu_adam(Backend *be, real *x, const real *g, real *m, real *v, size_t n, double lr,
                     double b1, double b2, double eps, int64_t t) {
    (void)be;
    double step = lr * sqrt(1 - pow(b2, (double)t)) / (1 - pow(b1, (double)t));
    real rb1 = (real)b1, rb2 = (real)b2, reps = (real)eps, rstep = (real)step;
    for (size_t k = 0; k < n; k++) {
        m[k] = rb1 * m[k] + (1 - rb1) * g[k];
        v[k] = rb2 * v[k] + (1 - rb2) * g[k] * g[k];
        x[k] -= rstep * m[k] / (SQRT(v[k]) + reps);
    }
}

static void cpu_destroy(Backend *be) { free(be); }

Backend *backend_cpu_create(int threads, CrnnError *err) {
    Backend *be = crnn_calloc(1, sizeof *be, err);
    if (!be) return NULL;
    if (threads > 0) openblas_set_num_threads(threads);
    be->name = "cpu";
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->to_device = cpu_copy;
    be->to_host = cpu_copy;
    be->copy = cpu_copy;
    be->zero = cpu_zero;
    be->gemm = cpu_gemm;
    be->rows_set_bias = cpu_rows_set_bias;
    be->col_sum = cpu_col_sum;
    be->embedding_forward = cpu_embedding_forward;
    be->embedding_backward = cpu_embedding_backward;
    be->lstm_forward = cpu_lstm_forward;
    be->lstm_backward = cpu_lstm_backward;
    be->softmax_xent = cpu_softmax_xent;
    be->clamp = cpu_clamp;
    be->sumsq = cpu_sumsq;
    be->scale = cpu_scale;
    be->adam = cpu_adam;
    be->destroy = cpu_destroy;
    return be;
}

void backend_destroy(Backend *be) {
    if (be) be->destroy(be);
}
