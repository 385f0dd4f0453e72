/* The oneDNN peer of crnn's recurrent layers: times what a training step of crnn's stack costs
 * in oneDNN's RNN primitives, forward (training) and backward, so that crnn's CPU backend can
 * be held to it (benchmarks/cpu_train.sh, issue 17).
 *
 *   onednn_peer [--dt f32|bf16] [--dump FILE] CELL LAYERS HIDDEN INPUT T N STEPS WARMUPS
 *
 * CELL is lstm, gru or rnn, with crnn's (and PyTorch's) equations: oneDNN's vanilla LSTM, its
 * "linear before reset" GRU (r multiplies h·W_hn + b_hn, as in nn.GRU) and its vanilla RNN with
 * tanh. The stack is crnn's: the first layer maps INPUT (crnn's -wordvec_size, 64) to HIDDEN,
 * layers 2..LAYERS map HIDDEN to HIDDEN. oneDNN's multi-layer primitive needs the same width in
 * and out, so the stack is two primitives chained (layer 1, then layers 2..LAYERS as one), each
 * run forward and backward. T steps of N streams, one direction; the initial states are given
 * (zero) and the final ones written, as crnn carries them between batches (without src_iter,
 * oneDNN 2.6.3's backward gives a wrong dW_iter, nonzero even at T = 1: the test caught it).
 *
 * One timed step is what a training step after an optimizer update needs: the user's weights
 * (plain ldigo, float32: the master copy an optimizer updates) reordered into the forward
 * primitives' format (used as they are where that is the user's layout), both forwards, the
 * weights reordered into the backward primitives' format, the weight gradients cleared (oneDNN
 * 2.x's RNN backward adds to them), both backwards (down to the gradient on the first layer's
 * input, as crnn computes it for the embedding). Prints, after WARMUPS untimed steps and STEPS
 * timed ones, one line:
 *
 *   RESULT cell=lstm layers=2 hidden=512 input=64 T=50 N=50 dt=f32 threads=1 status=ok
 *          impl=... steps=10 ms_per_step=... best_ms=... fwd_ms=... bwd_ms=...
 *
 * (one line; threads is omp_get_max_threads(), i.e. OMP_NUM_THREADS). ms_per_step is the mean,
 * best_ms the fastest step, fwd_ms and bwd_ms the means of the two halves (reorders included).
 * Weights and inputs are small random numbers from a fixed seed; every output and gradient must
 * be finite, else the status is nonfinite and the exit status 1.
 *
 * --dt bf16: bf16 inputs, outputs, weights and their gradients, float32 bias (oneDNN's rule),
 * float32 master weights reordered to bf16 every step. Where oneDNN does not create a primitive
 * descriptor (oneDNN 2.x has bf16 RNNs only with AVX-512: avx512_core), the RESULT line says
 * status=unimplemented (or the status oneDNN gave) with the stage that was refused, and the
 * exit status is 0: a refusal is a measurement, not a failure.
 *
 * --dump FILE: after the timed steps, writes the inputs, the weights, the forward's output and
 * the gradients (all float32, the user's layouts) for tests/test_benchmarks.py to compare with
 * PyTorch; the layout is in write_dump().
 *
 * Build: cc -O2 -fopenmp benchmarks/onednn_peer.c -o onednn_peer -ldnnl (Debian: libdnnl-dev). */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

enum { CELL_LSTM, CELL_GRU, CELL_RNN };
static const char *const cell_names[] = {"lstm", "gru", "rnn"};

typedef struct Config {
    int cell, L, H, I, T, N, steps, warmups;
    dnnl_data_type_t dt;
    const char *dump;
} Config;

static dnnl_engine_t eng;
static dnnl_stream_t strm;

