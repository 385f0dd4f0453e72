/* -precision bf16 on the CPU: the rounding to bf16 against its definition (nearest, ties to even,
 * NaN kept); every instruction set's packing of B and pairing of A against a plain loop, bit for
 * bit; every set's bf16 product against double-precision sums of the rounded operands (vdpbf16ps
 * where the processor has AVX512_BF16, the widened float32 FMAs elsewhere); the backend's bf16
 * products (every transpose, beta 0 and 1, rows or columns over the pool) against the same
 * reference; and its bf16 recurrences: the same bit for bit on 1 and 3 threads, and within
 * bf16's rounding of the float32 ones, but not equal to them (bf16 is really used). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu_kernels.h"
#include "crnn/backend.h"
#include "crnn/rng.h"


static uint32_t counter = 0;

static float rnd(void) {
    RngKey k = {.seed = 5, .purpose = 11, .position = counter++};
    return (float)(2 * rng_uniform(&k) - 1);
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The rounding -precision bf16 defines (docs/FORMATS.md), written out plainly as the reference
 * for the kernels' vectorised one: to the nearest bf16, ties to even, a NaN kept a quiet NaN. */
static uint16_t bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

/* x rounded to bf16 and back */
static double bf(float x) { return from_bits((uint32_t)bf16_bits(x) << 16); }

static void check_rounding(void) {
    CHECK(bf16_bits(1.0f) == 0x3f80, "1.0 -> %#x", bf16_bits(1.0f));
    CHECK(bf16_bits(-2.0f) == 0xc000, "-2.0 -> %#x", bf16_bits(-2.0f));
    /* halfway between two bf16: to the even one */
    CHECK(bf16_bits(from_bits(0x3f808000u)) == 0x3f80, "tie below -> %#x", bf16_bits(from_bits(0x3f808000u)));
    CHECK(bf16_bits(from_bits(0x3f818000u)) == 0x3f82, "tie above -> %#x", bf16_bits(from_bits(0x3f818000u)));
    CHECK(bf16_bits(from_bits(0x3f808001u)) == 0x3f81, "past half -> %#x", bf16_bits(from_bits(0x3f808001u)));
    CHECK(bf16_bits(from_bits(0x3f807fffu)) == 0x3f80, "below half -> %#x", bf16_bits(from_bits(0x3f807fffu)));
    CHECK(bf16_bits(INFINITY) == 0x7f80, "inf -> %#x", bf16_bits(INFINITY));
    CHECK(bf16_bits(from_bits(0x7f7fffffu)) == 0x7f80, "FLT_MAX rounds to inf: %#x",
          bf16_bits(from_bits(0x7f7fffffu)));
    const uint16_t nan = bf16_bits(from_bits(0x7f800001u)); /* a NaN whose payload is in the low bits */
    CHECK((nan & 0x7f80) == 0x7f80 && (nan & 0x7f) != 0, "NaN -> %#x, not NaN", nan);
}

/* B [K, N] packed as pack_b_bf16 says, by a plain loop */
static uint32_t ref_word(const float *B, int K, int N, int k, int j) {
    if (j >= N) return 0;
    uint32_t lo = bf16_bits(B[(size_t)(2 * k) * N + j]);
    uint32_t hi = 2 * k + 1 < K ? bf16_bits(B[(size_t)(2 * k + 1) * N + j]) : 0;
    return lo | hi << 16;
}

