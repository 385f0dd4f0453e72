/* The float CPU backend against plain references: each instruction set's kernels (the packed
 * product with a partial last panel, the LSTM, GRU and RNN cells) against double-precision
 * loops, and the recurrences split across threads against one thread, which must agree bit
 * for bit (each output element's arithmetic is the same whichever thread runs it), and the
 * merged products split across threads, which agree to float rounding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "check.h"
#include "crnn/backend.h"
#include "crnn/philox.h"
#include "crnn/rng.h"


/* realloc, wrapped (-Wl,--wrap=realloc, tests/math.cmake) so that a test can make the
 * backend's scratch find no memory */
void *__real_realloc(void *p, size_t n);
static int fail_realloc = 0;
void *__wrap_realloc(void *p, size_t n) { return fail_realloc ? NULL : __real_realloc(p, n); }
static uint32_t counter = 0;

static float rnd(void) {
    RngKey k = {.seed = 3, .purpose = 9, .position = counter++};
    return (float)(2 * rng_uniform(&k) - 1);
}

/* n values of rnd() in a new buffer */
static float *random_floats(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; p && i < n; i++) p[i] = rnd();
    return p;
}

static void check_gemm(const CpuKernels *k, int M, int N, int K) {
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N),
          *C = malloc(sizeof(float) * M * N);
    float *Bp = calloc(cpu_packed_size(K, N, k->tile_n), sizeof(float));
    double *ref = malloc(sizeof(double) * M * N);
    for (int i = 0; i < M * K; i++) A[i] = rnd();
    for (int i = 0; i < K * N; i++) B[i] = rnd();
    for (int i = 0; i < M * N; i++) C[i] = rnd(), ref[i] = C[i];
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++)
            for (int q = 0; q < K; q++) ref[m * N + n] += (double)A[m * K + q] * B[q * N + n];
    k->pack_b(K, N, B, N, 0, Bp);
    k->gemm_acc(M, N, K, A, K, Bp, C, N);
    double err = 0, norm = 0;
    for (int i = 0; i < M * N; i++) err += (C[i] - ref[i]) * (C[i] - ref[i]), norm += ref[i] * ref[i];
    if (!(sqrt(err / norm) < 1e-6)) {
        FAIL("%s gemm_acc %dx%dx%d: relative error %.3g", k->isa, M, N, K, sqrt(err / norm));
    }
    /* both packings against the layout element by element: panel p holds columns p*tile_n..
     * as K rows of tile_n, the last panel zero-padded; transposed, from B^T */
    const size_t packed = cpu_packed_size(K, N, k->tile_n);
    float *Bt = malloc(sizeof(float) * K * N), *Bp2 = malloc(sizeof(float) * packed);
    for (int q = 0; q < K; q++)
        for (int n = 0; n < N; n++) Bt[n * K + q] = B[q * N + n];
    for (int transpose = 0; transpose < 2; transpose++) {
        memset(Bp2, 0xff, sizeof(float) * packed); /* NaNs where pack_b writes nothing */
        k->pack_b(K, N, transpose ? Bt : B, transpose ? K : N, transpose, Bp2);
        size_t wrong = 0;
        for (size_t i = 0; i < packed; i++) {
            const int j = (int)(i % (size_t)k->tile_n), q = (int)(i / (size_t)k->tile_n % (size_t)K),
                      n = (int)(i / ((size_t)k->tile_n * (size_t)K)) * k->tile_n + j;
            const float want = n < N ? B[q * N + n] : 0.0f;
            if (memcmp(&Bp2[i], &want, sizeof want) != 0) wrong++;
        }
        if (wrong) FAIL("%s pack_b %dx%d%s: %zu of %zu reals out of place", k->isa, K, N, transpose ? " transposed" : "", wrong, packed);
    }
    free(A), free(B), free(C), free(Bp), free(Bp2), free(Bt), free(ref);
}

