/* The build's identity: crnn's version and commit, how CUDA was built, and the libraries it runs
 * with (OpenBLAS, MPI, HDF5), for --version and for each checkpoint's crnn_version attribute. */
#ifndef CRNN_VERSION_H
#define CRNN_VERSION_H

#include <stdio.h>

/* One line: "crnn 0.1.0 (commit 1a2b3c4d5e6f); CUDA off; float; OpenBLAS 0.3.21 ...; Open MPI
 * v4.1.4 ...; HDF5 1.10.8". Points to static storage, built on the first call. */
const char *crnn_version_text(void);

/* --version: "<program> 0.1.0 (commit ...)" and a line of the build's options and libraries. */
void crnn_version_print(FILE *f, const char *program);

#endif
