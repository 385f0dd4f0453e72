/* What the programs share and only they do: talking to the terminal. The library reports
 * through return values, CrnnError and a Reporter; a program decides what reaches stdout and
 * stderr (docs/DESIGN.md). */
#ifndef CRNN_PROGRAM_H
#define CRNN_PROGRAM_H

#include "crnn/common.h"
#include "crnn/flags.h"

/* Parses the flags, printing --help or --version to stdout and a flag error as
 * "<program>: error: ..." to stderr. Returns 1 to go on; 0 when the program should exit now
 * with *status: 0 after --help or --version, 2 after a flag error. */
int program_flags(FlagSet *flags, int argc, char **argv, int *status);

/* The start of a program that computes: picks the OpenBLAS kernel (runtime.h), silences HDF5's
 * own error printing, then program_flags. */
int program_start(FlagSet *flags, int argc, char **argv, int *status);

/* "<prog>: error: <message>" on stderr. */
void program_error(const char *prog, const CrnnError *err);

#endif