static void check_cell(const CpuKernels *k) {
    enum { R = 3, H = 37 }; /* H not a multiple of any vector width */
    float a[R * 4 * H], cp[R * H], c[R * H], h[R * H];
    for (int i = 0; i < R * 4 * H; i++) a[i] = 4 * rnd();
    for (int i = 0; i < R * H; i++) cp[i] = 2 * rnd();
    float a0[R * 4 * H];
    memcpy(a0, a, sizeof a);
    k->lstm_cell_forward(a, cp, c, h, R, H);
    double worst = 0;
    for (int b = 0; b < R; b++)
        for (int j = 0; j < H; j++) {
            const float *p = a0 + b * 4 * H;
            double i = 1 / (1 + exp(-(double)p[j])), f = 1 / (1 + exp(-(double)p[H + j]));
            double g = tanh((double)p[2 * H + j]), o = 1 / (1 + exp(-(double)p[3 * H + j]));
            double cc = f * cp[b * H + j] + i * g, hh = o * tanh(cc);
            worst = fmax(worst, fabs(cc - c[b * H + j]));
            worst = fmax(worst, fabs(hh - h[b * H + j]));
            worst = fmax(worst, fabs(i - a[b * 4 * H + j]));
            worst = fmax(worst, fabs(g - a[b * 4 * H + 2 * H + j]));
        }
    if (!(worst < 2e-6)) {
        FAIL("%s lstm_cell_forward: absolute error %.3g", k->isa, worst);
    }
}

static double sigm(double x) { return 1 / (1 + exp(-x)); }

/* the GRU and RNN cells, forward and backward, against double-precision formulas */
static void check_gru_rnn_cells(const CpuKernels *k) {
    enum { R = 3, H = 37 };
    float a[R * 3 * H], ah[R * 3 * H], hp[R * H], h[R * H], dh[R * H], dp[R * H];
    float a0[R * 3 * H], ah0[R * 3 * H], dp0[R * H];
    for (int i = 0; i < R * 3 * H; i++) a[i] = 3 * rnd(), ah[i] = 2 * rnd();
    for (int i = 0; i < R * H; i++) hp[i] = rnd(), dh[i] = rnd(), dp[i] = rnd();
    memcpy(a0, a, sizeof a);
    memcpy(ah0, ah, sizeof ah);
    memcpy(dp0, dp, sizeof dp);
    k->gru_cell_forward(a, ah, hp, h, R, H);
    double worst_f = 0, worst_b = 0;
    double ref_g[R * 3 * H], ref_gh[R * 3 * H], ref_dp[R * H];
    for (int b = 0; b < R; b++)
        for (int j = 0; j < H; j++) {
            const float *x = a0 + b * 3 * H, *y = ah0 + b * 3 * H;
            double r = sigm((double)x[j] + y[j]), z = sigm((double)x[H + j] + y[H + j]);
            double n = tanh((double)x[2 * H + j] + r * y[2 * H + j]);
            double hh = (1 - z) * n + z * hp[b * H + j];
            worst_f = fmax(worst_f, fabs(hh - h[b * H + j]));
            worst_f = fmax(worst_f, fabs(r - a[b * 3 * H + j]));
            worst_f = fmax(worst_f, fabs(z - a[b * 3 * H + H + j]));
            worst_f = fmax(worst_f, fabs(n - a[b * 3 * H + 2 * H + j]));
            /* backward from the float activations, as the kernel sees them */
            double rf = a[b * 3 * H + j], zf = a[b * 3 * H + H + j], nf = a[b * 3 * H + 2 * H + j];
            double d = dh[b * H + j];
            double dn = d * (1 - zf) * (1 - nf * nf), dz = d * (hp[b * H + j] - nf) * zf * (1 - zf);
            double dr = dn * y[2 * H + j] * rf * (1 - rf);
            ref_g[b * 3 * H + j] = dr, ref_g[b * 3 * H + H + j] = dz, ref_g[b * 3 * H + 2 * H + j] = dn;
            ref_gh[b * 3 * H + j] = dr, ref_gh[b * 3 * H + H + j] = dz;
            ref_gh[b * 3 * H + 2 * H + j] = dn * rf;
            ref_dp[b * H + j] = dp0[b * H + j] + d * zf;
        }
    k->gru_cell_backward(a, ah, hp, dh, dp, R, H);
    for (int i = 0; i < R * 3 * H; i++)
        worst_b = fmax(worst_b, fmax(fabs(ref_g[i] - a[i]), fabs(ref_gh[i] - ah[i])));
    for (int i = 0; i < R * H; i++) worst_b = fmax(worst_b, fabs(ref_dp[i] - dp[i]));
    if (!(worst_f < 2e-6) || !(worst_b < 1e-6)) {
        FAIL("%s gru cell: absolute error forward %.3g, backward %.3g", k->isa,
             worst_f, worst_b);
    }
    /* rnn */
    float ra[R * H], ra0[R * H], rh[R * H];
    for (int i = 0; i < R * H; i++) ra[i] = 4 * rnd();
    memcpy(ra0, ra, sizeof ra);
    k->rnn_cell_forward(ra, rh, R, H);
    worst_f = worst_b = 0;
    double ref_r[R * H];
    for (int i = 0; i < R * H; i++) {
        double t = tanh((double)ra0[i]);
        worst_f = fmax(worst_f, fmax(fabs(t - ra[i]), fabs(t - rh[i])));
        ref_r[i] = dh[i] * (1 - (double)ra[i] * ra[i]);
    }
    k->rnn_cell_backward(ra, dh, R, H);
    for (int i = 0; i < R * H; i++) worst_b = fmax(worst_b, fabs(ref_r[i] - ra[i]));
    if (!(worst_f < 2e-6) || !(worst_b < 1e-6)) {
        FAIL("%s rnn cell: absolute error forward %.3g, backward %.3g", k->isa,
             worst_f, worst_b);
    }
}

