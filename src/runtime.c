/* Start-up shared by the programs: threads and device selection. */
#define _GNU_SOURCE
#include "crnn/runtime.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int runtime_blas_threads(int ranks_on_node) {
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (env && *env) return 0;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1) online = 1;
    int n = (int)(online / (ranks_on_node > 0 ? ranks_on_node : 1));
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int mask = CPU_COUNT(&set);
        if (mask > 0 && mask < n) n = mask;
    }
    return n < 1 ? 1 : n;
}

Backend *runtime_backend(const char *program, int64_t gpu, const char *gpu_backend, int threads,
                         int quiet, CrnnError *err) {
    if (strcmp(gpu_backend, "cuda") != 0) {
        crnn_fail(err, "-gpu_backend %s is not supported; crnn runs on CUDA or the CPU (-gpu -1)", gpu_backend);
        return NULL;
    }
    if (gpu < -1) {
        crnn_fail(err, "-gpu must be -1 (CPU) or a device number, got %lld", (long long)gpu);
        return NULL;
    }
    if (gpu >= 0 && !quiet) {
        fprintf(stderr, "%s: this build has no CUDA backend: running on the CPU (use -gpu -1 to say so)\n",
                program);
    }
    return backend_cpu_create(threads, err);
}
