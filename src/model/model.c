/* The language model over flat buffers: embedding -> L recurrent layers (a cell of cell.h:
 * lstm, gru or rnn, G = 4, 3 or 1 gate blocks) -> decoder. The model asks the cell's spec
 * (m->cell) and never names a cell.
 * Shapes (time-major, row t*B + b is step t of stream b):
 *   x_embed [S, B, D]; per layer hs [(S+1), B, H] (slot 0 = initial state), cs likewise (cells
 *   with a cell state), gates [S, B, G*H], gates_h [S, B, G*H] (recurrent bias apart); logits
 *   [S, B, V].
 * Forward: one GEMM for the input projection of all S steps, then the backend's recurrence (per
 * step one [B,H]x[H,G*H] GEMM and one fused pointwise pass). lstm and rnn fold b_h into the
 * input projection; gru cannot (r multiplies h W_hn + b_hn), so its recurrence adds b_h
 * (CellSpec.recurrent_bias_apart). Backward: the backend's recurrence
 * (per step one fused pointwise pass and one GEMM for the recurrent gradient), then the weight
 * gradients as one GEMM each over all S steps.
 * Dropout (training only, model_set_dropout): each layer's output, the top one too, goes on
 * through the backend's dropout into drop [S, B, H], whose mask is a function of (seed,
 * iteration, global stream, layer, position); backward applies the same mask to the gradient.
 * One-hot input (D = 0): layer 0's x W_x is a row gather of W_x [V, G*H] added onto the biases,
 * and its dW_x a scatter-add of dA's rows by token; no one-hot matrix and no x_embed.
 * The embedding folded into layer 0 (when the batch has more rows than the vocabulary: a
 * training batch, not sampling's single row): the embedded input is row x of E, so x W_x + b is
 * row x of P = E W_x + b [V, G*H], computed once a batch and gathered, and backward's
 * scatter-add dP of dA's rows by token gives dW_x = E^T dP, db = column sums of dP and
 * dE = dP W_x^T: three products over V rows in place of three over S*B. The same sums, taken
 * in another order. */
#include "crnn/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crnn/rng.h"

static real *alloc_reals(Model *m, size_t n, int *failed) {
    real *p = m->be->alloc(m->be, n * sizeof(real));
    if (!p) *failed = 1;
    return p;
}

/* Layer lb's activations and state for batches up to max_B x max_S: what its cell needs. */
static void alloc_layer(Model *m, LayerBuffers *lb, int *failed) {
    const size_t BS = (size_t)m->max_B * m->max_S, H = (size_t)m->cfg.H, G = (size_t)m->G;
    lb->hs = alloc_reals(m, (BS + m->max_B) * H, failed);
    if (m->cell->has_cell_state) lb->cs = alloc_reals(m, (BS + m->max_B) * H, failed);
    if (m->cell->recurrent_bias_apart) lb->gates_h = alloc_reals(m, BS * G * H, failed);
    lb->gates = alloc_reals(m, BS * G * H, failed);
    lb->dhs = alloc_reals(m, BS * H, failed);
    if (m->cfg.dropout > 0) lb->drop = alloc_reals(m, BS * H, failed);
    lb->state_h = alloc_reals(m, (size_t)m->max_B * H, failed);
    lb->state_c = alloc_reals(m, (size_t)m->max_B * H, failed);
}

int model_create(Model *m, const ModelConfig *cfg, Backend *be, int max_B, int max_S,
                 CrnnError *err) {
    return model_create_lent(m, cfg, be, max_B, max_S, NULL, NULL, err);
}

