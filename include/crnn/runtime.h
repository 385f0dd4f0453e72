/* What every program does at start: OpenBLAS threads per rank and the -gpu choice. */
#ifndef CRNN_RUNTIME_H
#define CRNN_RUNTIME_H

#include "crnn/backend.h"
#include "crnn/common.h"

/* OpenBLAS threads for a rank: min(CPUs in its affinity mask, online CPUs / ranks on its node),
 * at least 1; 0 when the user set OPENBLAS_NUM_THREADS (leave OpenBLAS alone). */
int runtime_blas_threads(int ranks_on_node);

/* The backend for -gpu N / -gpu_backend NAME: N = -1 is the CPU; N >= 0 asks for CUDA, and
 * without CUDA in the build this says so once (unless quiet) and uses the CPU. */
Backend *runtime_backend(const char *program, int64_t gpu, const char *gpu_backend, int threads,
                         int quiet, CrnnError *err);

#endif
