/* Sampling (see sampler.h). Random numbers come from the counter-based generator keyed by
 * (seed, RNG_SAMPLE, character index, sample stream), so a seed gives the same text anywhere. */
#include "crnn/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crnn/rng.h"

/* Chooses the next token from logits [V] (host). */
static int choose(const SampleOptions *o, const float *logits, int V, double *prob, int *order,
                  int64_t step) {
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
    RngKey key = {.seed = o->seed, .purpose = RNG_SAMPLE, .iteration = (uint64_t)step};
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

static int emit(const Vocab *v, int token, FILE *out) {
    char bytes[4];
    int n = vocab_token_bytes(v, token, bytes);
    if (fwrite(bytes, 1, (size_t)n, out) != (size_t)n || fflush(out) != 0) return -1;
    return 0;
}

int sampler_run(Model *m, const Vocab *v, const SampleOptions *o, FILE *out, CrnnError *err) {
    const int V = v->size;
    if (m->cfg.V != V) return crnn_fail(err, "the model has %d outputs for a vocabulary of %d", m->cfg.V, V);
    int32_t *start = NULL;
    size_t n_start = 0;
    if (vocab_encode(v, o->start_text, strlen(o->start_text), &start, &n_start, err)) return -1;
    float *logits = malloc((size_t)V * sizeof *logits);
    double *prob = malloc((size_t)V * sizeof *prob);
    int *order = malloc((size_t)V * sizeof *order);
    int rc = -1;
    if (!logits || !prob || !order) {
        crnn_fail(err, "out of memory");
        goto done;
    }
    model_reset_state(m);
    int64_t step = 0, produced = 0;
    int32_t token;
    if (n_start == 0) {
        if (o->length <= 0) {
            rc = 0;
            goto done;
        }
        RngKey key = {.seed = o->seed, .purpose = RNG_SAMPLE, .iteration = 0, .stream = 1u << 31};
        token = (int32_t)(rng_uniform(&key) * V);
        if (token >= V) token = V - 1;
        if (emit(v, token, out)) goto write_error;
        produced = 1;
        step = 1;
        model_forward(m, &token, NULL, 1, 1);
    } else {
        if (fwrite(o->start_text, 1, strlen(o->start_text), out) != strlen(o->start_text) ||
            fflush(out) != 0)
            goto write_error;
        /* the start text in chunks of at most max_S steps */
        for (size_t pos = 0; pos < n_start;) {
            int chunk = (int)(n_start - pos < (size_t)m->max_S ? n_start - pos : (size_t)m->max_S);
            model_forward(m, start + pos, NULL, 1, chunk);
            pos += (size_t)chunk;
        }
    }
    while (produced < o->length) {
        /* the last step's logits: row S-1 of [S, 1, V] */
        const real *last = model_logits(m) + (size_t)(m->S - 1) * V;
        m->be->to_host(m->be, logits, last, (size_t)V * sizeof *logits);
        token = choose(o, logits, V, prob, order, step++);
        if (emit(v, token, out)) goto write_error;
        produced++;
        if (produced < o->length) model_forward(m, &token, NULL, 1, 1);
    }
    rc = 0;
    goto done;
write_error:
    crnn_fail(err, "cannot write the sample to the output (closed pipe or full disk?)");
done:
    free(start);
    free(logits);
    free(prob);
    free(order);
    return rc;
}
