/* The model's parameter tensors (layout.h): names, shapes and places in the flat buffer. Pure
 * functions, shared by the model, the checkpoint reader and writer, and the tests. */
#include "crnn/layout.h"

#include <stdio.h>
#include <string.h>

#include "crnn/cell.h"

int model_config_check(const ModelConfig *cfg, CrnnError *err) {
    char names[64];
    if (!cell_find(cfg->model_type))
        return crnn_fail(err, "-model_type must be %s, got '%s'", cell_names(names, sizeof names, "or"),
                         cfg->model_type);
    if (cfg->V < 1) return crnn_fail(err, "the vocabulary is empty");
    if (cfg->D < 0)
        return crnn_fail(err, "-wordvec_size must be at least 0 (0: one-hot input), got %d", cfg->D);
    if (cfg->H < 1) return crnn_fail(err, "-rnn_size must be at least 1, got %d", cfg->H);
    if (cfg->L < 1 || cfg->L > CRNN_MAX_LAYERS)
        return crnn_fail(err, "-num_layers must be between 1 and %d, got %d", CRNN_MAX_LAYERS,
                         cfg->L);
    if (!(cfg->dropout >= 0 && cfg->dropout < 1))
        return crnn_fail(err, "-dropout must be in [0, 1), got %g", cfg->dropout);
    const int din0 = cfg->D > 0 ? cfg->D : cfg->V; /* layer 0's input width, V when one-hot */
    if ((double)cfg->H * 4 * (cfg->H + (din0 > cfg->H ? din0 : cfg->H)) > 2e9 ||
        (double)cfg->V * (cfg->D + cfg->H) > 2e9)
        return crnn_fail(err, "the model is too large (-rnn_size %d, -wordvec_size %d, vocabulary %d)",
                         cfg->H, cfg->D, cfg->V);
    return 0;
}

static void add(ParamTensor *t, int *n, size_t *off, const char *name, int ndim, int64_t d0,
                int64_t d1) {
    ParamTensor *p = &t[(*n)++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->offset = *off;
    p->ndim = ndim;
    p->dims[0] = d0;
    p->dims[1] = ndim == 2 ? d1 : 1;
    p->size = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1);
    *off += p->size;
}

int model_layout(const ModelConfig *cfg, ParamTensor *tensors, size_t *num_params) {
    const CellSpec *cell = cell_find(cfg->model_type);
    int n = 0, G = cell ? cell->gates : 0;
    size_t off = 0;
    char name[48];
    /* one-hot input (D = 0): no embedding, and layer 0's W_x is [V, G*H] */
    if (cfg->D > 0) add(tensors, &n, &off, "params/embedding", 2, cfg->V, cfg->D);
    for (int l = 0; l < cfg->L; l++) {
        int din = l > 0 ? cfg->H : cfg->D > 0 ? cfg->D : cfg->V;
        snprintf(name, sizeof name, "params/rnn/%d/W_x", l);
        add(tensors, &n, &off, name, 2, din, (int64_t)G * cfg->H);
        snprintf(name, sizeof name, "params/rnn/%d/W_h", l);
        add(tensors, &n, &off, name, 2, cfg->H, (int64_t)G * cfg->H);
        snprintf(name, sizeof name, "params/rnn/%d/b_x", l);
        add(tensors, &n, &off, name, 1, (int64_t)G * cfg->H, 0);
        snprintf(name, sizeof name, "params/rnn/%d/b_h", l);
        add(tensors, &n, &off, name, 1, (int64_t)G * cfg->H, 0);
    }
    add(tensors, &n, &off, "params/decoder/W", 2, cfg->H, cfg->V);
    add(tensors, &n, &off, "params/decoder/b", 1, cfg->V, 0);
    if (num_params) *num_params = off;
    return n;
}