/* Each instruction set's dropout_row against philox.h's definition, unit by unit, for widths
 * that end on a partial quad and on a partial block of quads, a large iteration and seed. */
static void check_dropout_row(const CpuKernels *k) {
    const int Hs[5] = {1, 37, 64, 65, 515};
    float x[515], out[515];
    for (int j = 0; j < 515; j++) x[j] = 1 + (rnd() + 1) / 4; /* never 0 */
    for (int h = 0; h < 5; h++)
        for (int t = 0; t < 3; t++) {
            const int H = Hs[h];
            const uint64_t seed = 0x123456789abcULL + (uint64_t)t, iteration = (5ULL << 33) + 77;
            const uint32_t stream = 41 + (uint32_t)t, layer = (uint32_t)h;
            const float p = t == 2 ? 0.9f : 0.35f, scale = 1 / (1 - p);
            k->dropout_row(out, x, H, p, scale, seed, iteration, stream, layer, t);
            for (int j = 0; j < H; j++) {
                int keep = crnn_dropout_keep(seed, iteration, stream, layer, t, j, H, p);
                if (out[j] != (keep ? x[j] * scale : 0)) {
                    FAIL("%s dropout_row H=%d t=%d unit %d: %g, philox.h keeps it: %d",
                         k->isa, H, t, j, out[j], keep);
                    break;
                }
            }
        }
}

/* forward + backward of the GRU (G = 3) or RNN (G = 1) recurrence; hs, gates and gates_h
 * after backward concatenated */
static float *run_gru_rnn(Backend *be, int G, int S, int B, int H, size_t *len) {
    counter = 2000;
    size_t ng = (size_t)S * B * G * H, nh = (size_t)(S + 1) * B * H;
    float *gates = malloc(sizeof(float) * ng), *gates_h = calloc(ng, sizeof(float));
    float *W = malloc(sizeof(float) * H * G * H), *b_h = malloc(sizeof(float) * G * H);
    float *hs = calloc(nh, sizeof(float)), *dhs = malloc(sizeof(float) * S * B * H);
    for (size_t i = 0; i < ng; i++) gates[i] = rnd();
    for (int i = 0; i < H * G * H; i++) W[i] = 0.3f * rnd();
    for (int i = 0; i < G * H; i++) b_h[i] = 0.5f * rnd();
    for (int i = 0; i < B * H; i++) hs[i] = rnd();
    for (int i = 0; i < S * B * H; i++) dhs[i] = rnd();
    const CellSeq q = {.gates = gates, .gates_h = gates_h, .W_h = W, .b_h = b_h, .hs = hs, .dhs = dhs,
                       .S = S, .B = B, .H = H};
    const CellId id = G == 3 ? CELL_GRU : CELL_RNN;
    backend_cell_forward(be, id, &q);
    backend_cell_backward(be, id, &q);
    *len = nh + 2 * ng;
    float *out = malloc(sizeof(float) * *len);
    memcpy(out, hs, sizeof(float) * nh);
    memcpy(out + nh, gates, sizeof(float) * ng);
    memcpy(out + nh + ng, gates_h, sizeof(float) * ng);
    free(gates), free(gates_h), free(W), free(b_h), free(hs), free(dhs);
    return out;
}

