/* Finite-difference gradient checks in double precision: each backend operation the model
 * differentiates (the LSTM, GRU and RNN recurrences, softmax cross-entropy, embedding) and the
 * whole model for each cell, every parameter, with a carried non-zero initial state. Built
 * against crnn64 (real = double). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crnn/backend.h"
#include "crnn/model.h"
#include "crnn/rng.h"

static uint32_t counter = 0;

static double rnd(void) {
    RngKey k = {.seed = 99, .purpose = 7, .position = counter++};
    return 2 * rng_uniform(&k) - 1;
}

/* analytic vs numeric: |a - n| <= tol * |n| + 1e-8 (the 1e-8 covers the rounding error of a
 * central difference with eps = 1e-6 on a loss of order 1, about 1e-10) */
static void expect_close(const char *what, int index, double analytic, double numeric, double tol) {
    double rel = fabs(analytic - numeric) / fmax(fabs(numeric), 1e-300);
    if (fabs(analytic - numeric) > tol * fabs(numeric) + 1e-8) {
        if (failures < 20)
            FAIL("%s[%d]: analytic %.12g numeric %.12g (rel %.3g)", what, index, analytic, numeric, rel);
        else
            failures++; /* counted, not printed: the first 20 tell enough */
    }
}

/* Each recurrence over S steps: loss = sum over t of wh[t] . h_t, as a function of the input
 * pre-activations, W_h and (gru) b_h; backward gives d loss / d pre-activations for every step,
 * and d loss / d W_h = sum_t h_{t-1}^T dA_h,t, d loss / d b_h = sum_t dA_h,t from the recurrent
 * parts' gradients (dA itself for lstm and rnn). */
enum { SEQ_S = 4, SEQ_B = 3, SEQ_H = 5, SEQ_G = 4 };

/* The cell of G gates, whose recurrence runs through the backend's cell table. */
static CellId seq_cell(int G) { return G == 4 ? CELL_LSTM : G == 3 ? CELL_GRU : CELL_RNN; }

static double seq_loss(Backend *be, int G, const double *gates_in, const double *W_h,
                       const double *b_h, const double *h0, const double *c0, const double *wh) {
    const int S = SEQ_S, B = SEQ_B, H = SEQ_H;
    double gates[SEQ_S * SEQ_B * SEQ_G * SEQ_H], gates_h[SEQ_S * SEQ_B * SEQ_G * SEQ_H],
        hs[(SEQ_S + 1) * SEQ_B * SEQ_H], cs[(SEQ_S + 1) * SEQ_B * SEQ_H];
    memcpy(gates, gates_in, sizeof(double) * S * B * G * H);
    memcpy(hs, h0, sizeof(double) * B * H);
    memcpy(cs, c0, sizeof(double) * B * H);
    const CellSeq q = {.gates = gates, .gates_h = gates_h, .W_h = W_h, .b_h = b_h, .hs = hs, .cs = cs,
                       .S = S, .B = B, .H = H};
    backend_cell_forward(be, seq_cell(G), &q);
    double s = 0;
    for (int k = 0; k < S * B * H; k++) s += wh[k] * hs[B * H + k];
    return s;
}

