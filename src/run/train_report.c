/* What a training run tells its Reporter (include/crnn/report.h), in torch-rnn's words where it
 * has them: the first line, progress (torch-rnn's lines or the live line), validations, the
 * advice of char-rnn's README, and -sample_every's samples. Rank 0 only, and nothing when quiet. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "crnn/evaluate.h"
#include "crnn/rng.h"
#include "crnn/sampler.h"
#include "train_internal.h"

const char *train_nonfinite_name(double v) { return isnan(v) ? "nan" : "inf"; }

static void format_duration(double seconds, char *out, size_t cap) {
    long s = seconds > 0 && seconds < 1e9 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600)
        snprintf(out, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(out, cap, "%ld:%02ld", s / 60, s % 60);
}

void train_report_start(const Run *r, int64_t total) {
    if (r->quiet) return;
    report(r->rep, REPORT_INFO, "crnn-train: %s %d x %d, %zu parameters; %" PRId64 " training tokens in %d streams x %" PRId64
           " batches of %d; %" PRId64 " iterations",
           r->model.cfg.model_type, r->model.cfg.L, r->model.cfg.H, r->model.num_params, r->train.num, r->train.N,
           r->train.count, r->s.S, total);
    /* char-rnn's rule of thumb: parameters and training characters of the same order */
    double ratio = (double)r->model.num_params / (double)r->train.num;
    if (ratio > 10)
        report(r->rep, REPORT_ADVICE, "%zu parameters for %" PRId64 " training characters: the model is far larger than the text and will memorise it; use a smaller -rnn_size or -num_layers, or more text",
               r->model.num_params, r->train.num);
    else if (ratio < 0.1)
        report(r->rep, REPORT_ADVICE, "%zu parameters for %" PRId64 " training characters: the model is far smaller than the text; a larger -rnn_size or -num_layers would likely learn more",
               r->model.num_params, r->train.num);
}

void train_report_progress(const Run *r, int64_t total, double loss, double chars_per_s, double elapsed,
                           double eta) {
    if (r->quiet) return;
    const double epoch = (double)r->iteration / (double)r->train.count + 1; /* torch-rnn's, from 1 */
    if (r->rep && r->rep->live) {
        char val[32] = "-", elapsed_text[32], eta_text[32];
        if (r->hist.n_val > 0) snprintf(val, sizeof val, "%.4f", (double)r->hist.val_loss[r->hist.n_val - 1]);
        format_duration(elapsed, elapsed_text, sizeof elapsed_text);
        format_duration(eta, eta_text, sizeof eta_text);
        report(r->rep, REPORT_LIVE, "Epoch %.2f / %g, i = %" PRId64 " / %" PRId64 ", loss = %.4f, val %s, %.0f chars/s, %s elapsed, ETA %s",
               epoch, r->s.max_epochs, r->iteration, total, loss, val, chars_per_s, elapsed_text, eta_text);
    } else {
        report(r->rep, REPORT_PROGRESS, "Epoch %.2f / %g, i = %" PRId64 " / %" PRId64 ", loss = %f, %.0f chars/s", epoch,
               r->s.max_epochs, r->iteration, total, loss, chars_per_s);
    }
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

void train_report_validation(Run *r, double vl) {
    if (r->quiet) return;
    const int64_t used = evaluate_count(&r->val, r->s.val_max_batches);
    char part[96] = "";
    if (used < r->val.count)
        snprintf(part, sizeof part, " (the first %" PRId64 " of %" PRId64 " batches, -val_max_batches)", used,
                 r->val.count);
    report(r->rep, REPORT_PROGRESS, "Epoch %.2f / %g, i = %" PRId64 ", val loss = %f%s",
           (double)r->iteration / (double)r->train.count + 1, r->s.max_epochs, r->iteration, vl, part);
    advise_on_validation(r, vl);
}

/* -sample_every: rank 0's sample of -sample_length characters at temperature 0.8, to the Reporter
 * and the metrics. It runs on a model of its own (batch 1, the training weights copied in, its own
 * hidden state from zero) with its own random numbers (RNG_TRAIN_SAMPLE, keyed by the run's
 * seed and the iteration), so that a run trains exactly as without it. */
int train_sample(Run *r, CrnnError *err) {
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
        metrics_sample(&r->metrics, train_time_s(r), r->iteration, text, len);
        if (!r->quiet) {
            report(r->rep, REPORT_INFO, "sample at i = %" PRId64 " (-sample_every %" PRId64 ", temperature 0.8):",
                   r->iteration, r->s.sample_every);
            report_text(r->rep, REPORT_SAMPLE, text, n);
        }
    }
    free(text);
    return rc;
}
