/* The training loop (docs/FORMATS.md sections 2, 4 and 5): torch-rnn's schedule and output, with
 * exact resume. One process per rank; rank 0 validates, reports and writes checkpoints.
 * train_run reads as: setup, then a loop of train_step, its progress, maybe a validation and
 * checkpoint, maybe a stop, then teardown. The other parts are train_settings.c, train_files.c,
 * train_state.c and train_report.c (src/run/train_internal.h). */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crnn/evaluate.h"
#include "train_internal.h"

_Static_assert(sizeof(real) == sizeof(float), "the training loop is built in float32");

static volatile sig_atomic_t stop_signal = 0;

/* The first signal asks for a checkpoint at the next step boundary; a second one of the same
 * kind (Ctrl-C pressed again) ends the process at once, as without a handler. */
static void on_signal(int sig) {
    if (stop_signal == sig) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}

void train_catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

double train_time_s(const Run *r) { return r->elapsed_base + (crnn_now_seconds() - r->clock_start); }

double train_epoch(const Run *r) {
    return (double)r->epoch_index + (double)r->batch_index / (double)r->train.count;
}

/* -allreduce overlap: each gradient bucket's reduction starts as soon as backward finishes it. */
typedef struct Buckets {
    Comm *comm;
    CrnnError *err;
    int failed;
} Buckets;

static void bucket_ready(void *ctx, real *grads, size_t n) {
    Buckets *b = ctx;
    if (!b->failed && b->comm->allreduce_mean_start(b->comm, grads, n, b->err)) b->failed = 1;
}

/* FNV-1a over the parameters' bytes: equal on every rank, or the ranks would train apart. */
static uint64_t params_checksum(Model *m) {
    float *host = malloc(m->num_params * sizeof *host);
    if (!host) return 0;
    model_get_params(m, host);
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)host;
    for (size_t k = 0; k < m->num_params * sizeof *host; k++) h = (h ^ p[k]) * 1099511628211ull;
    free(host);
    return h;
}

/* ---- setup ----------------------------------------------------------------------------- */

/* The vocabulary, this rank's streams of the global P*B, and its share of the validation view:
 * P*B streams (fewer when the split is short), shared among the ranks as evenly as they go, each
 * rank's streams contiguous (the first ranks' when there are fewer streams than ranks). */
static int load_data(Run *r, CrnnError *err) {
    Comm *comm = r->comm;
    const int P = comm->size, B = r->s.B, S = r->s.S;
    if (vocab_read_json(&r->vocab, r->s.input_json, err)) return -1;
    r->s.model.V = r->vocab.size;
    if (model_config_check(&r->s.model, err)) return -1;
    int shrunk = 0;
    if (dataset_load_shard(&r->train, r->s.input_h5, "train", P * B, comm->rank * B, B, S, 0, r->vocab.size, &shrunk,
                           comm->mpi_comm, err))
        return -1;
    int64_t num_val = 0;
    if (dataset_split_size(r->s.input_h5, "val", &num_val, err)) return -1;
    if (num_val < S + 1) {
        if (!r->quiet)
            report(r->rep, REPORT_NOTE, "the validation split has %" PRId64 " tokens, fewer than -seq_length + 1 = %d: no validation loss",
                   num_val, S + 1);
        return 0;
    }
    int64_t N = (int64_t)P * B, fit = (num_val - 1) / S;
    if (N > fit) {
        N = fit;
        if (!r->quiet)
            report(r->rep, REPORT_NOTE, "the validation split (%" PRId64 " tokens) holds only %" PRId64 " streams of %d; validating on %" PRId64,
                   num_val, N, P * B, N);
    }
    int first, mine;
    evaluate_share(N, comm, &first, &mine);
    if (dataset_load_shard(&r->val, r->s.input_h5, "val", (int)N, first, mine, S, 0, r->vocab.size, &shrunk,
                           comm->mpi_comm, err))
        return -1;
    r->have_val = 1;
    return 0;
}

/* The model (for the larger of a training and a validation batch), its optimizer, the batch
 * buffers, the start (train_load_start), and rank 0's model for -sample_every (one stream, one
 * step at a time, no dropout). */