static void check_packing(const CpuKernels *k, int K, int N) {
    const int KP = (K + 1) / 2, tn = k->tile_n;
    float *B = malloc(sizeof(float) * K * N), *Bt = malloc(sizeof(float) * K * N);
    for (int i = 0; i < K * N; i++) B[i] = rnd() * 3;
    for (int q = 0; q < K; q++)
        for (int n = 0; n < N; n++) Bt[(size_t)n * K + q] = B[(size_t)q * N + n];
    const size_t words = cpu_packed_bf16_size(K, N, tn);
    uint32_t *P = malloc(words * 4), *Pt = malloc(words * 4);
    memset(P, 0xab, words * 4), memset(Pt, 0xcd, words * 4);
    k->pack_b_bf16(K, N, B, N, 0, P);
    k->pack_b_bf16(K, N, Bt, K, 1, Pt);
    int bad = 0;
    for (int p = 0; p * tn < N && !bad; p++)
        for (int kp = 0; kp < KP && !bad; kp++)
            for (int j = 0; j < tn && !bad; j++) {
                uint32_t want = ref_word(B, K, N, kp, p * tn + j), got = P[((size_t)p * KP + kp) * tn + j];
                uint32_t got_t = Pt[((size_t)p * KP + kp) * tn + j];
                if (got != want || got_t != want) {
                    FAIL("%s pack_b_bf16 K=%d N=%d: panel %d row %d word %d is %#x (transposed %#x), not %#x", k->isa,
                         K, N, p, kp, j, got, got_t, want);
                    bad = 1;
                }
            }
    /* A [M, K] as pairs, with a row stride beyond the pairs; and A^T from [K, M] */
    const int M = N, ldp = KP + 3;
    uint32_t *Ap = malloc(sizeof(uint32_t) * M * ldp), *Apt = malloc(sizeof(uint32_t) * M * ldp);
    memset(Ap, 0, sizeof(uint32_t) * M * ldp), memset(Apt, 0, sizeof(uint32_t) * M * ldp);
    k->pairs_bf16(M, K, Bt, K, 0, Ap, ldp); /* Bt is [N, K]: row m is column m of B */
    k->pairs_bf16(M, K, B, N, 1, Apt, ldp); /* B is [K, N]: its transpose is Bt */
    bad = 0;
    for (int m = 0; m < M && !bad; m++)
        for (int kp = 0; kp < KP && !bad; kp++) {
            uint32_t want = ref_word(B, K, N, kp, m);
            if (Ap[(size_t)m * ldp + kp] != want || Apt[(size_t)m * ldp + kp] != want) {
                FAIL("%s pairs_bf16 K=%d M=%d: row %d word %d is %#x (transposed %#x), not %#x", k->isa, K, M, m, kp,
                     Ap[(size_t)m * ldp + kp], Apt[(size_t)m * ldp + kp], want);
                bad = 1;
            }
        }
    free(B), free(Bt), free(P), free(Pt), free(Ap), free(Apt);
}

/* C += A B in bf16 against double sums of the rounded operands: the products of two bf16 are
 * exact in float32, so the kernel's float32 sums differ from them by float32 rounding only */
static void check_gemm_bf16(const CpuKernels *k, int M, int N, int K) {
    const int KP = (K + 1) / 2;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N), *C = malloc(sizeof(float) * M * N);
    double *ref = malloc(sizeof(double) * M * N);
    uint32_t *Ap = malloc(sizeof(uint32_t) * M * KP), *Bp = malloc(4 * cpu_packed_bf16_size(K, N, k->tile_n));
    for (int i = 0; i < M * K; i++) A[i] = rnd();
    for (int i = 0; i < K * N; i++) B[i] = rnd();
    for (int i = 0; i < M * N; i++) C[i] = rnd(), ref[i] = C[i];
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++)
            for (int q = 0; q < K; q++) ref[m * N + n] += bf(A[m * K + q]) * bf(B[q * N + n]);
    k->pairs_bf16(M, K, A, K, 0, Ap, KP);
    k->pack_b_bf16(K, N, B, N, 0, Bp);
    k->gemm_acc_bf16(M, N, KP, Ap, KP, Bp, C, N);
    double worst = 0;
    for (int i = 0; i < M * N; i++) worst = fmax(worst, fabs(C[i] - ref[i]));
    CHECK(worst <= 1e-6 * (K + 1), "%s gemm_acc_bf16 %dx%dx%d: off the rounded operands' sums by %.3g", k->isa, M,
          N, K, worst);
    free(A), free(B), free(C), free(ref), free(Ap), free(Bp);
}

