/* Start-up shared by the programs: threads and device selection. Nothing here prints: what a
 * program should tell the user comes back to it (runtime_backend's notice). */
#define _GNU_SOURCE
#include "crnn/runtime.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "crnn/cuda.h"
#ifdef CRNN_CUDA_PLUGIN
#include <dlfcn.h>
#include <limits.h>
#endif

char *openblas_get_corename(void);

void runtime_choose_blas_kernel(char **argv) {
    if (getenv("OPENBLAS_CORETYPE") || getenv("CRNN_BLAS_KERNEL_CHOSEN")) return;
    const char *core = openblas_get_corename();
    if (!core || strcasecmp(core, "prescott") != 0) return;
    __builtin_cpu_init();
    const char *want = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    if (!want) return;
    /* the program's own path, so that the process keeps its name (ps, pkill) */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return;
    self[n] = '\0';
    setenv("OPENBLAS_CORETYPE", want, 1);
    setenv("CRNN_BLAS_KERNEL_CHOSEN", want, 1);
    execv(self, argv);
    /* the re-run failed: go on with the slow kernel */
    unsetenv("OPENBLAS_CORETYPE");
}

int runtime_blas_threads(int ranks_on_node) {
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (env && *env) { /* the user's (or crnn-launch's) choice */
        char *end;
        long n = strtol(env, &end, 10);
        if (*end == '\0' && n >= 1 && n <= 4096) return (int)n;
    }
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

#ifdef CRNN_CUDA_PLUGIN
/* Opens libcrnn-cuda.so: $CRNN_CUDA_MODULE when set, else beside the program, else in
 * ../lib/crnn from it (an installed tree). NULL with why (every place tried) when none loads. */
static void *open_cuda_module(CrnnError *why) {
    const char *env = getenv("CRNN_CUDA_MODULE");
    if (env && *env) {
        void *h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
        if (!h) crnn_fail(why, "CRNN_CUDA_MODULE=%s: %s", env, dlerror());
        return h;
    }
    char exe[PATH_MAX], tried[2 * PATH_MAX + 64] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return crnn_fail(why, "cannot find this program's folder"), NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    const char *places[] = {"%s/libcrnn-cuda.so", "%s/../lib/crnn/libcrnn-cuda.so"};
    for (size_t i = 0; i < sizeof places / sizeof *places; i++) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, places[i], exe);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        const char *e = dlerror();
        /* a module that is there but does not load (a missing CUDA library) says why */
        if (access(path, F_OK) == 0) return crnn_fail(why, "%s", e ? e : path), NULL;
        snprintf(tried + strlen(tried), sizeof tried - strlen(tried), "%s%s", i ? ", " : "", path);
    }
    return crnn_fail(why, "no libcrnn-cuda.so in %s", tried), NULL;
}
#endif

const CudaApi *runtime_cuda(CrnnError *why) {
#ifdef CRNN_CUDA_PLUGIN
    static const CudaApi *api;
    static char failed[sizeof why->msg];
    if (api) return api;
    if (failed[0]) return crnn_fail(why, "%s", failed), NULL;
    void *h = open_cuda_module(why);
    const CudaApi *(*entry)(void) = NULL;
    if (h) *(void **)&entry = dlsym(h, "crnn_cuda_api");
    const CudaApi *a = entry ? entry() : NULL;
    if (h && !a) crnn_fail(why, "the CUDA module has no crnn_cuda_api");
    else if (a && (a->abi != CRNN_CUDA_ABI || a->backend_size != sizeof(Backend) || a->comm_size != sizeof(Comm)))
        crnn_fail(why, "the CUDA module was built from other sources than this program (rebuild or reinstall both)");
    else if (a)
        return api = a;
    snprintf(failed, sizeof failed, "%s", why->msg);
    if (h) dlclose(h);
    return NULL;
#elif defined(CRNN_HAVE_CUDA)
    (void)why;
    return crnn_cuda_api();
#else
    crnn_fail(why, "this build has no CUDA backend");
    return NULL;
#endif
}

Backend *runtime_backend(int64_t gpu, const char *gpu_backend, int local_rank, int threads, char *notice,
                         size_t notice_cap, CrnnError *err) {
    if (notice_cap) notice[0] = '\0';
    if (strcmp(gpu_backend, "cuda") != 0) {
        crnn_fail_usage(err, "-gpu_backend %s is not supported; crnn runs on CUDA or the CPU (-gpu -1)", gpu_backend);
        return NULL;
    }
    if (gpu < -1) {
        crnn_fail_usage(err, "-gpu must be -1 (CPU) or a device number, got %lld", (long long)gpu);
        return NULL;
    }
    if (gpu == -1) return backend_cpu_create(threads, err);
    int count = 0;
    CrnnError why = {.msg = ""};
    const CudaApi *cuda = runtime_cuda(&why);
    if (!cuda) {
        snprintf(notice, notice_cap, "%s: running on the CPU (use -gpu -1 to say so)", why.msg);
        return backend_cpu_create(threads, err);
    }
    if (cuda->device_count(&count, &why) || count == 0) {
        snprintf(notice, notice_cap, "no CUDA device (%s): running on the CPU (use -gpu -1 to say so)",
                 count == 0 && !why.msg[0] ? "none found" : why.msg);
        return backend_cpu_create(threads, err);
    }
    long long device = (long long)gpu + (local_rank > 0 ? local_rank : 0);
    if (device >= count) {
        if (local_rank > 0)
            crnn_fail_usage(err, "-gpu %lld: this rank (node-local rank %d) would take CUDA device %lld, but this machine has %d (0 to %d)",
                      (long long)gpu, local_rank, device, count, count - 1);
        else
            crnn_fail_usage(err, "-gpu %lld: no such CUDA device; this machine has %d (0 to %d), or -1 for the CPU",
                      (long long)gpu, count, count - 1);
        return NULL;
    }
    return cuda->backend_create((int)device, err);
}

Comm *runtime_gradient_comm(Comm *comm, Backend *be, CrnnError *err) {
    if (be->device < 0) return comm;
    const char *env = getenv("CRNN_NCCL");
    int want = comm->size > 1;
    if (env && *env) {
        if (strcmp(env, "0") != 0 && strcmp(env, "1") != 0) {
            crnn_fail(err, "CRNN_NCCL must be 0 or 1, got '%s'", env);
            return NULL;
        }
        want = strcmp(env, "1") == 0;
    }
    if (!want) {
        if (comm->size > 1) {
            crnn_fail(err, "rank %d of %d: CRNN_NCCL=0, but %d ranks on CUDA devices reduce their gradients through NCCL",
                      comm->rank, comm->size, comm->size);
            return NULL;
        }
        return comm;
    }
    const CudaApi *cuda = runtime_cuda(err); /* loaded: be came from it */
    return cuda ? cuda->nccl_create(comm, be, err) : NULL;
}

void runtime_cpu_list(char *out, size_t cap) {
    cpu_set_t set;
    size_t len = 0;
    out[0] = '\0';
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        snprintf(out, cap, "?");
        return;
    }
    for (int k = 0; k < CPU_SETSIZE && len + 1 < cap; k++) {
        if (!CPU_ISSET(k, &set)) continue;
        int last = k;
        while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set)) last++;
        int n = last > k ? snprintf(out + len, cap - len, "%s%d-%d", len ? "," : "", k, last)
                         : snprintf(out + len, cap - len, "%s%d", len ? "," : "", k);
        if (n < 0 || (size_t)n >= cap - len) break;
        len += (size_t)n;
        k = last;
    }
}