int model_create_lent(Model *m, const ModelConfig *cfg, Backend *be, int max_B, int max_S, real *params,
                      real *grads, CrnnError *err) {
    memset(m, 0, sizeof *m);
    if (model_config_check(cfg, err)) return -1;
    if (max_B < 1 || max_S < 1) return crnn_fail(err, "batch %d x %d is empty", max_B, max_S);
    m->cfg = *cfg;
    m->be = be;
    m->cell = cell_find(cfg->model_type);
    m->G = m->cell->gates;
    m->max_B = max_B;
    m->max_S = max_S;
    m->num_tensors = model_layout(cfg, m->tensors, &m->num_params);

    const int V = cfg->V, D = cfg->D;
    const size_t BS = (size_t)max_B * max_S;
    int failed = 0;
    m->lent = params != NULL;
    m->params = m->lent ? params : alloc_reals(m, m->num_params, &failed);
    m->grads = m->lent ? grads : alloc_reals(m, m->num_params, &failed);
    if (failed) {
        const size_t n = m->num_params; /* model_destroy clears m */
        model_destroy(m);
        return crnn_fail_nomem(err, "out of memory for %zu parameters on the %s backend; try a smaller -rnn_size or -num_layers",
                         n, be->name);
    }
    /* views, in model_layout's order */
    int k = 0;
    if (D > 0) {
        m->embedding = m->params + m->tensors[k].offset;
        m->d_embedding = m->grads + m->tensors[k++].offset;
    }
    for (int l = 0; l < cfg->L; l++) {
        LayerBuffers *lb = &m->layers[l];
        lb->W_x = m->params + m->tensors[k].offset, lb->dW_x = m->grads + m->tensors[k++].offset;
        lb->W_h = m->params + m->tensors[k].offset, lb->dW_h = m->grads + m->tensors[k++].offset;
        lb->b_x = m->params + m->tensors[k].offset, lb->db_x = m->grads + m->tensors[k++].offset;
        lb->b_h = m->params + m->tensors[k].offset, lb->db_h = m->grads + m->tensors[k++].offset;
        alloc_layer(m, lb, &failed);
    }
    m->W_dec = m->params + m->tensors[k].offset, m->dW_dec = m->grads + m->tensors[k++].offset;
    m->b_dec = m->params + m->tensors[k].offset, m->db_dec = m->grads + m->tensors[k++].offset;
    if (D > 0) {
        m->x_embed = alloc_reals(m, BS * D, &failed);
        m->dx_embed = alloc_reals(m, BS * D, &failed);
        if (BS > (size_t)V) m->proj = alloc_reals(m, (size_t)V * m->G * cfg->H, &failed);
    }
    m->logits = alloc_reals(m, BS * V, &failed);
    m->dc = alloc_reals(m, (size_t)max_B * cfg->H, &failed);
    m->x_dev = be->alloc(be, BS * sizeof(int32_t));
    m->y_dev = be->alloc(be, BS * sizeof(int32_t));
    m->x_host = malloc(BS * sizeof(int32_t));
    m->y_host = malloc(BS * sizeof(int32_t));
    if (failed || !m->x_dev || !m->y_dev || !m->x_host || !m->y_host) {
        model_destroy(m);
        return crnn_fail_nomem(err, "out of memory for the activations of a %d x %d batch (-batch_size x -seq_length); try smaller ones",
                         max_B, max_S);
    }
    return 0;
}

void model_destroy(Model *m) {
    Backend *be = m->be;
    if (!be) return;
    if (!m->lent) {
        be->free(be, m->params);
        be->free(be, m->grads);
    }
    for (int l = 0; l < m->cfg.L && l < CRNN_MAX_LAYERS; l++) {
        LayerBuffers *lb = &m->layers[l];
        be->free(be, lb->hs);
        be->free(be, lb->cs);
        be->free(be, lb->gates_h);
        be->free(be, lb->gates);
        be->free(be, lb->dhs);
        be->free(be, lb->drop);
        be->free(be, lb->state_h);
        be->free(be, lb->state_c);
    }
    be->free(be, m->x_embed);
    be->free(be, m->dx_embed);
    be->free(be, m->proj);
    be->free(be, m->logits);
    be->free(be, m->dc);
    be->free(be, m->x_dev);
    be->free(be, m->y_dev);
    free(m->x_host);
    free(m->y_host);
    memset(m, 0, sizeof *m);
}

/* Host float32 <-> backend real, through a temporary when real is not float. */
static void upload_floats(Model *m, real *dst, const float *src, size_t n) {
#ifdef CRNN_DOUBLE
    real *tmp = malloc(n * sizeof *tmp);
    for (size_t k = 0; k < n; k++) tmp[k] = src[k];
    m->be->to_device(m->be, dst, tmp, n * sizeof *tmp);
    free(tmp);
#else
    m->be->to_device(m->be, dst, src, n * sizeof *src);
#endif
}