static int make_model(Run *r, CrnnError *err) {
    const int S = r->s.S, val_B = r->have_val ? r->val.B : 0;
    const int max_B = r->s.B > val_B ? r->s.B : val_B;
    ParamTensor tensors[CRNN_MAX_TENSORS];
    size_t n = 0;
    model_layout(&r->s.model, tensors, &n);
    if (train_shared_setup(r, n, err)) return -1;
    const Shared *sh = &r->shared;
    if (model_create_lent(&r->model, &r->s.model, r->be, max_B, S, sh->on ? sh->params : NULL,
                          sh->on ? train_shared_grads(r) : NULL, err))
        return -1;
    if (optim_create_lent(&r->opt, r->be, r->s.optimizer, r->model.num_params, r->s.learning_rate, r->s.decay_rate,
                          sh->on ? sh->m : NULL, sh->on ? sh->v : NULL, err))
        return -1;
    r->x = malloc((size_t)max_B * S * sizeof(int32_t));
    r->y = malloc((size_t)max_B * S * sizeof(int32_t));
    if (!r->x || !r->y) return crnn_fail(err, "out of memory");
    if (train_load_start(r, err)) {
        if (sh->on) comm_all_ok(r->comm, 0, "could not load its start", err);
        return -1;
    }
    if (sh->on) { /* rank 0 wrote the start for all */
        if (comm_all_ok(r->comm, 1, "could not load its start", err)) return -1;
        comm_timed(r->comm, r->iteration, "the start's barrier");
        if (r->comm->node_barrier(r->comm, err)) return -1;
    }
    r->last_val_iteration = r->iteration;
    if (r->s.sample_every > 0) {
        ModelConfig sampler_cfg = r->s.model;
        sampler_cfg.dropout = 0;
        int made = r->comm->rank != 0 || model_create(&r->sampler, &sampler_cfg, r->be, 1, 1, err) == 0;
        if (comm_all_ok(r->comm, made, "could not make the model for -sample_every", err)) return -1;
    }
    return 0;
}

/* One writer per run: rank 0 holds <checkpoint_name>.lock from here, before its first write (the
 * metrics), to its exit; everything before only read. Then every rank checks that all start
 * from the same parameters. */
static int start_writing(Run *r, CrnnError *err) {
    Comm *comm = r->comm;
    int locked = 1;
    if (comm->rank == 0) {
        char warning[PATH_MAX + 256];
        locked = runlock_acquire(&r->lock, r->s.checkpoint_name, warning, sizeof warning, err) == 0;
        if (locked && warning[0]) report(r->rep, REPORT_WARNING, "%s", warning);
    }
    if (comm_all_ok(comm, locked, "could not take the run's lock", err)) return -1;
    if (comm->rank == 0 &&
        metrics_open(&r->metrics, r->s.checkpoint_name, r->s.resume_path[0] ? r->iteration : -1, err))
        return -1;
    if (comm->size > 1) {
        uint64_t sum = params_checksum(&r->model);
        int64_t hi = (int64_t)sum, lo = (int64_t)~sum;
        if (comm->allreduce_max_int(comm, &hi, err) || comm->allreduce_max_int(comm, &lo, err)) return -1;
        if ((uint64_t)hi != sum || (uint64_t)lo != ~sum)
            return crnn_fail(err, "rank %d: the ranks' parameters differ at the start (checksum %016" PRIx64 "); every rank must read the same files",
                             comm->rank, sum);
    }
    return 0;
}

/* How far to go: max_epochs of batches from the start of training, capped by max_iters. */
static int64_t target_iteration(const Run *r) {
    const int64_t count = r->train.count;
    int64_t target_pos = (int64_t)floor(r->s.max_epochs * (double)count + 1e-9);
    if (target_pos < 1) target_pos = 1;
    int64_t pos = r->epoch_index * count + r->batch_index;
    int64_t total = r->iteration + (target_pos - pos);
    if (r->s.max_iters > 0 && r->s.max_iters < total) total = r->s.max_iters;
    return total;
}