static void check_seq(Backend *be, int G) {
    const char *cell = G == 4 ? "lstm" : G == 3 ? "gru" : "rnn";
    const int S = SEQ_S, B = SEQ_B, H = SEQ_H, n = S * B * G * H, GH = G * H;
    double gates_in[SEQ_S * SEQ_B * SEQ_G * SEQ_H], W_h[SEQ_H * SEQ_G * SEQ_H], b_h[SEQ_G * SEQ_H],
        h0[SEQ_B * SEQ_H], c0[SEQ_B * SEQ_H], wh[SEQ_S * SEQ_B * SEQ_H];
    for (int k = 0; k < n; k++) gates_in[k] = 1.5 * rnd();
    for (int k = 0; k < H * GH; k++) W_h[k] = 0.5 * rnd();
    for (int k = 0; k < GH; k++) b_h[k] = 0.5 * rnd();
    for (int k = 0; k < B * H; k++) h0[k] = 0.5 * rnd(), c0[k] = rnd();
    for (int k = 0; k < S * B * H; k++) wh[k] = rnd();
    /* analytic */
    double gates[SEQ_S * SEQ_B * SEQ_G * SEQ_H], gates_h[SEQ_S * SEQ_B * SEQ_G * SEQ_H],
        hs[(SEQ_S + 1) * SEQ_B * SEQ_H], cs[(SEQ_S + 1) * SEQ_B * SEQ_H], dhs[SEQ_S * SEQ_B * SEQ_H],
        dc[SEQ_B * SEQ_H];
    memcpy(gates, gates_in, sizeof(double) * n);
    memcpy(hs, h0, sizeof h0);
    memcpy(cs, c0, sizeof c0);
    memcpy(dhs, wh, sizeof dhs);
    const CellSeq q = {.gates = gates, .gates_h = gates_h, .W_h = W_h, .b_h = b_h, .hs = hs, .cs = cs,
                       .dhs = dhs, .dc = dc, .S = S, .B = B, .H = H};
    backend_cell_forward(be, seq_cell(G), &q);
    backend_cell_backward(be, seq_cell(G), &q);
    const double *dA_h = G == 3 ? gates_h : gates;
    double dW[SEQ_H * SEQ_G * SEQ_H] = {0}, db[SEQ_G * SEQ_H] = {0};
    for (int r = 0; r < S * B; r++)
        for (int j = 0; j < GH; j++) {
            db[j] += dA_h[r * GH + j];
            for (int i = 0; i < H; i++) dW[i * GH + j] += hs[r * H + i] * dA_h[r * GH + j];
        }
    const double eps = 1e-6;
    char what[96];
    snprintf(what, sizeof what, "%s recurrence d/d(pre-activation)", cell);
    for (int k = 0; k < n; k++) {
        double s = gates_in[k];
        gates_in[k] = s + eps;
        double lp = seq_loss(be, G, gates_in, W_h, b_h, h0, c0, wh);
        gates_in[k] = s - eps;
        double lm = seq_loss(be, G, gates_in, W_h, b_h, h0, c0, wh);
        gates_in[k] = s;
        expect_close(what, k, gates[k], (lp - lm) / (2 * eps), 1e-6);
    }
    snprintf(what, sizeof what, "%s recurrence d/dW_h", cell);
    for (int k = 0; k < H * GH; k++) {
        double s = W_h[k];
        W_h[k] = s + eps;
        double lp = seq_loss(be, G, gates_in, W_h, b_h, h0, c0, wh);
        W_h[k] = s - eps;
        double lm = seq_loss(be, G, gates_in, W_h, b_h, h0, c0, wh);
        W_h[k] = s;
        expect_close(what, k, dW[k], (lp - lm) / (2 * eps), 1e-6);
    }
    if (G != 3) return; /* lstm and rnn take b_h folded into the pre-activations */
    snprintf(what, sizeof what, "%s recurrence d/db_h", cell);
    for (int k = 0; k < GH; k++) {
        double s = b_h[k];
        b_h[k] = s + eps;
        double lp = seq_loss(be, G, gates_in, W_h, b_h, h0, c0, wh);
        b_h[k] = s - eps;
        double lm = seq_loss(be, G, gates_in, W_h, b_h, h0, c0, wh);
        b_h[k] = s;
        expect_close(what, k, db[k], (lp - lm) / (2 * eps), 1e-6);
    }
}

