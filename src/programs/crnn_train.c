/* crnn-train: flags and wiring; the loop is in src/run/train.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crnn/comm.h"
#include "crnn/flags.h"
#include "crnn/report.h"
#include "crnn/runtime.h"
#include "crnn/train.h"
#include "program.h"

static Flag train_flags[] = {
    {.name = "input_h5", .type = FLAG_STRING, .def = "", .help = "the .h5 data written by crnn-preprocess", .resume = FLAG_RESUME_FREE},
    {.name = "input_json", .type = FLAG_STRING, .def = "", .help = "the .json vocabulary written with it", .resume = FLAG_RESUME_FREE},
    {.name = "data_dir", .type = FLAG_STRING, .def = "", .help = "char-rnn's folder: DIR/input.txt, preprocessed to DIR/input.h5 and .json when new or changed (5% validation)"},
    {.name = "batch_size", .type = FLAG_INT, .def = "50", .help = "text streams per rank (B)", .resume = FLAG_RESUME_FREE},
    {.name = "seq_length", .type = FLAG_INT, .def = "50", .help = "characters per stream and step (S): the backpropagation length", .resume = FLAG_RESUME_KEPT},
    {.name = "model_type", .type = FLAG_STRING, .def = "lstm", .help = "the cell: lstm, gru or rnn (tanh), with PyTorch's nn.LSTM, nn.GRU and nn.RNN equations (docs/FORMATS.md section 3)", .alias = "model", .choices = "lstm|gru|rnn", .resume = FLAG_RESUME_KEPT},
    {.name = "wordvec_size", .type = FLAG_INT, .def = "64", .help = "embedding width (D); 0 for char-rnn's one-hot input", .resume = FLAG_RESUME_KEPT},
    {.name = "rnn_size", .type = FLAG_INT, .def = "128", .help = "hidden units per layer (H)", .resume = FLAG_RESUME_KEPT},
    {.name = "num_layers", .type = FLAG_INT, .def = "2", .help = "recurrent layers (L)", .resume = FLAG_RESUME_KEPT},
    {.name = "dropout", .type = FLAG_REAL, .def = "0", .help = "probability of zeroing each unit of every layer's output during training (0 <= p < 1; char-rnn uses 0.5 for large models)"},
    {.name = "precision", .type = FLAG_STRING, .def = "float32", .help = "the matrix products' precision: float32, or bf16 (bf16 operands, float32 sums; weights, states, softmax and optimizer stay float32); CPU only", .choices = "float32|bf16", .resume = FLAG_RESUME_KEPT},
    {.name = "batchnorm", .type = FLAG_INT, .def = "0", .help = "torch-rnn's batch normalisation (not supported)"},
    {.name = "max_epochs", .type = FLAG_REAL, .def = "50", .help = "passes over the training data (may be fractional)", .resume = FLAG_RESUME_FREE},
    {.name = "max_iters", .type = FLAG_INT, .def = "0", .help = "stop at this iteration (0: no limit)", .resume = FLAG_RESUME_FREE},
    {.name = "learning_rate", .type = FLAG_REAL, .def = "2e-3", .help = "Adam's learning rate", .resume = FLAG_RESUME_FREE},
    {.name = "grad_clip", .type = FLAG_REAL, .def = "5", .help = "clamp each gradient element to +-this (0: off)"},
    {.name = "grad_clip_mode", .type = FLAG_STRING, .def = "clamp", .help = "clamp: each element to +-grad_clip; norm: the whole gradient to norm grad_clip", .choices = "clamp|norm"},
    {.name = "lr_decay_every", .type = FLAG_INT, .def = "5", .help = "multiply the learning rate by -lr_decay_factor every this many epochs"},
    {.name = "lr_decay_factor", .type = FLAG_REAL, .def = "0.5", .help = "the decay factor (1: no decay)"},
    {.name = "optimizer", .type = FLAG_STRING, .def = "adam", .help = "adam (torch-rnn's) or rmsprop (char-rnn's)", .choices = "adam|rmsprop", .resume = FLAG_RESUME_KEPT},
    {.name = "decay_rate", .type = FLAG_REAL, .def = "0.95", .help = "RMSprop's decay (for -optimizer rmsprop)"},
    {.name = "learning_rate_decay", .type = FLAG_REAL, .def = "1", .help = "char-rnn's schedule: multiply by this after every epoch from -learning_rate_decay_after (1: off)"},
    {.name = "learning_rate_decay_after", .type = FLAG_INT, .def = "10", .help = "the first epoch of char-rnn's decay"},
    {.name = "print_every", .type = FLAG_INT, .def = "1", .help = "print the loss every this many iterations (0: never)", .resume = FLAG_RESUME_FREE},
    {.name = "checkpoint_every", .type = FLAG_INT, .def = "1000", .help = "validate and write a checkpoint every this many iterations (and at the end)", .alias = "eval_val_every", .resume = FLAG_RESUME_FREE},
    {.name = "val_max_batches", .type = FLAG_INT, .def = "0", .help = "validate on the first this many batches of the validation split only, the same ones every time (0: all of it)", .resume = FLAG_RESUME_FREE},
    {.name = "sample_every", .type = FLAG_INT, .def = "0", .help = "print a sample (and write it to the metrics) after every this many validations; 0: never", .resume = FLAG_RESUME_FREE},
    {.name = "sample_length", .type = FLAG_INT, .def = "200", .help = "characters per -sample_every sample, drawn at temperature 0.8", .resume = FLAG_RESUME_FREE},
    {.name = "checkpoint_name", .type = FLAG_STRING, .def = "cv/checkpoint", .help = "checkpoints are <checkpoint_name>_<iteration>.h5", .resume = FLAG_RESUME_FREE},
    {.name = "checkpoint_dir", .type = FLAG_STRING, .def = "cv", .help = "char-rnn's checkpoint folder; with it or -savefile, checkpoints are DIR/lm_<savefile>_epoch<e>_<val>.h5"},
    {.name = "savefile", .type = FLAG_STRING, .def = "lstm", .help = "char-rnn's checkpoint name (see -checkpoint_dir)"},
    {.name = "keep_last", .type = FLAG_INT, .def = "0", .help = "keep only this many newest checkpoints (0: all)", .resume = FLAG_RESUME_FREE},
    {.name = "init_from", .type = FLAG_STRING, .def = "", .help = "start from this checkpoint's weights (fresh optimizer)", .resume = FLAG_RESUME_OWN},
    {.name = "reset_iterations", .type = FLAG_INT, .def = "1", .help = "with -init_from: 1 starts counting at 0, 0 keeps the checkpoint's count", .resume = FLAG_RESUME_OWN},
    {.name = "resume", .type = FLAG_STRING, .def = "", .help = "continue a run exactly: a checkpoint file, or auto for the newest <checkpoint_name>_*.h5", .resume = FLAG_RESUME_OWN},
    CRNN_DEVICE_FLAGS,
    {.name = "seed", .type = FLAG_INT, .def = "123", .help = "seed of the initialisation", .resume = FLAG_RESUME_GENERATOR},
    {.name = "quiet", .type = FLAG_SWITCH, .def = "0", .help = "print nothing but errors", .resume = FLAG_RESUME_FREE},
    {.name = "progress", .type = FLAG_STRING, .def = "auto", .help = "line: one live line redrawn in place; plain: a line per -print_every; auto: line on a terminal, not under mpirun", .choices = "auto|line|plain", .resume = FLAG_RESUME_FREE},
    {.name = "comm_timeout", .type = FLAG_REAL, .def = "600", .help = "seconds a rank waits for the others in a training step's collective before it ends the whole job (a lost host or rank); 0: wait for ever", .resume = FLAG_RESUME_FREE},
    {.name = "verbose", .type = FLAG_INT, .def = "0", .help = "1: print each rank's host, node-local rank, threads and device at start", .resume = FLAG_RESUME_FREE},
    {.name = "allreduce", .type = FLAG_STRING, .def = "auto", .help = "gradient reduction across ranks: auto is shared where every rank trains on the CPU of one node, else overlap", .choices = "auto|shared|overlap|flat", .resume = FLAG_RESUME_FREE},
    {.name = "speed_benchmark", .type = FLAG_INT, .def = "0", .help = "torch-rnn's flag: step times are always measured", .resume = FLAG_RESUME_FREE},
    {.name = "memory_benchmark", .type = FLAG_INT, .def = "0", .help = "torch-rnn's flag (CUDA only)", .resume = FLAG_RESUME_FREE},
};

/* What the run tells the user (include/crnn/report.h): lines on stdout, warnings on stderr, and
 * the live progress line (-progress line, or auto on a terminal), redrawn in place with \r, which
 * anything else shown first clears. Each message is flushed at once: a run may be watched, or
 * stopped by a signal. */
