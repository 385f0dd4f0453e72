/* The CPU backend: one small thread pool for everything that runs in parallel. The large matrix
 * products are OpenBLAS's, on one thread each: the pool splits each product into blocks of rows
 * (or columns) and every thread calls OpenBLAS for its block. OpenBLAS's own threads are not
 * used: after each call they spin for ~0.1 s waiting for the next, and on a machine with as
 * many threads as cores they took the cores from the pool's recurrences (2 threads, 2x512: a
 * step varied from 358 to 552 ms). The recurrences are split by streams: streams are
 * independent through time, so the threads never wait for each other within a sequence; their
 * per-step products and cell loops are crnn's own kernels (kernels/cpu_kernels.inc). With
 * -precision bf16 every product, merged or per step, is crnn's bf16 kernel on operands rounded
 * as it runs (no BLAS has bf16 products here). Compiled as float for the programs and as double
 * (CRNN_DOUBLE) for the finite-difference checks. */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crnn/backend.h"
#include "cpu_kernels.h"

#ifdef CRNN_DOUBLE
#define GEMM cblas_dgemm
#define GEMV cblas_dgemv
#define EXP exp
#define TANH tanh
#define LOG log
#define SQRT sqrt
#else
#define GEMM cblas_sgemm
#define GEMV cblas_sgemv
#define EXP expf
#define TANH tanhf
#define LOG logf
#define SQRT sqrtf
#endif

/* OpenBLAS's thread control (declared in its cblas.h, but not in every BLAS's). */
void openblas_set_num_threads(int num_threads);

/* ---- the thread pool ------------------------------------------------------------------- */

typedef void (*PoolTask)(void *ctx, int tid, int nthreads);

typedef struct Pool {
    int n; /* threads, the caller included */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    unsigned generation;
    int pending, stop;
    PoolTask task;
    void *ctx;
    int active; /* threads taking part in the current task */
} Pool;

typedef struct Worker {
    Pool *pool;
    int tid;
} Worker;

static void *pool_worker(void *arg) {
    Worker *w = arg;
    Pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->generation == seen && !p->stop) pthread_cond_wait(&p->start, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        seen = p->generation;
        PoolTask task = p->task;
        void *ctx = p->ctx;
        int active = p->active;
        pthread_mutex_unlock(&p->mu);
        if (w->tid < active) task(ctx, w->tid, active);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
    free(w);
    return NULL;
}