static void check_softmax(Backend *be) {
    const int N = 4, V = 7;
    double logits[28], d[28];
    int32_t y[4] = {0, 6, 3, 3};
    for (int k = 0; k < N * V; k++) logits[k] = 3 * rnd();
    double scale = 0.37;
    be->softmax_xent(be, logits, y, d, N, V, scale);
    const double eps = 1e-6;
    for (int k = 0; k < N * V; k++) {
        double s = logits[k];
        logits[k] = s + eps;
        double lp = be->softmax_xent(be, logits, y, NULL, N, V, scale);
        logits[k] = s - eps;
        double lm = be->softmax_xent(be, logits, y, NULL, N, V, scale);
        logits[k] = s;
        expect_close("softmax_xent d/dlogits", k, d[k], scale * (lp - lm) / (2 * eps), 1e-6);
    }
    /* the loss itself against a direct formula */
    double direct = 0;
    for (int n = 0; n < N; n++) {
        double z = 0;
        for (int v = 0; v < V; v++) z += exp(logits[n * V + v]);
        direct += log(z) - logits[n * V + y[n]];
    }
    expect_close("softmax_xent loss", 0, be->softmax_xent(be, logits, y, NULL, N, V, 1), direct,
                 1e-12);
}

static void check_embedding(Backend *be) {
    const int N = 5, D = 3, V = 4;
    double table[12], out[15], dout[15], dtable[12] = {0};
    int32_t idx[5] = {2, 0, 2, 3, 2};
    for (int k = 0; k < V * D; k++) table[k] = rnd();
    for (int k = 0; k < N * D; k++) dout[k] = rnd();
    be->embedding_forward(be, out, idx, table, N, D);
    be->embedding_backward(be, dtable, dout, idx, N, D);
    /* loss = sum(dout * out) is linear in table: its gradient is exact */
    const double eps = 1e-6;
    for (int k = 0; k < V * D; k++) {
        double s = table[k], lp = 0, lm = 0;
        table[k] = s + eps;
        be->embedding_forward(be, out, idx, table, N, D);
        for (int j = 0; j < N * D; j++) lp += dout[j] * out[j];
        table[k] = s - eps;
        be->embedding_forward(be, out, idx, table, N, D);
        for (int j = 0; j < N * D; j++) lm += dout[j] * out[j];
        table[k] = s;
        expect_close("embedding d/dtable", k, dtable[k], (lp - lm) / (2 * eps), 1e-8);
    }
    /* the gather-and-add of one-hot input: out += table[idx] */
    double acc[15];
    for (int k = 0; k < N * D; k++) acc[k] = dout[k];
    be->embedding_forward(be, out, idx, table, N, D);
    be->embedding_forward_add(be, acc, idx, table, N, D);
    for (int k = 0; k < N * D; k++) expect_close("embedding_forward_add", k, acc[k], dout[k] + out[k], 1e-15);
}

/* The dropout operation: its mask keeps about 1 - p of the units, scales them by 1 / (1 - p),
 * is the same for the same key and another for another iteration or layer, and depends on a
 * stream's global number only: rows 2..3 of a batch of 4 streams from stream 0 get the masks of
 * a batch of 2 streams from stream 2 (the same streams on another rank). */
