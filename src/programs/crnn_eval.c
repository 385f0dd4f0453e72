/* crnn-eval: the loss of a checkpoint on a split, printed as torch-rnn's "<split> loss = x".
 * Under mpirun every rank evaluates its share of the streams (one collective read of its
 * slice) and rank 0 adds the shares and prints, as crnn-train's validation does. */
#include <stdio.h>
#include <stdlib.h>

#include "crnn/checkpoint.h"
#include "crnn/comm.h"
#include "crnn/dataset.h"
#include "crnn/evaluate.h"
#include "crnn/flags.h"
#include "crnn/model.h"
#include "crnn/runtime.h"
#include "crnn/vocab.h"
#include "program.h"

static Flag eval_flags[] = {
    {.name = "checkpoint", .type = FLAG_STRING, .def = "", .help = "the checkpoint (.h5) to evaluate; may also be given as the first argument"},
    {.name = "input_h5", .type = FLAG_STRING, .def = "", .help = "the data (default: the checkpoint's -input_h5)"},
    {.name = "input_json", .type = FLAG_STRING, .def = "", .help = "its vocabulary (default: the checkpoint's -input_json)"},
    {.name = "split", .type = FLAG_STRING, .def = "val", .help = "the split to evaluate", .choices = "train|val|test"},
    {.name = "batch_size", .type = FLAG_INT, .def = "0", .help = "streams (default: the checkpoint's global batch)"},
    {.name = "seq_length", .type = FLAG_INT, .def = "0", .help = "steps per batch (default: the checkpoint's)"},
    CRNN_DEVICE_FLAGS,
    {.name = "quiet", .type = FLAG_SWITCH, .def = "0", .help = "print only the loss line"},
};

/* The data and vocabulary to evaluate on: the flags', or the checkpoint's. */
static int data_paths(FlagSet *flags, const Checkpoint *ck, const char *path, const char **h5,
                      const char **json, CrnnError *err) {
    const ConfigEntry *e;
    *h5 = flags_str(flags, "input_h5");
    *json = flags_str(flags, "input_json");
    if (!**h5 && (e = checkpoint_config(ck, "input_h5")) && e->type == CONFIG_STRING) *h5 = e->s;
    if (!**json && (e = checkpoint_config(ck, "input_json")) && e->type == CONFIG_STRING) *json = e->s;
    if (!*h5 || !**h5 || !*json || !**json)
        return crnn_fail_usage(err, "%s does not name its data: give -input_h5 and -input_json", path);
    return 0;
}

/* The streams (*N) and steps per batch (*S): the flags', or the checkpoint's, or 50. */
static int batch_shape(FlagSet *flags, const Checkpoint *ck, int64_t *N, int64_t *S, CrnnError *err) {
    const ConfigEntry *e;
    *N = flags_int(flags, "batch_size");
    *S = flags_int(flags, "seq_length");
    if (*N < 0 || *S < 0)
        return crnn_fail_usage(err, "-batch_size and -seq_length must be at least 1 (or 0: the checkpoint's)");
    if (*N == 0) {
        *N = ck->has_state ? ck->streams : 0;
        if (!*N && (e = checkpoint_config(ck, "batch_size")) && e->type == CONFIG_INT) *N = e->i;
        if (!*N) *N = 50;
    }
    if (*S == 0) {
        if ((e = checkpoint_config(ck, "seq_length")) && e->type == CONFIG_INT) *S = e->i;
        if (!*S) *S = 50;
    }
    return 0;
}

/* Reads the vocabulary json, which must be the checkpoint's (path's). */
static int read_vocab(Vocab *vocab, const char *json, const Checkpoint *ck, const char *path,
                      CrnnError *err) {
    if (vocab_read_json(vocab, json, err)) return -1;
    if (!vocab_equal(vocab, &ck->vocab))
        return crnn_fail_usage(err, "the vocabulary of %s differs from %s's; give the -input_json written with the data the checkpoint was trained on, or encode the text with that JSON's vocabulary: crnn-preprocess --input_txt TEXT --input_json THAT.json --output_h5 NEW.h5",
                  json, path);
    return 0;
}

/* Loads this rank's share of the N streams of S steps of the split (fewer streams for a short
 * split, as torch-rnn does). */