static void die(const char *what, dnnl_status_t st) {
    fprintf(stderr, "onednn_peer: %s failed: %s\n", what, dnnl_status2str(st));
    exit(1);
}
#define DN(call)                                        \
    do {                                                \
        dnnl_status_t st_ = (call);                     \
        if (st_ != dnnl_success) die(#call, st_);       \
    } while (0)

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* splitmix64: small random numbers from a fixed seed, uniform in [-scale, scale] */
static uint64_t rng_state = 0x5eed1234abcdULL;
static float uniform(float scale) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return scale * (float)((double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static dnnl_memory_desc_t md_tag(int ndims, const dnnl_dims_t dims, dnnl_data_type_t dt,
                                 dnnl_format_tag_t tag) {
    dnnl_memory_desc_t md;
    DN(dnnl_memory_desc_init_by_tag(&md, ndims, dims, dt, tag));
    return md;
}

static dnnl_memory_t mem_new(const dnnl_memory_desc_t *md) {
    dnnl_memory_t m;
    DN(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_ALLOCATE));
    return m;
}

static void *mem_ptr(dnnl_memory_t m) {
    void *p;
    DN(dnnl_memory_get_data_handle(m, &p));
    return p;
}

static const dnnl_memory_desc_t *mem_md(dnnl_memory_t m);

static void zero(dnnl_memory_t m) { memset(mem_ptr(m), 0, dnnl_memory_desc_get_size(mem_md(m))); }

static const dnnl_memory_desc_t *mem_md(dnnl_memory_t m) {
    const dnnl_memory_desc_t *md;
    DN(dnnl_memory_get_memory_desc(m, &md));
    return md;
}

static size_t md_elems(const dnnl_memory_desc_t *md) {
    size_t n = 1;
    for (int k = 0; k < md->ndims; k++) n *= (size_t)md->dims[k];
    return n;
}

/* A reorder between two memories (created once, run every step) */
static dnnl_primitive_t reorder_new(dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    DN(dnnl_reorder_primitive_desc_create(&pd, mem_md(from), eng, mem_md(to), eng, NULL));
    DN(dnnl_primitive_create(&p, pd));
    DN(dnnl_primitive_desc_destroy(pd));
    return p;
}

static void reorder_run(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    if (!r) return; /* the same layout: nothing to do */
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    DN(dnnl_primitive_execute(r, strm, 2, args));
}

/* Copies between a plain float32 memory and any other of the same dims, once */
static void reorder_once(dnnl_memory_t from, dnnl_memory_t to) {
    if (dnnl_memory_desc_equal(mem_md(from), mem_md(to))) {
        memcpy(mem_ptr(to), mem_ptr(from), dnnl_memory_desc_get_size(mem_md(from)));
        return;
    }
    dnnl_primitive_t r = reorder_new(from, to);
    reorder_run(r, from, to);
    DN(dnnl_stream_wait(strm));
    DN(dnnl_primitive_destroy(r));
}

/* A float32 plain memory of md's dims (the user's layout for it) */
static dnnl_memory_t plain_f32_like(const dnnl_memory_desc_t *md, dnnl_format_tag_t tag) {
    dnnl_memory_desc_t p = md_tag(md->ndims, md->dims, dnnl_f32, tag);
    return mem_new(&p);
}

/* Fills m (any layout and type) with uniform(scale) values, through a plain float32 copy */
static void fill(dnnl_memory_t m, dnnl_format_tag_t plain_tag, float scale) {
    dnnl_memory_t u = plain_f32_like(mem_md(m), plain_tag);
    float *p = mem_ptr(u);
    for (size_t k = 0, n = md_elems(mem_md(u)); k < n; k++) p[k] = uniform(scale);
    reorder_once(u, m);
    DN(dnnl_memory_destroy(u));
}

/* Whether every element of m is finite (read through a plain float32 copy) */
static int all_finite(dnnl_memory_t m, dnnl_format_tag_t plain_tag) {
    dnnl_memory_t u = plain_f32_like(mem_md(m), plain_tag);
    reorder_once(m, u);
    const float *p = mem_ptr(u);
    int ok = 1;
    for (size_t k = 0, n = md_elems(mem_md(u)); k < n && ok; k++) ok = isfinite(p[k]);
    DN(dnnl_memory_destroy(u));
    return ok;
}

/* One primitive of the stack: `layers` layers of `in` -> H */
typedef struct Stack {
    int layers, in;
    dnnl_primitive_desc_t fpd, bpd;
    dnnl_primitive_t fwd, bwd;
    dnnl_memory_t w_layer, w_iter;           /* the user's: float32 ldigo (master weights) */
    dnnl_memory_t w_layer_f, w_iter_f;       /* the forward's format */
    dnnl_memory_t w_layer_b, w_iter_b;       /* the backward's format */
    dnnl_primitive_t r_layer_f, r_iter_f, r_layer_b, r_iter_b;
    dnnl_memory_t bias, ws, src, dst, diff_src, diff_dst;
    /* the states: initial (zero, as at an epoch's start), final, and their gradients (the final
     * state's is zero: crnn, like torch-rnn, cuts backpropagation at the batch's end) */
    dnnl_memory_t h0, c0, hT, cT, dh0, dc0, dhT, dcT;
    dnnl_memory_t dw_layer, dw_iter, dbias;
} Stack;

/* Why a primitive descriptor was refused: stage and status, for the RESULT line */
static const char *refused_stage;
static dnnl_status_t refused_status;

static int gates_of(int cell) { return cell == CELL_LSTM ? 4 : cell == CELL_GRU ? 3 : 1; }
/* the bias has one more block for the linear-before-reset GRU (b_hn, kept apart) */
static int bias_gates_of(int cell) { return cell == CELL_GRU ? 4 : gates_of(cell); }

/* The operation descriptor of stack's cell, forward (training) or backward. The states: si the
 * hidden state's [layers, 1, N, H] (initial and final, in and out), sc the LSTM's cell state's;
 * dsi and dsc their gradients' (NULL forward). */
static dnnl_status_t rnn_desc(dnnl_rnn_desc_t *d, const Config *c, int backward,
                              const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *si,
                              const dnnl_memory_desc_t *sc, const dnnl_memory_desc_t *wl,
                              const dnnl_memory_desc_t *wi, const dnnl_memory_desc_t *b,
                              const dnnl_memory_desc_t *dst, const dnnl_memory_desc_t *dsrc,
                              const dnnl_memory_desc_t *dsi, const dnnl_memory_desc_t *dsc,
                              const dnnl_memory_desc_t *dwl, const dnnl_memory_desc_t *dwi,
                              const dnnl_memory_desc_t *db, const dnnl_memory_desc_t *ddst) {
    const dnnl_rnn_direction_t dir = dnnl_unidirectional_left2right;
    switch (c->cell) {
    case CELL_LSTM:
        if (!backward)
            return dnnl_lstm_forward_desc_init(d, dnnl_forward_training, dir, src, si, sc, wl, wi, b, dst,
                                               si, sc, 0);
        return dnnl_lstm_backward_desc_init(d, dnnl_backward, dir, src, si, sc, wl, wi, b, dst, si, sc, dsrc,
                                            dsi, dsc, dwl, dwi, db, ddst, dsi, dsc, 0);
    case CELL_GRU:
        if (!backward)
            return dnnl_lbr_gru_forward_desc_init(d, dnnl_forward_training, dir, src, si, wl, wi, b, dst, si, 0);
        return dnnl_lbr_gru_backward_desc_init(d, dnnl_backward, dir, src, si, wl, wi, b, dst, si, dsrc, dsi,
                                               dwl, dwi, db, ddst, dsi, 0);
    default:
        if (!backward)
            return dnnl_vanilla_rnn_forward_desc_init(d, dnnl_forward_training, dnnl_eltwise_tanh, dir, src, si,
                                                      wl, wi, b, dst, si, 0, 0.f, 0.f);
        return dnnl_vanilla_rnn_backward_desc_init(d, dnnl_backward, dnnl_eltwise_tanh, dir, src, si, wl, wi,
                                                   b, dst, si, dsrc, dsi, dwl, dwi, db, ddst, dsi, 0, 0.f, 0.f);
    }
}

static dnnl_memory_t pd_mem(dnnl_primitive_desc_t pd, int arg) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
    return mem_new(md);
}

/* The weights primitive pd takes as arg: the user's own where pd wants their layout and type
 * (no reorder: *r is NULL), else a memory in pd's format and the reorder that fills it */
static void weights_for(dnnl_primitive_desc_t pd, int arg, dnnl_memory_t user, dnnl_memory_t *m,
                        dnnl_primitive_t *r) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
    if (dnnl_memory_desc_equal(md, mem_md(user))) {
        *m = user;
        *r = NULL;
    } else {
        *m = mem_new(md);
        *r = reorder_new(user, *m);
    }
}