/* C = op(A) op(B) + beta C through the backend in bf16 (1 and 3 threads: by rows, by columns, a
 * product too small for the pool) against the rounded reference; 3 threads twice bit for bit; and
 * the float32 product far enough from it that the check tells the two apart */
static void check_backend_gemm(Backend *be1, Backend *be3) {
    const int shapes[3][3] = {{300, 130, 71}, {45, 400, 90}, {7, 9, 5}};
    for (int sh = 0; sh < 3; sh++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta = 0; beta < 2; beta++) {
                    const int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
                    const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
                    const size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
                    float *A = malloc(na * 4), *Bm = malloc(nb * 4), *C0 = malloc(nc * 4), *C1 = malloc(nc * 4),
                          *C3 = malloc(nc * 4), *C3b = malloc(nc * 4);
                    for (size_t i = 0; i < na; i++) A[i] = rnd();
                    for (size_t i = 0; i < nb; i++) Bm[i] = rnd();
                    for (size_t i = 0; i < nc; i++) C0[i] = rnd();
                    memcpy(C1, C0, nc * 4), memcpy(C3, C0, nc * 4), memcpy(C3b, C0, nc * 4);
                    be1->gemm(be1, ta, tb, M, N, K, 1, A, lda, Bm, ldb, (float)beta, C1, ldc);
                    be3->gemm(be3, ta, tb, M, N, K, 1, A, lda, Bm, ldb, (float)beta, C3, ldc);
                    be3->gemm(be3, ta, tb, M, N, K, 1, A, lda, Bm, ldb, (float)beta, C3b, ldc);
                    double worst1 = 0, worst3 = 0, off32 = 0;
                    for (int m = 0; m < M; m++)
                        for (int n = 0; n < N; n++) {
                            const size_t c = (size_t)m * ldc + n;
                            double r = beta ? C0[c] : 0, r32 = r;
                            for (int q = 0; q < K; q++) {
                                const float a = ta ? A[(size_t)q * lda + m] : A[(size_t)m * lda + q];
                                const float b = tb ? Bm[(size_t)n * ldb + q] : Bm[(size_t)q * ldb + n];
                                r += bf(a) * bf(b);
                                r32 += (double)a * b;
                            }
                            worst1 = fmax(worst1, fabs(C1[c] - r));
                            worst3 = fmax(worst3, fabs(C3[c] - r));
                            off32 = fmax(off32, fabs(r32 - r));
                        }
                    CHECK(worst1 <= 1e-6 * (K + 2) && worst3 <= 1e-6 * (K + 2),
                          "bf16 gemm %dx%dx%d (trans %d%d, beta %d): off the rounded operands' sums by %.3g (1 thread), "
                          "%.3g (3 threads)", M, N, K, ta, tb, beta, worst1, worst3);
                    CHECK(off32 > 100e-6 * (K + 2), "bf16 gemm %dx%dx%d: the float32 product is only %.3g away", M, N, K,
                          off32);
                    CHECK(memcmp(C3, C3b, nc * 4) == 0, "bf16 gemm %dx%dx%d (trans %d%d) on 3 threads differs twice", M,
                          N, K, ta, tb);
                    free(A), free(Bm), free(C0), free(C1), free(C3), free(C3b);
                }
}

/* One LSTM layer's recurrence (S steps, B streams, H units), forward then backward, on be: the
 * outputs hs, then the gradients left in gates, as one array of *len floats. */
