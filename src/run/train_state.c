/* The run's state beyond the model's weights: the loss history, loading the start (a fresh
 * initialisation, -init_from, or a whole -resume), and the distributed validation and checkpoint
 * (every rank's hidden states and share of the validation to rank 0, which writes). */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crnn/checkpoint.h"
#include "crnn/evaluate.h"
#include "train_internal.h"

int history_add_train(History *h, float loss) {
    if (h->n_train == h->cap_train) {
        int64_t cap = h->cap_train ? 2 * h->cap_train : 1024;
        float *p = realloc(h->train_loss, (size_t)cap * sizeof *p);
        if (!p) return -1;
        h->train_loss = p;
        h->cap_train = cap;
    }
    h->train_loss[h->n_train++] = loss;
    return 0;
}

int history_add_val(History *h, float loss, int64_t it) {
    if (h->n_val == h->cap_val) {
        int64_t cap = h->cap_val ? 2 * h->cap_val : 64;
        float *p = realloc(h->val_loss, (size_t)cap * sizeof *p);
        if (!p) return -1;
        h->val_loss = p;
        int64_t *q = realloc(h->val_iteration, (size_t)cap * sizeof *q);
        if (!q) return -1;
        h->val_iteration = q;
        h->cap_val = cap;
    }
    h->val_loss[h->n_val] = loss;
    h->val_iteration[h->n_val++] = it;
    return 0;
}

void history_free(History *h) {
    free(h->train_loss);
    free(h->val_loss);
    free(h->val_iteration);
}

/* Validation, every rank: the global view of /val (P*B streams, fewer when the split is short)
 * from zero state, carried across batches; this rank evaluates its share of the streams, and
 * *sum is its streams' part of the loss: the mean over batches of each batch's mean per-token
 * loss over this rank's streams, times its streams. Rank 0 adds the ranks' sums and divides by
 * the streams in all. The training state is saved and put back. */
static int validate(Run *r, double *sum, CrnnError *err) {
    Model *m = &r->model;
    int B = r->train.B;
    size_t ns = (size_t)m->cfg.L * B * m->cfg.H;
    float *h = malloc(ns * sizeof *h), *c = malloc(ns * sizeof *c);
    if (!h || !c) {
        free(h);
        free(c);
        return crnn_fail(err, "out of memory saving the hidden state for validation");
    }
    model_get_state(m, h, c, B);
    *sum = evaluate_batches(m, &r->val, r->x, r->y, r->s.val_max_batches) * (double)r->val.B;
    model_set_state(m, h, c, B);
    free(h);
    free(c);
    return backend_check(m->be, err); /* a device's failure, not a NaN loss */
}

static ConfigEntry *config_from_flags(FlagSet *flags, int *n) {
    ConfigEntry *cfg = calloc((size_t)flags->count, sizeof *cfg);
    if (!cfg) return NULL;
    int k = 0;
    for (int i = 0; i < flags->count; i++) {
        const Flag *f = &flags->flags[i];
        ConfigEntry *e = &cfg[k++];
        snprintf(e->name, sizeof e->name, "%s", f->name);
        switch (f->type) {
        case FLAG_INT:
        case FLAG_SWITCH: e->type = CONFIG_INT, e->i = f->i; break;
        case FLAG_REAL: e->type = CONFIG_REAL, e->d = f->d; break;
        case FLAG_STRING: e->type = CONFIG_STRING, e->s = f->s; break;
        }
    }
    *n = k;
    return cfg;
}

/* Whether the newest validation is of this iteration and the lowest so far. */
static int newest_val_is_best(const Run *r) {
    const History *h = &r->hist;
    if (h->n_val == 0 || h->val_iteration[h->n_val - 1] != r->iteration) return 0;
    for (int64_t k = 0; k + 1 < h->n_val; k++)
        if (h->val_loss[k] <= h->val_loss[h->n_val - 1]) return 0;
    return 1;
}

/* Writes ck (its values on the host) as the checkpoint of this iteration, its metrics sidecar,
 * and the best-model link; then prunes to -keep_last. */