/* Creates stack s (layers x (in -> H)); src is the layer's input memory (NULL: its own).
 * Returns 0, or -1 when oneDNN refuses a primitive descriptor (refused_stage says which). */
static int stack_init(Stack *s, const Config *c, int layers, int in, dnnl_memory_t src) {
    const int G = gates_of(c->cell), GB = bias_gates_of(c->cell), H = c->H;
    const dnnl_data_type_t dt = c->dt;
    memset(s, 0, sizeof *s);
    s->layers = layers;
    s->in = in;
    dnnl_dims_t d_src = {c->T, c->N, in}, d_dst = {c->T, c->N, H};
    dnnl_dims_t d_wl = {layers, 1, in, G, H}, d_wi = {layers, 1, H, G, H}, d_b = {layers, 1, GB, H};
    dnnl_memory_desc_t m_src = md_tag(3, d_src, dt, dnnl_tnc), m_dst = md_tag(3, d_dst, dt, dnnl_tnc);
    dnnl_memory_desc_t m_wl = md_tag(5, d_wl, dt, dnnl_format_tag_any);
    dnnl_memory_desc_t m_wi = md_tag(5, d_wi, dt, dnnl_format_tag_any);
    dnnl_memory_desc_t m_b = md_tag(4, d_b, dnnl_f32, dnnl_ldgo);
    dnnl_dims_t d_state = {layers, 1, c->N, H};
    dnnl_memory_desc_t m_h = md_tag(4, d_state, dt, dnnl_ldnc);
    /* the cell state (LSTM only) stays float32 */
    dnnl_memory_desc_t m_c = md_tag(4, d_state, dnnl_f32, dnnl_ldnc);
    const dnnl_memory_desc_t *pc = c->cell == CELL_LSTM ? &m_c : NULL;
    dnnl_rnn_desc_t fd, bd;
    dnnl_status_t st = rnn_desc(&fd, c, 0, &m_src, &m_h, pc, &m_wl, &m_wi, &m_b, &m_dst, NULL, NULL, NULL,
                                NULL, NULL, NULL, NULL);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&s->fpd, &fd, NULL, eng, NULL);
    if (st != dnnl_success) {
        refused_stage = "forward_pd";
        refused_status = st;
        return -1;
    }
    /* backward: the gradients of the weights in float32 or in dt (oneDNN's rules differ between
     * versions); the first that oneDNN creates. The gradients of the data and of the states are
     * float32 (oneDNN 2.6 refuses a bf16 backward with them in bf16: "unimplemented") */
    dnnl_memory_desc_t m_dsrc = md_tag(3, d_src, dnnl_f32, dnnl_tnc), m_ddst = md_tag(3, d_dst, dnnl_f32, dnnl_tnc);
    dnnl_memory_desc_t m_dh = md_tag(4, d_state, dnnl_f32, dnnl_ldnc);
    const dnnl_data_type_t dw_types[2] = {dt, dnnl_f32};
    for (int k = 0; k < (dt == dnnl_f32 ? 1 : 2); k++) {
        dnnl_memory_desc_t m_dwl = md_tag(5, d_wl, dw_types[k], dnnl_format_tag_any);
        dnnl_memory_desc_t m_dwi = md_tag(5, d_wi, dw_types[k], dnnl_format_tag_any);
        dnnl_memory_desc_t m_wl_b = md_tag(5, d_wl, dt, dnnl_format_tag_any);
        dnnl_memory_desc_t m_wi_b = md_tag(5, d_wi, dt, dnnl_format_tag_any);
        st = rnn_desc(&bd, c, 1, &m_src, &m_h, pc, &m_wl_b, &m_wi_b, &m_b, &m_dst, &m_dsrc, &m_dh, pc, &m_dwl,
                      &m_dwi, &m_b, &m_ddst);
        if (st == dnnl_success) st = dnnl_primitive_desc_create(&s->bpd, &bd, NULL, eng, s->fpd);
        if (st == dnnl_success) break;
    }
    if (st != dnnl_success) {
        refused_stage = "backward_pd";
        refused_status = st;
        return -1;
    }
    DN(dnnl_primitive_create(&s->fwd, s->fpd));
    DN(dnnl_primitive_create(&s->bwd, s->bpd));

    dnnl_memory_desc_t m_user_wl = md_tag(5, d_wl, dnnl_f32, dnnl_ldigo);
    dnnl_memory_desc_t m_user_wi = md_tag(5, d_wi, dnnl_f32, dnnl_ldigo);
    s->w_layer = mem_new(&m_user_wl);
    s->w_iter = mem_new(&m_user_wi);
    /* torch-rnn's initialisation scale: N(0, 1/sqrt(in + H)) ~ uniform of that size */
    const float wscale = 1.0f / sqrtf((float)(in + H));
    fill(s->w_layer, dnnl_ldigo, wscale);
    fill(s->w_iter, dnnl_ldigo, wscale);
    weights_for(s->fpd, DNNL_ARG_WEIGHTS_LAYER, s->w_layer, &s->w_layer_f, &s->r_layer_f);
    weights_for(s->fpd, DNNL_ARG_WEIGHTS_ITER, s->w_iter, &s->w_iter_f, &s->r_iter_f);
    weights_for(s->bpd, DNNL_ARG_WEIGHTS_LAYER, s->w_layer, &s->w_layer_b, &s->r_layer_b);
    weights_for(s->bpd, DNNL_ARG_WEIGHTS_ITER, s->w_iter, &s->w_iter_b, &s->r_iter_b);
    s->bias = pd_mem(s->fpd, DNNL_ARG_BIAS);
    fill(s->bias, dnnl_ldgo, 0.1f);
    s->ws = pd_mem(s->fpd, DNNL_ARG_WORKSPACE);
    s->src = src ? src : pd_mem(s->fpd, DNNL_ARG_SRC_LAYER);
    s->dst = pd_mem(s->fpd, DNNL_ARG_DST_LAYER);
    s->diff_src = pd_mem(s->bpd, DNNL_ARG_DIFF_SRC_LAYER);
    s->diff_dst = pd_mem(s->bpd, DNNL_ARG_DIFF_DST_LAYER);
    s->dw_layer = pd_mem(s->bpd, DNNL_ARG_DIFF_WEIGHTS_LAYER);
    s->dw_iter = pd_mem(s->bpd, DNNL_ARG_DIFF_WEIGHTS_ITER);
    s->dbias = pd_mem(s->bpd, DNNL_ARG_DIFF_BIAS);
    s->h0 = pd_mem(s->fpd, DNNL_ARG_SRC_ITER);
    s->hT = pd_mem(s->fpd, DNNL_ARG_DST_ITER);
    s->dh0 = pd_mem(s->bpd, DNNL_ARG_DIFF_SRC_ITER);
    s->dhT = pd_mem(s->bpd, DNNL_ARG_DIFF_DST_ITER);
    if (c->cell == CELL_LSTM) {
        s->c0 = pd_mem(s->fpd, DNNL_ARG_SRC_ITER_C);
        s->cT = pd_mem(s->fpd, DNNL_ARG_DST_ITER_C);
        s->dc0 = pd_mem(s->bpd, DNNL_ARG_DIFF_SRC_ITER_C);
        s->dcT = pd_mem(s->bpd, DNNL_ARG_DIFF_DST_ITER_C);
        zero(s->c0);
        zero(s->dcT);
    }
    zero(s->h0);
    zero(s->dhT);
    return 0;
}