static int setup(Run *r, CrnnError *err) {
    r->comm->timer->timeout = r->s.comm_timeout;
    if (backend_set_precision(r->be, r->s.precision, err)) return -1; /* every rank's the same */
    if (!r->quiet && r->be->precision_note) report(r->rep, REPORT_NOTE, "%s", r->be->precision_note);
    if (r->comm->rank == 0 && train_prepare_checkpoint_folder(r->s.checkpoint_name, err)) return -1;
    if (load_data(r, err) || make_model(r, err) || start_writing(r, err)) return -1;
    /* start-up (data, model, the checkpoint resumed from): rank 0's, after its device */
    metrics_start(&r->metrics, train_time_s(r), r->iteration, crnn_now_seconds() - r->clock_start);
    return 0;
}

/* ---- the loop -------------------------------------------------------------------------- */

typedef struct Loop {
    int64_t total;                /* the iteration to stop at */
    double chars_per_step;        /* P*B*S */
    double step_time_total;       /* seconds in steps, this process */
    int64_t steps_done;           /* steps of this process */
    double run_start;             /* when the loop began */
    /* the print window: since the last progress line (or checkpoint) */
    double window_start;
    double window_time[3];        /* compute, communication, I/O */
    int64_t window_steps;
    double *rank_times;           /* rank 0: every rank's window_time, [P, 3] */
    /* the step just done */
    double loss;                  /* the mean over the ranks */
    double grad_norm;             /* before clipping; at a progress line only */
    int at_print;
} Loop;

static void reset_window(Loop *lp) {
    lp->window_steps = 0;
    lp->window_time[0] = lp->window_time[1] = lp->window_time[2] = 0;
    lp->window_start = crnn_now_seconds();
}

/* After a step: the next batch; at the end of an epoch the next epoch and its learning rate
 * (torch-rnn's -lr_decay_every and char-rnn's -learning_rate_decay). */
static void next_batch(Run *r) {
    r->batch_index++;
    if (r->batch_index < r->train.count) return;
    r->batch_index = 0;
    r->epoch_index++;
    int64_t e = r->epoch_index; /* epochs completed */
    if (r->s.lr_decay_factor != 1 && e % r->s.lr_decay_every == 0) r->opt.learning_rate *= r->s.lr_decay_factor;
    if (r->s.learning_rate_decay != 1 && e >= r->s.learning_rate_decay_after)
        r->opt.learning_rate *= r->s.learning_rate_decay;
}

/* One iteration on every rank: a batch forward and backward, the gradients and the loss
 * averaged over the ranks, clipped, the optimizer's step; its times and loss recorded. */