static void check_dropout(Backend *be) {
    const int S = 7, B = 4, H = 37; /* H not a multiple of 4: the last quad is partial */
    const int n = S * B * H;
    const double p = 0.3;
    double *x = malloc(sizeof(double) * n), *a = malloc(sizeof(double) * n),
           *b = malloc(sizeof(double) * n), *c = malloc(sizeof(double) * n);
    for (int k = 0; k < n; k++) x[k] = 1 + (rnd() + 1) * 0.5; /* never 0 */
    be->dropout(be, a, x, S, B, H, p, 99, 12, 0, 1);
    be->dropout(be, b, x, S, B, H, p, 99, 12, 0, 1);
    int kept = 0, same = 1, scaled = 1;
    for (int k = 0; k < n; k++) {
        if (a[k] != 0) kept++;
        if (a[k] != b[k]) same = 0;
        if (a[k] != 0 && fabs(a[k] - x[k] / (1 - p)) > 1e-12) scaled = 0;
    }
    double frac = (double)kept / n; /* 1036 units: within 5 standard deviations (0.014) */
    if (!same || !scaled || fabs(frac - (1 - p)) > 0.07) {
        FAIL("dropout: same key same mask %d, kept units scaled %d, kept %.3f of 0.7",
             same, scaled, frac);
    }
    for (int variant = 0; variant < 2; variant++) {
        be->dropout(be, b, x, S, B, H, p, 99, variant ? 12 : 13, 0, variant ? 2 : 1);
        int differ = 0;
        for (int k = 0; k < n; k++) differ += (a[k] != 0) != (b[k] != 0);
        if (differ < n / 10) {
            FAIL("dropout: another %s gives nearly the same mask (%d of %d differ)",
                 variant ? "layer" : "iteration", differ, n);
        }
    }
    /* streams 2 and 3 alone, as a second rank of B = 2 holds them */
    double *x2 = malloc(sizeof(double) * S * 2 * H);
    for (int t = 0; t < S; t++)
        memcpy(x2 + (size_t)t * 2 * H, x + ((size_t)t * B + 2) * H, sizeof(double) * 2 * H);
    be->dropout(be, c, x2, S, 2, H, p, 99, 12, 2, 1);
    for (int t = 0; t < S; t++)
        for (int k = 0; k < 2 * H; k++)
            if (c[(size_t)t * 2 * H + k] != a[((size_t)t * B + 2) * H + k]) {
                FAIL("dropout: stream %d step %d unit %d differs when the batch starts at stream 2",
                     2 + k / H, t, k % H);
                t = S;
                break;
            }
    /* in place, as backward applies it to the gradient */
    memcpy(b, x, sizeof(double) * n);
    be->dropout(be, b, b, S, B, H, p, 99, 12, 0, 1);
    if (memcmp(a, b, sizeof(double) * n) != 0) {
        FAIL("dropout in place differs from out of place");
    }
    free(x), free(a), free(b), free(c), free(x2);
}

/* D = 0: char-rnn's one-hot input (no embedding, layer 0's W_x [V, G*H]). dropout > 0: the
 * masks of one fixed key in every forward, as within one training iteration. */