static void stack_forward(Stack *s) {
    reorder_run(s->r_layer_f, s->w_layer, s->w_layer_f);
    reorder_run(s->r_iter_f, s->w_iter, s->w_iter_f);
    dnnl_exec_arg_t args[] = {
        {DNNL_ARG_SRC_LAYER, s->src},        {DNNL_ARG_WEIGHTS_LAYER, s->w_layer_f},
        {DNNL_ARG_WEIGHTS_ITER, s->w_iter_f}, {DNNL_ARG_BIAS, s->bias},
        {DNNL_ARG_DST_LAYER, s->dst},        {DNNL_ARG_WORKSPACE, s->ws},
        {DNNL_ARG_SRC_ITER, s->h0},          {DNNL_ARG_DST_ITER, s->hT},
        {DNNL_ARG_SRC_ITER_C, s->c0},        {DNNL_ARG_DST_ITER_C, s->cT},
    };
    const int nargs = (int)(sizeof args / sizeof *args) - (s->c0 ? 0 : 2);
    DN(dnnl_primitive_execute(s->fwd, strm, nargs, args));
}

static void stack_backward(Stack *s) {
    reorder_run(s->r_layer_b, s->w_layer, s->w_layer_b);
    reorder_run(s->r_iter_b, s->w_iter, s->w_iter_b);
    /* oneDNN 2.x accumulates into the weight gradients: a step starts them from zero, as crnn's
     * products (beta 0) do */
    DN(dnnl_stream_wait(strm));
    zero(s->dw_layer);
    zero(s->dw_iter);
    zero(s->dbias);
    dnnl_exec_arg_t args[] = {
        {DNNL_ARG_SRC_LAYER, s->src},
        {DNNL_ARG_WEIGHTS_LAYER, s->w_layer_b},
        {DNNL_ARG_WEIGHTS_ITER, s->w_iter_b},
        {DNNL_ARG_BIAS, s->bias},
        {DNNL_ARG_DST_LAYER, s->dst},
        {DNNL_ARG_WORKSPACE, s->ws},
        {DNNL_ARG_DIFF_SRC_LAYER, s->diff_src},
        {DNNL_ARG_DIFF_DST_LAYER, s->diff_dst},
        {DNNL_ARG_DIFF_WEIGHTS_LAYER, s->dw_layer},
        {DNNL_ARG_DIFF_WEIGHTS_ITER, s->dw_iter},
        {DNNL_ARG_DIFF_BIAS, s->dbias},
        {DNNL_ARG_SRC_ITER, s->h0},
        {DNNL_ARG_DST_ITER, s->hT},
        {DNNL_ARG_DIFF_SRC_ITER, s->dh0},
        {DNNL_ARG_DIFF_DST_ITER, s->dhT},
        {DNNL_ARG_SRC_ITER_C, s->c0},
        {DNNL_ARG_DST_ITER_C, s->cT},
        {DNNL_ARG_DIFF_SRC_ITER_C, s->dc0},
        {DNNL_ARG_DIFF_DST_ITER_C, s->dcT},
    };
    const int nargs = (int)(sizeof args / sizeof *args) - (s->c0 ? 0 : 4);
    DN(dnnl_primitive_execute(s->bwd, strm, nargs, args));
}

