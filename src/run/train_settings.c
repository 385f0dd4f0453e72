/* crnn-train's flags into TrainSettings (docs/FORMATS.md section 5): the one place that reads them by
 * name. On -resume the checkpoint's /config (flag name -> value) is merged into the flags first,
 * each flag as its Flag.resume says (docs/FORMATS.md section 4). */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crnn/checkpoint.h"
#include "train_internal.h"

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

/* On resume (docs/FORMATS.md section 4): flags not given take the checkpoint's values; a given one
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
            return crnn_fail_usage(err, "-%s %s differs from the checkpoint %s (-%s %s); a resumed run keeps its model, -seq_length and -precision: drop -%s, or start a new run with -init_from",
                             e->name, now, path, e->name, was, e->name);
        if (f->resume == FLAG_RESUME_GENERATOR) {
            if (!quiet) report(rep, REPORT_NOTE, "-%s is ignored on resume; the checkpoint's generator continues", e->name);
            continue;
        }
        if (f->resume == FLAG_RESUME_NOTED && !quiet)
            report(rep, REPORT_NOTE, "-%s changes from %s to %s on resume", e->name, was, now);
    }
    /* a kept flag that an older checkpoint's /config lacks had its default there */
    for (int k = 0; k < flags->count; k++) {
        const Flag *f = &flags->flags[k];
        if (f->resume != FLAG_RESUME_KEPT || !f->set || f->type != FLAG_STRING) continue;
        if (!checkpoint_config(ck, f->name) && strcmp(f->s, f->def) != 0)
            return crnn_fail_usage(err, "-%s %s differs from the checkpoint %s (written before -%s existed: -%s %s); a resumed run keeps its model, -seq_length and -precision: drop -%s, or start a new run with -init_from",
                                   f->name, f->s, path, f->name, f->name, f->def, f->name);
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
    s->precision = strcmp(flags_str(flags, "precision"), "bf16") == 0 ? PRECISION_BF16 : PRECISION_FLOAT32;
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
    const char *allreduce = flags_str(flags, "allreduce");
    s->shared = strcmp(allreduce, "shared") == 0 ? 2 : strcmp(allreduce, "auto") == 0;
    s->overlap = strcmp(allreduce, "flat") != 0; /* auto without shared memory: overlap */
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

/* -sample_every and -sample_length (docs/FORMATS.md section 5). */
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

/* char-rnn's -data_dir: its text preprocessed (train_prepare_data_dir), and the files written
 * become -input_h5 and -input_json. */
static int use_data_dir(FlagSet *flags, Comm *comm, int quiet, const Reporter *rep, CrnnError *err) {
    if (flags_given(flags, "input_h5") || flags_given(flags, "input_json"))
        return crnn_fail_usage(err, "give either -data_dir (char-rnn) or -input_h5 and -input_json (torch-rnn), not both");
    char h5[PATH_MAX + 16], json[PATH_MAX + 16];
    if (train_prepare_data_dir(flags_str(flags, "data_dir"), comm, quiet, rep, h5, json, sizeof h5, err)) return -1;
    if (flags_set_text(flags, "input_h5", h5, err) || flags_set_text(flags, "input_json", json, err)) return -1;
    return 0;
}

/* -resume: the checkpoint to continue (path; "" when -resume auto finds none), its /config
 * merged into flags. */
static int use_resume(FlagSet *flags, int quiet, const Reporter *rep, char *path, size_t cap, CrnnError *err) {
    const char *resume = flags_str(flags, "resume");
    path[0] = '\0';
    if (!*resume) return 0;
    if (strcmp(resume, "auto") == 0) {
        char prefix[PATH_MAX];
        checkpoint_prefix(flags, prefix, sizeof prefix);
        if (train_find_resume_checkpoint(prefix, path, cap, quiet, rep, err)) return -1;
        if (!path[0] && !quiet)
            report(rep, REPORT_INFO, "no checkpoint named %s_*.h5 to resume: starting a fresh run", prefix);
    } else {
        snprintf(path, cap, "%s", resume);
    }
    if (!path[0]) return 0;
    Checkpoint ck;
    if (checkpoint_read(path, &ck, 1, err)) return -1;
    int rc = merge_resume_flags(flags, &ck, path, quiet, rep, err);
    checkpoint_free(&ck);
    return rc;
}

int train_settings_resolve(FlagSet *flags, Comm *comm, const Reporter *rep, TrainSettings *s, CrnnError *err) {
    const int quiet = flags_int(flags, "quiet") != 0 || comm->rank != 0;
    char resume_path[PATH_MAX];
    if (flags_given(flags, "data_dir") && use_data_dir(flags, comm, quiet, rep, err)) return -1;
    if (use_resume(flags, quiet, rep, resume_path, sizeof resume_path, err)) return -1;
    if (read_settings(flags, s, err) || read_sample_settings(flags, s, err)) return -1;
    if (resume_path[0] && *s->init_from)
        return crnn_fail_usage(err, "-init_from and -resume exclude each other");
    snprintf(s->resume_path, sizeof s->resume_path, "%s", resume_path);
    return 0;
}
