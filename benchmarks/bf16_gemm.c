/* What bf16 products with float32 accumulation could give crnn on this CPU (issue 17, item 3):
 * the two product shapes of a 2x512 LSTM step, float32 against bf16, on one core.
 *
 *   cc -O3 -mavx2 -mfma benchmarks/bf16_gemm.c -o bf16_gemm -lopenblas && ./bf16_gemm [REPEATS]
 *
 * (-O3, as crnn compiles its kernels: at -O2 GCC keeps the tile loops rolled and the kernel runs
 * at a third of its speed)
 *
 * Shapes (row-major C[M, N] += A[M, K] B[K, N]):
 *   merged: M = 2500, K = 512, N = 2048: a layer's input projection over all 50 steps of 50
 *           streams at once ([S*B, H] x W_x), and the shape of the weight gradients' products;
 *   step:   M = 50, K = 512, N = 2048, called 50 times: one layer's recurrent products h W_h
 *           over a sequence (the same W_h every call, as in the recurrence).
 * Implementations, each the best of REPEATS (default 3) runs, one thread:
 *   sgemm    OpenBLAS's cblas_sgemm, float32;
 *   sbgemm   OpenBLAS's cblas_sbgemm (bf16 A and B, float32 C), when the library exports it
 *            (OpenBLAS builds it only with BUILD_BFLOAT16=1; the line says when it is missing);
 *   own-f32  a register-tiled AVX2 kernel like crnn's (3 x 32 tiles, B packed in panels of 32
 *            columns, walked in blocks of 64 k), float32;
 *   own-bf16 the same kernel with B stored as bf16: each 64 x 32 block of the panel is widened
 *            to float32 in an L1 buffer once and used by every row tile; A, C and the
 *            arithmetic stay float32. On a CPU without bf16 instructions (no AVX512_BF16, no
 *            AMX) this is what bf16 weights can buy: half the bytes of B moved, the same FMAs.
 * Prints one line per shape and implementation:
 *   RESULT shape=step impl=sgemm M=50 N=2048 K=512 calls=50 ms=... gflops=... max_rel_err=...
 * (max_rel_err: the largest |C - C_sgemm| / max |C_sgemm|; bf16 rounds B, and A for sbgemm). */
#include <cblas.h>
#include <dlfcn.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int num_threads);

typedef void (*sbgemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint, blasint,
                          blasint, float, const uint16_t *, blasint, const uint16_t *, blasint, float,
                          float *, blasint);

#define TILE_M 3
#define TILE_N 32
#define K_BLOCK 64

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* float32 -> bf16, rounding to nearest even (no NaNs here) */
static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static void *xalloc(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "bf16_gemm: out of memory\n");
        exit(1);
    }
    return p;
}

/* mr rows x 32 columns of C += A[:, 0:kb] times a kb x 32 float32 block (rows of 32) */
static inline __attribute__((always_inline)) void tile(int mr, int kb, const float *A, int lda,
                                                       const float *b, float *C, int ldc) {
    __m256 c[TILE_M][4];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < 4; j++) c[i][j] = _mm256_loadu_ps(C + (size_t)i * ldc + 8 * j);
    for (int k = 0; k < kb; k++, b += TILE_N) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8), b2 = _mm256_load_ps(b + 16),
               b3 = _mm256_load_ps(b + 24);
        for (int i = 0; i < mr; i++) {
            __m256 a = _mm256_broadcast_ss(A + (size_t)i * lda + k);
            c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
            c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);
            c[i][2] = _mm256_fmadd_ps(a, b2, c[i][2]);
            c[i][3] = _mm256_fmadd_ps(a, b3, c[i][3]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < 4; j++) _mm256_storeu_ps(C + (size_t)i * ldc + 8 * j, c[i][j]);
}

static void rows(int M, int kb, const float *A, int lda, const float *blk, float *C, int ldc) {
    int m = 0;
    for (; m + TILE_M <= M; m += TILE_M) tile(TILE_M, kb, A + (size_t)m * lda, lda, blk, C + (size_t)m * ldc, ldc);
    if (M - m == 2) tile(2, kb, A + (size_t)m * lda, lda, blk, C + (size_t)m * ldc, ldc);
    if (M - m == 1) tile(1, kb, A + (size_t)m * lda, lda, blk, C + (size_t)m * ldc, ldc);
}

/* C[M, N] += A[M, K] Bp, Bp float32 packed: panel p holds columns 32p.. as K rows of 32
 * (N a multiple of 32) */