static int stack_finite(Stack *s) {
    return all_finite(s->dst, dnnl_tnc) && all_finite(s->diff_src, dnnl_tnc) &&
           all_finite(s->dw_layer, dnnl_ldigo) && all_finite(s->dw_iter, dnnl_ldigo) &&
           all_finite(s->dbias, dnnl_ldgo);
}

/* Writes m as plain float32 (tag) to f */
static void write_mem(FILE *f, dnnl_memory_t m, dnnl_format_tag_t tag) {
    dnnl_memory_t u = plain_f32_like(mem_md(m), tag);
    reorder_once(m, u);
    size_t n = md_elems(mem_md(u));
    if (fwrite(mem_ptr(u), sizeof(float), n, f) != n) {
        perror("onednn_peer: writing the dump");
        exit(1);
    }
    DN(dnnl_memory_destroy(u));
}

/* The dump: 10 int32 (magic 0x504e444f "ODNP", version 1, cell 0/1/2 = lstm/gru/rnn, L, H, I,
 * T, N, G gates, GB bias blocks), then float32 arrays, row-major:
 *   x [T, N, I]; for each stack k (1, and 2 when L > 1; Lk its layers, Ik its input width):
 *   W_layer [Lk, 1, Ik, G, H] (ldigo), W_iter [Lk, 1, H, G, H], bias [Lk, 1, GB, H];
 *   y [T, N, H] (the top layer's output); dy [T, N, H] (the gradient given to it);
 *   dx [T, N, I]; for each stack: dW_layer, dW_iter, dbias (the shapes above).
 * Gate blocks are oneDNN's: LSTM i, f, c~, o (PyTorch's i, f, g, o); GRU u, r, o (PyTorch's z,
 * r, n) with the bias's 4th block b_hn; the bias is b_ih + b_hh of PyTorch (b_hn apart). */