static int load_share(Batches *data, const char *h5, const char *split, int64_t N, int64_t S,
                      int vocab_size, Comm *comm, int quiet, CrnnError *err) {
    int shrunk = 0;
    int64_t num = 0;
    if (dataset_split_size(h5, split, &num, err)) return -1;
    if (N * S > num - 1 && num - 1 >= S) { /* a short split: fewer streams, as torch-rnn does */
        N = (num - 1) / S;
        if (!quiet)
            fprintf(stderr, "note: the %s split holds only %lld streams of %lld tokens; evaluating on them\n", split,
                    (long long)N, (long long)S);
    }
    /* this rank's share of the N streams (all of them for one process) */
    int first, mine;
    evaluate_share(N, comm, &first, &mine);
    return dataset_load_shard(data, h5, split, (int)N, first, mine, (int)S, 1, vocab_size, &shrunk,
                              comm->mpi_comm, err);
}

int main(int argc, char **argv) {
    FlagSet flags = {.program = "crnn-eval",
                     .summary = "Prints the loss (nats per character) of a checkpoint on a split of the data.",
                     .flags = eval_flags,
                     .count = (int)(sizeof eval_flags / sizeof eval_flags[0]),
                     .positional = "checkpoint"};
    int status;
    if (!program_start(&flags, argc, argv, &status)) return status;
    CrnnError err = {.msg = ""};
    int rc = 1;
    Checkpoint ck = {0};
    Vocab vocab = {0};
    Batches data = {0};
    Backend *be = NULL;
    Model model = {0};
    int32_t *x = NULL, *y = NULL;
    const char *path = flags_str(&flags, "checkpoint");
    int quiet = flags_int(&flags, "quiet") != 0;
    Comm *comm = comm_create(&argc, &argv, &err);
    if (!comm) goto fail;
    if (comm->rank != 0) quiet = 1;
    if (!*path) {
        crnn_fail_usage(&err, "give the checkpoint to evaluate: -checkpoint cv/checkpoint_N.h5");
        goto fail;
    }
    if (checkpoint_read(path, &ck, 1, &err) && checkpoint_read(path, &ck, 0, &err)) goto fail;
    const char *h5, *json;
    if (data_paths(&flags, &ck, path, &h5, &json, &err)) goto fail;
    int64_t N, S;
    if (batch_shape(&flags, &ck, &N, &S, &err)) goto fail;
    if (read_vocab(&vocab, json, &ck, path, &err)) goto fail;
    const char *split = flags_str(&flags, "split");
    if (load_share(&data, h5, split, N, S, vocab.size, comm, quiet, &err)) goto fail;
    char notice[CRNN_ERROR_MAX];
    be = runtime_backend(flags_int(&flags, "gpu"), flags_str(&flags, "gpu_backend"), comm->local_rank,
                         runtime_blas_threads(comm->local_size), notice, sizeof notice, &err);
    if (be && notice[0] && !quiet) fprintf(stderr, "%s: %s\n", flags.program, notice);
    if (!be) goto fail;
    const int rows = data.B > 0 ? data.B : 1;
    if (model_create(&model, &ck.model, be, rows, data.S, &err)) goto fail;
    model_set_params(&model, ck.params);
    x = malloc((size_t)rows * data.S * sizeof *x);
    y = malloc((size_t)rows * data.S * sizeof *y);
    if (!x || !y) {
        crnn_fail(&err, "out of memory");
        goto fail;
    }
    /* this rank's streams' share of the loss; rank 0 adds the shares */
    double mine_sum = evaluate_batches(&model, &data, x, y, 0) * (double)data.B, loss = 0;
    if (evaluate_add_shares(comm, backend_check(be, &err) == 0, mine_sum, data.N, &loss, &err)) goto fail;
    if (comm->rank == 0) printf("%s loss = %f\n", split, loss);
    rc = 0;
fail:
    if (rc) {
        program_error(flags.program, &err);
        rc = crnn_exit_status(&err);
    }
    free(x);
    free(y);
    model_destroy(&model);
    backend_destroy(be);
    dataset_free(&data);
    vocab_free(&vocab);
    checkpoint_free(&ck);
    flags_free(&flags);
    if (comm) {
        if (rc && comm->size > 1) comm->abort(comm, rc); /* the other ranks may wait in a collective */
        comm->destroy(comm);
    }
    return rc;
}
