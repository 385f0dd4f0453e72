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

#ifdef __cplusplus
}
#endif

#endif