static void check_model(Backend *be, const char *type, int D, int L, int B, int S, double dropout) {
    ModelConfig cfg = {.V = 7, .D = D, .H = 6, .L = L, .dropout = dropout};
    snprintf(cfg.model_type, sizeof cfg.model_type, "%s", type);
    Model m;
    CrnnError err;
    if (model_create(&m, &cfg, be, B, S, &err)) {
        FAIL("model_create: %s", err.msg);
        return;
    }
    model_init_params(&m, 5);
    model_set_dropout(&m, 1, 31, 4, 2);
    if (D == 0 && (strcmp(m.tensors[0].name, "params/rnn/0/W_x") != 0 ||
                   m.tensors[0].dims[0] != cfg.V || m.tensors[0].dims[1] != m.G * cfg.H)) {
        FAIL("%s one-hot layout: first tensor %s [%lld, %lld]", type,
             m.tensors[0].name, (long long)m.tensors[0].dims[0], (long long)m.tensors[0].dims[1]);
    }
    int32_t *x = malloc(sizeof(int32_t) * B * S), *y = malloc(sizeof(int32_t) * B * S);
    for (int k = 0; k < B * S; k++) {
        x[k] = (int32_t)((rnd() + 1) * 3.5) % cfg.V;
        y[k] = (int32_t)((rnd() + 1) * 3.5) % cfg.V;
    }
    /* a non-zero initial state, as carried from a previous batch */
    size_t ns = (size_t)L * B * cfg.H;
    float *h0 = malloc(sizeof(float) * ns), *c0 = malloc(sizeof(float) * ns);
    for (size_t k = 0; k < ns; k++) h0[k] = (float)(0.5 * rnd()), c0[k] = (float)rnd();
    /* perturb the biases away from their initial constants */
    for (size_t k = 0; k < m.num_params; k++) m.params[k] += 0.1 * rnd();

    model_set_state(&m, h0, c0, B);
    double loss = model_forward(&m, x, y, B, S);
    model_backward(&m, NULL, NULL);
    double *analytic = malloc(sizeof(double) * m.num_params);
    memcpy(analytic, m.grads, sizeof(double) * m.num_params);
    double *numeric = malloc(sizeof(double) * m.num_params);
    if (!(loss > 0)) {
        FAIL("model loss %g", loss);
    }
    const double eps = 1e-5; /* rounding error ~4e-11, truncation ~1e-10 relative */
    char what[96];
    for (int t = 0; t < m.num_tensors; t++) {
        const ParamTensor *p = &m.tensors[t];
        snprintf(what, sizeof what, "%s model D=%d L=%d B=%d S=%d dropout=%g %s", type, D, L, B, S,
                 dropout, p->name);
        for (size_t k = 0; k < p->size; k++) {
            double *w = &m.params[p->offset + k], s = *w;
            *w = s + eps;
            model_set_state(&m, h0, c0, B);
            double lp = model_forward(&m, x, y, B, S);
            *w = s - eps;
            model_set_state(&m, h0, c0, B);
            double lm = model_forward(&m, x, y, B, S);
            *w = s;
            numeric[p->offset + k] = (lp - lm) / (2 * eps);
            expect_close(what, (int)k, analytic[p->offset + k], numeric[p->offset + k], 1e-4);
        }
        /* and the whole tensor, relative in norm */
        double dd = 0, nn = 0;
        for (size_t k = p->offset; k < p->offset + p->size; k++)
            dd += (analytic[k] - numeric[k]) * (analytic[k] - numeric[k]), nn += numeric[k] * numeric[k];
        if (!(sqrt(dd) <= 1e-6 * sqrt(nn))) {
            FAIL("%s: relative error in norm %.3g (norm %.3g)", what,
                 sqrt(dd / nn), sqrt(nn));
        }
    }
    if (dropout > 0) { /* the masks did drop units, of every layer */
        for (int l = 0; l < L; l++) {
            int zeros = 0;
            for (int k = 0; k < B * S * cfg.H; k++) zeros += m.layers[l].drop[k] == 0;
            if (zeros == 0 || zeros == B * S * cfg.H) {
                FAIL("%s dropout %g: layer %d dropped %d of %d units", type, dropout, l,
                     zeros, B * S * cfg.H);
            }
        }
    }
    /* the state carries: a second forward starts from the first's final state */
    model_set_state(&m, h0, c0, B);
    model_forward(&m, x, y, B, S);
    float *h1 = malloc(sizeof(float) * ns);
    model_get_state(&m, h1, NULL, B);
    double diff = 0;
    for (size_t k = 0; k < ns; k++) diff += fabs(h1[k] - h0[k]);
    if (!(diff > 1e-3)) {
        FAIL("the final state was not carried out of forward");
    }
    free(h1);
    free(analytic), free(numeric), free(x), free(y), free(h0), free(c0);
    model_destroy(&m);
}

int main(void) {
    CrnnError err;
    Backend *be = backend_cpu_create(1, &err);
    if (!be) {
        fprintf(stderr, "backend: %s\n", err.msg);
        return 1;
    }
    check_seq(be, 4);
    check_seq(be, 3);
    check_seq(be, 1);
    check_softmax(be);
    check_embedding(be);
    check_dropout(be);
    const char *types[3] = {"lstm", "gru", "rnn"};
    for (int c = 0; c < 3; c++) {
        check_model(be, types[c], 5, 1, 2, 3, 0);
        check_model(be, types[c], 5, 2, 3, 4, 0);
        check_model(be, types[c], 5, 3, 1, 5, 0);
        check_model(be, types[c], 0, 1, 2, 3, 0); /* one-hot input */
        check_model(be, types[c], 0, 2, 3, 4, 0);
        check_model(be, types[c], 0, 3, 1, 5, 0);
        check_model(be, types[c], 5, 2, 3, 4, 0.4); /* dropout */
        check_model(be, types[c], 0, 3, 2, 5, 0.25);
    }
    backend_destroy(be);
    return check_exit("test_gradcheck");
}
