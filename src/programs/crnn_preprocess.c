/* crnn-preprocess: text -> torch-rnn's .h5 + .json (docs/FORMATS.md section 1). Flags and wiring
 * only; the work is preprocess_run. */
#include <stdio.h>
#include <string.h>

#include "crnn/flags.h"
#include "crnn/preprocess.h"
#include "program.h"

static const char *PROG = "crnn-preprocess";

int main(int argc, char **argv) {
    Flag flags[] = {
        {.name = "input_txt", .type = FLAG_STRING, .def = "", .help = "the text to train on; - reads standard input"},
        {.name = "output_h5", .type = FLAG_STRING, .def = "", .help = "the splits /train, /val, /test"},
        {.name = "output_json", .type = FLAG_STRING, .def = "", .help = "the vocabulary (with --input_json: a copy of it; the same file or none leaves it as it is)"},
        {.name = "input_json", .type = FLAG_STRING, .def = "", .help = "encode with this existing vocabulary (of data a checkpoint was trained on) instead of making one; a character outside it is an error"},
        {.name = "val_frac", .type = FLAG_REAL, .def = "0.1", .help = "fraction of the tokens for validation"},
        {.name = "test_frac", .type = FLAG_REAL, .def = "0.1", .help = "fraction of the tokens for test"},
        {.name = "encoding", .type = FLAG_STRING, .def = "utf-8", .help = "tokens are characters (utf-8) or bytes", .choices = "utf-8|bytes"},
        {.name = "quiet", .type = FLAG_SWITCH, .def = "0", .help = "print nothing"},
    };
    FlagSet set = {.program = PROG,
                   .summary = "Turns a text file into torch-rnn's HDF5 splits and JSON vocabulary.",
                   .flags = flags,
                   .count = (int)CRNN_ARRAY_LEN(flags)};
    CrnnError err = {.msg = ""};
    int status;
    if (!program_flags(&set, argc, argv, &status)) {
        flags_free(&set);
        return status;
    }

    PreprocessOptions opt;
    preprocess_default_options(&opt);
    opt.input_txt = flags_str(&set, "input_txt");
    opt.output_h5 = flags_str(&set, "output_h5");
    opt.output_json = flags_str(&set, "output_json");
    opt.input_json = flags_str(&set, "input_json");
    opt.val_frac = flags_real(&set, "val_frac");
    opt.test_frac = flags_real(&set, "test_frac");
    opt.encoding = strcmp(flags_str(&set, "encoding"), "bytes") == 0 ? VOCAB_BYTES : VOCAB_UTF8;
    opt.encoding_given = flags_given(&set, "encoding");
    int quiet = (int)flags_int(&set, "quiet");

    PreprocessSummary summary;
    int rc = preprocess_run(&opt, &summary, &err);
    if (rc != 0) {
        program_error(PROG, &err);
    } else if (!quiet) {
        char text[512];
        preprocess_summary_text(&summary, text, sizeof text);
        fputs(text, stdout);
    }
    flags_free(&set);
    return rc == 0 ? 0 : crnn_exit_status(&err);
}