static void own_f32(int M, int N, int K, const float *A, const float *Bp, float *C) {
    for (int n0 = 0; n0 < N; n0 += TILE_N) {
        const float *panel = Bp + (size_t)(n0 / TILE_N) * K * TILE_N;
        for (int k0 = 0; k0 < K; k0 += K_BLOCK) {
            int kb = K - k0 < K_BLOCK ? K - k0 : K_BLOCK;
            rows(M, kb, A + k0, K, panel + (size_t)k0 * TILE_N, C + n0, N);
        }
    }
}

/* The same with Bp in bf16: each K_BLOCK x 32 block widened to float32 in an L1 buffer first */
static void own_bf16(int M, int N, int K, const float *A, const uint16_t *Bp, float *C) {
    static float buf[K_BLOCK * TILE_N] __attribute__((aligned(64)));
    for (int n0 = 0; n0 < N; n0 += TILE_N) {
        const uint16_t *panel = Bp + (size_t)(n0 / TILE_N) * K * TILE_N;
        for (int k0 = 0; k0 < K; k0 += K_BLOCK) {
            int kb = K - k0 < K_BLOCK ? K - k0 : K_BLOCK;
            const uint16_t *src = panel + (size_t)k0 * TILE_N;
            for (int e = 0; e < kb * TILE_N; e += 8) {
                __m128i h = _mm_loadu_si128((const __m128i *)(src + e));
                __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
                _mm256_store_ps(buf + e, _mm256_castsi256_ps(w));
            }
            rows(M, kb, A + k0, K, buf, C + n0, N);
        }
    }
}


#ifdef __AVX512BF16__
/* AVX-512: crnn's float32 tile (5 rows x 64 columns, 20 accumulators) and the same tile with
 * vdpbf16ps, which multiplies pairs of bf16 and adds both products to a float32 lane: B packed
 * as panels of 64 columns whose rows hold the pairs (B[2k, j], B[2k+1, j]) side by side, A as
 * bf16 pairs (A[i, 2k], A[i, 2k+1]) read as one 32-bit word and broadcast. Per instruction 32
 * multiply-adds against 16 for a float32 FMA. */
#define TM5 5
#define TN64 64
static inline __attribute__((always_inline)) void tile512(int mr, int kb, const float *A, int lda,
                                                          const float *b, float *C, int ldc) {
    __m512 c[TM5][4];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < 4; j++) c[i][j] = _mm512_loadu_ps(C + (size_t)i * ldc + 16 * j);
    for (int k = 0; k < kb; k++, b += TN64) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16), b2 = _mm512_load_ps(b + 32),
               b3 = _mm512_load_ps(b + 48);
        for (int i = 0; i < mr; i++) {
            __m512 a = _mm512_set1_ps(A[(size_t)i * lda + k]);
            c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);
            c[i][1] = _mm512_fmadd_ps(a, b1, c[i][1]);
            c[i][2] = _mm512_fmadd_ps(a, b2, c[i][2]);
            c[i][3] = _mm512_fmadd_ps(a, b3, c[i][3]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < 4; j++) _mm512_storeu_ps(C + (size_t)i * ldc + 16 * j, c[i][j]);
}

static void own_f32_512(int M, int N, int K, const float *A, const float *Bp, float *C) {
    for (int n0 = 0; n0 < N; n0 += TN64) {
        const float *panel = Bp + (size_t)(n0 / TN64) * K * TN64;
        for (int k0 = 0; k0 < K; k0 += K_BLOCK) {
            int kb = K - k0 < K_BLOCK ? K - k0 : K_BLOCK;
            const float *blk = panel + (size_t)k0 * TN64;
            int m = 0;
            for (; m + TM5 <= M; m += TM5) tile512(TM5, kb, A + (size_t)m * K + k0, K, blk, C + (size_t)m * N + n0, N);
            for (; m < M; m++) tile512(1, kb, A + (size_t)m * K + k0, K, blk, C + (size_t)m * N + n0, N);
        }
    }
}