typedef struct Console {
    const char *program;
    int live_shown; /* the live line is on the screen */
} Console;

static void console_end_live(Console *c) {
    if (c->live_shown) fputs("\r\033[K", stdout);
    c->live_shown = 0;
}

static void console_emit(void *ctx, ReportKind kind, const char *text, size_t len) {
    Console *c = ctx;
    if (kind == REPORT_WARNING) {
        fflush(stdout);
        fprintf(stderr, "%s: warning: %.*s\n", c->program, (int)len, text);
        return;
    }
    if (kind == REPORT_LIVE) {
        fputs("\r\033[K", stdout);
        fwrite(text, 1, len, stdout);
        c->live_shown = 1;
    } else {
        console_end_live(c);
        if (kind == REPORT_NOTE) fputs("note: ", stdout);
        if (kind == REPORT_ADVICE) fputs("advice: ", stdout);
        fwrite(text, 1, len, stdout);
        if (kind != REPORT_SAMPLE) fputc('\n', stdout);
    }
    fflush(stdout);
}

/* -verbose 1: where each rank runs, one line per rank in rank order, printed by rank 0 */
static int report_ranks(Comm *comm, Backend *be, int threads, CrnnError *err) {
    enum { LINE = 256 };
    char mine[LINE], cpus[96];
    runtime_cpu_list(cpus, sizeof cpus);
    const int device = be->device;
    if (device < 0) /* on the CPU: its threads */
        snprintf(mine, sizeof mine, "rank %d of %d: host %s, node-local rank %d of %d, %s backend, %d thread%s, CPUs %s",
                 comm->rank, comm->size, comm->host, comm->local_rank, comm->local_size, be->name, threads,
                 threads == 1 ? "" : "s", cpus);
    else
        snprintf(mine, sizeof mine, "rank %d of %d: host %s, node-local rank %d of %d, %s device %d, CPUs %s",
                 comm->rank, comm->size, comm->host, comm->local_rank, comm->local_size, be->name, device, cpus);
    char *all = comm->rank == 0 ? malloc((size_t)comm->size * LINE) : NULL;
    int ok = comm->rank != 0 || all != NULL;
    if (comm_all_ok(comm, ok, "ran out of memory", err)) {
        free(all);
        return comm->rank == 0 && !ok ? crnn_fail(err, "out of memory") : -1;
    }
    int rc = comm->gather(comm, mine, LINE, all, 0, err);
    if (rc == 0 && all) {
        for (int r = 0; r < comm->size; r++) printf("%s\n", all + (size_t)r * LINE);
        fflush(stdout);
    }
    free(all);
    return rc;
}