static float *run_lstm(Backend *be, int S, int B, int H, size_t *len) {
    const size_t nh = (size_t)(S + 1) * B * H, ng = (size_t)S * B * 4 * H;
    float *W = malloc(sizeof(float) * H * 4 * H), *gates = malloc(sizeof(float) * ng), *hs = calloc(nh, 4),
          *cs = calloc(nh, 4), *dhs = malloc(sizeof(float) * S * B * H), *dc = malloc(sizeof(float) * B * H);
    counter = 1000; /* the same inputs on every backend */
    for (int i = 0; i < H * 4 * H; i++) W[i] = rnd() * 0.3f;
    for (size_t i = 0; i < ng; i++) gates[i] = rnd();
    for (int i = 0; i < S * B * H; i++) dhs[i] = rnd();
    CellSeq q = {.gates = gates, .W_h = W, .hs = hs, .cs = cs, .dhs = dhs, .dc = dc, .S = S, .B = B, .H = H};
    backend_cell_forward(be, CELL_LSTM, &q);
    *len = nh + ng;
    float *out = malloc(sizeof(float) * *len);
    memcpy(out, hs, sizeof(float) * nh);
    backend_cell_backward(be, CELL_LSTM, &q);
    memcpy(out + nh, gates, sizeof(float) * ng);
    free(W), free(gates), free(hs), free(cs), free(dhs), free(dc);
    return out;
}

/* the bf16 recurrence: 3 threads as 1, bit for bit; near the float32 one, and not equal to it */
static void check_recurrence(Backend *bf1, Backend *bf3, Backend *f32) {
    const int S = 6, B = 19, H = 96;
    size_t n1, n3, n32;
    float *a = run_lstm(bf1, S, B, H, &n1), *b = run_lstm(bf3, S, B, H, &n3), *c = run_lstm(f32, S, B, H, &n32);
    CHECK(n1 == n3 && memcmp(a, b, n1 * sizeof *a) == 0, "the bf16 recurrence on 3 threads differs from 1 thread");
    double dd = 0, nn = 0;
    for (size_t i = 0; i < n1; i++) dd += ((double)a[i] - c[i]) * ((double)a[i] - c[i]), nn += (double)c[i] * c[i];
    const double rel = sqrt(dd / nn);
    CHECK(rel < 2e-2 && rel > 1e-5, "the bf16 recurrence is %.3g (relative) from the float32 one: bf16's rounding "
          "(2^-9 an operand) should leave it between 1e-5 and 2e-2", rel);
    printf("bf16 LSTM recurrence (forward and backward) against float32: relative difference %.3g\n", rel);
    free(a), free(b), free(c);
}

int main(void) {
    check_rounding();
    const CpuKernels *sets[CPU_KERNEL_SETS];
    const int n = cpu_kernels_available(sets);
    printf("kernel sets this processor runs:");
    for (int s = 0; s < n; s++) printf(" %s", sets[s]->isa);
    printf(" (the others are not tested here)\n");
    printf("the backend's bf16 products run on the %s kernels here (%s)\n", cpu_kernels_select()->isa,
           cpu_kernels_select()->bf16_native ? "vdpbf16ps" : "bf16 widened to float32 FMAs");
    for (int s = 0; s < n; s++) {
        check_packing(sets[s], 33, 70); /* odd K, a partial last panel */
        check_packing(sets[s], 200, 130);
        check_packing(sets[s], 1, 5);
        check_gemm_bf16(sets[s], 7, 70, 33);
        check_gemm_bf16(sets[s], 25, 512, 128);
        check_gemm_bf16(sets[s], 23, 192, 151); /* K blocks with a partial last one, odd K */
        check_gemm_bf16(sets[s], 1, 64, 5);
    }
    CrnnError err = {.msg = ""};
    Backend *one = backend_cpu_create(1, &err), *three = backend_cpu_create(3, &err), *f32 = backend_cpu_create(2, &err);
    if (!one || !three || !f32) {
        fprintf(stderr, "backend: %s\n", err.msg);
        return 1;
    }
    CHECK(backend_set_precision(one, PRECISION_BF16, &err) == 0 && backend_set_precision(three, PRECISION_BF16, &err) == 0,
          "set_precision: %s", err.msg);
    check_backend_gemm(one, three);
    check_recurrence(one, three, f32);
    backend_destroy(one), backend_destroy(three), backend_destroy(f32);
    return check_exit("test_bf16");
}
