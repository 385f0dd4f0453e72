/* Sampling (see sampler.h). Random numbers come from the counter-based generator keyed by
 * (seed, RNG_SAMPLE or the caller's purpose, character index, sample stream, position), so a
 * seed gives the same text anywhere. */
#include "crnn/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crnn/rng.h"

static uint32_t sample_purpose(const SampleOptions *o) { return o->purpose ? o->purpose : RNG_SAMPLE; }

/* Chooses the next token from logits [V] (host). */
static int choose(const SampleOptions *o, const float *logits, int V, double *prob, int *order,
                  int64_t step, int stream) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (!o->sample) return best;
    double mx = logits[best] / o->temperature, z = 0;
    for (int v = 0; v < V; v++) z += prob[v] = exp(logits[v] / o->temperature - mx);
    if (o->top_k > 0 && o->top_k < V) {
        /* keep the k largest: partial selection sort over indices */
        for (int v = 0; v < V; v++) order[v] = v;
        for (int k = 0; k < o->top_k; k++) {
            int arg = k;
            for (int v = k + 1; v < V; v++)
                if (prob[order[v]] > prob[order[arg]]) arg = v;
            int t = order[k];
            order[k] = order[arg];
            order[arg] = t;
        }
        for (int k = o->top_k; k < V; k++) z -= prob[order[k]], prob[order[k]] = 0;
    }
    RngKey key = {.seed = o->seed, .purpose = sample_purpose(o), .iteration = (uint64_t)step,
                  .stream = (uint32_t)stream, .position = o->position};
    double u = rng_uniform(&key) * z, acc = 0;
    int last = best;
    for (int v = 0; v < V; v++) {
        if (prob[v] <= 0) continue;
        acc += prob[v];
        last = v;
        if (u < acc) return v;
    }
    return last; /* rounding at the top end */
}

/* Sample 0 goes straight to the output, each character as it is made; the others are kept
 * and printed after it. */
typedef struct Outputs {
    FILE *out;
    int n;
    char **buf;
    size_t *len, *cap;
    int failed;
} Outputs;

static void put(Outputs *w, int stream, const char *bytes, size_t n) {
    if (stream == 0) {
        if (fwrite(bytes, 1, n, w->out) != n || fflush(w->out) != 0) w->failed = 1;
        return;
    }
    if (w->len[stream] + n > w->cap[stream]) {
        size_t cap = 2 * (w->len[stream] + n) + 64;
        char *grown = realloc(w->buf[stream], cap);
        if (!grown) {
            w->failed = 1;
            return;
        }
        w->buf[stream] = grown;
        w->cap[stream] = cap;
    }
    memcpy(w->buf[stream] + w->len[stream], bytes, n);
    w->len[stream] += n;
}

static void put_token(Outputs *w, const Vocab *v, int stream, int token) {
    char bytes[4];
    int n = vocab_token_bytes(v, token, bytes);
    put(w, stream, bytes, (size_t)n);
}

/* Draws each stream's first character uniformly (without a start text), writes it and feeds
 * it to the model. */
static void first_characters(Model *m, const Vocab *v, const SampleOptions *o, int32_t *x,
                             Outputs *w, int N) {
    const int V = v->size;
    for (int n = 0; n < N; n++) {
        RngKey key = {.seed = o->seed, .purpose = sample_purpose(o), .iteration = 0,
                      .stream = (1u << 31) + (uint32_t)n, .position = o->position};
        int32_t token = (int32_t)(rng_uniform(&key) * V);
        x[n] = token < V ? token : V - 1;
        put_token(w, v, n, x[n]);
    }
    model_forward(m, x, NULL, N, 1);
}

/* Writes the start text to every stream and feeds its tokens start [n_start] to the model in
 * chunks of at most max_S steps, the same for every stream. */