static void write_dump(const Config *c, Stack *st, int nstacks, dnnl_memory_t x) {
    FILE *f = fopen(c->dump, "wb");
    if (!f) {
        perror(c->dump);
        exit(1);
    }
    int32_t head[10] = {0x504e444f, 1, c->cell, c->L, c->H, c->I, c->T, c->N, gates_of(c->cell),
                        bias_gates_of(c->cell)};
    if (fwrite(head, sizeof head, 1, f) != 1) {
        perror(c->dump);
        exit(1);
    }
    write_mem(f, x, dnnl_tnc);
    for (int k = 0; k < nstacks; k++) {
        write_mem(f, st[k].w_layer, dnnl_ldigo);
        write_mem(f, st[k].w_iter, dnnl_ldigo);
        write_mem(f, st[k].bias, dnnl_ldgo);
    }
    write_mem(f, st[nstacks - 1].dst, dnnl_tnc);
    write_mem(f, st[nstacks - 1].diff_dst, dnnl_tnc);
    write_mem(f, st[0].diff_src, dnnl_tnc);
    for (int k = 0; k < nstacks; k++) {
        write_mem(f, st[k].dw_layer, dnnl_ldigo);
        write_mem(f, st[k].dw_iter, dnnl_ldigo);
        write_mem(f, st[k].dbias, dnnl_ldgo);
    }
    if (fclose(f) != 0) {
        perror(c->dump);
        exit(1);
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: onednn_peer [--dt f32|bf16] [--dump FILE] CELL LAYERS HIDDEN INPUT T N STEPS WARMUPS\n"
            "  CELL: lstm, gru (linear before reset, as PyTorch's) or rnn (tanh)\n");
    exit(2);
}