/* forward + backward of the recurrence with the given backend; outputs concatenated */
static float *run_recurrence(Backend *be, int S, int B, int H) {
    counter = 1000; /* the same inputs for every backend */
    size_t ng = (size_t)S * B * 4 * H, nh = (size_t)(S + 1) * B * H;
    float *gates = malloc(sizeof(float) * ng), *W = malloc(sizeof(float) * H * 4 * H);
    float *hs = calloc(nh, sizeof(float)), *cs = calloc(nh, sizeof(float));
    float *dhs = malloc(sizeof(float) * S * B * H), *dc = malloc(sizeof(float) * B * H);
    for (size_t i = 0; i < ng; i++) gates[i] = rnd();
    for (int i = 0; i < H * 4 * H; i++) W[i] = 0.3f * rnd();
    for (int i = 0; i < B * H; i++) hs[i] = rnd(), cs[i] = rnd();
    for (int i = 0; i < S * B * H; i++) dhs[i] = rnd();
    const CellSeq q = {.gates = gates, .W_h = W, .hs = hs, .cs = cs, .dhs = dhs, .dc = dc,
                       .S = S, .B = B, .H = H};
    backend_cell_forward(be, CELL_LSTM, &q);
    float *out = malloc(sizeof(float) * (nh + ng));
    memcpy(out, hs, sizeof(float) * nh);
    backend_cell_backward(be, CELL_LSTM, &q);
    memcpy(out + nh, gates, sizeof(float) * ng);
    free(gates), free(W), free(hs), free(cs), free(dhs), free(dc);
    return out;
}