static void download_floats(Model *m, float *dst, const real *src, size_t n) {
#ifdef CRNN_DOUBLE
    real *tmp = malloc(n * sizeof *tmp);
    m->be->to_host(m->be, tmp, src, n * sizeof *tmp);
    for (size_t k = 0; k < n; k++) dst[k] = (float)tmp[k];
    free(tmp);
#else
    m->be->to_host(m->be, dst, src, n * sizeof *src);
#endif
}

int model_init_params(Model *m, uint64_t seed) {
    const ModelConfig *c = &m->cfg;
    real *host = malloc(m->num_params * sizeof *host);
    if (!host) return -1;
    for (int t = 0; t < m->num_tensors; t++) {
        const ParamTensor *p = &m->tensors[t];
        real *w = host + p->offset;
        RngKey key = {.seed = seed, .purpose = RNG_INIT, .layer = (uint32_t)t};
        int is_bias = strstr(p->name, "/b_") != NULL;
        int is_decoder = strncmp(p->name, "params/decoder/", 15) == 0;
        int is_embedding = strcmp(p->name, "params/embedding") == 0;
        double std = 0;
        if (!is_embedding && !is_decoder && !is_bias) /* W_x, W_h: N(0, 1/sqrt(Din + H)) */
            std = 1.0 / sqrt((double)p->dims[0] + c->H);
        for (size_t k = 0; k < p->size; k++) {
            key.position = (uint32_t)k;
            if (is_embedding)
                w[k] = (real)rng_normal(&key);
            else if (is_decoder)
                w[k] = (real)((2 * rng_uniform(&key) - 1) / sqrt((double)c->H));
            else if (is_bias)
                w[k] = 0;
            else
                w[k] = (real)(std * rng_normal(&key));
        }
        /* the cell's forget block of b_x (lstm's f) starts at 1 */
        if (m->cell->forget_block >= 0 && strstr(p->name, "/b_x"))
            for (int j = m->cell->forget_block * c->H; j < (m->cell->forget_block + 1) * c->H; j++) w[j] = 1;
    }
    m->be->to_device(m->be, m->params, host, m->num_params * sizeof *host);
    free(host);
    return 0;
}

void model_get_params(Model *m, float *host) { download_floats(m, host, m->params, m->num_params); }
void model_set_params(Model *m, const float *host) { upload_floats(m, m->params, host, m->num_params); }

void model_get_state(Model *m, float *h, float *c, int B) {
    size_t n = (size_t)B * m->cfg.H;
    for (int l = 0; l < m->cfg.L; l++) {
        download_floats(m, h + l * n, m->layers[l].state_h, n);
        if (c) download_floats(m, c + l * n, m->layers[l].state_c, n);
    }
}

void model_set_state(Model *m, const float *h, const float *c, int B) {
    size_t n = (size_t)B * m->cfg.H;
    for (int l = 0; l < m->cfg.L; l++) {
        upload_floats(m, m->layers[l].state_h, h + l * n, n);
        if (c) upload_floats(m, m->layers[l].state_c, c + l * n, n);
    }
}

void model_reset_state(Model *m) {
    size_t bytes = (size_t)m->max_B * m->cfg.H * sizeof(real);
    for (int l = 0; l < m->cfg.L; l++) {
        m->be->zero(m->be, m->layers[l].state_h, bytes);
        m->be->zero(m->be, m->layers[l].state_c, bytes);
    }
}

void model_set_dropout(Model *m, int on, uint64_t seed, uint64_t iteration, int first_stream) {
    m->dropout_on = on && m->cfg.dropout > 0;
    m->dropout_seed = seed;
    m->dropout_iteration = iteration;
    m->dropout_first_stream = first_stream;
}

/* Layer l's output as the next layer (or the decoder) sees it: after dropout when it is on. */
static const real *layer_output(const Model *m, int l) {
    const LayerBuffers *lb = &m->layers[l];
    return m->dropout_on ? lb->drop : lb->hs + (size_t)m->B * m->cfg.H;
}

/* Applies layer l's dropout mask (of the current iteration and streams) to x [S, B, H]. */
static void apply_dropout(Model *m, real *out, const real *x, int l) {
    m->be->dropout(m->be, out, x, m->S, m->B, m->cfg.H, (real)m->cfg.dropout, m->dropout_seed,
                   m->dropout_iteration, m->dropout_first_stream, l);
}

