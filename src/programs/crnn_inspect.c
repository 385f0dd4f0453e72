/* crnn-inspect CKPT: what a checkpoint holds -- the model, the flags of the run that made it,
 * where training stood and its loss history (char-rnn's inspect_checkpoint.lua). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "crnn/checkpoint.h"
#include "crnn/flags.h"
#include "crnn/model.h"
#include "crnn/runtime.h"
#include "program.h"

static Flag inspect_flags[] = {
    {.name = "checkpoint", .type = FLAG_STRING, .def = "", .help = "the checkpoint (.h5); may also be given as the first argument"},
    {.name = "history", .type = FLAG_INT, .def = "0", .help = "1: print every training loss too, one per line"},
};

int main(int argc, char **argv) {
    FlagSet flags = {.program = "crnn-inspect",
                     .summary = "Prints a checkpoint's model, flags, iteration, epoch and loss history.",
                     .flags = inspect_flags,
                     .count = (int)(sizeof inspect_flags / sizeof inspect_flags[0]),
                     .positional = "checkpoint"};
    int status;
    if (!program_start(&flags, argc, argv, &status)) return status;
    CrnnError err = {.msg = ""};
    Checkpoint ck = {0};
    const char *path = flags_str(&flags, "checkpoint");
    int rc = 1;
    if (!*path) {
        crnn_fail_usage(&err, "give the checkpoint to inspect: crnn-inspect cv/checkpoint_N.h5");
        goto done;
    }
    if (checkpoint_read(path, &ck, 1, &err) && checkpoint_read(path, &ck, 0, &err)) goto done;
    const ModelConfig *m = &ck.model;
    printf("checkpoint: %s\n", path);
    if (ck.crnn_version[0]) printf("written by: %s\n", ck.crnn_version);
    printf("model: %s, %d layers of %d, wordvec %d, dropout %g; vocabulary %d (%s); %zu parameters\n",
           m->model_type, m->L, m->H, m->D, m->dropout, ck.vocab.size,
           ck.vocab.encoding == VOCAB_BYTES ? "bytes" : "utf-8", ck.num_params);
    /* the attribute epoch counts epochs completed (char-rnn's file names too); torch-rnn's
       progress line counts from 1 (i / num_train + 1) */
    printf("iteration: %" PRId64 ", epochs completed %.2f (the progress line's \"Epoch %.2f\")\n",
           ck.iteration, ck.epoch, ck.epoch + 1);
    if (ck.elapsed_seconds > 0) /* absent in checkpoints of older builds */
        printf("time: %.1f s of the run (its time_s) when this was written\n", ck.elapsed_seconds);
    if (ck.has_state) {
        printf("optimizer: %s, step %" PRId64 ", learning rate %g\n", ck.optim_name, ck.optim_step, ck.learning_rate);
        printf("data: %d streams, epoch %" PRId64 ", %" PRId64 " batches of it done\n", ck.streams, ck.epoch_index,
               ck.batch_index);
        if (ck.num_train_loss > 0) {
            int64_t lo = 0;
            for (int64_t k = 1; k < ck.num_train_loss; k++)
                if (ck.train_loss[k] < ck.train_loss[lo]) lo = k;
            printf("train loss: %" PRId64 " iterations; first %.6f, last %.6f, lowest %.6f at iteration %" PRId64 "\n",
                   ck.num_train_loss, ck.train_loss[0], ck.train_loss[ck.num_train_loss - 1], ck.train_loss[lo], lo + 1);
        }
        for (int64_t k = 0; k < ck.num_val; k++)
            printf("val loss = %.6f at iteration %" PRId64 "\n", ck.val_loss[k], ck.val_iteration[k]);
        if (flags_int(&flags, "history"))
            for (int64_t k = 0; k < ck.num_train_loss; k++)
                printf("train loss = %.6f at iteration %" PRId64 "\n", ck.train_loss[k], k + 1);
    } else {
        printf("no training state (parameters only: use it with -init_from)\n");
    }
    if (ck.num_config > 0) printf("flags:\n");
    for (int k = 0; k < ck.num_config; k++) {
        const ConfigEntry *e = &ck.config[k];
        if (e->type == CONFIG_INT)
            printf("  %s = %" PRId64 "\n", e->name, e->i);
        else if (e->type == CONFIG_REAL) {
            char text[64];
            flags_real_text(e->d, text, sizeof text);
            printf("  %s = %s\n", e->name, text);
        } else
            printf("  %s = %s\n", e->name, e->s ? e->s : "");
    }
    rc = 0;
done:
    if (rc) {
        program_error(flags.program, &err);
        rc = crnn_exit_status(&err);
    }
    checkpoint_free(&ck);
    flags_free(&flags);
    return rc;
}
