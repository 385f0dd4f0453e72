/* The training loop (FORMATS.md sections 2, 4 and 5): torch-rnn's schedule and output, with
 * exact resume. One process per rank; rank 0 validates, prints and writes checkpoints. */
#include "crnn/runlock.h"
#include "crnn/train.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crnn/checkpoint.h"
#include "crnn/dataset.h"
#include "crnn/evaluate.h"
#include "crnn/metrics.h"
#include "crnn/model.h"
#include "crnn/optim.h"
#include "crnn/preprocess.h"
#include "crnn/report.h"
#include "crnn/rng.h"
#include "crnn/sampler.h"
#include "crnn/vocab.h"

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

static void format_duration(double seconds, char *out, size_t cap) {
    long s = seconds > 0 && seconds < 1e9 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600)
        snprintf(out, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(out, cap, "%ld:%02ld", s / 60, s % 60);
}

/* "nan" or "inf" for a non-finite value, as a user reads it (printf may write "-nan"). */
static const char *nonfinite_name(double v) { return isnan(v) ? "nan" : "inf"; }

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- settings -------------------------------------------------------------------------- */


/* The prefix of every file a run writes: -checkpoint_name, or char-rnn's
 * <checkpoint_dir>/lm_<savefile> when either of those is given. */
static void checkpoint_prefix(FlagSet *flags, char *out, size_t cap) {
    if (flags_given(flags, "checkpoint_dir") || flags_given(flags, "savefile"))
        snprintf(out, cap, "%s/lm_%s", flags_str(flags, "checkpoint_dir"), flags_str(flags, "savefile"));
    else
        snprintf(out, cap, "%s", flags_str(flags, "checkpoint_name"));
}

static void config_text(const ConfigEntry *e, char *out, size_t cap) {
    switch (e->type) {
    case CONFIG_INT: snprintf(out, cap, "%" PRId64, e->i); break;
    case CONFIG_REAL: flags_real_text(e->d, out, cap); break;
    case CONFIG_STRING: snprintf(out, cap, "%s", e->s ? e->s : ""); break;
    }
}

static int same_value(const Flag *f, const ConfigEntry *e) {
    char a[512], b[512];
    flags_value_text(f, a, sizeof a);
    config_text(e, b, sizeof b);
    if (f->type == FLAG_REAL || f->type == FLAG_INT) return strtod(a, NULL) == strtod(b, NULL);
    return strcmp(a, b) == 0;
}

/* On resume (FORMATS.md section 4): flags not given take the checkpoint's values; a given one
 * that differs is used, silently or with a note, ignored, or an error, as its Flag.resume says
 * (the flag table of crnn-train). */
static int merge_resume_flags(FlagSet *flags, const Checkpoint *ck, const char *path, int quiet,
                              const Reporter *rep, CrnnError *err) {
    for (int k = 0; k < ck->num_config; k++) {
        const ConfigEntry *e = &ck->config[k];
        Flag *f = flags_find(flags, e->name);
        if (!f || f->resume == FLAG_RESUME_OWN) continue;
        if (!f->set) {
            char text[512];
            config_text(e, text, sizeof text);
            if (flags_set_text(flags, e->name, text, err)) return crnn_fail_context(err, "%s", path);
            f->set = 0;
            continue;
        }
        if (same_value(f, e)) continue;
        char was[512], now[512];
        config_text(e, was, sizeof was);
        flags_value_text(f, now, sizeof now);
        if (f->resume == FLAG_RESUME_KEPT)
            return crnn_fail_usage(err, "-%s %s differs from the checkpoint %s (-%s %s); a resumed run keeps its model and -seq_length: drop -%s, or start a new run with -init_from",
                             e->name, now, path, e->name, was, e->name);
        if (f->resume == FLAG_RESUME_GENERATOR) {
            if (!quiet) report(rep, REPORT_NOTE, "-%s is ignored on resume; the checkpoint's generator continues", e->name);
            continue;
        }
        if (f->resume == FLAG_RESUME_NOTED && !quiet)
            report(rep, REPORT_NOTE, "-%s changes from %s to %s on resume", e->name, was, now);
    }
    /* the model itself comes from the checkpoint's root attributes */
    char num[32];
    if (!flags_given(flags, "model_type")) flags_set_text(flags, "model_type", ck->model.model_type, err);
#define FROM_CK(flag, value)                                                                   \
    do {                                                                                       \
        Flag *f_ = flags_find(flags, flag);                                                     \
        if (f_->set && f_->i != (value))                                                        \
            return crnn_fail_usage(err, "-%s %" PRId64 " differs from the checkpoint %s (%d); a resumed run keeps its model: drop -%s, or start a new run with -init_from", \
                             flag, f_->i, path, (int)(value), flag);                            \
        snprintf(num, sizeof num, "%d", (int)(value));                                          \
        flags_set_text(flags, flag, num, err);                                                  \
    } while (0)
    FROM_CK("wordvec_size", ck->model.D);
    FROM_CK("rnn_size", ck->model.H);
    FROM_CK("num_layers", ck->model.L);
#undef FROM_CK
    return 0;
}