/* kp pairs of k; Ap: rows of K/2 32-bit pairs; b: kp rows of 64 pairs */
static inline __attribute__((always_inline)) void tile_dp(int mr, int kp, const uint32_t *Ap, int ldap,
                                                          const uint32_t *b, float *C, int ldc) {
    __m512 c[TM5][4];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < 4; j++) c[i][j] = _mm512_loadu_ps(C + (size_t)i * ldc + 16 * j);
    for (int k = 0; k < kp; k++, b += TN64) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 16),
                 b2 = (__m512bh)_mm512_load_si512(b + 32), b3 = (__m512bh)_mm512_load_si512(b + 48);
        for (int i = 0; i < mr; i++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)Ap[(size_t)i * ldap + k]);
            c[i][0] = _mm512_dpbf16_ps(c[i][0], a, b0);
            c[i][1] = _mm512_dpbf16_ps(c[i][1], a, b1);
            c[i][2] = _mm512_dpbf16_ps(c[i][2], a, b2);
            c[i][3] = _mm512_dpbf16_ps(c[i][3], a, b3);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < 4; j++) _mm512_storeu_ps(C + (size_t)i * ldc + 16 * j, c[i][j]);
}

/* C[M, N] += A B: A as bf16 pairs (M rows of K/2 words), Bp as panels of 64 columns of pairs */
static void own_dp(int M, int N, int K, const uint32_t *Ap, const uint32_t *Bp, float *C) {
    const int KP = K / 2, KPB = K_BLOCK / 2;
    for (int n0 = 0; n0 < N; n0 += TN64) {
        const uint32_t *panel = Bp + (size_t)(n0 / TN64) * KP * TN64;
        for (int k0 = 0; k0 < KP; k0 += KPB) {
            int kb = KP - k0 < KPB ? KP - k0 : KPB;
            const uint32_t *blk = panel + (size_t)k0 * TN64;
            int m = 0;
            for (; m + TM5 <= M; m += TM5) tile_dp(TM5, kb, Ap + (size_t)m * KP + k0, KP, blk, C + (size_t)m * N + n0, N);
            for (; m < M; m++) tile_dp(1, kb, Ap + (size_t)m * KP + k0, KP, blk, C + (size_t)m * N + n0, N);
        }
    }
}
#endif

static void pack_f32(int K, int N, const float *B, float *Bp) {
    for (int n0 = 0; n0 < N; n0 += TILE_N)
        for (int k = 0; k < K; k++)
            memcpy(Bp + (size_t)(n0 / TILE_N) * K * TILE_N + (size_t)k * TILE_N, B + (size_t)k * N + n0,
                   TILE_N * sizeof *Bp);
}

enum { SGEMM, SBGEMM, OWN_F32, OWN_BF16, OWN_F32_512, OWN_DP, NIMPL };
static const char *const impl_names[NIMPL] = {"sgemm", "sbgemm", "own-f32", "own-bf16", "own-f32-avx512",
                                              "own-vdpbf16ps"};