static int parse_int(const char *s, int min) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > 1000000) usage();
    return (int)v;
}

int main(int argc, char **argv) {
    Config c = {.dt = dnnl_f32};
    int a = 1;
    for (; a < argc && strncmp(argv[a], "--", 2) == 0; a++) {
        if (strcmp(argv[a], "--dt") == 0 && a + 1 < argc) {
            a++;
            if (strcmp(argv[a], "f32") == 0) c.dt = dnnl_f32;
            else if (strcmp(argv[a], "bf16") == 0) c.dt = dnnl_bf16;
            else usage();
        } else if (strcmp(argv[a], "--dump") == 0 && a + 1 < argc) {
            c.dump = argv[++a];
        } else {
            usage();
        }
    }
    if (argc - a != 8) usage();
    c.cell = -1;
    for (int k = 0; k < 3; k++)
        if (strcmp(argv[a], cell_names[k]) == 0) c.cell = k;
    if (c.cell < 0) usage();
    c.L = parse_int(argv[a + 1], 1);
    c.H = parse_int(argv[a + 2], 1);
    c.I = parse_int(argv[a + 3], 1);
    c.T = parse_int(argv[a + 4], 1);
    c.N = parse_int(argv[a + 5], 1);
    c.steps = parse_int(argv[a + 6], 1);
    c.warmups = parse_int(argv[a + 7], 0);
    const char *dtname = c.dt == dnnl_bf16 ? "bf16" : "f32";
    const int threads = omp_get_max_threads();

    DN(dnnl_engine_create(&eng, dnnl_cpu, 0));
    DN(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));

    Stack st[2];
    const int nstacks = c.L > 1 ? 2 : 1;
    int refused = stack_init(&st[0], &c, 1, c.I, NULL);
    if (!refused && nstacks > 1) refused = stack_init(&st[1], &c, c.L - 1, c.H, st[0].dst);
    if (refused) {
        printf("RESULT cell=%s layers=%d hidden=%d input=%d T=%d N=%d dt=%s threads=%d status=%s "
               "stage=%s ms_per_step=nan best_ms=nan\n",
               cell_names[c.cell], c.L, c.H, c.I, c.T, c.N, dtname, threads,
               refused_status == dnnl_unimplemented ? "unimplemented" : dnnl_status2str(refused_status),
               refused_stage);
        return 0;
    }
    const char *impl = "?";
    DN(dnnl_primitive_desc_query(st[0].fpd, dnnl_query_impl_info_str, 0, &impl));
    Stack *top = &st[nstacks - 1];
    fill(st[0].src, dnnl_tnc, 1.0f);
    fill(top->diff_dst, dnnl_tnc, 0.1f);
    /* the upper stack's gradient on its input is the lower one's on its output */
    if (nstacks > 1) {
        DN(dnnl_memory_destroy(st[0].diff_dst));
        st[0].diff_dst = st[1].diff_src;
    }

    double total = 0, best = 1e300, fwd_total = 0, bwd_total = 0;
    for (int step = 0; step < c.warmups + c.steps; step++) {
        double t0 = now_ms();
        for (int k = 0; k < nstacks; k++) stack_forward(&st[k]);
        DN(dnnl_stream_wait(strm));
        double t1 = now_ms();
        for (int k = nstacks - 1; k >= 0; k--) stack_backward(&st[k]);
        DN(dnnl_stream_wait(strm));
        double t2 = now_ms();
        if (step >= c.warmups) {
            total += t2 - t0;
            fwd_total += t1 - t0;
            bwd_total += t2 - t1;
            if (t2 - t0 < best) best = t2 - t0;
        }
    }
    int finite = 1;
    for (int k = 0; k < nstacks; k++) finite = finite && stack_finite(&st[k]);
    printf("RESULT cell=%s layers=%d hidden=%d input=%d T=%d N=%d dt=%s threads=%d status=%s impl=%s "
           "steps=%d ms_per_step=%.3f best_ms=%.3f fwd_ms=%.3f bwd_ms=%.3f\n",
           cell_names[c.cell], c.L, c.H, c.I, c.T, c.N, dtname, threads, finite ? "ok" : "nonfinite",
           impl, c.steps, total / c.steps, best, fwd_total / c.steps, bwd_total / c.steps);
    if (c.dump) write_dump(&c, st, nstacks, st[0].src);
    return finite ? 0 : 1;
}