/* Layer lb's recurrence over the last forward's batch, for the backend's cell table. */
static CellSeq cell_seq(Model *m, LayerBuffers *lb) {
    return (CellSeq){.gates = lb->gates, .gates_h = lb->gates_h, .W_h = lb->W_h, .b_h = lb->b_h,
                     .hs = lb->hs, .cs = lb->cs, .dhs = lb->dhs, .dc = m->dc,
                     .S = m->S, .B = m->B, .H = m->cfg.H};
}

/* Layer l's forward over the batch (m->B x m->S) from its input in [S, B, din]. */
static void layer_forward(Model *m, int l, const real *in, int din) {
    Backend *be = m->be;
    const CellSpec *cell = m->cell;
    LayerBuffers *lb = &m->layers[l];
    const int H = m->cfg.H, G = m->G, S = m->S, BS = m->B * S;
    const size_t BH = (size_t)m->B * H;
    const real *b_h = cell->recurrent_bias_apart ? NULL : lb->b_h;
    be->copy(be, lb->hs, lb->state_h, BH * sizeof(real));
    if (l == 0 && m->folded) { /* row x of P = E W_x + b */
        const int V = m->cfg.V;
        be->rows_set_bias(be, m->proj, lb->b_x, b_h, V, G * H);
        be->gemm(be, 0, 0, V, G * H, din, 1, m->embedding, din, lb->W_x, G * H, 1, m->proj, G * H);
        be->embedding_forward(be, lb->gates, m->x_dev, m->proj, BS, G * H);
    } else {
        be->rows_set_bias(be, lb->gates, lb->b_x, b_h, BS, G * H);
        if (l == 0 && m->cfg.D == 0) /* one-hot: x W_x is row x of W_x */
            be->embedding_forward_add(be, lb->gates, m->x_dev, lb->W_x, BS, G * H);
        else
            be->gemm(be, 0, 0, BS, G * H, din, 1, in, din, lb->W_x, G * H, 1, lb->gates, G * H);
    }
    if (cell->has_cell_state) be->copy(be, lb->cs, lb->state_c, BH * sizeof(real));
    const CellSeq q = cell_seq(m, lb);
    backend_cell_forward(be, cell->id, &q);
    if (cell->has_cell_state) be->copy(be, lb->state_c, lb->cs + S * BH, BH * sizeof(real));
    be->copy(be, lb->state_h, lb->hs + S * BH, BH * sizeof(real));
    if (m->dropout_on) apply_dropout(m, lb->drop, lb->hs + BH, l);
}

double model_forward(Model *m, const int32_t *x, const int32_t *y, int B, int S) {
    Backend *be = m->be;
    const int V = m->cfg.V, D = m->cfg.D, H = m->cfg.H, L = m->cfg.L;
    const int BS = B * S;
    m->B = B;
    m->S = S;
    /* stream-major [B, S] -> time-major [S, B] */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < S; t++) m->x_host[t * B + b] = x[b * S + t];
    be->to_device(be, m->x_dev, m->x_host, (size_t)BS * sizeof(int32_t));
    m->folded = m->proj && BS > V;
    if (D > 0 && !m->folded) be->embedding_forward(be, m->x_embed, m->x_dev, m->embedding, BS, D);

    const real *in = m->x_embed;
    int din = D;
    for (int l = 0; l < L; l++) {
        layer_forward(m, l, in, din);
        in = layer_output(m, l);
        din = H;
    }
    be->rows_set_bias(be, m->logits, m->b_dec, NULL, BS, V);
    be->gemm(be, 0, 0, BS, V, H, 1, in, H, m->W_dec, V, 1, m->logits, V);
    if (!y) return 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < S; t++) m->y_host[t * B + b] = y[b * S + t];
    be->to_device(be, m->y_dev, m->y_host, (size_t)BS * sizeof(int32_t));
    /* the loss and, in place, d(mean loss)/d(logits) for backward */
    double total = be->softmax_xent(be, m->logits, m->y_dev, m->logits, BS, V, (real)(1.0 / BS));
    return total / BS;
}

/* Layer l's backward: dhs holds the gradient on its output (after dropout); fills the layer's
 * gradients and, below it, the gradient on its input (the layer below's dhs, or dx_embed). */
