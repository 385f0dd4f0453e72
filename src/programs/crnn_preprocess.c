/* crnn-preprocess: text -> torch-rnn's .h5 + .json (FORMATS.md section 1). Flags and wiring
 * only; the work is preprocess_run. */
#include <stdio.h>
#include <string.h>

#include "crnn/flags.h"
#include "crnn/preprocess.h"

static const char *PROG = "crnn-preprocess";

int main(int argc, char **argv) {
    Flag flags[] = {
        {"input_txt", FLAG_STRING, "", "the text to train on", NULL, NULL, 0, 0, NULL, 0},
        {"output_h5", FLAG_STRING, "", "the splits /train, /val, /test", NULL, NULL, 0, 0, NULL, 0},
        {"output_json", FLAG_STRING, "", "the vocabulary", NULL, NULL, 0, 0, NULL, 0},
        {"val_frac", FLAG_REAL, "0.1", "fraction of the tokens for validation", NULL, NULL, 0, 0,
         NULL, 0},
        {"test_frac", FLAG_REAL, "0.1", "fraction of the tokens for test", NULL, NULL, 0, 0, NULL,
         0},
        {"encoding", FLAG_STRING, "utf-8", "tokens are characters (utf-8) or bytes", NULL,
         "utf-8|bytes", 0, 0, NULL, 0},
        {"quiet", FLAG_SWITCH, "0", "print nothing", NULL, NULL, 0, 0, NULL, 0},
    };
    FlagSet set = {PROG, "Turns a text file into torch-rnn's HDF5 splits and JSON vocabulary.",
                   flags, (int)CRNN_ARRAY_LEN(flags), NULL, 0};
    CrnnError err = {{0}};
    int parsed = flags_parse(&set, argc, argv, &err);
    if (parsed == FLAGS_HELP) {
        flags_free(&set);
        return 0;
    }
    if (parsed != FLAGS_OK) {
        crnn_print_error(PROG, &err);
        flags_free(&set);
        return 1;
    }

    PreprocessOptions opt;
    preprocess_default_options(&opt);
    opt.input_txt = flags_str(&set, "input_txt");
    opt.output_h5 = flags_str(&set, "output_h5");
    opt.output_json = flags_str(&set, "output_json");
    opt.val_frac = flags_real(&set, "val_frac");
    opt.test_frac = flags_real(&set, "test_frac");
    opt.encoding = strcmp(flags_str(&set, "encoding"), "bytes") == 0 ? VOCAB_BYTES : VOCAB_UTF8;
    int quiet = (int)flags_int(&set, "quiet");

    PreprocessSummary summary;
    int rc = preprocess_run(&opt, &summary, &err);
    if (rc != 0) {
        crnn_print_error(PROG, &err);
    } else if (!quiet) {
        char text[512];
        preprocess_summary_text(&summary, text, sizeof text);
        fputs(text, stdout);
    }
    flags_free(&set);
    return rc == 0 ? 0 : 1;
}