static Pool *pool_create(int n) {
    Pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n < 1 ? 1 : n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = calloc((size_t)p->n, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    for (int t = 1; t < p->n; t++) {
        Worker *w = malloc(sizeof *w);
        if (!w || (w->pool = p, w->tid = t, pthread_create(&p->threads[t], NULL, pool_worker, w))) {
            free(w);
            p->n = t; /* run with the threads that started */
            break;
        }
    }
    return p;
}

static void pool_destroy(Pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->n; t++) pthread_join(p->threads[t], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

/* Runs task(ctx, tid, active) on `active` threads (1 <= active <= n), the caller as tid 0. */
static void pool_run(Pool *p, int active, PoolTask task, void *ctx) {
    if (active > p->n) active = p->n;
    if (active <= 1) {
        task(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->task = task;
    p->ctx = ctx;
    p->active = active;
    p->pending = p->n - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    task(ctx, 0, active);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* A growable buffer of 32-bit words (bf16 pairs). */
typedef struct Words {
    uint32_t *p;
    size_t len;
} Words;

#ifndef CRNN_DOUBLE
/* w's buffer with room for n words (its contents not kept), or NULL when there is no memory. */
static uint32_t *words(Words *w, size_t n) {
    if (w->len < n) {
        uint32_t *grown = aligned_alloc(64, (n * sizeof *grown + 63) / 64 * 64);
        if (!grown) return NULL;
        free(w->p);
        w->p = grown;
        w->len = n;
    }
    return w->p;
}
#endif

typedef struct CpuImpl {
    Pool *pool;
    const CpuKernels *k;
    int threads;
    real *scratch; /* W_h (or its transpose) packed for the kernels */
    size_t scratch_len;
    /* -precision bf16: every product (but a single row's, sampling) in bf16 with float32 sums
     * (cpu_kernels.h's gemm_acc_bf16), its operands rounded into these buffers as it runs */
    int bf16;
    Words packed_b, pairs_a; /* a product's B packed, its A as pairs; also W_h and h, recurrences */
} CpuImpl;

static CpuImpl *impl_of(Backend *be) { return be->impl; }

/* An element-wise pass over [0, n) on the pool: each thread fn(ctx, begin, end) on one
 * contiguous share (boundaries at multiples of 16 elements, whole cache lines), with a thread per
 * `grain` elements at most, so that a small pass does not wake the pool. Each element's result is
 * the same whichever thread computes it. */
typedef void (*RangeFn)(void *ctx, size_t begin, size_t end);
typedef struct RangeArgs {
    size_t n;
    RangeFn fn;
    void *ctx;
} RangeArgs;

static void range_task(void *ctx, int tid, int nthreads) {
    const RangeArgs *r = ctx;
    size_t b = r->n * (size_t)tid / (size_t)nthreads / 16 * 16;
    size_t e = tid + 1 == nthreads ? r->n : r->n * (size_t)(tid + 1) / (size_t)nthreads / 16 * 16;
    if (e > b) r->fn(r->ctx, b, e);
}

static void pool_for(CpuImpl *im, size_t n, size_t grain, RangeFn fn, void *ctx) {
    size_t threads = n / grain;
    if (threads > (size_t)im->threads) threads = (size_t)im->threads;
    if (threads <= 1) {
        fn(ctx, 0, n);
        return;
    }
    RangeArgs r = {.n = n, .fn = fn, .ctx = ctx};
    pool_run(im->pool, (int)threads, range_task, &r);
}

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

/* The kernel set's pack_b over the pool: each thread a share of the panels */
typedef struct PackArgs {
    int K, N, ldb, transpose;
    const CpuKernels *k;
    const real *B;
    real *Bp;
} PackArgs;

/* Thread tid's share of the panels of tile_n columns of a packed B with N columns: panels from
 * *p0, columns [*n0, *n1); 0 when it has none. */
static int panel_share(int N, int tile_n, int tid, int nthreads, int *p0, int *n0, int *n1) {
    const int panels = (N + tile_n - 1) / tile_n;
    const int p1 = (int)((int64_t)panels * (tid + 1) / nthreads);
    *p0 = (int)((int64_t)panels * tid / nthreads);
    *n0 = *p0 * tile_n, *n1 = p1 * tile_n < N ? p1 * tile_n : N;
    return p1 > *p0;
}

static void pack_task(void *ctx, int tid, int nthreads) {
    const PackArgs *a = ctx;
    int p0, n0, n1;
    if (!panel_share(a->N, a->k->tile_n, tid, nthreads, &p0, &n0, &n1)) return;
    a->k->pack_b(a->K, n1 - n0, a->B + (a->transpose ? (size_t)n0 * a->ldb : (size_t)n0), a->ldb, a->transpose,
                 a->Bp + (size_t)p0 * a->K * a->k->tile_n);
}

/* B [K, N] (transpose: B^T of B [N, K]) packed for the kernels over the pool, in the backend's
 * scratch (its contents not kept between calls); NULL when there is no memory for it. */
static const real *pack_b(CpuImpl *im, int K, int N, const real *B, int ldb, int transpose) {
    size_t n = cpu_packed_size(K, N, im->k->tile_n);
    if (im->scratch_len < n) {
        real *grown = realloc(im->scratch, n * sizeof *grown);
        if (!grown) return NULL;
        im->scratch = grown;
        im->scratch_len = n;
    }
    PackArgs a = {.K = K, .N = N, .ldb = ldb, .transpose = transpose, .k = im->k, .B = B, .Bp = im->scratch};
    pool_run(im->pool, (double)K * N >= 65536 ? im->threads : 1, pack_task, &a);
    return im->scratch;
}

/* A product over the pool: each thread one block of C's rows (or, when C is wider than tall,
 * of its columns), whole multiples of 64, through OpenBLAS on one thread. */
typedef struct GemmArgs {
    int trans_a, trans_b, M, N, K, lda, ldb, ldc, by_rows;
    real alpha, beta;
    const real *A, *B;
    real *C;
} GemmArgs;

/* Thread tid's block of a product's rows (by_rows) or columns: [*u0, *u1), whole multiples of
 * 64 but the last; 0 when it has none. */
static int gemm_share(const GemmArgs *g, int tid, int nthreads, int *u0, int *u1) {
    const int total = g->by_rows ? g->M : g->N, blocks = (total + 63) / 64;
    *u0 = (int)((int64_t)blocks * tid / nthreads) * 64;
    *u1 = (int)((int64_t)blocks * (tid + 1) / nthreads) * 64;
    if (*u1 > total) *u1 = total;
    return *u1 > *u0;
}

static void gemm_task(void *ctx, int tid, int nthreads) {
    const GemmArgs *g = ctx;
    int u0, u1;
    if (!gemm_share(g, tid, nthreads, &u0, &u1)) return;
    const CBLAS_TRANSPOSE ta = g->trans_a ? CblasTrans : CblasNoTrans, tb = g->trans_b ? CblasTrans : CblasNoTrans;
    if (g->by_rows) /* rows u0..u1 of op(A) and of C */
        GEMM(CblasRowMajor, ta, tb, u1 - u0, g->N, g->K, g->alpha, g->A + (g->trans_a ? (size_t)u0 : (size_t)u0 * g->lda),
             g->lda, g->B, g->ldb, g->beta, g->C + (size_t)u0 * g->ldc, g->ldc);
    else /* columns u0..u1 of op(B) and of C */
        GEMM(CblasRowMajor, ta, tb, g->M, u1 - u0, g->K, g->alpha, g->A, g->lda,
             g->B + (g->trans_b ? (size_t)u0 * g->ldb : (size_t)u0), g->ldb, g->beta, g->C + u0, g->ldc);
}

/* Thread tid's part of a product on crnn's kernels: gemm_share's block as rows [r0, r1) and
 * columns [c0, c1) of C, zeroed there when beta is 0, and the chunk of rows to walk at a time
 * (about 256 KB of A's rows of `words` 4-byte elements, in whole 5- and 6-row tiles); 0 when
 * the thread has no block. */
static int kernel_share(const GemmArgs *g, int tid, int nthreads, int words, int *r0, int *r1, int *c0, int *c1,
                        int *chunk) {
    int u0, u1;
    if (!gemm_share(g, tid, nthreads, &u0, &u1)) return 0;
    *r0 = g->by_rows ? u0 : 0, *r1 = g->by_rows ? u1 : g->M;
    *c0 = g->by_rows ? 0 : u0, *c1 = g->by_rows ? g->N : u1;
    if (g->beta == 0)
        for (int m = *r0; m < *r1; m++) memset(g->C + (size_t)m * g->ldc + *c0, 0, (size_t)(*c1 - *c0) * sizeof *g->C);
    *chunk = (65536 / words) / 60 * 60;
    if (*chunk < 60) *chunk = 60;
    return 1;
}

/* A product with A as it is (not transposed) on crnn's kernel: op(B) packed once (pack_b), then
 * gemm_task's blocks of rows or columns, each walked in chunks of rows (~256 KB of A) that stay
 * in L2 while every panel passes over them. OpenBLAS packs A as well, and on Zen 4 runs these
 * shapes a few percent slower than the kernel (NOTES.md). */
typedef struct PackedArgs {
    const GemmArgs *g;
    const CpuKernels *k;
    const real *Bp;
} PackedArgs;

static void packed_gemm_task(void *ctx, int tid, int nthreads) {
    const PackedArgs *a = ctx;
    const GemmArgs *g = a->g;
    int r0, r1, c0, c1, chunk;
    if (!kernel_share(g, tid, nthreads, g->K, &r0, &r1, &c0, &c1, &chunk)) return;
    const real *Bp = a->Bp + (size_t)(c0 / a->k->tile_n) * g->K * a->k->tile_n;
    for (int m = r0; m < r1; m += chunk)
        a->k->gemm_acc(r1 - m < chunk ? r1 - m : chunk, c1 - c0, g->K, g->A + (size_t)m * g->lda, g->lda, Bp,
                       g->C + (size_t)m * g->ldc + c0, g->ldc);
}

/* C = A op(B) (beta 0) or C += A op(B) (beta 1) on the kernel; 0, or -1 when the product is not
 * one for it (A transposed, another alpha or beta, a partial panel of columns, too few rows to
 * repay the packing) or there is no memory to pack B: OpenBLAS then. */
static int gemm_packed(CpuImpl *im, GemmArgs *g, int threads) {
    const int tn = im->k->tile_n;
    if (g->trans_a || g->alpha != 1 || (g->beta != 0 && g->beta != 1) || g->N % tn || g->M < 4 * tn)
        return -1;
    const real *Bp = pack_b(im, g->K, g->N, g->B, g->ldb, g->trans_b);
    if (!Bp) return -1;
    PackedArgs a = {.g = g, .k = im->k, .Bp = Bp};
    pool_run(im->pool, threads, packed_gemm_task, &a);
    return 0;
}

#ifndef CRNN_DOUBLE
/* -precision bf16's product over the pool: op(A) as bf16 pairs in Ap, op(B) packed in Bp. */
typedef struct Bf16Args {
    const GemmArgs *g;
    const CpuKernels *k;
    uint32_t *Ap, *Bp;
    int KP;
} Bf16Args;

/* The first pass: each thread rounds its share of op(A)'s rows and of op(B)'s panels. */
static void bf16_pack_task(void *ctx, int tid, int n) {
    const Bf16Args *a = ctx;
    const GemmArgs *g = a->g;
    const int tn = a->k->tile_n;
    const int m0 = (int)((int64_t)g->M * tid / n), m1 = (int)((int64_t)g->M * (tid + 1) / n);
    if (m1 > m0)
        a->k->pairs_bf16(m1 - m0, g->K, g->A + (g->trans_a ? (size_t)m0 : (size_t)m0 * g->lda), g->lda,
                         g->trans_a, a->Ap + (size_t)m0 * a->KP, a->KP);
    int p0, n0, n1;
    if (panel_share(g->N, tn, tid, n, &p0, &n0, &n1)) {
        a->k->pack_b_bf16(g->K, n1 - n0, g->B + (g->trans_b ? (size_t)n0 * g->ldb : (size_t)n0), g->ldb,
                          g->trans_b, a->Bp + (size_t)p0 * a->KP * tn);
    }
}

/* The second: gemm_task's blocks of rows or columns, each walked in chunks of rows whose pairs
 * (~256 KB) stay in L2 while every panel of B passes over them. */
static void bf16_gemm_task(void *ctx, int tid, int nthreads) {
    const Bf16Args *a = ctx;
    const GemmArgs *g = a->g;
    int r0, r1, c0, c1, chunk;
    if (!kernel_share(g, tid, nthreads, a->KP, &r0, &r1, &c0, &c1, &chunk)) return;
    const uint32_t *Bp = a->Bp + (size_t)(c0 / a->k->tile_n) * a->KP * a->k->tile_n;
    for (int m = r0; m < r1; m += chunk)
        a->k->gemm_acc_bf16(r1 - m < chunk ? r1 - m : chunk, c1 - c0, a->KP, a->Ap + (size_t)m * a->KP, a->KP, Bp,
                            g->C + (size_t)m * g->ldc + c0, g->ldc);
}

/* C = op(A) op(B) (beta 0) or C += op(A) op(B) (beta 1) in bf16; 0, or -1 when there is no memory
 * for the rounded operands (the caller then multiplies in float32). */
static int gemm_bf16(CpuImpl *im, GemmArgs *g, int threads) {
    const int KP = (g->K + 1) / 2;
    uint32_t *Ap = words(&im->pairs_a, (size_t)g->M * KP);
    uint32_t *Bp = words(&im->packed_b, cpu_packed_bf16_size(g->K, g->N, im->k->tile_n));
    if (!Ap || !Bp) return -1;
    Bf16Args a = {.g = g, .k = im->k, .Ap = Ap, .Bp = Bp, .KP = KP};
    pool_run(im->pool, threads, bf16_pack_task, &a);
    pool_run(im->pool, threads, bf16_gemm_task, &a);
    return 0;
}
#endif

static void cpu_gemm(Backend *be, int trans_a, int trans_b, int M, int N, int K, real alpha,
                     const real *A, int lda, const real *B, int ldb, real beta, real *C, int ldc) {
    if (M == 0 || N == 0) return;
    if (M == 1 && !trans_a) { /* one row (sampling): a matrix-vector product */
        if (trans_b)
            GEMV(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, A, 1, beta, C, 1);
        else
            GEMV(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A, 1, beta, C, 1);
        return;
    }
    CpuImpl *im = impl_of(be);
    GemmArgs g = {.trans_a = trans_a, .trans_b = trans_b, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb,
                  .ldc = ldc, .by_rows = M >= N, .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C};
    const int blocks = ((g.by_rows ? M : N) + 63) / 64;
    /* a thread per 64 rows at most, and only where the product repays waking them (~1M FMAs) */
    int threads = (double)M * N * K >= (double)(1 << 20) ? im->threads : 1;
    if (threads > blocks) threads = blocks;
#ifndef CRNN_DOUBLE
    if (im->bf16 && alpha == 1 && (beta == 0 || beta == 1) && gemm_bf16(im, &g, threads) == 0) return;
#endif
    if (gemm_packed(im, &g, threads) == 0) return;
    pool_run(im->pool, threads, gemm_task, &g);
}

/* rows_set_bias over the pool: each thread its rows */
typedef struct BiasArgs {
    real *dst;
    const real *b1, *b2;
    int N;
} BiasArgs;

static void bias_rows(void *ctx, size_t m0, size_t m1) {
    const BiasArgs *a = ctx;
    real *row0 = a->dst + m0 * (size_t)a->N;
    for (int n = 0; n < a->N; n++) row0[n] = a->b1[n] + (a->b2 ? a->b2[n] : 0);
    for (size_t m = m0 + 1; m < m1; m++) memcpy(a->dst + m * (size_t)a->N, row0, (size_t)a->N * sizeof(real));
}

static void cpu_rows_set_bias(Backend *be, real *dst, const real *b1, const real *b2, int M,
                              int N) {
    BiasArgs a = {.dst = dst, .b1 = b1, .b2 = b2, .N = N};
    pool_for(impl_of(be), (size_t)M, (size_t)(1 << 18) / (size_t)(N > 0 ? N : 1) + 1, bias_rows, &a);
}

/* col_sum over the pool: each thread its columns, every row, summed in double as one thread
 * would (the bias gradients as exact as the GEMM ones, and the same on any thread count) */
typedef struct ColSumArgs {
    real *out;
    const real *in;
    int M, N;
} ColSumArgs;

static void col_sum_cols(void *ctx, size_t n0, size_t n1) {
    const ColSumArgs *a = ctx;
    double acc[256];
    for (size_t c0 = n0; c0 < n1; c0 += 256) {
        const size_t w = n1 - c0 < 256 ? n1 - c0 : 256;
        for (size_t j = 0; j < w; j++) acc[j] = 0;
        for (int m = 0; m < a->M; m++) {
            const real *row = a->in + (size_t)m * a->N + c0;
            for (size_t j = 0; j < w; j++) acc[j] += row[j];
        }
        for (size_t j = 0; j < w; j++) a->out[c0 + j] = (real)acc[j];
    }
}

static void cpu_col_sum(Backend *be, real *out, const real *in, int M, int N) {
    ColSumArgs a = {.out = out, .in = in, .M = M, .N = N};
    pool_for(impl_of(be), (size_t)N, (size_t)(1 << 18) / (size_t)(M > 0 ? M : 1) + 16, col_sum_cols, &a);
}

/* The row gathers and the scatter-add over the pool: gathers split by rows, the scatter-add by
 * columns (every thread adds all rows of its columns, in row order: the sums of one thread). */
typedef struct EmbedArgs {
    real *out;
    const real *in;
    const int32_t *idx;
    int D;
} EmbedArgs;

static void embed_gather_rows(void *ctx, size_t n0, size_t n1) {
    const EmbedArgs *a = ctx;
    for (size_t n = n0; n < n1; n++)
        memcpy(a->out + n * a->D, a->in + (size_t)a->idx[n] * a->D, (size_t)a->D * sizeof(real));
}

static void embed_gather_add_rows(void *ctx, size_t n0, size_t n1) {
    const EmbedArgs *a = ctx;
    for (size_t n = n0; n < n1; n++) {
        real *row = a->out + n * a->D;
        const real *w = a->in + (size_t)a->idx[n] * a->D;
        for (int d = 0; d < a->D; d++) row[d] += w[d];
    }
}

static void cpu_embedding_forward(Backend *be, real *out, const int32_t *idx, const real *table,
                                  int N, int D) {
    EmbedArgs a = {.out = out, .in = table, .idx = idx, .D = D};
    pool_for(impl_of(be), (size_t)N, (size_t)(1 << 16) / (size_t)(D > 0 ? D : 1) + 16, embed_gather_rows, &a);
}

static void cpu_embedding_forward_add(Backend *be, real *out, const int32_t *idx,
                                      const real *table, int N, int D) {
    EmbedArgs a = {.out = out, .in = table, .idx = idx, .D = D};
    pool_for(impl_of(be), (size_t)N, (size_t)(1 << 16) / (size_t)(D > 0 ? D : 1) + 16, embed_gather_add_rows, &a);
}

typedef struct ScatterArgs {
    real *dtable;
    const real *dout;
    const int32_t *idx;
    int N, D;
} ScatterArgs;

static void embed_scatter_cols(void *ctx, size_t d0, size_t d1) {
    const ScatterArgs *a = ctx;
    for (int n = 0; n < a->N; n++) {
        real *row = a->dtable + (size_t)a->idx[n] * a->D;
        const real *g = a->dout + (size_t)n * a->D;
        for (size_t d = d0; d < d1; d++) row[d] += g[d];
    }
}

static void cpu_embedding_backward(Backend *be, real *dtable, const real *dout,
                                   const int32_t *idx, int N, int D) {
    ScatterArgs a = {.dtable = dtable, .dout = dout, .idx = idx, .N = N, .D = D};
    pool_for(impl_of(be), (size_t)D, (size_t)(1 << 16) / (size_t)(N > 0 ? N : 1) + 16, embed_scatter_cols, &a);
}

typedef struct SeqArgs SeqArgs;
/* One cell's recurrence, forward or backward, for the streams b0 .. b0 + rows - 1. */
typedef void (*SeqRows)(const SeqArgs *q, int b0, int rows);
struct SeqArgs {
    CellSeq c;          /* the recurrence's buffers and shapes (backend.h) */
    const CpuKernels *k;
    const real *W;      /* packed: W_h [H, GH] forward, its transpose [GH, H] backward */
    const real *W_raw;  /* W_h as it is, when W is NULL (see forward_weights, backward_weights) */
    /* -precision bf16: W (as above) packed in bf16 pairs instead, and room for each step's left
     * operand as pairs, pairs_ld words a stream (a thread uses the rows of its streams) */
    const uint32_t *Wb;
    uint32_t *pairs;
    int pairs_ld;
    SeqRows rows;       /* the cell's loop over time for a share of the streams */
};

#ifndef CRNN_DOUBLE
/* C[M, N] += A[M, K] W in bf16, for the streams from b0: A rounded into their rows of pairs. */
static void step_product_bf16(const SeqArgs *q, int b0, int M, int N, int K, const real *A, int lda, real *C,
                              int ldc) {
    uint32_t *ap = q->pairs + (size_t)b0 * q->pairs_ld;
    q->k->pairs_bf16(M, K, A, lda, 0, ap, q->pairs_ld);
    q->k->gemm_acc_bf16(M, N, (K + 1) / 2, ap, q->pairs_ld, q->Wb, C, ldc);
}
#endif

/* C[M, N] += A[M, K] W_h for a forward step: crnn's kernel on the packed W_h, or for a few rows
 * (sampling: one stream, one step) OpenBLAS on W_h as it is, where packing would cost more
 * than the product; that runs on one thread only, so OpenBLAS is never called concurrently. */
static void step_product(const SeqArgs *q, int b0, int M, int N, int K, const real *A, int lda, real *C,
                         int ldc) {
#ifndef CRNN_DOUBLE
    if (q->Wb) {
        step_product_bf16(q, b0, M, N, K, A, lda, C, ldc);
        return;
    }
#else
    (void)b0;
#endif
    if (q->W) {
        q->k->gemm_acc(M, N, K, A, lda, q->W, C, ldc);
    } else if (M == 1) {
        GEMV(CblasRowMajor, CblasTrans, K, N, 1, q->W_raw, N, A, 1, 1, C, 1);
    } else {
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, lda, q->W_raw, N, 1, C, ldc);
    }
}

/* dh[M, H] += dA[M, GH] W_h^T for a backward step: the kernel on the packed transpose, or
 * OpenBLAS on W_h as it is when packing found no memory (one thread then). */
static void step_product_t(const SeqArgs *q, int b0, int M, int H, int GH, const real *dA, real *dh) {
#ifndef CRNN_DOUBLE
    if (q->Wb) {
        step_product_bf16(q, b0, M, H, GH, dA, GH, dh, H);
        return;
    }
#else
    (void)b0;
#endif
    if (q->W)
        q->k->gemm_acc(M, H, GH, dA, GH, q->W, dh, H);
    else
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, M, H, GH, 1, dA, GH, q->W_raw, GH, 1, dh, H);
}

/* Thread tid's share of the B streams (of n threads, as even as can be): rows
 * *b0 .. *b0 + (the count returned) - 1. */
static int stream_share(int B, int tid, int n, int *b0) {
    int base = B / n, extra = B % n;
    *b0 = tid * base + (tid < extra ? tid : extra);
    return base + (tid < extra ? 1 : 0);
}

/* pool_run's task for a recurrence: streams are independent through time, so each thread runs
 * the cell's whole sequence for its share of the streams. */
static void seq_task(void *ctx, int tid, int n) {
    const SeqArgs *q = ctx;
    int b0;
    const int rows = stream_share(q->c.B, tid, n, &b0);
    if (rows > 0) q->rows(q, b0, rows);
}

static void lstm_forward_rows(const SeqArgs *q, int b0, int rows) {
    const int B = q->c.B, H = q->c.H;
    for (int t = 0; t < q->c.S; t++) {
        real *a = q->c.gates + ((size_t)t * B + b0) * 4 * H;
        const real *h_prev = q->c.hs + ((size_t)t * B + b0) * H;
        step_product(q, b0, rows, 4 * H, H, h_prev, H, a, 4 * H);
        q->k->lstm_cell_forward(a, q->c.cs + ((size_t)t * B + b0) * H, q->c.cs + ((size_t)(t + 1) * B + b0) * H,
                          q->c.hs + ((size_t)(t + 1) * B + b0) * H, rows, H);
    }
}

static void lstm_backward_rows(const SeqArgs *q, int b0, int rows) {
    const int B = q->c.B, H = q->c.H;
    real *dc = q->c.dc + (size_t)b0 * H;
    memset(dc, 0, (size_t)rows * H * sizeof *dc);
    for (int t = q->c.S - 1; t >= 0; t--) {
        real *dh = q->c.dhs + ((size_t)t * B + b0) * H;
        if (t < q->c.S - 1) /* the recurrent gradient from step t+1: dA_{t+1} W_h^T */
            step_product_t(q, b0, rows, H, 4 * H, q->c.gates + ((size_t)(t + 1) * B + b0) * 4 * H, dh);
        q->k->lstm_cell_backward(q->c.gates + ((size_t)t * B + b0) * 4 * H, q->c.cs + ((size_t)t * B + b0) * H,
                           q->c.cs + ((size_t)(t + 1) * B + b0) * H, dh, dc, rows, H);
    }
}

static void gru_forward_rows(const SeqArgs *q, int b0, int rows) {
    const int B = q->c.B, H = q->c.H;
    for (int t = 0; t < q->c.S; t++) {
        const size_t row = (size_t)t * B + b0;
        real *ah = q->c.gates_h + row * 3 * H;
        for (int b = 0; b < rows; b++) memcpy(ah + (size_t)b * 3 * H, q->c.b_h, (size_t)3 * H * sizeof *ah);
        const real *h_prev = q->c.hs + row * H;
        step_product(q, b0, rows, 3 * H, H, h_prev, H, ah, 3 * H);
        q->k->gru_cell_forward(q->c.gates + row * 3 * H, ah, h_prev, q->c.hs + ((size_t)(t + 1) * B + b0) * H,
                               rows, H);
    }
}

static void gru_backward_rows(const SeqArgs *q, int b0, int rows) {
    const int B = q->c.B, H = q->c.H;
    for (int t = q->c.S - 1; t >= 0; t--) {
        const size_t row = (size_t)t * B + b0;
        real *dh = q->c.dhs + row * H;
        if (t < q->c.S - 1) /* the recurrent gradient from step t+1: dA_h,{t+1} W_h^T */
            step_product_t(q, b0, rows, H, 3 * H, q->c.gates_h + (row + B) * 3 * H, dh);
        q->k->gru_cell_backward(q->c.gates + row * 3 * H, q->c.gates_h + row * 3 * H, q->c.hs + row * H, dh,
                                t > 0 ? dh - (size_t)B * H : NULL, rows, H);
    }
}

static void rnn_forward_rows(const SeqArgs *q, int b0, int rows) {
    const int B = q->c.B, H = q->c.H;
    for (int t = 0; t < q->c.S; t++) {
        const size_t row = (size_t)t * B + b0;
        real *a = q->c.gates + row * H;
        step_product(q, b0, rows, H, H, q->c.hs + row * H, H, a, H);
        q->k->rnn_cell_forward(a, q->c.hs + (row + B) * H, rows, H);
    }
}

static void rnn_backward_rows(const SeqArgs *q, int b0, int rows) {
    const int B = q->c.B, H = q->c.H;
    for (int t = q->c.S - 1; t >= 0; t--) {
        const size_t row = (size_t)t * B + b0;
        real *dh = q->c.dhs + row * H;
        if (t < q->c.S - 1) step_product_t(q, b0, rows, H, H, q->c.gates + (row + B) * H, dh);
        q->k->rnn_cell_backward(q->c.gates + row * H, dh, rows, H);
    }
}

/* Threads for a recurrence: at least 4 streams each, and enough work per step to pay for them. */
static int seq_threads(int B, int H) {
    int n = B / 4;
    if ((double)B * H * H < 2e4) n = 1;
    return n < 1 ? 1 : n;
}

/* W_h [H, G*H] packed for the kernels (transposed for the backward), in the backend's scratch;
 * NULL when there is no memory for it, and the recurrence then uses W_h as it is. */
static const real *packed_weights(CpuImpl *im, const real *W_h, int H, int G, int transpose) {
    return pack_b(im, transpose ? G * H : H, transpose ? H : G * H, W_h, G * H, transpose);
}

#ifndef CRNN_DOUBLE
/* -precision bf16's weights for a recurrence: W_h (transposed for the backward) packed in bf16
 * pairs, and the rows of pairs for each step's left operand ([B, ceil(K/2)], K = H forward, G*H
 * backward); 0, or -1 without the memory (the recurrence then runs in float32). */
static int bf16_weights(CpuImpl *im, SeqArgs *q, const real *W_h, int G, int transpose) {
    const int H = q->c.H, K = transpose ? G * H : H, N = transpose ? H : G * H;
    q->pairs_ld = (K + 1) / 2;
    uint32_t *Wb = words(&im->packed_b, cpu_packed_bf16_size(K, N, im->k->tile_n));
    q->pairs = words(&im->pairs_a, (size_t)q->c.B * q->pairs_ld);
    if (!Wb || !q->pairs) return -1;
    im->k->pack_b_bf16(K, N, W_h, G * H, transpose, Wb);
    q->Wb = Wb;
    q->W_raw = W_h;
    return 0;
}
#endif

/* The forward's weights: packed when the sequence has enough rows to repay the packing, else
 * W_h as it is on one thread. Returns the threads to run on. */
static int forward_weights(CpuImpl *im, SeqArgs *q, const real *W_h, int G) {
    if ((size_t)q->c.S * q->c.B <= 4) {
        q->W = NULL;
        q->W_raw = W_h;
        return 1;
    }
#ifndef CRNN_DOUBLE
    if (im->bf16 && bf16_weights(im, q, W_h, G, 0) == 0) return seq_threads(q->c.B, q->c.H);
#endif
    q->W = packed_weights(im, W_h, q->c.H, G, 0);
    q->W_raw = W_h;
    return q->W ? seq_threads(q->c.B, q->c.H) : 1; /* OpenBLAS is never called from two threads */
}

/* The same for a backward recurrence: W_h's transpose packed, or W_h as it is on one thread. */
static int backward_weights(CpuImpl *im, SeqArgs *q, const real *W_h, int G) {
#ifndef CRNN_DOUBLE
    if (im->bf16 && bf16_weights(im, q, W_h, G, 1) == 0) return seq_threads(q->c.B, q->c.H);
#endif
    q->W = packed_weights(im, W_h, q->c.H, G, 1);
    q->W_raw = W_h;
    return q->W ? seq_threads(q->c.B, q->c.H) : 1;
}

/* A cell's recurrence (backend.h's cell table) over the thread pool: G gates, on W_h packed for
 * the kernels (transposed for the backward), each thread running the whole sequence for its
 * streams. */
static void run_recurrence(Backend *be, const CellSeq *seq, int G, int backward, SeqRows rows) {
    CpuImpl *im = impl_of(be);
    SeqArgs q = {.c = *seq, .k = im->k, .rows = rows};
    int threads = backward ? backward_weights(im, &q, seq->W_h, G) : forward_weights(im, &q, seq->W_h, G);
    pool_run(im->pool, threads, seq_task, &q);
}

static void cpu_lstm_forward(Backend *be, const CellSeq *seq) { run_recurrence(be, seq, 4, 0, lstm_forward_rows); }
static void cpu_lstm_backward(Backend *be, const CellSeq *seq) { run_recurrence(be, seq, 4, 1, lstm_backward_rows); }
static void cpu_gru_forward(Backend *be, const CellSeq *seq) { run_recurrence(be, seq, 3, 0, gru_forward_rows); }
static void cpu_gru_backward(Backend *be, const CellSeq *seq) { run_recurrence(be, seq, 3, 1, gru_backward_rows); }
static void cpu_rnn_forward(Backend *be, const CellSeq *seq) { run_recurrence(be, seq, 1, 0, rnn_forward_rows); }
static void cpu_rnn_backward(Backend *be, const CellSeq *seq) { run_recurrence(be, seq, 1, 1, rnn_backward_rows); }

typedef struct DropoutArgs {
    const CpuKernels *k;
    real *out;
    const real *x;
    int S, B, H, first_stream, layer;
    real p, keep_scale;
    uint64_t seed, iteration;
} DropoutArgs;

static void dropout_task(void *ctx, int tid, int n) {
    const DropoutArgs *q = ctx;
    const int B = q->B, H = q->H;
    int b0;
    const int rows = stream_share(B, tid, n, &b0);
    for (int t = 0; t < q->S; t++)
        for (int b = b0; b < b0 + rows; b++) {
            const size_t row = ((size_t)t * B + b) * H;
            q->k->dropout_row(q->out + row, q->x + row, H, (float)q->p, q->keep_scale, q->seed,
                              q->iteration, (uint32_t)(q->first_stream + b), (uint32_t)q->layer, t);
        }
}

static void cpu_dropout(Backend *be, real *out, const real *x, int S, int B, int H, real p,
                        uint64_t seed, uint64_t iteration, int first_stream, int layer) {
    CpuImpl *im = impl_of(be);
    DropoutArgs q = {.k = im->k, .out = out, .x = x, .S = S, .B = B, .H = H, .first_stream = first_stream,
                     .layer = layer, .p = p, .keep_scale = (real)(1.0 / (1.0 - (double)p)),
                     .seed = seed, .iteration = iteration};
    pool_run(im->pool, B < im->threads ? B : im->threads, dropout_task, &q);
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

/* The optimizer's element-wise passes over the pool (each element's arithmetic is the same on
 * any thread count), a thread per 64K elements at most. */
#define ELEMENTS_PER_THREAD ((size_t)1 << 16)

typedef struct ElemArgs {
    real *x, *m, *v, *g;
    const real *cg;
    real a, b, c, d;
    real clamp; /* the optimizers' gradient clamp, 0 for none */
} ElemArgs;

/* g clamped to [-c, c] (a NaN stays a NaN), when clamped (a constant after inlining): the clamp
 * pass's and the optimizers' */
static inline real clamped_grad(real g, real c, int clamped) {
    return clamped ? (g > c ? c : (g < -c ? -c : g)) : g;
}

static void clamp_range(void *ctx, size_t k0, size_t k1) {
    const ElemArgs *e = ctx;
    const real c = e->a;
    real *restrict g = e->g;
    for (size_t k = k0; k < k1; k++) g[k] = clamped_grad(g[k], c, 1);
}

static void cpu_clamp(Backend *be, real *g, size_t n, real c) {
    ElemArgs e = {.g = g, .a = c};
    pool_for(impl_of(be), n, ELEMENTS_PER_THREAD, clamp_range, &e);
}

/* sumsq in blocks of SUMSQ_BLOCK elements, each summed in 8 lanes (so that it vectorises
 * without reassociating anything) and the lanes added in a fixed order; the blocks' sums are
 * added in order. So the result does not depend on the threads that computed the blocks. */
enum { SUMSQ_BLOCK = 1 << 12 };

static double sumsq_block(const real *restrict x, size_t n) {
    double lane[8] = {0};
    size_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++) lane[j] += (double)x[k + j] * x[k + j];
    for (int j = 0; k < n; k++, j++) lane[j] += (double)x[k] * x[k];
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

typedef struct SumsqArgs {
    const real *x;
    size_t n;
    double *sums; /* one a block */
} SumsqArgs;

static void sumsq_blocks(void *ctx, size_t b0, size_t b1) {
    const SumsqArgs *a = ctx;
    for (size_t b = b0; b < b1; b++) {
        const size_t k0 = b * SUMSQ_BLOCK, k1 = k0 + SUMSQ_BLOCK < a->n ? k0 + SUMSQ_BLOCK : a->n;
        a->sums[b] = sumsq_block(a->x + k0, k1 - k0);
    }
}

/* the blocks a group at a time, so that their sums fit on the stack */
static double cpu_sumsq(Backend *be, const real *x, size_t n) {
    enum { GROUP = 256 };
    double sums[GROUP], s = 0;
    for (size_t k0 = 0; k0 < n; k0 += (size_t)GROUP * SUMSQ_BLOCK) {
        SumsqArgs a = {.x = x + k0, .n = n - k0 < (size_t)GROUP * SUMSQ_BLOCK ? n - k0 : (size_t)GROUP * SUMSQ_BLOCK,
                       .sums = sums};
        const size_t blocks = (a.n + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
        pool_for(impl_of(be), blocks, 2, sumsq_blocks, &a);
        for (size_t b = 0; b < blocks; b++) s += sums[b];
    }
    return s;
}

static void scale_range(void *ctx, size_t k0, size_t k1) {
    const ElemArgs *e = ctx;
    real *restrict g = e->g;
    for (size_t k = k0; k < k1; k++) g[k] *= e->a;
}

static void cpu_scale(Backend *be, real *g, size_t n, real s) {
    ElemArgs e = {.g = g, .a = s};
    pool_for(impl_of(be), n, ELEMENTS_PER_THREAD, scale_range, &e);
}

static inline __attribute__((always_inline)) void adam_loop(const ElemArgs *e, size_t k0, size_t k1,
                                                            int clamped) {
    real *restrict x = e->x, *restrict m = e->m, *restrict v = e->v;
    const real *restrict g = e->cg;
    const real rb1 = e->a, rb2 = e->b, reps = e->c, rstep = e->d, c = e->clamp;
    for (size_t k = k0; k < k1; k++) {
        const real gk = clamped_grad(g[k], c, clamped);
        m[k] = rb1 * m[k] + (1 - rb1) * gk;
        v[k] = rb2 * v[k] + (1 - rb2) * gk * gk;
        x[k] -= rstep * m[k] / (SQRT(v[k]) + reps);
    }
}

static void adam_range(void *ctx, size_t k0, size_t k1) {
    const ElemArgs *e = ctx;
    if (e->clamp > 0)
        adam_loop(e, k0, k1, 1);
    else
        adam_loop(e, k0, k1, 0);
}

static void cpu_adam(Backend *be, real *x, const real *g, real *m, real *v, size_t n, double lr,
                     double b1, double b2, double eps, int64_t t, real clamp) {
    double step = lr * sqrt(1 - pow(b2, (double)t)) / (1 - pow(b1, (double)t));
    ElemArgs e = {.x = x, .m = m, .v = v, .cg = g, .a = (real)b1, .b = (real)b2, .c = (real)eps, .d = (real)step,
                  .clamp = clamp};
    pool_for(impl_of(be), n, ELEMENTS_PER_THREAD, adam_range, &e);
}

static inline __attribute__((always_inline)) void rmsprop_loop(const ElemArgs *e, size_t k0, size_t k1,
                                                               int clamped) {
    real *restrict x = e->x, *restrict v = e->v;
    const real *restrict g = e->cg;
    const real ra = e->a, rlr = e->b, reps = e->c, c = e->clamp;
    for (size_t k = k0; k < k1; k++) {
        const real gk = clamped_grad(g[k], c, clamped);
        v[k] = ra * v[k] + (1 - ra) * gk * gk;
        x[k] -= rlr * gk / (SQRT(v[k]) + reps);
    }
}

static void rmsprop_range(void *ctx, size_t k0, size_t k1) {
    const ElemArgs *e = ctx;
    if (e->clamp > 0)
        rmsprop_loop(e, k0, k1, 1);
    else
        rmsprop_loop(e, k0, k1, 0);
}

static void cpu_rmsprop(Backend *be, real *x, const real *g, real *v, size_t n, double lr,
                        double alpha, double eps, real clamp) {
    ElemArgs e = {.x = x, .v = v, .cg = g, .a = (real)alpha, .b = (real)lr, .c = (real)eps, .clamp = clamp};
    pool_for(impl_of(be), n, ELEMENTS_PER_THREAD, rmsprop_range, &e);
}

static int cpu_status(Backend *be, CrnnError *err) {
    (void)be, (void)err;
    return 0;
}

/* -precision bf16 needs the float build (the double one checks gradients in float64). */
static int cpu_set_precision(Backend *be, Precision p, CrnnError *err) {
    CpuImpl *im = impl_of(be);
#ifdef CRNN_DOUBLE
    if (p == PRECISION_BF16) return crnn_fail(err, "-precision bf16: this build computes in double precision");
#endif
    im->bf16 = p == PRECISION_BF16;
    be->precision_note = im->bf16 && !im->k->bf16_native
                             ? "-precision bf16 without AVX512_BF16 (this processor lacks it, or CRNN_CPU_ISA chose other "
                               "kernels): the bf16 products run as float32 FMAs on the rounded operands, with the same "
                               "results but slower than -precision float32"
                             : NULL;
    (void)err;
    return 0;
}

static void cpu_destroy(Backend *be) {
    CpuImpl *im = impl_of(be);
    if (im) {
        pool_destroy(im->pool);
        free(im->scratch);
        free(im->packed_b.p);
        free(im->pairs_a.p);
        free(im);
    }
    free(be);
}

Backend *backend_cpu_create(int threads, CrnnError *err) {
    Backend *be = crnn_calloc(1, sizeof *be, err);
    if (!be) return NULL;
    if (threads < 1) threads = 1;
    openblas_set_num_threads(1); /* the pool's threads call it, one each (see the top) */
    CpuImpl *im = crnn_calloc(1, sizeof *im, err);
    if (!im) {
        free(be);
        return NULL;
    }
    im->threads = threads;
    im->k = cpu_kernels_select();
    im->pool = pool_create(threads);
    be->impl = im;
    if (!im->pool) {
        cpu_destroy(be);
        crnn_fail(err, "cannot start %d threads", threads);
        return NULL;
    }
    be->name = "cpu";
    be->host_memory = 1;
    be->device = -1;
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->to_device = cpu_copy;
    be->to_host = cpu_copy;
    be->copy = cpu_copy;
    be->zero = cpu_zero;
    be->gemm = cpu_gemm;
    be->set_precision = cpu_set_precision;
    be->rows_set_bias = cpu_rows_set_bias;
    be->col_sum = cpu_col_sum;
    be->embedding_forward = cpu_embedding_forward;
    be->embedding_backward = cpu_embedding_backward;
    be->embedding_forward_add = cpu_embedding_forward_add;
    be->cell[CELL_LSTM] = (CellOps){cpu_lstm_forward, cpu_lstm_backward};
    be->cell[CELL_GRU] = (CellOps){cpu_gru_forward, cpu_gru_backward};
    be->cell[CELL_RNN] = (CellOps){cpu_rnn_forward, cpu_rnn_backward};
    be->dropout = cpu_dropout;
    be->softmax_xent = cpu_softmax_xent;
    be->clamp = cpu_clamp;
    be->sumsq = cpu_sumsq;
    be->scale = cpu_scale;
    be->adam = cpu_adam;
    be->rmsprop = cpu_rmsprop;
    be->status = cpu_status;
    be->destroy = cpu_destroy;
    return be;
}
