/* Fuzz target: the checkpoint reader (checkpoint_read, src/io/checkpoint_read.c). Input: the .h5 file.
 * Read with and without the training state, it either fails with a message naming the file,
 * or gives a checkpoint that is consistent (sizes, finite parameters) and that writes
 * (checkpoint_write) and reads back to the same parameters and state. */
#include <math.h>
#include <stdlib.h>

#include "crnn/cell.h"
#include "crnn/checkpoint.h"
#include "fuzz_common.h"

static void check_consistent(const Checkpoint *ck) {
    ParamTensor t[CRNN_MAX_TENSORS];
    size_t n = 0;
    FUZZ_ASSERT(cell_find(ck->model.model_type) != NULL, "model_type '%s'", ck->model.model_type);
    model_layout(&ck->model, t, &n);
    FUZZ_ASSERT(ck->num_params == n && ck->params, "%zu parameters, layout %zu", ck->num_params, n);
    FUZZ_ASSERT(ck->vocab.size == ck->model.V, "vocabulary %d, V %d", ck->vocab.size, ck->model.V);
    for (size_t i = 0; i < n; i++) FUZZ_ASSERT(isfinite(ck->params[i]), "parameter %zu", i);
    if (!ck->has_state) return;
    FUZZ_ASSERT(ck->optim_v && (ck->optim_m || strcmp(ck->optim_name, "rmsprop") == 0),
                "optimizer '%s'", ck->optim_name);
    FUZZ_ASSERT(ck->streams >= 0 && ck->num_rng >= 0 && ck->num_train_loss >= 0 &&
                    ck->num_val >= 0,
                "counts");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    crnn_hdf5_quiet();
    if (fuzz_hdf5_known_hang(data, size)) return 0;
    const char *path = fuzz_write_file("ckpt.h5", data, size);
    for (int want_state = 1; want_state >= 0; want_state--) {
        Checkpoint ck;
        CrnnError err = {.msg = ""};
        if (checkpoint_read(path, &ck, want_state, &err) != 0) {
            FUZZ_ASSERT_NAMES(err, path);
            FUZZ_ASSERT(ck.params == NULL && ck.config == NULL, "a failed read keeps arrays");
            continue;
        }
        check_consistent(&ck);
        const char *copy = fuzz_path("copy.h5");
        FUZZ_ASSERT(checkpoint_write(copy, &ck, &err) == 0, "%s", err.msg);
        Checkpoint back;
        FUZZ_ASSERT(checkpoint_read(copy, &back, want_state, &err) == 0, "%s", err.msg);
        check_consistent(&back);
        FUZZ_ASSERT(back.num_params == ck.num_params &&
                        memcmp(back.params, ck.params, ck.num_params * sizeof *ck.params) == 0,
                    "parameters differ after writing");
        FUZZ_ASSERT(vocab_equal(&back.vocab, &ck.vocab), "vocabulary differs after writing");
        FUZZ_ASSERT(back.has_state == ck.has_state && back.streams == ck.streams &&
                        back.num_val == ck.num_val && back.num_train_loss == ck.num_train_loss,
                    "state differs after writing");
        checkpoint_free(&back);
        checkpoint_free(&ck);
    }
    return 0;
}