static int write_checkpoint_files(Run *r, const Checkpoint *ck, CrnnError *err) {
    char path[PATH_MAX + 64];
    const double val = r->hist.n_val > 0 && r->hist.val_iteration[r->hist.n_val - 1] == r->iteration
                           ? (double)r->hist.val_loss[r->hist.n_val - 1] : NAN;
    train_checkpoint_path(&r->s, r->iteration, train_epoch(r), val, path, sizeof path);
    if (checkpoint_write(path, ck, err)) return -1;
    snprintf(r->last_checkpoint, sizeof r->last_checkpoint, "%s", path);
    if (!r->quiet) report(r->rep, REPORT_INFO, "wrote %s", path);
    char json[PATH_MAX + 8];
    snprintf(json, sizeof json, "%s_%" PRId64 ".json", r->s.checkpoint_name, r->iteration);
    int rc = metrics_write_sidecar(json, r->s.flags, r->iteration, r->hist.train_loss, r->hist.n_train,
                                   r->hist.val_loss, r->hist.val_iteration, r->hist.n_val, r->step_times,
                                   r->n_steps, err);
    if (rc == 0 && newest_val_is_best(r)) rc = train_link_best(r->s.checkpoint_name, path, err);
    train_remove_old_checkpoints(r->s.checkpoint_name, r->s.keep_last);
    return rc;
}

/* Rank 0: the checkpoint, with every stream's hidden state ([L, P*B, H], gathered), taken at
 * time_s (its elapsed_seconds). */
static int write_checkpoint(Run *r, double time_s, float *hidden_h, float *hidden_c, CrnnError *err) {
    Model *m = &r->model;
    Checkpoint ck;
    memset(&ck, 0, sizeof ck);
    ck.model = m->cfg;
    ck.iteration = r->iteration;
    ck.epoch = train_epoch(r);
    ck.elapsed_seconds = time_s;
    ck.config = config_from_flags(r->s.flags, &ck.num_config);
    ck.vocab = r->vocab;
    ck.num_params = m->num_params;
    /* A backend whose buffers are host memory holding floats (the CPU's) lends them to the
     * writer; another is copied to the host first. At 2x512 the copies would be 40 MB. */
    const int lend = r->be->host_memory && sizeof(real) == sizeof(float);
    ck.params = lend ? (float *)m->params : malloc(m->num_params * sizeof(float));
    ck.has_state = 1;
    snprintf(ck.optim_name, sizeof ck.optim_name, "%s", r->opt.name);
    ck.optim_step = r->opt.step;
    ck.learning_rate = r->opt.learning_rate;
    if (lend) {
        ck.optim_m = (float *)r->opt.m;
        ck.optim_v = (float *)r->opt.v;
    } else {
        ck.optim_m = r->opt.m ? malloc(m->num_params * sizeof(float)) : NULL;
        ck.optim_v = malloc(m->num_params * sizeof(float));
    }
    uint64_t rng[1] = {r->seed};
    ck.rng = rng;
    ck.num_rng = 1;
    ck.streams = r->train.N;
    ck.batch_index = r->batch_index;
    ck.epoch_index = r->epoch_index;
    ck.hidden_h = hidden_h;
    ck.hidden_c = r->model.cell->has_cell_state ? hidden_c : NULL; /* docs/FORMATS.md: /c for cells with one */
    ck.train_loss = r->hist.train_loss;
    ck.num_train_loss = r->hist.n_train;
    ck.val_loss = r->hist.val_loss;
    ck.val_iteration = r->hist.val_iteration;
    ck.num_val = r->hist.n_val;
    int rc = -1;
    if (!ck.config || !ck.params || (r->opt.m && !ck.optim_m) || !ck.optim_v) {
        crnn_fail(err, "out of memory preparing a checkpoint");
    } else {
        if (!lend) {
            model_get_params(m, ck.params);
            if (r->opt.m) r->be->to_host(r->be, ck.optim_m, r->opt.m, m->num_params * sizeof(float));
            r->be->to_host(r->be, ck.optim_v, r->opt.v, m->num_params * sizeof(float));
        }
        if (backend_check(r->be, err) == 0) /* nothing a failed device copied is written */
            rc = write_checkpoint_files(r, &ck, err);
    }
    free(ck.config);
    if (!lend) {
        free(ck.params);
        free(ck.optim_m);
        free(ck.optim_v);
    }
    return rc;
}