static int train_step(Run *r, Loop *lp, CrnnError *err) {
    Comm *comm = r->comm;
    const int B = r->s.B, S = r->s.S;
    if (r->batch_index == 0) model_reset_state(&r->model); /* each epoch starts from zero */
    double t0 = crnn_now_seconds();
    dataset_batch(&r->train, r->batch_index, r->x, r->y);
    double t_io = crnn_now_seconds();
    /* dropout's masks are keyed by the iteration and the global streams, not by the rank;
     * validation (evaluate_batches) turns it off again */
    model_set_dropout(&r->model, 1, r->seed, (uint64_t)r->iteration, comm->rank * B);
    real loss_mean = (real)model_forward(&r->model, r->x, r->y, B, S);
    Buckets buckets = {.comm = comm, .err = err};
    const Shared *sh = &r->shared;
    model_backward(&r->model, r->s.overlap && !sh->on ? bucket_ready : NULL, &buckets);
    double t_backward = crnn_now_seconds();
    comm_timed(comm, r->iteration + 1, "the gradient allreduce");
    int failed = sh->on ? train_shared_reduce(r, err)
                        : buckets.failed || (r->s.overlap ? comm->wait_all(comm, err)
                                                          : comm->allreduce_mean(comm, r->model.grads, r->model.num_params, err));
    comm_timed(comm, r->iteration + 1, "the loss allreduce");
    if (failed || comm->allreduce_mean(comm, &loss_mean, 1, err)) return -1;
    double t_comm = crnn_now_seconds();
    if (backend_check(r->be, err)) return -1; /* a device's failure (the loss's copy waited for the step) */
    r->iteration++;
    lp->loss = loss_mean;
    lp->at_print = r->s.print_every > 0 && r->iteration % r->s.print_every == 0;
    if (!isfinite(loss_mean))
        return crnn_fail(err, "the training loss is %s at iteration %" PRId64 "; %s%s%stry a lower -learning_rate (now %g) or a -grad_clip (now %g)",
                         train_nonfinite_name(loss_mean), r->iteration, r->last_checkpoint[0] ? "the last good checkpoint is " : "",
                         r->last_checkpoint, r->last_checkpoint[0] ? "; " : "", r->opt.learning_rate, r->s.grad_clip);
    /* The gradient's norm once, for the progress line and -grad_clip by norm, which scales the
     * gradient first; torch-rnn's elementwise clamp goes into the optimizer's pass. Under
     * -allreduce shared each rank clips and updates its part of the elements, then a barrier for
     * the next step. */
    const size_t first = sh->on ? sh->first : 0, count = sh->on ? sh->count : r->model.num_params;
    const int clip_norm = r->s.clip_norm && r->s.grad_clip > 0;
    double sumsq = 0;
    if ((lp->at_print || clip_norm) && !sh->on) sumsq = r->be->sumsq(r->be, r->model.grads, count);
    if ((lp->at_print || clip_norm) && sh->on) {
        comm_timed(comm, r->iteration, "the gradient norm's allreduce");
        if (train_shared_sumsq(r, &sumsq, err)) return -1;
    }
    lp->grad_norm = lp->at_print ? sqrt(sumsq) : 0;
    if (clip_norm) optim_clip_norm(r->be, r->model.grads + first, count, r->s.grad_clip, sqrt(sumsq));
    optim_step_part(&r->opt, r->model.params, r->model.grads, first, count, r->s.clip_norm ? 0 : r->s.grad_clip);
    const double t_updated = crnn_now_seconds();
    if (sh->on) {
        comm_timed(comm, r->iteration, "the parameters' update");
        if (comm->node_barrier(comm, err)) return -1;
    }
    double t1 = crnn_now_seconds();
    lp->step_time_total += t1 - t0;
    lp->window_time[0] += (t_backward - t_io) + (t_updated - t_comm);    /* compute */
    lp->window_time[1] += (t_comm - t_backward) + (t1 - t_updated);      /* communication */
    lp->window_time[2] += t_io - t0;                            /* I/O */
    lp->steps_done++;
    lp->window_steps++;
    if (history_add_train(&r->hist, (float)loss_mean))
        return crnn_fail_nomem(err, "rank %d: out of memory for the training loss history at iteration %" PRId64,
                               comm->rank, r->iteration);
    if (r->n_steps == r->cap_steps) {
        int64_t cap = r->cap_steps ? 2 * r->cap_steps : 1024;
        float *grown = realloc(r->step_times, (size_t)cap * sizeof *grown);
        if (grown) r->step_times = grown, r->cap_steps = cap;
    }
    if (r->n_steps < r->cap_steps) r->step_times[r->n_steps++] = (float)(t1 - t0);
    next_batch(r);
    return 0;
}

/* Every -print_every iterations: every rank's time split (per step over the window) to rank 0,
 * the metrics' record and the progress line. */
static int report_progress(Run *r, Loop *lp, CrnnError *err) {
    double elapsed = crnn_now_seconds() - lp->window_start;
    double cps = elapsed > 0 ? lp->window_steps * lp->chars_per_step / elapsed : 0.0;
    for (int k = 0; k < 3; k++) lp->window_time[k] /= (double)lp->window_steps;
    comm_timed(r->comm, r->iteration, "gathering the step times");
    if (r->comm->gather(r->comm, lp->window_time, sizeof lp->window_time, lp->rank_times, 0, err)) return -1;
    metrics_train(&r->metrics, train_time_s(r), r->iteration, train_epoch(r), lp->loss, r->opt.learning_rate,
                  lp->grad_norm, cps, lp->rank_times, r->comm->size);
    const double eta = (double)(lp->total - r->iteration) * lp->step_time_total / (double)lp->steps_done;
    train_report_progress(r, lp->total, lp->loss, cps, crnn_now_seconds() - lp->run_start, eta);
    reset_window(lp);
    return 0;
}

/* After a step: the ranks agree whether a signal asks to stop; at a checkpoint (every
 * -checkpoint_every, at the end) or a stop, validation and the checkpoint. Returns 0 to go on,
 * CRNN_EXIT_STOPPED to stop after the checkpoint, -1 on error. */
