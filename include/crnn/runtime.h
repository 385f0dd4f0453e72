/* What every program does at start: OpenBLAS threads per rank and the -gpu choice. */
#ifndef CRNN_RUNTIME_H
#define CRNN_RUNTIME_H

#include "crnn/backend.h"
#include "crnn/comm.h"
#include "crnn/common.h"
#include "crnn/flags.h"

/* OpenBLAS picks its kernels by the processor's model number and falls back to its oldest
 * (Prescott, SSE3) for models newer than it knows, which makes every matrix product several
 * times slower. When that happened, the user has not chosen a kernel (OPENBLAS_CORETYPE), and the
 * processor has AVX-512 or AVX2 with FMA, this sets OPENBLAS_CORETYPE to SkylakeX or Haswell and
 * runs the program again (execv, the same process), before anything else has started.
 * Returns only when nothing was to be done or the re-run failed. */
void runtime_choose_blas_kernel(char **argv);

/* The flags every computing program takes for its device (docs/FORMATS.md section 5). */
#define CRNN_DEVICE_FLAGS                                                                       \
    {.name = "gpu", .type = FLAG_INT, .def = "0", .help = "-1: CPU; N: CUDA device N (+ the rank on its node)", .alias = "gpuid", .resume = FLAG_RESUME_FREE}, \
    {.name = "gpu_backend", .type = FLAG_STRING, .def = "cuda", .help = "cuda", .resume = FLAG_RESUME_FREE}

/* OpenBLAS threads for a rank: OPENBLAS_NUM_THREADS when set (crnn-launch sets it), else
 * min(CPUs in its affinity mask, online CPUs / ranks on its node), at least 1. */
int runtime_blas_threads(int ranks_on_node);
/* The CPUs this process may run on, as a list like "0-3,8". */
void runtime_cpu_list(char *out, size_t cap);

/* The CUDA backend's entry points (cuda.h's CudaApi): in a CUDA build the module libcrnn-cuda.so,
 * loaded at the first call ($CRNN_CUDA_MODULE, else beside the program, else ../lib/crnn from
 * it); NULL with the reason in why when the build has none or it does not load. */
typedef struct CudaApi CudaApi;
const CudaApi *runtime_cuda(CrnnError *why);

/* The backend for -gpu N / -gpu_backend NAME (docs/FORMATS.md section 5): N = -1 is the CPU; N >= 0
 * is CUDA device N + local_rank (the rank on its node). Without CUDA in the build, or without a
 * device (no driver counts as none), it uses the CPU and says so in notice[0..notice_cap) (for the
 * program to print as "<program>: <notice>" on stderr, unless quiet); notice is "" otherwise. A
 * device beyond those present is an error naming -gpu and the count. */
Backend *runtime_backend(int64_t gpu, const char *gpu_backend, int local_rank, int threads, char *notice,
                         size_t notice_cap, CrnnError *err);

/* The Comm that reduces the gradients of be: on a CUDA backend NCCL (comm_nccl_create, which then
 * owns comm) when there is more than one rank, or with one rank when the environment says
 * CRNN_NCCL=1 (to measure NCCL's cost); CRNN_NCCL=0 keeps one rank off NCCL. Otherwise comm
 * itself. NULL with err on failure (comm is then still the caller's). */
Comm *runtime_gradient_comm(Comm *comm, Backend *be, CrnnError *err);

#endif