static int read_settings(FlagSet *flags, TrainSettings *s, CrnnError *err) {
    memset(s, 0, sizeof *s);
    s->input_h5 = flags_str(flags, "input_h5");
    s->input_json = flags_str(flags, "input_json");
    checkpoint_prefix(flags, s->checkpoint_name, sizeof s->checkpoint_name);
    s->init_from = flags_str(flags, "init_from");
    s->resume = flags_str(flags, "resume");
    s->optimizer = flags_str(flags, "optimizer");
    int64_t B = flags_int(flags, "batch_size"), S = flags_int(flags, "seq_length");
    if (B < 1 || B > 1000000) return crnn_fail_usage(err, "-batch_size must be at least 1, got %" PRId64, B);
    if (S < 1 || S > 1000000) return crnn_fail_usage(err, "-seq_length must be at least 1, got %" PRId64, S);
    s->B = (int)B;
    s->S = (int)S;
    snprintf(s->model.model_type, sizeof s->model.model_type, "%s", flags_str(flags, "model_type"));
    int64_t D = flags_int(flags, "wordvec_size"), H = flags_int(flags, "rnn_size"),
            L = flags_int(flags, "num_layers");
    if (H < 1 || H > 1000000) return crnn_fail_usage(err, "-rnn_size must be at least 1, got %" PRId64, H);
    if (L < 1 || L > CRNN_MAX_LAYERS)
        return crnn_fail_usage(err, "-num_layers must be between 1 and %d, got %" PRId64, CRNN_MAX_LAYERS, L);
    if (D < 0 || D > 1000000) return crnn_fail_usage(err, "-wordvec_size must be between 0 (one-hot input) and 1000000, got %" PRId64, D);
    s->model.D = (int)D;
    s->model.H = (int)H;
    s->model.L = (int)L;
    s->model.dropout = flags_real(flags, "dropout");
    if (s->model.dropout < 0 || s->model.dropout >= 1)
        return crnn_fail_usage(err, "-dropout must be in [0, 1), got %g", s->model.dropout);
    if (flags_int(flags, "batchnorm") != 0)
        return crnn_fail_usage(err, "-batchnorm 1 is not supported by crnn; drop the flag");
    s->comm_timeout = flags_real(flags, "comm_timeout");
    if (!(s->comm_timeout >= 0) || s->comm_timeout > 1e9)
        return crnn_fail_usage(err, "-comm_timeout must be 0 (wait for ever) or a number of seconds, got %g", s->comm_timeout);
    s->max_epochs = flags_real(flags, "max_epochs");
    if (!(s->max_epochs > 0)) return crnn_fail_usage(err, "-max_epochs must be above 0, got %g", s->max_epochs);
    s->max_iters = flags_int(flags, "max_iters");
    if (s->max_iters < 0) return crnn_fail_usage(err, "-max_iters must be 0 (no limit) or more, got %" PRId64, s->max_iters);
    s->learning_rate = flags_real(flags, "learning_rate");
    if (!(s->learning_rate > 0)) return crnn_fail_usage(err, "-learning_rate must be above 0, got %g", s->learning_rate);
    s->grad_clip = flags_real(flags, "grad_clip");
    if (s->grad_clip < 0) return crnn_fail_usage(err, "-grad_clip must be 0 (off) or more, got %g", s->grad_clip);
    s->clip_norm = strcmp(flags_str(flags, "grad_clip_mode"), "norm") == 0;
    s->lr_decay_every = flags_int(flags, "lr_decay_every");
    if (s->lr_decay_every < 1) return crnn_fail_usage(err, "-lr_decay_every must be at least 1, got %" PRId64, s->lr_decay_every);
    s->lr_decay_factor = flags_real(flags, "lr_decay_factor");
    if (!(s->lr_decay_factor > 0)) return crnn_fail_usage(err, "-lr_decay_factor must be above 0 (1 turns decay off), got %g", s->lr_decay_factor);
    s->learning_rate_decay = flags_real(flags, "learning_rate_decay");
    if (!(s->learning_rate_decay > 0)) return crnn_fail_usage(err, "-learning_rate_decay must be above 0 (1 turns it off), got %g", s->learning_rate_decay);
    s->learning_rate_decay_after = flags_int(flags, "learning_rate_decay_after");
    s->print_every = flags_int(flags, "print_every");
    s->checkpoint_every = flags_int(flags, "checkpoint_every");
    s->keep_last = flags_int(flags, "keep_last");
    s->val_max_batches = flags_int(flags, "val_max_batches");
    if (s->print_every < 0 || s->checkpoint_every < 0 || s->keep_last < 0 || s->val_max_batches < 0)
        return crnn_fail_usage(err, "-print_every, -checkpoint_every, -keep_last and -val_max_batches must be 0 or more");
    s->seed = flags_int(flags, "seed");
    if (s->seed < 0) return crnn_fail_usage(err, "-seed must be 0 or more, got %" PRId64, s->seed);
    s->quiet = flags_int(flags, "quiet") != 0;
    s->learning_rate_given = flags_given(flags, "learning_rate");
    s->decay_rate = flags_real(flags, "decay_rate");
    s->overlap = strcmp(flags_str(flags, "allreduce"), "overlap") == 0;
    s->flags = flags;
    s->reset_iterations = flags_int(flags, "reset_iterations") != 0;
    if (!*s->input_h5 || !*s->input_json)
        return crnn_fail_usage(err, "-input_h5 and -input_json are required (the files written by crnn-preprocess)");
    if (*s->init_from && *s->resume)
        return crnn_fail_usage(err, "-init_from and -resume exclude each other: -resume continues a run, -init_from starts one from trained weights");
    if (!*s->checkpoint_name) return crnn_fail_usage(err, "-checkpoint_name must not be empty");
    s->charrnn_names = flags_given(flags, "checkpoint_dir") || flags_given(flags, "savefile");
    if (s->charrnn_names && flags_given(flags, "checkpoint_name"))
        return crnn_fail_usage(err, "-checkpoint_name and char-rnn's -checkpoint_dir/-savefile name the checkpoints in two ways; give one of them");
    if (s->charrnn_names && (!*flags_str(flags, "checkpoint_dir") || !*flags_str(flags, "savefile")))
        return crnn_fail_usage(err, "-checkpoint_dir and -savefile must not be empty");
    return 0;
}

/* -sample_every and -sample_length (FORMATS.md section 5). */
static int read_sample_settings(FlagSet *flags, TrainSettings *s, CrnnError *err) {
    s->sample_every = flags_int(flags, "sample_every");
    s->sample_length = flags_int(flags, "sample_length");
    if (s->sample_every < 0)
        return crnn_fail_usage(err, "-sample_every must be 0 (no samples) or a number of validations, got %" PRId64,
                               s->sample_every);
    if (s->sample_length < 1 || s->sample_length > 1000000)
        return crnn_fail_usage(err, "-sample_length must be between 1 and 1000000 characters, got %" PRId64,
                               s->sample_length);
    return 0;
}

/* ---- checkpoint folder and files ------------------------------------------------------- */

static int mkdir_p(const char *dir) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0777) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0777) && errno != EEXIST) return -1;
    return 0;
}

static int prepare_checkpoint_folder(const char *checkpoint_name, CrnnError *err) {
    char copy[PATH_MAX];
    if (snprintf(copy, sizeof copy, "%s", checkpoint_name) >= (int)sizeof copy)
        return crnn_fail_usage(err, "-checkpoint_name is longer than a path may be (%d bytes)", PATH_MAX - 1);
    const char *dir = dirname(copy);
    if (mkdir_p(dir))
        return crnn_fail(err, "cannot create the checkpoint folder %s: %s; choose another -checkpoint_name",
                         dir, strerror(errno));
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s/.crnn-write-test-%ld", dir, (long)getpid());
    FILE *fp = fopen(probe, "w");
    if (!fp)
        return crnn_fail(err, "the checkpoint folder %s is not writable: %s; choose another -checkpoint_name",
                         dir, strerror(errno));
    fclose(fp);
    unlink(probe);
    return 0;
}

/* Whether `file` is a checkpoint of prefix `base`, and its order (newest highest): the
 * iteration of torch-rnn's "<base>_<i>.h5", or the epoch of char-rnn's
 * "<base>_epoch<e>_<val>.h5". */