int main(int argc, char **argv) {
    int repeats = argc > 1 ? atoi(argv[1]) : 3;
    if (repeats < 1) repeats = 1;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        fprintf(stderr, "bf16_gemm: needs AVX2 and FMA\n");
        return 1;
    }
    openblas_set_num_threads(1);
    sbgemm_fn sbgemm = (sbgemm_fn)dlsym(RTLD_DEFAULT, "cblas_sbgemm");
    printf("cpu: avx512f=%d avx512_bf16=%d; OpenBLAS %s: cblas_sbgemm %s\n", __builtin_cpu_supports("avx512f"),
           __builtin_cpu_supports("avx512bf16"), openblas_get_config(),
           sbgemm ? "exported" : "NOT exported (built without BUILD_BFLOAT16)");

    const struct { const char *name; int M, N, K, calls; } shapes[] = {
        {"merged", 2500, 2048, 512, 1},
        {"step", 50, 2048, 512, 50},
        {"step-bwd", 50, 512, 2048, 50},
        {"step25", 25, 2048, 512, 50},
        {"merged-1024", 2500, 4096, 1024, 1},
        {"step-1024", 50, 4096, 1024, 20},
        {"step-bwd-1024", 50, 1024, 4096, 20},
    };
    srand(1);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int M = shapes[s].M, N = shapes[s].N, K = shapes[s].K, calls = shapes[s].calls;
        float *A = xalloc(sizeof(float) * M * K), *B = xalloc(sizeof(float) * K * N);
        float *Bp = xalloc(sizeof(float) * K * N), *C = xalloc(sizeof(float) * M * N);
        float *Cref = xalloc(sizeof(float) * M * N);
        uint16_t *Ah = xalloc(2 * (size_t)M * K), *Bh = xalloc(2 * (size_t)K * N), *Bph = xalloc(2 * (size_t)K * N);
        for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)rand() / RAND_MAX - 0.5f, Ah[i] = to_bf16(A[i]);
        for (size_t i = 0; i < (size_t)K * N; i++) B[i] = ((float)rand() / RAND_MAX - 0.5f) * 0.1f;
        for (size_t i = 0; i < (size_t)K * N; i++) Bh[i] = to_bf16(B[i]);
        pack_f32(K, N, B, Bp);
        for (size_t i = 0; i < (size_t)K * N; i++) Bph[i] = to_bf16(Bp[i]);
        /* the AVX-512 layouts: float32 panels of 64 columns; bf16 pairs for vdpbf16ps */
        float *Bp64 = xalloc(sizeof(float) * K * N);
        uint32_t *Bdp = xalloc(sizeof(float) * K * N / 2 + 64), *Adp = xalloc(sizeof(float) * M * K / 2 + 64);
        for (int n0 = 0; n0 < N; n0 += 64)
            for (int k = 0; k < K; k++)
                for (int j = 0; j < 64; j++) {
                    Bp64[(size_t)(n0 / 64) * K * 64 + (size_t)k * 64 + j] = B[(size_t)k * N + n0 + j];
                    uint16_t h = to_bf16(B[(size_t)k * N + n0 + j]);
                    uint32_t *w = &Bdp[(size_t)(n0 / 64) * (K / 2) * 64 + (size_t)(k / 2) * 64 + j];
                    *w = k % 2 ? (*w & 0xffffu) | (uint32_t)h << 16 : h;
                }
        for (int m = 0; m < M; m++)
            for (int k = 0; k < K; k += 2)
                Adp[(size_t)m * (K / 2) + k / 2] = to_bf16(A[(size_t)m * K + k]) | (uint32_t)to_bf16(A[(size_t)m * K + k + 1]) << 16;
        for (int impl = 0; impl < NIMPL; impl++) {
            const int has512 = __builtin_cpu_supports("avx512f"), hasbf16 = __builtin_cpu_supports("avx512bf16");
            if ((impl == OWN_F32_512 && !has512) || (impl == OWN_DP && !hasbf16)) {
                printf("RESULT shape=%s impl=%s M=%d N=%d K=%d calls=%d status=unavailable (no %s)\n", shapes[s].name,
                       impl_names[impl], M, N, K, calls, impl == OWN_DP ? "avx512_bf16" : "avx512f");
                continue;
            }
            if (impl == SBGEMM && !sbgemm) {
                printf("RESULT shape=%s impl=sbgemm M=%d N=%d K=%d calls=%d status=unavailable\n", shapes[s].name, M,
                       N, K, calls);
                continue;
            }
            double best = 1e300;
            for (int rep = 0; rep < repeats; rep++) {
                memset(C, 0, sizeof(float) * M * N);
                double t0 = now_ms();
                for (int c = 0; c < calls; c++) {
                    switch (impl) {
                    case SGEMM:
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.f, A, K, B, N, 1.f, C, N);
                        break;
                    case SBGEMM: sbgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.f, Ah, K, Bh, N, 1.f, C, N); break;
                    case OWN_F32: own_f32(M, N, K, A, Bp, C); break;
                    case OWN_BF16: own_bf16(M, N, K, A, Bph, C); break;
#ifdef __AVX512BF16__
                    case OWN_F32_512: own_f32_512(M, N, K, A, Bp64, C); break;
                    default: own_dp(M, N, K, Adp, Bdp, C); break;
#else
                    default: break;
#endif
                    }
                }
                double t = now_ms() - t0;
                if (t < best) best = t;
            }
            if (impl == SGEMM) memcpy(Cref, C, sizeof(float) * M * N);
            double err = 0, scale = 0;
            for (size_t i = 0; i < (size_t)M * N; i++) {
                double d = fabs((double)C[i] - Cref[i]);
                if (d > err) err = d;
                if (fabs(Cref[i]) > scale) scale = fabs(Cref[i]);
            }
            printf("RESULT shape=%s impl=%s M=%d N=%d K=%d calls=%d ms=%.2f gflops=%.1f max_rel_err=%.1e\n",
                   shapes[s].name, impl_names[impl], M, N, K, calls, best, 2.0 * M * N * K * calls / best * 1e-6,
                   err / scale);
        }
        free(A), free(B), free(Bp), free(C), free(Cref), free(Ah), free(Bh), free(Bph), free(Bp64), free(Bdp), free(Adp);
    }
    return 0;
}
