/* Clipping and Adam over flat buffers against direct formulas. */
#include <math.h>
#include <string.h>
#include <stdio.h>

#include "check.h"
#include "crnn/backend.h"
#include "crnn/optim.h"

int main(void) {
    CrnnError err;
    Backend *be = backend_cpu_create(1, &err);
    if (!be) return 1;
    enum { N = 7 };
    real g[N] = {3, -4, 0.5f, 12, -0.25f, 0, 2}, h[N];
    double norm = 0;
    for (int k = 0; k < N; k++) norm += (double)g[k] * g[k];
    norm = sqrt(norm);
    /* by norm: scaled to norm 2, direction kept */
    for (int k = 0; k < N; k++) h[k] = g[k];
    optim_clip(be, h, N, 2.0, 1);
    double after = 0;
    for (int k = 0; k < N; k++) after += (double)h[k] * h[k];
    CHECK(fabs(sqrt(after) - 2.0) < 1e-5, "norm clipping gives norm 2");
    for (int k = 0; k < N; k++) CHECK(fabs(h[k] - g[k] * 2.0 / norm) < 1e-6, "norm clipping keeps the direction");
    /* by norm, already small enough: untouched */
    for (int k = 0; k < N; k++) h[k] = g[k];
    optim_clip(be, h, N, 100.0, 1);
    for (int k = 0; k < N; k++) CHECK(h[k] == g[k], "norm clipping below the limit changes nothing");
    /* clamp: each element */
    for (int k = 0; k < N; k++) h[k] = g[k];
    optim_clip(be, h, N, 1.0, 0);
    for (int k = 0; k < N; k++) CHECK(h[k] == (g[k] > 1 ? 1 : (g[k] < -1 ? -1 : g[k])), "clamp");
    /* clip 0: off */
    for (int k = 0; k < N; k++) h[k] = g[k];
    optim_clip(be, h, N, 0, 1);
    optim_clip(be, h, N, 0, 0);
    for (int k = 0; k < N; k++) CHECK(h[k] == g[k], "clip 0 is off");
    /* Adam, two steps, against torch/optim's formula */
    Optimizer o;
    if (optim_create(&o, be, "adam", N, 0.01, 0.95, &err)) return 1;
    real x[N] = {0}, xr[N] = {0};
    double m[N] = {0}, v[N] = {0};
    for (int t = 1; t <= 2; t++) {
        optim_step(&o, x, g, 0);
        for (int k = 0; k < N; k++) {
            m[k] = 0.9 * m[k] + 0.1 * g[k];
            v[k] = 0.999 * v[k] + 0.001 * (double)g[k] * g[k];
            double step = 0.01 * sqrt(1 - pow(0.999, t)) / (1 - pow(0.9, t));
            xr[k] -= (real)(step * m[k] / (sqrt(v[k]) + 1e-8));
        }
    }
    for (int k = 0; k < N; k++) CHECK(fabs(x[k] - xr[k]) < 1e-6, "adam");
    optim_destroy(&o);
    /* RMSprop, two steps, against char-rnn's formula; no first moment kept */
    if (optim_create(&o, be, "rmsprop", N, 0.01, 0.95, &err)) return 1;
    CHECK(o.m == NULL, "rmsprop keeps only v");
    for (int k = 0; k < N; k++) x[k] = xr[k] = 0, v[k] = 0;
    for (int t = 1; t <= 2; t++) {
        optim_step(&o, x, g, 0);
        for (int k = 0; k < N; k++) {
            v[k] = 0.95 * v[k] + 0.05 * (double)g[k] * g[k];
            xr[k] -= (real)(0.01 * g[k] / (sqrt(v[k]) + 1e-8));
        }
    }
    for (int k = 0; k < N; k++) CHECK(fabs(x[k] - xr[k]) < 1e-6, "rmsprop");
    optim_destroy(&o);
    /* the clamp in the optimizer's pass: the same update, bit for bit, as clamping g first; g
     * itself untouched (-grad_clip's elementwise clamp, train.c) */
    for (int opt = 0; opt < 2; opt++) {
        Optimizer a, b;
        if (optim_create(&a, be, opt ? "rmsprop" : "adam", N, 0.01, 0.95, &err) ||
            optim_create(&b, be, opt ? "rmsprop" : "adam", N, 0.01, 0.95, &err))
            return 1;
        real xa[N] = {0}, xb[N] = {0}, gc[N];
        for (int t = 1; t <= 3; t++) {
            for (int k = 0; k < N; k++) gc[k] = g[k];
            optim_clip(be, gc, N, 1.0, 0);
            optim_step(&a, xa, gc, 0);
            optim_step(&b, xb, g, 1.0);
        }
        for (int k = 0; k < N; k++) CHECK(xa[k] == xb[k], "%s: the fused clamp differs at %d", opt ? "rmsprop" : "adam", k);
        CHECK(memcmp(a.v, b.v, sizeof(real) * N) == 0, "the fused clamp's v differs");
        real g0[N] = {3, -4, 0.5f, 12, -0.25f, 0, 2};
        CHECK(memcmp(g, g0, sizeof g) == 0, "the fused clamp wrote g");
        optim_destroy(&a);
        optim_destroy(&b);
    }
    CHECK(optim_create(&o, be, "sgd", N, 0.01, 0.95, &err) != 0, "an unknown optimizer is refused");
    backend_destroy(be);
    return check_exit("test_optim");
}
