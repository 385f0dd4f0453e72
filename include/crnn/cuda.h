/* The CUDA backend and the NCCL Comm (built when CRNN_HAVE_CUDA is defined; CMake's
 * CRNN_CUDA). Plain C declarations: the programs and runtime.c are C. */
#ifndef CRNN_CUDA_H
#define CRNN_CUDA_H

#include "crnn/backend.h"
#include "crnn/comm.h"
#include "crnn/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CUDA devices this process sees in *count. -1 with the CUDA runtime's reason in err when
 * it cannot tell (no driver, e.g. "CUDA driver version is insufficient for CUDA runtime
 * version"): the callers treat that as no device. */
int backend_cuda_device_count(int *count, CrnnError *err);

/* The CUDA backend on device `device`: one stream that every operation of the table is issued
 * on, a cuBLAS handle bound to it, memory by cudaMalloc. Operations are asynchronous except
 * to_host, to_device, softmax_xent and sumsq (they return host values); a failing CUDA or cuBLAS
 * call is recorded (file, line, the call, CUDA's message) and reported by be->status. */
Backend *backend_cuda_create(int device, CrnnError *err);

/* Whether be is a CUDA backend; its device, and its stream (a cudaStream_t) for work that must
 * be ordered with it (NCCL). */
int backend_is_cuda(const Backend *be);
int backend_cuda_device(const Backend *be);
void *backend_cuda_stream(const Backend *be);
/* The recurrences' CUDA graphs (src/backend/backend_cuda.cu): how many were captured and how many
 * launches replayed one. 1 when graphs are on, 0 when off (CRNN_CUDA_GRAPHS=0, or a capture
 * failed and the launches are issued directly), -1 when be is not a CUDA backend. */
int backend_cuda_graphs(const Backend *be, long *captured, long *replayed);

/* A Comm whose gradient reductions (allreduce_mean, allreduce_mean_start, wait_all on device
 * buffers) run through NCCL (ncclAllReduce with ncclAvg, on its own stream ordered after the
 * backend's by events), and whose other collectives, and reductions of host buffers, go to
 * `inner` (MPI or the single process), which also broadcasts rank 0's ncclUniqueId. On success
 * the new Comm owns inner (its destroy destroys inner); on failure inner is left to the caller.
 * The name stays inner's ("mpi" tells the program it runs under a launcher). */
Comm *comm_nccl_create(Comm *inner, Backend *be, CrnnError *err);
/* Whether c is a NCCL Comm. */
int comm_is_nccl(const Comm *c);

/* What the programs reach of the CUDA backend. In a CUDA build it is a module of its own,
 * libcrnn-cuda.so, that runtime_cuda (runtime.h) loads only when a run asks for a GPU, so a CPU
 * run neither loads the CUDA libraries (about 180 MB of memory and 0.15 s at each start) nor
 * needs them installed; the emulated test build links it in. abi, backend_size and comm_size
 * let the loader refuse a module built from other sources: raise CRNN_CUDA_ABI when this table,
 * Backend or Comm change meaning without changing size. */
#define CRNN_CUDA_ABI 1
typedef struct CudaApi {
    int abi;
    size_t backend_size, comm_size;
    int (*device_count)(int *count, CrnnError *err);
    Backend *(*backend_create)(int device, CrnnError *err);
    Comm *(*nccl_create)(Comm *inner, Backend *be, CrnnError *err);
} CudaApi;
/* The module's one entry point (dlsym'd by this name). */
const CudaApi *crnn_cuda_api(void);

#ifdef __cplusplus
}
#endif

#endif