static void layer_backward(Model *m, int l, GradReadyFn ready, void *ctx) {
    Backend *be = m->be;
    const CellSpec *cell = m->cell;
    LayerBuffers *lb = &m->layers[l];
    const int V = m->cfg.V, D = m->cfg.D, H = m->cfg.H, G = m->G, BS = m->B * m->S;
    const real *in = l == 0 ? m->x_embed : layer_output(m, l - 1);
    const int din = l > 0 ? H : D > 0 ? D : V;
    /* dhs holds the gradient on the output after dropout: through the mask to before it */
    if (m->dropout_on) apply_dropout(m, lb->dhs, lb->dhs, l);
    const CellSeq q = cell_seq(m, lb);
    backend_cell_backward(be, cell->id, &q);
    const real *dA = lb->gates; /* [S*B, G*H] gradients of the input pre-activations */
    /* and of the recurrent products h W_h + b_h: the same unless the recurrent bias stays apart
     * (gru, whose n block differs) */
    const real *dA_h = cell->recurrent_bias_apart ? lb->gates_h : dA;
    be->gemm(be, 1, 0, H, G * H, BS, 1, lb->hs, H, dA_h, G * H, 0, lb->dW_h, G * H);
    const int folded = l == 0 && m->folded;
    if (folded) { /* dP: dA's rows added up by token; dW_x = E^T dP, db_x its column sums */
        be->zero(be, m->proj, (size_t)V * G * H * sizeof(real));
        be->embedding_backward(be, m->proj, dA, m->x_dev, BS, G * H);
        be->gemm(be, 1, 0, D, G * H, V, 1, m->embedding, D, m->proj, G * H, 0, lb->dW_x, G * H);
        be->col_sum(be, lb->db_x, m->proj, V, G * H);
    } else if (l == 0 && D == 0) { /* one-hot: dW_x[x] += dA rows */
        be->zero(be, lb->dW_x, (size_t)din * G * H * sizeof(real));
        be->embedding_backward(be, lb->dW_x, dA, m->x_dev, BS, G * H);
    } else {
        be->gemm(be, 1, 0, din, G * H, BS, 1, in, din, dA, G * H, 0, lb->dW_x, G * H);
    }
    if (!folded) be->col_sum(be, lb->db_x, dA, BS, G * H);
    if (cell->recurrent_bias_apart)
        be->col_sum(be, lb->db_h, dA_h, BS, G * H);
    else
        be->copy(be, lb->db_h, lb->db_x, (size_t)G * H * sizeof(real));
    if (ready) ready(ctx, lb->dW_x, (size_t)din * G * H + (size_t)H * G * H + 2 * (size_t)G * H);
    if (l == 0 && D == 0) return; /* one-hot input: nothing below to differentiate */
    if (folded) { /* dE = dP W_x^T */
        be->gemm(be, 0, 1, V, D, G * H, 1, m->proj, G * H, lb->W_x, G * H, 0, m->d_embedding, D);
        return;
    }
    real *din_grad = l == 0 ? m->dx_embed : m->layers[l - 1].dhs;
    be->gemm(be, 0, 1, BS, din, G * H, 1, dA, G * H, lb->W_x, G * H, 0, din_grad, din);
}

void model_backward(Model *m, GradReadyFn ready, void *ctx) {
    Backend *be = m->be;
    const int V = m->cfg.V, D = m->cfg.D, H = m->cfg.H, L = m->cfg.L;
    const int BS = m->B * m->S;
    const real *dlogits = m->logits;
    LayerBuffers *top = &m->layers[L - 1];

    be->gemm(be, 1, 0, H, V, BS, 1, layer_output(m, L - 1), H, dlogits, V, 0, m->dW_dec, V);
    be->col_sum(be, m->db_dec, dlogits, BS, V);
    if (ready) ready(ctx, m->dW_dec, (size_t)H * V + V); /* W_dec and b_dec are adjacent */
    be->gemm(be, 0, 1, BS, H, V, 1, dlogits, V, m->W_dec, V, 0, top->dhs, H);
    for (int l = L - 1; l >= 0; l--) layer_backward(m, l, ready, ctx);
    if (D == 0) return;
    if (!m->folded) {
        be->zero(be, m->d_embedding, (size_t)V * D * sizeof(real));
        be->embedding_backward(be, m->d_embedding, m->dx_embed, m->x_dev, BS, D);
    }
    if (ready) ready(ctx, m->d_embedding, (size_t)V * D);
}

const real *model_logits(const Model *m) { return m->logits; }