static int checkpoint_order_of(const char *file, const char *base, double *order) {
    size_t n = strlen(base), len = strlen(file);
    if (strncmp(file, base, n) != 0 || file[n] != '_' || len < n + 4 || strcmp(file + len - 3, ".h5") != 0)
        return 0;
    const char *p = file + n + 1, *end = file + len - 3;
    if (strncmp(p, "epoch", 5) == 0) { /* char-rnn: epoch<e>_<val> */
        char *q;
        double e = strtod(p + 5, &q);
        if (q == p + 5 || *q != '_' || q + 1 >= end) return 0;
        *order = e;
        return 1;
    }
    int64_t v = 0;
    const char *q = p;
    for (; q < end && *q >= '0' && *q <= '9'; q++) v = v * 10 + (*q - '0');
    if (q == p || q != end) return 0;
    *order = (double)v;
    return 1;
}

typedef struct Found {
    double order;
    char path[PATH_MAX];
} Found;

static int cmp_found_desc(const void *a, const void *b) {
    double x = ((const Found *)a)->order, y = ((const Found *)b)->order;
    return x < y ? 1 : (x > y ? -1 : 0);
}

/* Every checkpoint of the prefix, newest first. *out is malloc'd. */
static int list_checkpoints(const char *checkpoint_name, Found **out, int *count) {
    char copy1[PATH_MAX], copy2[PATH_MAX];
    snprintf(copy1, sizeof copy1, "%s", checkpoint_name);
    snprintf(copy2, sizeof copy2, "%s", checkpoint_name);
    const char *dir = dirname(copy1), *base = basename(copy2);
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        double order;
        if (!checkpoint_order_of(e->d_name, base, &order)) continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 16;
            Found *grown = realloc(*out, (size_t)cap * sizeof **out);
            if (!grown) break;
            *out = grown;
        }
        (*out)[*count].order = order;
        snprintf((*out)[*count].path, PATH_MAX, "%s/%s", dir, e->d_name);
        (*count)++;
    }
    closedir(d);
    if (*count) qsort(*out, (size_t)*count, sizeof **out, cmp_found_desc);
    return 0;
}

/* -resume auto: the newest checkpoint that opens and validates, or "" for a fresh start. */
static void find_resume_checkpoint(const char *checkpoint_name, char *path, size_t cap, int quiet,
                                   const Reporter *rep) {
    Found *found;
    int count;
    path[0] = '\0';
    list_checkpoints(checkpoint_name, &found, &count);
    for (int k = 0; k < count; k++) {
        Checkpoint ck;
        CrnnError e;
        if (checkpoint_read(found[k].path, &ck, 1, &e) == 0) {
            checkpoint_free(&ck);
            snprintf(path, cap, "%s", found[k].path);
            break;
        }
        if (!quiet) report(rep, REPORT_NOTE, "skipping %s: %s", found[k].path, e.msg);
    }
    free(found);
}

static void remove_old_checkpoints(const char *checkpoint_name, int64_t keep_last) {
    if (keep_last <= 0) return;
    Found *found;
    int count;
    list_checkpoints(checkpoint_name, &found, &count);
    for (int k = (int)keep_last; k < count; k++) {
        unlink(found[k].path);
        /* and its sidecar JSON: "<name>_<i>.h5" -> "<name>_<i>.json" (torch-rnn's names) */
        size_t n = strlen(found[k].path);
        if (!strstr(found[k].path, "_epoch") && n > 3 && n + 3 < PATH_MAX) {
            strcpy(found[k].path + n - 3, ".json");
            unlink(found[k].path);
        }
    }
    free(found);
}

static int prepare_data_dir(FlagSet *flags, Comm *comm, int quiet, const Reporter *rep, CrnnError *err) {
    if (flags_given(flags, "input_h5") || flags_given(flags, "input_json"))
        return crnn_fail_usage(err, "give either -data_dir (char-rnn) or -input_h5 and -input_json (torch-rnn), not both");
    const char *dir = flags_str(flags, "data_dir");
    char txt[PATH_MAX + 16], h5[PATH_MAX + 16], json[PATH_MAX + 16];
    snprintf(txt, sizeof txt, "%s/input.txt", dir);
    snprintf(h5, sizeof h5, "%s/input.h5", dir);
    snprintf(json, sizeof json, "%s/input.json", dir);
    int64_t status = 0;
    if (comm->rank == 0) {
        int needs = preprocess_needs_update(txt, h5, json, err);
        if (needs < 0) {
            crnn_fail_context(err, "-data_dir %s needs the text as input.txt", dir);
            status = 1;
        } else if (needs) {
            PreprocessOptions opt;
            preprocess_default_options(&opt);
            opt.input_txt = txt;
            opt.output_h5 = h5;
            opt.output_json = json;
            opt.val_frac = 0.05; /* char-rnn's fractions */
            opt.test_frac = 0;
            if (!quiet)
                report(rep, REPORT_INFO, "preprocessing %s into %s and %s (utf-8, 5%% validation, no test split)", txt,
                       h5, json);
            if (preprocess_run(&opt, NULL, err)) status = 1;
        }
    }
    if (comm->broadcast(comm, &status, sizeof status, 0, err)) return -1;
    if (status)
        return comm->rank == 0 ? -1 : crnn_fail(err, "rank %d: rank 0 could not preprocess %s (its message says why)", comm->rank, txt);
    if (flags_set_text(flags, "input_h5", h5, err) || flags_set_text(flags, "input_json", json, err)) return -1;
    return 0;
}

/* ---- the run --------------------------------------------------------------------------- */

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

typedef struct History {
    float *train_loss;
    int64_t n_train, cap_train;
    float *val_loss;
    int64_t *val_iteration;
    int64_t n_val, cap_val;
} History;