/* Rank 0: the validation's outcome (if there is a validation split), then the checkpoint. vl is
 * the validation loss (every rank's share added), found in val_seconds; started: when the
 * gathering for this checkpoint began (the metrics' checkpoint record times the gather and the
 * write, not the validation). */
static int rank0_validate_and_write(Run *r, double vl, double val_seconds, double started, float *hidden_h,
                                    float *hidden_c, CrnnError *err) {
    if (r->have_val) {
        if (!isfinite(vl))
            return crnn_fail(err, "the validation loss is %s at iteration %" PRId64 "; %s%s%stry a lower -learning_rate (now %g) or a -grad_clip (now %g)",
                             train_nonfinite_name(vl), r->iteration,
                             r->last_checkpoint[0] ? "the last good checkpoint is " : "", r->last_checkpoint,
                             r->last_checkpoint[0] ? "; " : "", r->opt.learning_rate, r->s.grad_clip);
        if (history_add_val(&r->hist, (float)vl, r->iteration))
            return crnn_fail_nomem(err, "out of memory for the validation loss history");
        metrics_val(&r->metrics, train_time_s(r), r->iteration, train_epoch(r), vl, evaluate_count(&r->val, r->s.val_max_batches),
                    r->val.count, val_seconds);
        train_report_validation(r, vl);
        r->last_val_iteration = r->iteration;
    }
    /* -sample_every: after every N-th validation (checkpoint, without a validation split); its
     * time is left out of the checkpoint record's seconds */
    double sample_seconds = 0;
    const int64_t count = r->have_val ? r->hist.n_val : ++r->sample_checkpoints;
    if (r->s.sample_every > 0 && count % r->s.sample_every == 0) {
        const double t = crnn_now_seconds();
        if (train_sample(r, err)) return -1;
        sample_seconds = crnn_now_seconds() - t;
    }
    /* the checkpoint's record says when it was taken, its elapsed_seconds, so that the records
     * of a run resumed from it continue from there without going back */
    const double taken = train_time_s(r);
    if (write_checkpoint(r, taken, hidden_h, hidden_c, err)) return -1;
    metrics_checkpoint(&r->metrics, taken, r->iteration, crnn_now_seconds() - started - val_seconds - sample_seconds);
    return 0;
}

/* Every rank: the hidden states go to rank 0, which validates and writes; then every rank learns
 * whether that worked, so that all go on or all stop. */