static int checkpoint_or_stop(Run *r, Loop *lp, CrnnError *err) {
    Comm *comm = r->comm;
    const int at_checkpoint =
        (r->s.checkpoint_every > 0 && r->iteration % r->s.checkpoint_every == 0) || r->iteration == lp->total;
    int64_t stop = stop_signal != 0;
    comm_timed(comm, r->iteration, "the stop flag's allreduce");
    if (comm->allreduce_max_int(comm, &stop, err)) return -1;
    if (at_checkpoint || stop) {
        if (train_validate_and_checkpoint(r, err)) return -1;
        comm_timed(comm, r->iteration, "the barrier after the checkpoint");
        if (comm->barrier(comm, err)) return -1;
        reset_window(lp);
    }
    if (!stop || r->iteration >= lp->total) return 0;
    if (!r->quiet)
        report(r->rep, REPORT_INFO, "stopped by a signal at iteration %" PRId64 "; %s holds the run: continue it with -resume auto (or -resume %s)",
               r->iteration, r->last_checkpoint, r->last_checkpoint);
    return CRNN_EXIT_STOPPED;
}

/* The steps from the run's iteration to lp->total. Returns 0, CRNN_EXIT_STOPPED or -1. */
static int train_loop(Run *r, Loop *lp, CrnnError *err) {
    lp->chars_per_step = (double)r->comm->size * r->s.B * r->s.S;
    lp->run_start = crnn_now_seconds();
    reset_window(lp);
    if (r->comm->rank == 0) {
        lp->rank_times = calloc((size_t)r->comm->size * 3, sizeof *lp->rank_times);
        if (!lp->rank_times) return crnn_fail(err, "out of memory");
    }
    while (r->iteration < lp->total) {
        if (train_step(r, lp, err)) return -1;
        if (lp->at_print && report_progress(r, lp, err)) return -1;
        int rc = checkpoint_or_stop(r, lp, err);
        if (rc) return rc;
    }
    if (!r->quiet && lp->steps_done > 0)
        report(r->rep, REPORT_INFO, "done: %" PRId64 " iterations, %.3f ms/iter, %.0f chars/s", lp->steps_done,
               1e3 * lp->step_time_total / lp->steps_done, lp->steps_done * lp->chars_per_step / lp->step_time_total);
    return 0;
}

/* ---- teardown -------------------------------------------------------------------------- */

/* Returns rc. After a lost rank (comm->timer->broken) the program ends the job now
 * (comm->abort), holding the lock to the end; a device may still wait for the lost rank, and
 * freeing its memory would wait with it. */
static int teardown(Run *r, int rc) {
    metrics_close(&r->metrics);
    if (r->comm->timer->broken) return -1;
    runlock_release(&r->lock);
    free(r->step_times);
    free(r->x);
    free(r->y);
    optim_destroy(&r->opt);
    model_destroy(&r->sampler);
    model_destroy(&r->model);
    dataset_free(&r->train);
    dataset_free(&r->val);
    vocab_free(&r->vocab);
    history_free(&r->hist);
    return rc;
}

int train_run(const TrainSettings *s, Comm *comm, Backend *be, const Reporter *rep, CrnnError *err) {
    Run run = {.s = *s, .comm = comm, .be = be, .rep = rep, .lock = {.fd = -1}};
    Run *r = &run;
    r->clock_start = crnn_now_seconds();
    r->quiet = s->quiet || comm->rank != 0;
    r->seed = (uint64_t)s->seed;
    int rc = setup(r, err);
    Loop loop = {.total = rc == 0 ? target_iteration(r) : 0};
    if (rc == 0) {
        train_report_start(r, loop.total);
        if (r->iteration >= loop.total) {
            if (!r->quiet)
                report(rep, REPORT_INFO, "nothing to do: the run is at iteration %" PRId64 " of %" PRId64, r->iteration,
                       loop.total);
        } else {
            rc = train_loop(r, &loop, err);
        }
    }
    free(loop.rank_times);
    if (rc != 0 && rc != CRNN_EXIT_STOPPED) rc = -1;
    return teardown(r, rc);
}