static int history_add_train(History *h, float loss) {
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

static int history_add_val(History *h, float loss, int64_t it) {
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

typedef struct Run {
    TrainSettings s;
    Comm *comm;
    Backend *be;
    const Reporter *rep;
    Vocab vocab;
    Batches train, val;
    int have_val;
    Model model;
    Optimizer opt;
    History hist;
    int64_t iteration;      /* iterations done */
    int64_t epoch_index;    /* current epoch, 0-based */
    int64_t batch_index;    /* batches of the current epoch done */
    uint64_t seed;
    int32_t *x, *y;         /* [max(B, val N), S] host */
    char last_checkpoint[PATH_MAX + 64];
    Metrics metrics;           /* rank 0 */
    float *step_times;         /* seconds per step of this process's run, for the sidecar JSON */
    int64_t n_steps, cap_steps;
    int64_t last_val_iteration; /* for the advice: training loss since the last validation */
    int underfitting_advised;   /* the underfitting advice was given and still holds */
    /* the run's clock, the metrics' time_s: elapsed_base (the resumed checkpoint's
     * elapsed_seconds, 0 for a fresh run) plus the monotonic seconds since clock_start, when
     * this process began */
    double elapsed_base, clock_start;
    Model sampler;              /* rank 0 with -sample_every: batch 1, the weights copied in */
    int64_t sample_checkpoints; /* with no validation split: checkpoints of this process */
} Run;

/* The metrics' time_s now: seconds of training since the run began, across resumes. */
static double run_time_s(const Run *r) { return r->elapsed_base + (now_seconds() - r->clock_start); }

static double run_epoch(const Run *r) {
    return (double)r->epoch_index + (double)r->batch_index / (double)r->train.count;
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

/* <prefix>_best.h5: a hard link to (or, where links fail, a copy of) the checkpoint just
 * written when its validation loss is the lowest so far, replaced atomically. */
static int update_best(Run *r, const char *path, CrnnError *err) {
    const History *h = &r->hist;
    if (h->n_val == 0 || h->val_iteration[h->n_val - 1] != r->iteration) return 0;
    for (int64_t k = 0; k + 1 < h->n_val; k++)
        if (h->val_loss[k] <= h->val_loss[h->n_val - 1]) return 0;
    char best[PATH_MAX + 16], tmp[PATH_MAX + 32];
    snprintf(best, sizeof best, "%s_best.h5", r->s.checkpoint_name);
    snprintf(tmp, sizeof tmp, "%s_best.h5.tmp", r->s.checkpoint_name);
    unlink(tmp);
    if (link(path, tmp) != 0) { /* no hard links here: copy */
        FILE *in = fopen(path, "rb"), *out = in ? fopen(tmp, "wb") : NULL;
        char buf[1 << 16];
        size_t n;
        int ok = in && out;
        while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
        if (in) fclose(in);
        if (out && fclose(out) != 0) ok = 0;
        if (!ok) {
            unlink(tmp);
            return crnn_fail(err, "cannot write %s: %s; check the space in the checkpoint folder", tmp, strerror(errno));
        }
    }
    if (rename(tmp, best) != 0) {
        unlink(tmp);
        return crnn_fail(err, "cannot write %s: %s", best, strerror(errno));
    }
    return 0;
}

/* Writes ck (its values on the host) as the checkpoint of this iteration, its metrics sidecar,
 * and the best-model link; then prunes to -keep_last. */
static int write_checkpoint_files(Run *r, const Checkpoint *ck, CrnnError *err) {
    char path[PATH_MAX + 64];
    if (r->s.charrnn_names) { /* char-rnn's lm_<savefile>_epoch<e>_<val>.h5 */
        double val = r->hist.n_val > 0 && r->hist.val_iteration[r->hist.n_val - 1] == r->iteration
                         ? (double)r->hist.val_loss[r->hist.n_val - 1] : NAN;
        snprintf(path, sizeof path, "%s_epoch%.2f_%.4f.h5", r->s.checkpoint_name, run_epoch(r), val);
    } else {
        snprintf(path, sizeof path, "%s_%" PRId64 ".h5", r->s.checkpoint_name, r->iteration);
    }
    if (checkpoint_write(path, ck, err)) return -1;
    snprintf(r->last_checkpoint, sizeof r->last_checkpoint, "%s", path);
    if (!r->s.quiet) report(r->rep, REPORT_INFO, "wrote %s", path);
    char json[PATH_MAX + 8];
    snprintf(json, sizeof json, "%s_%" PRId64 ".json", r->s.checkpoint_name, r->iteration);
    int rc = metrics_write_sidecar(json, r->s.flags, r->iteration, r->hist.train_loss, r->hist.n_train,
                                   r->hist.val_loss, r->hist.val_iteration, r->hist.n_val, r->step_times,
                                   r->n_steps, err);
    if (rc == 0) rc = update_best(r, path, err);
    remove_old_checkpoints(r->s.checkpoint_name, r->s.keep_last);
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
    ck.epoch = run_epoch(r);
    ck.elapsed_seconds = time_s;
    ck.config = config_from_flags(r->s.flags, &ck.num_config);
    ck.vocab = r->vocab;
    ck.num_params = m->num_params;
    ck.params = malloc(m->num_params * sizeof(float));
    ck.has_state = 1;
    snprintf(ck.optim_name, sizeof ck.optim_name, "%s", r->opt.name);
    ck.optim_step = r->opt.step;
    ck.learning_rate = r->opt.learning_rate;
    ck.optim_m = r->opt.m ? malloc(m->num_params * sizeof(float)) : NULL;
    ck.optim_v = malloc(m->num_params * sizeof(float));
    uint64_t rng[1] = {r->seed};
    ck.rng = rng;
    ck.num_rng = 1;
    ck.streams = r->train.N;
    ck.batch_index = r->batch_index;
    ck.epoch_index = r->epoch_index;
    ck.hidden_h = hidden_h;
    ck.hidden_c = r->model.G == 4 ? hidden_c : NULL; /* FORMATS.md: /c for the LSTM only */
    ck.train_loss = r->hist.train_loss;
    ck.num_train_loss = r->hist.n_train;
    ck.val_loss = r->hist.val_loss;
    ck.val_iteration = r->hist.val_iteration;
    ck.num_val = r->hist.n_val;
    int rc = -1;
    if (!ck.config || !ck.params || (r->opt.m && !ck.optim_m) || !ck.optim_v) {
        crnn_fail(err, "out of memory preparing a checkpoint");
    } else {
        model_get_params(m, ck.params);
        if (r->opt.m) r->be->to_host(r->be, ck.optim_m, r->opt.m, m->num_params * sizeof(float));
        r->be->to_host(r->be, ck.optim_v, r->opt.v, m->num_params * sizeof(float));
        if (backend_check(r->be, err) == 0) /* nothing a failed device copied is written */
            rc = write_checkpoint_files(r, &ck, err);
    }
    free(ck.config);
    free(ck.params);
    free(ck.optim_m);
    free(ck.optim_v);
    return rc;
}

int train_advice_underfitting(const float *val_losses, int64_t n, double train_loss) {
    if (n < 4 || !(train_loss > 0)) return 0;
    const double newest = val_losses[n - 1], earlier = val_losses[n - 4];
    if (!isfinite(newest) || !isfinite(earlier)) return 0;
    const int plateau = newest > (1.0 - 0.01) * earlier; /* fell by less than 1%, or rose */
    return plateau && fabs(newest - train_loss) < 0.02 * train_loss;
}

/* After a validation (already in the history): the training loss since the last one against
 * the validation loss. Well above: overfitting. About equal once the validation loss has
 * stopped improving (train_advice_underfitting): underfitting, said once until it stops
 * holding (char-rnn's advice). */
static void advise_on_validation(Run *r, double val_loss) {
    int64_t from = r->last_val_iteration, n = 0;
    double sum = 0;
    for (int64_t k = from; k < r->hist.n_train; k++) /* train_loss[k] is iteration k+1 */
        if (isfinite(r->hist.train_loss[k])) sum += r->hist.train_loss[k], n++;
    if (n == 0) return;
    double train = sum / (double)n;
    if (val_loss > 1.1 * train) {
        r->underfitting_advised = 0;
        report(r->rep, REPORT_ADVICE, "the validation loss (%.3f) is well above the training loss (%.3f): the model is overfitting the training text; use more -dropout or a smaller -rnn_size, or train on more text",
               val_loss, train);
    } else if (train_advice_underfitting(r->hist.val_loss, r->hist.n_val, train)) {
        if (!r->underfitting_advised)
            report(r->rep, REPORT_ADVICE, "the validation loss (%.3f) stays equal to the training loss (%.3f) and has stopped improving (less than 1%% better than 3 validations ago): the model is underfitting; a larger -rnn_size or -num_layers would likely learn more",
                   val_loss, train);
        r->underfitting_advised = 1;
    } else {
        r->underfitting_advised = 0;
    }
}

/* -sample_every: rank 0's sample of -sample_length characters at temperature 0.8, to stdout and
 * the metrics. It runs on a model of its own (batch 1, the training weights copied in, its own
 * hidden state from zero) with its own random numbers (RNG_TRAIN_SAMPLE, keyed by the run's
 * seed and the iteration), so that a run trains exactly as without it. */
static int sample_during_training(Run *r, CrnnError *err) {
    Model *sm = &r->sampler;
    r->be->copy(r->be, sm->params, r->model.params, r->model.num_params * sizeof(real));
    char *text = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&text, &n);
    if (!out) return crnn_fail(err, "out of memory for a sample (-sample_every)");
    const SampleOptions o = {.length = r->s.sample_length, .start_text = "", .sample = 1, .temperature = 0.8,
                             .num_samples = 1, .seed = r->seed, .purpose = RNG_TRAIN_SAMPLE,
                             .position = (uint32_t)r->iteration};
    int rc = sampler_run(sm, &r->vocab, &o, out, err);
    if (fclose(out) != 0 && rc == 0) rc = crnn_fail(err, "out of memory for a sample (-sample_every)");
    if (rc == 0) rc = backend_check(r->be, err);
    if (rc == 0) {
        size_t len = n > 0 && text[n - 1] == '\n' ? n - 1 : n; /* the sampler's closing newline */
        metrics_sample(&r->metrics, run_time_s(r), r->iteration, text, len);
        if (!r->s.quiet) {
            report(r->rep, REPORT_INFO, "sample at i = %" PRId64 " (-sample_every %" PRId64 ", temperature 0.8):",
                   r->iteration, r->s.sample_every);
            report_text(r->rep, REPORT_SAMPLE, text, n);
        }
    }
    free(text);
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
                             nonfinite_name(vl), r->iteration,
                             r->last_checkpoint[0] ? "the last good checkpoint is " : "", r->last_checkpoint,
                             r->last_checkpoint[0] ? "; " : "", r->opt.learning_rate, r->s.grad_clip);
        history_add_val(&r->hist, (float)vl, r->iteration);
        metrics_val(&r->metrics, run_time_s(r), r->iteration, run_epoch(r), vl, evaluate_count(&r->val, r->s.val_max_batches),
                    r->val.count, val_seconds);
        if (!r->s.quiet) {
            const int64_t used = evaluate_count(&r->val, r->s.val_max_batches);
            char part[96] = "";
            if (used < r->val.count)
                snprintf(part, sizeof part, " (the first %" PRId64 " of %" PRId64 " batches, -val_max_batches)", used,
                         r->val.count);
            report(r->rep, REPORT_PROGRESS, "Epoch %.2f / %g, i = %" PRId64 ", val loss = %f%s",
                   (double)r->iteration / (double)r->train.count + 1, r->s.max_epochs, r->iteration, vl, part);
            advise_on_validation(r, vl);
        }
        r->last_val_iteration = r->iteration;
    }
    /* -sample_every: after every N-th validation (checkpoint, without a validation split); its
     * time is left out of the checkpoint record's seconds */
    double sample_seconds = 0;
    const int64_t count = r->have_val ? r->hist.n_val : ++r->sample_checkpoints;
    if (r->s.sample_every > 0 && count % r->s.sample_every == 0) {
        const double t = now_seconds();
        if (sample_during_training(r, err)) return -1;
        sample_seconds = now_seconds() - t;
    }
    /* the checkpoint's record says when it was taken, its elapsed_seconds, so that the records
     * of a run resumed from it continue from there without going back */
    const double taken = run_time_s(r);
    if (write_checkpoint(r, taken, hidden_h, hidden_c, err)) return -1;
    metrics_checkpoint(&r->metrics, taken, r->iteration, now_seconds() - started - val_seconds - sample_seconds);
    return 0;
}