int train_validate_and_checkpoint(Run *r, CrnnError *err) {
    const double started = crnn_now_seconds();
    Model *m = &r->model;
    Comm *c = r->comm;
    const int L = m->cfg.L, H = m->cfg.H, B = r->train.B, N = r->train.N;
    const size_t mine = (size_t)B * H, all = (size_t)N * H;
    float *h = malloc((size_t)L * mine * sizeof *h), *cc = malloc((size_t)L * mine * sizeof *cc);
    float *all_h = NULL, *all_c = NULL;
    if (c->rank == 0) {
        all_h = malloc((size_t)L * all * sizeof *all_h);
        all_c = malloc((size_t)L * all * sizeof *all_c);
    }
    int ok = h && cc && (c->rank != 0 || (all_h && all_c));
    if (!ok) {
        crnn_fail(err, "rank %d: out of memory gathering the hidden states for a checkpoint", c->rank);
    } else { /* a failed device's states are not gathered */
        model_get_state(m, h, cc, B);
        ok = backend_check(m->be, err) == 0;
    }
    int rc = 0;
    comm_timed(c, r->iteration, "gathering the hidden states");
    if (comm_all_ok(c, ok, "could not gather its hidden states for the checkpoint", err)) {
        rc = -1;
    } else {
        for (int l = 0; l < L && rc == 0; l++)
            if (c->gather(c, h + l * mine, mine * sizeof *h, all_h ? all_h + l * all : NULL, 0, err) ||
                c->gather(c, cc + l * mine, mine * sizeof *cc, all_c ? all_c + l * all : NULL, 0, err))
                rc = -1;
        /* every rank validates its share of the streams; rank 0 adds the shares */
        double vl = 0, val_start = crnn_now_seconds();
        if (rc == 0 && r->have_val) {
            double mine_sum = 0;
            int vok = validate(r, &mine_sum, err) == 0;
            comm_timed(c, r->iteration, "gathering the validation losses");
            if (evaluate_add_shares(c, vok, mine_sum, r->val.N, &vl, err)) rc = -1;
        }
        if (rc == 0) {
            /* rank 0 writes; the others wait for it as long as it takes */
            if (c->rank != 0) comm_untimed(c);
            const double val_seconds = crnn_now_seconds() - val_start;
            int64_t status =
                c->rank == 0 ? (rank0_validate_and_write(r, vl, val_seconds, started, all_h, all_c, err) ? 1 : 0) : 0;
            if (c->rank == 0) comm_timed(c, r->iteration, "sending the checkpoint's outcome");
            if (c->broadcast(c, &status, sizeof status, 0, err))
                rc = -1;
            else if (status)
                rc = c->rank == 0 ? -1
                                  : crnn_fail(err, "rank %d: rank 0 could not validate or write the checkpoint (its message says why)",
                                              c->rank);
        }
    }
    free(h);
    free(cc);
    free(all_h);
    free(all_c);
    return rc;
}

/* Resume: the position in the epoch and the hidden states. With the same global batch, this
 * rank's streams first .. first+B-1 of every layer's [P*B, H]; with another, the same fraction of
 * the epoch and fresh states. */
static int restore_hidden(Run *r, const Checkpoint *ck, CrnnError *err) {
    Model *m = &r->model;
    if (ck->streams == r->train.N) {
        r->batch_index = ck->batch_index;
        /* this rank's streams first .. first+B-1 of every layer's [P*B, H] */
        const int L = m->cfg.L, H = m->cfg.H, B = r->train.B;
        float *h = malloc((size_t)L * B * H * sizeof *h), *c = malloc((size_t)L * B * H * sizeof *c);
        if (!h || !c) {
            free(h);
            free(c);
            return crnn_fail(err, "out of memory restoring the hidden states");
        }
        for (int l = 0; l < L; l++) {
            size_t from = ((size_t)l * ck->streams + r->train.first) * H;
            memcpy(h + (size_t)l * B * H, ck->hidden_h + from, (size_t)B * H * sizeof *h);
            if (ck->hidden_c) /* cells with a cell state only */
                memcpy(c + (size_t)l * B * H, ck->hidden_c + from, (size_t)B * H * sizeof *c);
            else
                memset(c + (size_t)l * B * H, 0, (size_t)B * H * sizeof *c);
        }
        model_set_state(m, h, c, B);
        free(h);
        free(c);
    } else {
        /* another global batch: the same fraction of the epoch, fresh hidden states */
        double frac = ck->epoch - (double)ck->epoch_index;
        if (frac < 0) frac = 0;
        r->batch_index = (int64_t)floor(frac * (double)r->train.count);
        if (r->batch_index >= r->train.count) r->batch_index = r->train.count - 1;
        if (!r->quiet)
            report(r->rep, REPORT_NOTE, "the checkpoint was trained on %d streams and this run has %d (-batch_size x ranks): hidden states start from zero",
                   ck->streams, r->train.N);
    }
    return 0;
}

/* Resume: the optimizer, the generator, the clock, the position in the data, the hidden states
 * (this rank's streams, when the global batch is the same) and the histories of ck. */