int main(void) {
    const CpuKernels *sets[CPU_KERNEL_SETS];
    const int n = cpu_kernels_available(sets);
    printf("kernel sets this processor runs:");
    for (int s = 0; s < n; s++) printf(" %s", sets[s]->isa);
    printf(" (the others are not tested here)\n");
    printf("the backend uses the %s kernels here\n", cpu_kernels_select()->isa);
    for (int s = 0; s < n; s++) {
        check_gemm(sets[s], 7, 70, 33);   /* partial last panel, tile remainder rows */
        check_gemm(sets[s], 25, 512, 128);
        check_gemm(sets[s], 1, 64, 5);
        check_gemm(sets[s], 23, 192, 150); /* K blocks with a partial last one; 4..6-row tails */
        check_gemm(sets[s], 2, 64, 64);
        check_gemm(sets[s], 5, 112, 40); /* a last panel of whole 16-column blocks, K % 16 != 0 */
        check_cell(sets[s]);
        check_gru_rnn_cells(sets[s]);
        check_dropout_row(sets[s]);
    }
    CrnnError err;
    Backend *one = backend_cpu_create(1, &err), *three = backend_cpu_create(3, &err);
    if (!one || !three) {
        fprintf(stderr, "backend: %s\n", err.msg);
        return 1;
    }
    Backend *two = backend_cpu_create(2, &err);
    if (!two) {
        fprintf(stderr, "backend: %s\n", err.msg);
        return 1;
    }
    /* 19 streams over 2 and 3 threads (uneven shares), at a small and a larger H, each against
     * one thread */
    const int S = 5, B = 19, Hs[2] = {40, 256};
    for (int h = 0; h < 2; h++) {
        const int H = Hs[h];
        size_t len = (size_t)(S + 1) * B * H + (size_t)S * B * 4 * H;
        float *a = run_recurrence(one, S, B, H);
        struct { Backend *be; const char *what; } runs[] = {{three, "3 threads"}, {two, "2 threads"}};
        for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
            float *b = run_recurrence(runs[r].be, S, B, H);
            if (memcmp(a, b, sizeof(float) * len) != 0) {
                FAIL("H=%d: the recurrence on %s differs from 1 thread", H, runs[r].what);
            }
            free(b);
        }
        free(a);
        for (int G = 3; G >= 1; G -= 2) {
            size_t n1, n2;
            float *x = run_gru_rnn(one, G, S, B, H, &n1);
            struct { Backend *be; const char *what; } more[] = {{three, "3 threads"}, {two, "2 threads"}};
            for (size_t r = 0; r < sizeof more / sizeof more[0]; r++) {
                float *y = run_gru_rnn(more[r].be, G, S, B, H, &n2);
                if (n1 != n2 || memcmp(x, y, sizeof(float) * n1) != 0) {
                    FAIL("H=%d: the %s recurrence on %s differs from 1 thread", H,
                         G == 3 ? "gru" : "rnn", more[r].what);
                }
                free(y);
            }
            free(x);
        }
    }
    /* the merged products split over the pool (blocks of 64 rows, or columns when C is wider
     * than tall, each through OpenBLAS on one thread) against one thread: every transpose,
     * strides beyond the minimum, alpha and beta, an uneven last block. OpenBLAS's kernels for a
     * block are not always those of the whole (its own threads differ from one thread too), so
     * they agree to float rounding, not bit for bit; the same thread count twice is bit for bit. */
    {
        const int shapes[2][3] = {{300, 130, 70}, {45, 400, 90}}; /* M >= N: by rows; N > M: by columns */
        for (int sh = 0; sh < 2; sh++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++) {
                    const int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
                    const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
                    const size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb,
                                 nc = (size_t)M * ldc;
                    float *A = random_floats(na), *Bm = random_floats(nb), *C1 = random_floats(nc),
                          *C3 = malloc(nc * sizeof *C3), *C3b = malloc(nc * sizeof *C3b);
                    memcpy(C3, C1, nc * sizeof *C3);
                    memcpy(C3b, C1, nc * sizeof *C3b);
                    one->gemm(one, ta, tb, M, N, K, 0.7f, A, lda, Bm, ldb, 0.5f, C1, ldc);
                    three->gemm(three, ta, tb, M, N, K, 0.7f, A, lda, Bm, ldb, 0.5f, C3, ldc);
                    three->gemm(three, ta, tb, M, N, K, 0.7f, A, lda, Bm, ldb, 0.5f, C3b, ldc);
                    double worst = 0; /* |a|, |b| <= 1: each sum is at most K in size */
                    for (int m = 0; m < M; m++)
                        for (int n = 0; n < N; n++) {
                            double d = fabs((double)C1[(size_t)m * ldc + n] - C3[(size_t)m * ldc + n]);
                            if (d > worst) worst = d;
                        }
                    if (!(worst <= 1e-6 * K))
                        FAIL("gemm %dx%dx%d (trans %d%d) on 3 threads differs from 1 thread by %.3g", M, N, K, ta, tb,
                             worst);
                    if (memcmp(C3, C3b, nc * sizeof *C3) != 0)
                        FAIL("gemm %dx%dx%d (trans %d%d) on 3 threads is not the same twice", M, N, K, ta, tb);
                    free(A);
                    free(Bm);
                    free(C1);
                    free(C3);
                    free(C3b);
                }
    }
    /* the products crnn's kernel takes from OpenBLAS (A as it is, alpha 1, beta 0 or 1, whole
     * panels of columns, enough rows): against a double sum, and bit for bit the same on 1 and 3
     * threads, since each element is summed over k in order whatever the split; by rows and by
     * columns, op(B) packed from B and from B^T, strides beyond the minimum */
    {
        const int shapes[2][3] = {{300, 128, 70}, {260, 384, 33}};
        for (int sh = 0; sh < 2; sh++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta = 0; beta < 2; beta++) {
                    const int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
                    const int lda = K + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
                    const size_t na = (size_t)M * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
                    float *A = random_floats(na), *Bm = random_floats(nb), *C0 = random_floats(nc),
                          *C1 = malloc(nc * sizeof *C1), *C3 = malloc(nc * sizeof *C3);
                    memcpy(C1, C0, nc * sizeof *C1);
                    memcpy(C3, C0, nc * sizeof *C3);
                    one->gemm(one, 0, tb, M, N, K, 1, A, lda, Bm, ldb, (float)beta, C1, ldc);
                    three->gemm(three, 0, tb, M, N, K, 1, A, lda, Bm, ldb, (float)beta, C3, ldc);
                    double worst = 0; /* |a|, |b|, |c| <= 1 */
                    for (int m = 0; m < M; m++)
                        for (int n = 0; n < N; n++) {
                            double want = beta ? C0[(size_t)m * ldc + n] : 0;
                            for (int k = 0; k < K; k++)
                                want += (double)A[(size_t)m * lda + k] * Bm[tb ? (size_t)n * ldb + k : (size_t)k * ldb + n];
                            double d = fabs(C1[(size_t)m * ldc + n] - want);
                            if (d > worst) worst = d;
                        }
                    if (!(worst <= 1e-6 * K))
                        FAIL("gemm %dx%dx%d (trans 0%d, beta %d) is %.3g from the double sum", M, N, K, tb, beta, worst);
                    if (memcmp(C1, C3, nc * sizeof *C1) != 0)
                        FAIL("gemm %dx%dx%d (trans 0%d, beta %d) on 3 threads differs from 1 thread", M, N, K, tb, beta);
                    free(A);
                    free(Bm);
                    free(C0);
                    free(C1);
                    free(C3);
                }
    }
    /* sumsq: within double rounding of a long double sum, and the same on 1 and 3 threads (its
     * blocks' sums are added in order whoever computed them); sizes around its block of 4096
     * and its groups of 256 blocks */
    {
        const size_t sizes[] = {0, 1, 7, 4095, 4096, 4097, 3 * 4096 + 5, 200003, 256 * 4096, 2 * 256 * 4096 + 5};
        for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
            const size_t n = sizes[t];
            float *x = random_floats(n);
            long double want = 0;
            for (size_t i = 0; i < n; i++) want += (long double)x[i] * x[i];
            const double s1 = one->sumsq(one, x, n), s3 = three->sumsq(three, x, n);
            if (!(fabsl((long double)s1 - want) <= 1e-13L * (want + 1e-300L)))
                FAIL("sumsq of %zu elements: %.17g, want %.17Lg", n, s1, want);
            if (s1 != s3) FAIL("sumsq of %zu elements: %.17g on 1 thread, %.17g on 3", n, s1, s3);
            free(x);
        }
    }
    /* without memory for the packed weights, the recurrences run on W_h as it is (OpenBLAS,
     * one thread) and agree with the packed kernels up to summation order */
    Backend *nomem = backend_cpu_create(2, &err);
    if (!nomem) {
        fprintf(stderr, "backend: %s\n", err.msg);
        return 1;
    }
    for (int G = 4; G >= 1; G--) {
        if (G == 2) continue;
        size_t n1 = (size_t)(S + 1) * B * 256 + (size_t)S * B * 4 * 256, n2 = n1;
        float *a = G == 4 ? run_recurrence(one, S, B, 256) : run_gru_rnn(one, G, S, B, 256, &n1);
        fail_realloc = 1;
        float *b = G == 4 ? run_recurrence(nomem, S, B, 256) : run_gru_rnn(nomem, G, S, B, 256, &n2);
        fail_realloc = 0;
        double dd = 0, nn = 0;
        for (size_t i = 0; i < n1; i++) dd += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), nn += (double)a[i] * a[i];
        if (n1 != n2 || !(sqrt(dd / nn) < 1e-5)) {
            FAIL("G=%d without memory for packed weights: relative error %.3g", G,
                 sqrt(dd / nn));
        }
        free(a), free(b);
    }
    backend_destroy(nomem);
    backend_destroy(two);
    backend_destroy(one);
    backend_destroy(three);
    return check_exit("test_backend");
}