/* Every rank: the hidden states go to rank 0, which validates and writes; then every rank learns
 * whether that worked, so that all go on or all stop. */
static int validate_and_checkpoint(Run *r, CrnnError *err) {
    const double started = now_seconds();
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
        double vl = 0, val_start = now_seconds();
        if (rc == 0 && r->have_val) {
            double mine_sum = 0;
            int vok = validate(r, &mine_sum, err) == 0;
            comm_timed(c, r->iteration, "gathering the validation losses");
            if (evaluate_add_shares(c, vok, mine_sum, r->val.N, &vl, err)) rc = -1;
        }
        if (rc == 0) {
            /* rank 0 writes; the others wait for it as long as it takes */
            if (c->rank != 0) comm_untimed(c);
            const double val_seconds = now_seconds() - val_start;
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

static int load_start(Run *r, const char *resume_path, CrnnError *err) {
    Model *m = &r->model;
    const char *path = resume_path[0] ? resume_path : r->s.init_from;
    if (!*path) {
        model_init_params(m, r->seed);
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
    model_set_params(m, ck.params);
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
    /* resume: everything */
    if (strcmp(ck.optim_name, r->opt.name) != 0) {
        crnn_fail_usage(err, "%s was trained with -optimizer %s; resume with the same optimizer", path, ck.optim_name);
        goto done;
    }
    if (r->opt.m) r->be->to_device(r->be, r->opt.m, ck.optim_m, m->num_params * sizeof(float));
    r->be->to_device(r->be, r->opt.v, ck.optim_v, m->num_params * sizeof(float));
    r->opt.step = ck.optim_step;
    if (r->s.learning_rate_given) {
        if (!r->s.quiet && r->s.learning_rate != ck.learning_rate)
            report(r->rep, REPORT_NOTE, "learning rate set to %g (the checkpoint's was %g)", r->s.learning_rate,
                   ck.learning_rate);
        r->opt.learning_rate = r->s.learning_rate;
    } else {
        r->opt.learning_rate = ck.learning_rate;
    }
    if (ck.num_rng >= 1) r->seed = ck.rng[0];
    r->elapsed_base = ck.elapsed_seconds; /* the run's clock goes on (0 when not recorded) */
    r->iteration = ck.iteration;
    r->epoch_index = ck.epoch_index;
    if (ck.streams == r->train.N) {
        r->batch_index = ck.batch_index;
        /* this rank's streams first .. first+B-1 of every layer's [P*B, H] */
        const int L = m->cfg.L, H = m->cfg.H, B = r->train.B;
        float *h = malloc((size_t)L * B * H * sizeof *h), *c = malloc((size_t)L * B * H * sizeof *c);
        if (!h || !c) {
            free(h);
            free(c);
            crnn_fail(err, "out of memory restoring the hidden states");
            goto done;
        }
        for (int l = 0; l < L; l++) {
            size_t from = ((size_t)l * ck.streams + r->train.first) * H;
            memcpy(h + (size_t)l * B * H, ck.hidden_h + from, (size_t)B * H * sizeof *h);
            if (ck.hidden_c) /* lstm only */
                memcpy(c + (size_t)l * B * H, ck.hidden_c + from, (size_t)B * H * sizeof *c);
            else
                memset(c + (size_t)l * B * H, 0, (size_t)B * H * sizeof *c);
        }
        model_set_state(m, h, c, B);
        free(h);
        free(c);
    } else {
        /* another global batch: the same fraction of the epoch, fresh hidden states */
        double frac = ck.epoch - (double)ck.epoch_index;
        if (frac < 0) frac = 0;
        r->batch_index = (int64_t)floor(frac * (double)r->train.count);
        if (r->batch_index >= r->train.count) r->batch_index = r->train.count - 1;
        if (!r->s.quiet)
            report(r->rep, REPORT_NOTE, "the checkpoint was trained on %d streams and this run has %d (-batch_size x ranks): hidden states start from zero",
                   ck.streams, r->train.N);
    }
    /* histories */
    for (int64_t k = 0; k < ck.num_train_loss; k++) history_add_train(&r->hist, ck.train_loss[k]);
    for (int64_t k = 0; k < ck.num_val; k++) history_add_val(&r->hist, ck.val_loss[k], ck.val_iteration[k]);
    if (!r->s.quiet) report(r->rep, REPORT_INFO, "resuming from %s at iteration %" PRId64, path, r->iteration);
    rc = 0;
done:
    checkpoint_free(&ck);
    return rc;
}

int train_settings_resolve(FlagSet *flags, Comm *comm, const Reporter *rep, TrainSettings *s, CrnnError *err) {
    int quiet = flags_int(flags, "quiet") != 0 || comm->rank != 0;
    char resume_path[PATH_MAX] = "";

    /* char-rnn's -data_dir: DIR/input.txt preprocessed into DIR/input.h5 and DIR/input.json on
     * first use or when the text is newer (rank 0; the others wait for it) */
    if (flags_given(flags, "data_dir") && prepare_data_dir(flags, comm, quiet, rep, err)) return -1;

    /* -resume: find the file, and take the run's flags from it */
    const char *resume = flags_str(flags, "resume");
    if (*resume) {
        if (strcmp(resume, "auto") == 0) {
            char prefix[PATH_MAX];
            checkpoint_prefix(flags, prefix, sizeof prefix);
            find_resume_checkpoint(prefix, resume_path, sizeof resume_path, quiet, rep);
            if (!resume_path[0] && !quiet)
                report(rep, REPORT_INFO, "no checkpoint named %s_*.h5 to resume: starting a fresh run", prefix);
        } else {
            snprintf(resume_path, sizeof resume_path, "%s", resume);
        }
        if (resume_path[0]) {
            Checkpoint ck;
            if (checkpoint_read(resume_path, &ck, 1, err)) return -1;
            int m = merge_resume_flags(flags, &ck, resume_path, quiet, rep, err);
            checkpoint_free(&ck);
            if (m) return -1;
        }
    }
    if (read_settings(flags, s, err) || read_sample_settings(flags, s, err)) return -1;
    if (resume_path[0] && *s->init_from)
        return crnn_fail_usage(err, "-init_from and -resume exclude each other");
    snprintf(s->resume_path, sizeof s->resume_path, "%s", resume_path);
    return 0;
}

int train_run(const TrainSettings *settings, Comm *comm, Backend *be, const Reporter *rep, CrnnError *err) {
    const double started = now_seconds();
    Run run, *r = &run;
    memset(r, 0, sizeof *r);
    r->s = *settings;
    r->comm = comm;
    r->be = be;
    r->rep = rep;
    r->clock_start = started;
    int rc = -1;
    const char *resume_path = r->s.resume_path;
    r->seed = (uint64_t)r->s.seed;
    int quiet;
    quiet = r->s.quiet || comm->rank != 0;
    comm->timer->timeout = r->s.comm_timeout;

    RunLock lock = {.fd = -1};
    if (comm->rank == 0 && prepare_checkpoint_folder(r->s.checkpoint_name, err)) return -1;
    if (vocab_read_json(&r->vocab, r->s.input_json, err)) goto out;
    r->s.model.V = r->vocab.size;
    if (model_config_check(&r->s.model, err)) goto out;

    /* data: this rank's streams of the global P*B, and on rank 0 the validation view */
    const int P = comm->size, B = r->s.B, S = r->s.S;
    int shrunk = 0;
    if (dataset_load_shard(&r->train, r->s.input_h5, "train", P * B, comm->rank * B, B, S, 0,
                           r->vocab.size, &shrunk, comm->mpi_comm, err))
        goto out;
    /* the validation view: P*B streams (fewer when the split is short), shared among the ranks
     * as evenly as they go, each rank's streams contiguous (the first ranks' when there are
     * fewer streams than ranks) */
    int val_B = 0;
    int64_t num_val = 0;
    if (dataset_split_size(r->s.input_h5, "val", &num_val, err)) goto out;
    if (num_val >= S + 1) {
        int64_t N = (int64_t)P * B, fit = (num_val - 1) / S;
        if (N > fit) {
            N = fit;
            if (!quiet && comm->rank == 0)
                report(rep, REPORT_NOTE, "the validation split (%" PRId64 " tokens) holds only %" PRId64 " streams of %d; validating on %" PRId64,
                       num_val, N, P * B, N);
        }
        int first, mine;
        evaluate_share(N, comm, &first, &mine);
        if (dataset_load_shard(&r->val, r->s.input_h5, "val", (int)N, first, mine, S, 0, r->vocab.size, &shrunk,
                               comm->mpi_comm, err))
            goto out;
        r->have_val = 1;
        val_B = r->val.B;
    } else if (!quiet && comm->rank == 0) {
        report(rep, REPORT_NOTE, "the validation split has %" PRId64 " tokens, fewer than -seq_length + 1 = %d: no validation loss",
               num_val, S + 1);
    }
    int max_B = B > val_B ? B : val_B;
    if (model_create(&r->model, &r->s.model, be, max_B, S, err)) goto out;
    if (optim_create(&r->opt, be, r->s.optimizer, r->model.num_params, r->s.learning_rate,
                     r->s.decay_rate, err))
        goto out;
    r->x = malloc((size_t)max_B * S * sizeof(int32_t));
    r->y = malloc((size_t)max_B * S * sizeof(int32_t));
    if (!r->x || !r->y) {
        crnn_fail(err, "out of memory");
        goto out;
    }
    if (load_start(r, resume_path, err)) goto out;
    r->last_val_iteration = r->iteration;
    /* -sample_every: rank 0's model for the samples (one stream, one step at a time, no dropout) */
    if (r->s.sample_every > 0) {
        ModelConfig sampler_cfg = r->s.model;
        sampler_cfg.dropout = 0;
        int made = comm->rank != 0 || model_create(&r->sampler, &sampler_cfg, be, 1, 1, err) == 0;
        if (comm_all_ok(comm, made, "could not make the model for -sample_every", err)) goto out;
    }
    /* one writer per run: rank 0 holds <checkpoint_name>.lock from here, before its first write
     * (the metrics), to its exit; everything above only read */
    int locked = 1;
    if (comm->rank == 0) {
        char warning[PATH_MAX + 256];
        locked = runlock_acquire(&lock, r->s.checkpoint_name, warning, sizeof warning, err) == 0;
        if (locked && warning[0]) report(rep, REPORT_WARNING, "%s", warning);
    }
    if (comm_all_ok(comm, locked, "could not take the run's lock", err)) goto out;
    if (comm->rank == 0 && metrics_open(&r->metrics, r->s.checkpoint_name, resume_path[0] ? r->iteration : -1, err))
        goto out;
    if (comm->size > 1) { /* every rank starts from the same parameters */
        uint64_t sum = params_checksum(&r->model);
        int64_t hi = (int64_t)sum, lo = (int64_t)~sum;
        if (comm->allreduce_max_int(comm, &hi, err) || comm->allreduce_max_int(comm, &lo, err)) goto out;
        if ((uint64_t)hi != sum || (uint64_t)lo != ~sum) {
            crnn_fail(err, "rank %d: the ranks' parameters differ at the start (checksum %016" PRIx64 "); every rank must read the same files", comm->rank, sum);
            goto out;
        }
    }

    /* start-up (data, model, the checkpoint resumed from): rank 0's, after its device */
    metrics_start(&r->metrics, run_time_s(r), r->iteration, now_seconds() - started);

    /* how far to go: max_epochs of batches from the start of training, capped by max_iters */
    const int64_t count = r->train.count;
    int64_t target_pos = (int64_t)floor(r->s.max_epochs * (double)count + 1e-9);
    if (target_pos < 1) target_pos = 1;
    int64_t pos = r->epoch_index * count + r->batch_index;
    int64_t total = r->iteration + (target_pos - pos);
    if (r->s.max_iters > 0 && r->s.max_iters < total) total = r->s.max_iters;

    if (!quiet) {
        report(rep, REPORT_INFO, "crnn-train: %s %d x %d, %zu parameters; %" PRId64 " training tokens in %d streams x %" PRId64
               " batches of %d; %" PRId64 " iterations",
               r->model.cfg.model_type, r->model.cfg.L, r->model.cfg.H, r->model.num_params,
               r->train.num, r->train.N, count, S, total);
        /* char-rnn's rule of thumb: parameters and training characters of the same order */
        double ratio = (double)r->model.num_params / (double)r->train.num;
        if (ratio > 10)
            report(rep, REPORT_ADVICE, "%zu parameters for %" PRId64 " training characters: the model is far larger than the text and will memorise it; use a smaller -rnn_size or -num_layers, or more text",
                   r->model.num_params, r->train.num);
        else if (ratio < 0.1)
            report(rep, REPORT_ADVICE, "%zu parameters for %" PRId64 " training characters: the model is far smaller than the text; a larger -rnn_size or -num_layers would likely learn more",
                   r->model.num_params, r->train.num);
    }
    if (r->iteration >= total) {
        if (!quiet) report(rep, REPORT_INFO, "nothing to do: the run is at iteration %" PRId64 " of %" PRId64, r->iteration, total);
        rc = 0;
        goto out;
    }

    const double chars_per_step = (double)P * B * S;
    const int overlap = r->s.overlap;
    double step_time_total = 0, window_start = now_seconds(), run_start = window_start;
    const int live = rep && rep->live;
    double window_time[3] = {0, 0, 0}; /* compute, communication, I/O over the print window */
    double *rank_times = comm->rank == 0 ? calloc((size_t)P * 3, sizeof *rank_times) : NULL;
    if (comm->rank == 0 && !rank_times) {
        crnn_fail(err, "out of memory");
        rc = -1;
        goto out;
    }
    int64_t window_steps = 0, steps_done = 0;
    rc = 0;
    while (r->iteration < total) {
        if (r->batch_index == 0) model_reset_state(&r->model); /* each epoch starts from zero */
        double t0 = now_seconds();
        dataset_batch(&r->train, r->batch_index, r->x, r->y);
        double t_io = now_seconds();
        /* dropout's masks are keyed by the iteration and the global streams, not by the rank;
         * validation (evaluate_batches) turns it off again */
        model_set_dropout(&r->model, 1, r->seed, (uint64_t)r->iteration, comm->rank * B);
        double loss = model_forward(&r->model, r->x, r->y, B, S);
        Buckets buckets = {.comm = comm, .err = err};
        model_backward(&r->model, overlap ? bucket_ready : NULL, &buckets);
        double t_backward = now_seconds();
        real loss_mean = (real)loss;
        const int64_t step = r->iteration + 1;
        comm_timed(comm, step, "the gradient allreduce");
        int failed = buckets.failed || (overlap ? comm->wait_all(comm, err)
                                                : comm->allreduce_mean(comm, r->model.grads, r->model.num_params, err));
        comm_timed(comm, step, "the loss allreduce");
        if (failed || comm->allreduce_mean(comm, &loss_mean, 1, err)) {
            rc = -1;
            break;
        }
        double t_comm = now_seconds();
        if (backend_check(be, err)) { /* a device's failure (the loss's copy waited for the step) */
            rc = -1;
            break;
        }
        r->iteration++;
        const int at_print = r->s.print_every > 0 && r->iteration % r->s.print_every == 0;
        if (!isfinite(loss_mean)) {
            crnn_fail(err, "the training loss is %s at iteration %" PRId64 "; %s%s%stry a lower -learning_rate (now %g) or a -grad_clip (now %g)",
                      nonfinite_name(loss_mean), r->iteration, r->last_checkpoint[0] ? "the last good checkpoint is " : "",
                      r->last_checkpoint, r->last_checkpoint[0] ? "; " : "", r->opt.learning_rate, r->s.grad_clip);
            rc = -1;
            break;
        }
        /* the gradient's norm before clipping, for the metrics */
        double grad_norm = at_print ? sqrt(be->sumsq(be, r->model.grads, r->model.num_params)) : 0;
        optim_clip(be, r->model.grads, r->model.num_params, r->s.grad_clip, r->s.clip_norm);
        optim_step(&r->opt, r->model.params, r->model.grads);
        double t1 = now_seconds();
        step_time_total += t1 - t0;
        window_time[0] += (t_backward - t_io) + (t1 - t_comm); /* compute */
        window_time[1] += t_comm - t_backward;                 /* communication */
        window_time[2] += t_io - t0;                            /* I/O */
        steps_done++;
        window_steps++;
        history_add_train(&r->hist, (float)loss_mean);
        if (r->n_steps == r->cap_steps) {
            int64_t cap = r->cap_steps ? 2 * r->cap_steps : 1024;
            float *grown = realloc(r->step_times, (size_t)cap * sizeof *grown);
            if (grown) r->step_times = grown, r->cap_steps = cap;
        }
        if (r->n_steps < r->cap_steps) r->step_times[r->n_steps++] = (float)(t1 - t0);

        r->batch_index++;
        if (r->batch_index == count) { /* the end of an epoch */
            r->batch_index = 0;
            r->epoch_index++;
            int64_t e = r->epoch_index; /* epochs completed */
            if (r->s.lr_decay_factor != 1 && e % r->s.lr_decay_every == 0)
                r->opt.learning_rate *= r->s.lr_decay_factor;
            if (r->s.learning_rate_decay != 1 && e >= r->s.learning_rate_decay_after)
                r->opt.learning_rate *= r->s.learning_rate_decay;
        }
        if (at_print) {
            double elapsed = now_seconds() - window_start;
            double cps = elapsed > 0 ? window_steps * chars_per_step / elapsed : 0.0;
            /* every rank's time split, per step over the window, to rank 0 */
            for (int k = 0; k < 3; k++) window_time[k] /= (double)window_steps;
            comm_timed(comm, r->iteration, "gathering the step times");
            if (comm->gather(comm, window_time, sizeof window_time, rank_times, 0, err)) {
                rc = -1;
                break;
            }
            metrics_train(&r->metrics, run_time_s(r), r->iteration, run_epoch(r), (double)loss_mean, r->opt.learning_rate,
                          grad_norm, cps, rank_times, P);
            if (!quiet && live) {
                char val[32] = "-", elapsed_text[32], eta[32];
                if (r->hist.n_val > 0) snprintf(val, sizeof val, "%.4f", (double)r->hist.val_loss[r->hist.n_val - 1]);
                format_duration(now_seconds() - run_start, elapsed_text, sizeof elapsed_text);
                format_duration((double)(total - r->iteration) * step_time_total / (double)steps_done, eta, sizeof eta);
                report(rep, REPORT_LIVE, "Epoch %.2f / %g, i = %" PRId64 " / %" PRId64 ", loss = %.4f, val %s, %.0f chars/s, %s elapsed, ETA %s",
                       (double)r->iteration / (double)count + 1, r->s.max_epochs, r->iteration, total,
                       (double)loss_mean, val, cps, elapsed_text, eta);
            } else if (!quiet) {
                report(rep, REPORT_PROGRESS, "Epoch %.2f / %g, i = %" PRId64 " / %" PRId64 ", loss = %f, %.0f chars/s",
                       (double)r->iteration / (double)count + 1, r->s.max_epochs, r->iteration, total,
                       (double)loss_mean, cps);
            }
            window_steps = 0;
            window_time[0] = window_time[1] = window_time[2] = 0;
            window_start = now_seconds();
        }
        int at_checkpoint = (r->s.checkpoint_every > 0 && r->iteration % r->s.checkpoint_every == 0) ||
                            r->iteration == total;
        int64_t stop = stop_signal != 0;
        comm_timed(comm, r->iteration, "the stop flag's allreduce");
        if (comm->allreduce_max_int(comm, &stop, err)) {
            rc = -1;
            break;
        }
        if (at_checkpoint || stop) {
            if (validate_and_checkpoint(r, err)) {
                rc = -1;
                break;
            }
            comm_timed(comm, r->iteration, "the barrier after the checkpoint");
            if (comm->barrier(comm, err)) {
                rc = -1;
                break;
            }
            window_steps = 0;
            window_time[0] = window_time[1] = window_time[2] = 0;
            window_start = now_seconds();
        }
        if (stop && r->iteration < total) {
            if (!quiet)
                report(rep, REPORT_INFO, "stopped by a signal at iteration %" PRId64 "; %s holds the run: continue it with -resume auto (or -resume %s)",
                       r->iteration, r->last_checkpoint, r->last_checkpoint);
            rc = CRNN_EXIT_STOPPED;
            break;
        }
    }
    if (rc == 0 && !quiet && steps_done > 0)
        report(rep, REPORT_INFO, "done: %" PRId64 " iterations, %.3f ms/iter, %.0f chars/s", steps_done,
               1e3 * step_time_total / steps_done, steps_done * chars_per_step / step_time_total);
    free(rank_times);
out:
    if (rc != 0 && rc != CRNN_EXIT_STOPPED) rc = -1;
    metrics_close(&r->metrics);
    if (comm->timer->broken) { /* the program ends the job now (comm->abort), holding the lock to
                                * the end; a device may still wait for the lost rank, and
                                * freeing its memory would wait with it */
        return -1;
    }
    runlock_release(&lock);
    free(r->step_times);
    free(r->x);
    free(r->y);
    optim_destroy(&r->opt);
    model_destroy(&r->sampler);
    model_destroy(&r->model);
    dataset_free(&r->train);
    dataset_free(&r->val);
    vocab_free(&r->vocab);
    free(r->hist.train_loss);
    free(r->hist.val_loss);
    free(r->hist.val_iteration);
    return rc;
}