static int resume_state(Run *r, const Checkpoint *ck, const char *path, CrnnError *err) {
    Model *m = &r->model;
    if (strcmp(ck->optim_name, r->opt.name) != 0) {
        return crnn_fail_usage(err, "%s was trained with -optimizer %s; resume with the same optimizer", path,
                               ck->optim_name);
    }
    if (r->writes_params) { /* -allreduce shared: rank 0 for all */
        if (r->opt.m) r->be->to_device(r->be, r->opt.m, ck->optim_m, m->num_params * sizeof(float));
        r->be->to_device(r->be, r->opt.v, ck->optim_v, m->num_params * sizeof(float));
    }
    r->opt.step = ck->optim_step;
    if (r->s.learning_rate_given) {
        if (!r->quiet && r->s.learning_rate != ck->learning_rate)
            report(r->rep, REPORT_NOTE, "learning rate set to %g (the checkpoint's was %g)", r->s.learning_rate,
                   ck->learning_rate);
        r->opt.learning_rate = r->s.learning_rate;
    } else {
        r->opt.learning_rate = ck->learning_rate;
    }
    if (ck->num_rng >= 1) r->seed = ck->rng[0];
    r->elapsed_base = ck->elapsed_seconds; /* the run's clock goes on (0 when not recorded) */
    r->iteration = ck->iteration;
    r->epoch_index = ck->epoch_index;
    if (restore_hidden(r, ck, err)) return -1;
    /* histories */
    for (int64_t k = 0; k < ck->num_train_loss; k++)
        if (history_add_train(&r->hist, ck->train_loss[k]))
            return crnn_fail_nomem(err, "out of memory restoring the loss history of %s", path);
    for (int64_t k = 0; k < ck->num_val; k++)
        if (history_add_val(&r->hist, ck->val_loss[k], ck->val_iteration[k]))
            return crnn_fail_nomem(err, "out of memory restoring the loss history of %s", path);
    if (!r->quiet) report(r->rep, REPORT_INFO, "resuming from %s at iteration %" PRId64, path, r->iteration);
    return 0;
}

/* The start: a fresh initialisation; -init_from's weights (and its iteration count with
 * -reset_iterations 0); or -resume's whole state. Its notes are rank 0's (r->quiet). */
int train_load_start(Run *r, CrnnError *err) {
    const char *resume_path = r->s.resume_path;
    Model *m = &r->model;
    const char *path = resume_path[0] ? resume_path : r->s.init_from;
    if (!*path) {
        if (r->writes_params && model_init_params(m, r->seed))
            return crnn_fail_nomem(err, "out of memory initialising the %zu parameters; try a smaller -rnn_size or -num_layers",
                                   m->num_params);
        return 0;
    }
    Checkpoint ck;
    int want_state = resume_path[0] != '\0';
    if (checkpoint_read(path, &ck, want_state, err)) return -1;
    int rc = -1;
    if (!vocab_equal(&ck.vocab, &r->vocab)) {
        crnn_fail_usage(err, "the vocabulary of %s (%d tokens) differs from %s (%d tokens); use the JSON of the data the checkpoint was trained on, or encode this text with that JSON's vocabulary: crnn-preprocess --input_txt TEXT --input_json THAT.json --output_h5 NEW.h5",
                  path, ck.vocab.size, r->s.input_json, r->vocab.size);
        goto done;
    }
    if (ck.model.D != m->cfg.D || ck.model.H != m->cfg.H || ck.model.L != m->cfg.L ||
        strcmp(ck.model.model_type, m->cfg.model_type) != 0) {
        crnn_fail_usage(err, "%s holds a %s %d x %d model with -wordvec_size %d; give the same -model_type, -num_layers, -rnn_size and -wordvec_size",
                  path, ck.model.model_type, ck.model.L, ck.model.H, ck.model.D);
        goto done;
    }
    if (r->writes_params) model_set_params(m, ck.params);
    if (!want_state) {
        if (!r->s.reset_iterations) {
            r->iteration = ck.iteration;
            /* position from the iteration count */
            r->epoch_index = r->iteration / r->train.count;
            r->batch_index = r->iteration % r->train.count;
        }
        rc = 0;
        goto done;
    }
    rc = resume_state(r, &ck, path, err);
done:
    checkpoint_free(&ck);
    return rc;
}