int main(int argc, char **argv) {
    FlagSet flags = {.program = "crnn-train",
                     .summary = "Trains a character-level language model on data written by crnn-preprocess.",
                     .flags = train_flags,
                     .count = (int)(sizeof train_flags / sizeof train_flags[0]),
                     .has_config = 1,
                     .stops_on_signal = 1};
    int status;
    if (!program_start(&flags, argc, argv, &status)) return status;
    CrnnError err = {.msg = ""};
    Comm *comm = comm_create(&argc, &argv, &err);
    Backend *be = NULL;
    int rc = -1, threads = 1;
    if (comm) { /* a rank that cannot start its device stops every rank */
        threads = runtime_blas_threads(comm->local_size);
        char notice[CRNN_ERROR_MAX];
        be = runtime_backend(flags_int(&flags, "gpu"), flags_str(&flags, "gpu_backend"), comm->local_rank, threads,
                             notice, sizeof notice, &err);
        if (be && notice[0] && flags_int(&flags, "quiet") == 0 && comm->rank == 0)
            fprintf(stderr, "%s: %s\n", flags.program, notice);
        if (comm_all_ok(comm, be != NULL, "could not start", &err)) {
            backend_destroy(be);
            be = NULL;
        }
    }
    if (be) { /* on CUDA devices the gradients go through NCCL (which then owns comm) */
        Comm *reducer = runtime_gradient_comm(comm, be, &err);
        if (reducer) comm = reducer;
        if (comm_all_ok(comm, reducer != NULL, "could not start", &err)) {
            backend_destroy(be);
            be = NULL;
        }
    }
    if (be && flags_int(&flags, "verbose") && report_ranks(comm, be, threads, &err)) {
        backend_destroy(be);
        be = NULL;
    }
    if (be) {
        train_catch_signals();
        Console console = {.program = flags.program};
        Reporter reporter = {.emit = console_emit, .ctx = &console};
        TrainSettings settings;
        rc = train_settings_resolve(&flags, comm, &reporter, &settings, &err);
        if (rc == 0) {
            /* -progress (resolved: a resumed run keeps its own): the live line on a terminal,
             * never under a launcher (its relay of stdout is a pseudo-terminal even when the
             * job's output goes to a file), plain lines otherwise */
            const char *progress = flags_str(&flags, "progress");
            reporter.live = strcmp(progress, "line") == 0 ||
                            (strcmp(progress, "auto") == 0 && isatty(STDOUT_FILENO) && !comm->under_launcher);
            rc = train_run(&settings, comm, be, &reporter, &err);
        }
        console_end_live(&console);
        fflush(stdout);
    }
    if (rc < 0) {
        if (comm && comm->size > 1 && strncmp(err.msg, "rank ", 5) != 0)
            crnn_fail_context(&err, "rank %d of %d", comm->rank, comm->size);
        program_error(flags.program, &err);
        /* a rank that waited in vain cannot finish cleanly (MPI_Finalize would wait for the
         * lost rank too): the whole job ends here */
        if (comm && comm->timer->broken) comm->abort(comm, 1);
    }
    backend_destroy(be);
    if (comm) comm->destroy(comm);
    flags_free(&flags);
    /* 2 for a flag or value error (every rank finds it: the ranks read the same flags and files),
     * 1 for a runtime error, 75 after a signal */
    return rc < 0 ? crnn_exit_status(&err) : rc;
}