static void feed_start_text(Model *m, const SampleOptions *o, int32_t *x, Outputs *w, int N,
                            const int32_t *start, size_t n_start, size_t start_len) {
    const int chunk_max = m->max_S;
    for (int n = 0; n < N; n++) put(w, n, o->start_text, start_len);
    for (size_t pos = 0; pos < n_start;) {
        int chunk = (int)(n_start - pos < (size_t)chunk_max ? n_start - pos : (size_t)chunk_max);
        for (int n = 0; n < N; n++) memcpy(x + (size_t)n * chunk, start + pos, (size_t)chunk * sizeof *x);
        model_forward(m, x, NULL, N, chunk);
        pos += (size_t)chunk;
    }
}

/* Chooses the characters after the first produced ones (at step) up to o->length, writing each
 * and feeding it back, until done or the output fails. */
static void generate(Model *m, const Vocab *v, const SampleOptions *o, float *logits, double *prob,
                     int *order, int32_t *x, Outputs *w, int N, int64_t step, int64_t produced) {
    const int V = v->size;
    while (produced < o->length && !w->failed) {
        /* the last step's logits: rows (S-1)*N .. of [S, N, V] */
        const real *last = model_logits(m) + (size_t)(m->S - 1) * N * V;
        m->be->to_host(m->be, logits, last, (size_t)N * V * sizeof *logits);
        for (int n = 0; n < N; n++) {
            x[n] = choose(o, logits + (size_t)n * V, V, prob, order, step, n);
            put_token(w, v, n, x[n]);
        }
        step++;
        produced++;
        if (produced < o->length) model_forward(m, x, NULL, N, 1);
    }
}

int sampler_run(Model *m, const Vocab *v, const SampleOptions *o, FILE *out, CrnnError *err) {
    const int V = v->size, N = o->num_samples < 1 ? 1 : o->num_samples;
    if (m->cfg.V != V) return crnn_fail(err, "the model has %d outputs for a vocabulary of %d", m->cfg.V, V);
    if (N > m->max_B) return crnn_fail(err, "%d samples need a model made for %d streams", N, N);
    int32_t *start = NULL;
    size_t n_start = 0, start_len = o->start_len ? o->start_len : strlen(o->start_text);
    if (vocab_encode(v, o->start_text, start_len, &start, &n_start, err)) {
        /* the user's text does not fit the checkpoint's vocabulary (a usage error) */
        return o->start_text_source ? crnn_fail_context(err, "-start_text_file %s", o->start_text_source)
                                    : crnn_fail_context(err, "-start_text");
    }
    const int chunk_max = m->max_S;
    float *logits = malloc((size_t)N * V * sizeof *logits);
    double *prob = malloc((size_t)V * sizeof *prob);
    int *order = malloc((size_t)V * sizeof *order);
    int32_t *x = malloc((size_t)N * chunk_max * sizeof *x);
    Outputs w = {.out = out, .n = N, .buf = calloc((size_t)N, sizeof(char *)),
                 .len = calloc((size_t)N, sizeof(size_t)), .cap = calloc((size_t)N, sizeof(size_t))};
    int rc = -1;
    if (!logits || !prob || !order || !x || !w.buf || !w.len || !w.cap) {
        crnn_fail(err, "out of memory");
        goto done;
    }
    model_reset_state(m);
    int64_t step = 0, produced = 0;
    if (n_start > 0) {
        feed_start_text(m, o, x, &w, N, start, n_start, start_len);
    } else if (o->length > 0) {
        first_characters(m, v, o, x, &w, N);
        produced = step = 1;
    }
    generate(m, v, o, logits, prob, order, x, &w, N, step, produced);
    /* one sample ends with a newline; several, each with a blank line */
    for (int n = 0; n < N; n++) {
        if (n > 0 && w.len[n]) put(&w, 0, w.buf[n], w.len[n]);
        put(&w, 0, N > 1 ? "\n\n" : "\n", N > 1 ? 2 : 1);
    }
    if (w.failed || ferror(out)) {
        crnn_fail(err, "cannot write the sample to the output (closed pipe or full disk?)");
        goto done;
    }
    rc = 0;
done:
    for (int n = 0; w.buf && n < N; n++) free(w.buf[n]);
    free(w.buf);
    free(w.len);
    free(w.cap);
    free(x);
    free(start);
    free(logits);
    free(prob);
    free(order);
    return rc;
}
