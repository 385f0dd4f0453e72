/* The programs' terminal output that is not a Reporter's: help, version and errors (program.h). */
#include "program.h"

#include <stdio.h>

#include "crnn/runtime.h"
#include "crnn/version.h"

void program_error(const char *prog, const CrnnError *err) {
    fprintf(stderr, "%s: error: %s\n", prog, err->msg);
    fflush(stderr);
}

int program_flags(FlagSet *flags, int argc, char **argv, int *status) {
    CrnnError err = {.msg = ""};
    int parsed = flags_parse(flags, argc, argv, &err);
    *status = 0;
    if (parsed == FLAGS_HELP) {
        flags_write_help(flags, stdout);
        return 0;
    }
    if (parsed == FLAGS_VERSION) {
        crnn_version_print(stdout, flags->program);
        return 0;
    }
    if (parsed < 0) {
        program_error(flags->program, &err);
        *status = crnn_exit_status(&err);
        return 0;
    }
    return 1;
}

int program_start(FlagSet *flags, int argc, char **argv, int *status) {
    runtime_choose_blas_kernel(argv);
    crnn_hdf5_quiet();
    return program_flags(flags, argc, argv, status);
}
