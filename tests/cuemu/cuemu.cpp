/* cuemu: the CUDA runtime, cuBLAS, CUB's radix sort and NCCL as crnn uses them, emulated on the
 * CPU so that the CUDA backend's own code (src/backend/backend_cuda.cu, kernels/cuda_kernels.cu,
 * src/comm/comm_nccl.c) runs and is tested on a machine without a GPU. What it models and what it
 * checks is in tests/cuemu/README.md; in short:
 *
 *   memory   device and pinned allocations are registered; every copy, memset, kernel pointer
 *            argument, sgemm operand and NCCL buffer is checked against them (direction, bounds);
 *            new device memory is filled with NaN bytes, as uninitialised memory may hold;
 *   streams  work is queued and runs only when the host makes it (a synchronisation, an event
 *            another stream waits for, a copy into pageable memory): what the host reads
 *            without waiting is stale; CUEMU_STREAMS chooses between two legal orders of the
 *            streams, which between them catch a missing event wait in either direction;
 *   kernels  every CUDA thread is a coroutine: barriers and warp shuffles are exact, a barrier
 *            that not every thread reaches is reported as the deadlock it is; CUEMU_RACECHECK=1
 *            runs each kernel twice, its threads and blocks in reverse the second time, and
 *            reports a result that depends on the order (a race);
 *   graphs   stream capture records the work with its arguments by value; what a capture may
 *            not do (synchronise, allocate, copy pageable memory) fails as CUDA fails it;
 *   errors   a bad launch configuration is a launch error; a wild pointer is a sticky device
 *            error that every later call returns; CUEMU_FAIL_LAUNCH=N makes the Nth kernel
 *            launch fail (sticky), CUEMU_MEMORY=BYTES bounds device memory, CUEMU_DEVICES=N
 *            sets the number of devices (0: none); CUEMU_STATS=1 counts the launches at exit;
 *            CUDA_LAUNCH_BLOCKING=1 runs all work as it is issued, as the CUDA runtime does.
 *
 * One host thread uses it at a time. x86-64 only (the coroutine switch). */
#include <cublas_v2.h>
#include <cub/device/device_radix_sort.cuh>
#include <cuda_runtime.h>
#include <nccl.h>

#include <cblas.h>
#define OMPI_SKIP_MPICXX 1 /* the C API only */
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define CUEMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUEMU_ASAN 1
#endif
#endif
#ifdef CUEMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#error "cuemu's coroutine switch is written for x86-64"
#endif

namespace cuemu {

ThreadState *current = nullptr;
uint3 block_idx, block_dim, grid_dim;

namespace {

/* ---- diagnostics and errors --------------------------------------------------------------- */

void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuemu: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

[[noreturn]] void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuemu: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

cudaError_t last_error = cudaSuccess; /* cudaGetLastError's */
cudaError_t sticky = cudaSuccess;     /* the device is lost: every later call returns this */

cudaError_t note(cudaError_t e) {
    if (e != cudaSuccess) last_error = e;
    return e;
}

cudaError_t lose_device(cudaError_t e) {
    if (sticky == cudaSuccess) sticky = e;
    last_error = sticky;
    return sticky;
}

long env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    char *end = nullptr;
    long x = strtol(v, &end, 10);
    if (*end) die("%s=%s is not a number", name, v);
    return x;
}

/* ---- memory --------------------------------------------------------------------------------- */

enum Kind { HOST = 0, PINNED = 1, DEVICE = 2 };
struct Alloc {
    size_t size;
    Kind kind;
};
std::map<uintptr_t, Alloc> allocs;
size_t device_used = 0;

size_t device_memory() {
    static long bytes = env_long("CUEMU_MEMORY", 80L << 30);
    return (size_t)bytes;
}

/* The allocation that contains [p, p + bytes) (one past its end too, for bytes 0), or null. */
const std::pair<const uintptr_t, Alloc> *containing(const void *p, size_t bytes) {
    const uintptr_t a = (uintptr_t)p;
    auto it = allocs.upper_bound(a);
    if (it == allocs.begin()) return nullptr;
    --it;
    if (a < it->first || a - it->first > it->second.size || bytes > it->second.size - (a - it->first))
        return nullptr;
    return &*it;
}

Kind kind_of(const void *p) {
    const auto *a = containing(p, 0);
    return a ? a->second.kind : HOST;
}

bool in_device(const void *p, size_t bytes) {
    const auto *a = containing(p, bytes);
    return a && a->second.kind == DEVICE;
}

const char *kind_name(Kind k) { return k == DEVICE ? "device" : k == PINNED ? "pinned host" : "pageable host"; }

/* ---- streams, events, graphs ---------------------------------------------------------------- */

using Op = std::function<void()>;
struct Stream;

struct Graph {
    std::vector<Op> ops;
    std::vector<Stream *> members; /* the streams captured into it */
    Stream *origin = nullptr;
    bool invalid = false;
};

/* An NCCL collective the device is still carrying out: its MPI request, what completes it
 * (ncclAvg's division) and the stream operation it belongs to. */
struct InFlight {
    MPI_Request req = MPI_REQUEST_NULL;
    Op then;
    uint64_t seq = 0;
    std::shared_ptr<bool> dropped; /* its communicator was aborted */
};

struct Stream {
    std::deque<Op> queue;
    InFlight inflight;
    uint64_t enqueued = 0, executed = 0;
    bool blocking = true, legacy = false;
    int busy = 0; /* run_until calls for it on the call stack */
    Graph *capture = nullptr;
    bool joined = true; /* a forked stream's last captured work is joined back to the origin */
    size_t captured = 0;
};

struct Event {
    Stream *stream = nullptr;
    uint64_t seq = 0;
    bool recorded = false;
    Graph *capture = nullptr; /* recorded during this capture */
    size_t captured = 0;      /* its stream's captured work at the record */
};

struct Exec {
    std::shared_ptr<std::vector<Op>> ops;
};

Stream legacy_stream = [] {
    Stream s;
    s.legacy = true;
    return s;
}();
std::vector<Stream *> streams = {&legacy_stream};
std::vector<Event *> events;

Stream *stream_of(cudaStream_t s) { return s ? (Stream *)s : &legacy_stream; }
bool live_stream(cudaStream_t s) {
    return !s || std::find(streams.begin(), streams.end(), (Stream *)s) != streams.end();
}
bool live_event(cudaEvent_t e) { return std::find(events.begin(), events.end(), (Event *)e) != events.end(); }

/* Which legal order the streams run in (CUEMU_STREAMS): "eager" (the default) runs every other
 * stream's queued work before the stream the host waits for (never one already running further
 * up the call chain), so that a consumer that misses its producer's event reads what is not yet
 * written; "lazy" runs a stream's work only when something waits for it, so that a producer's
 * results that nobody waits for arrive too late. A test of the ordering runs under both. */
bool eager_streams() {
    static const int eager = [] {
        const char *v = getenv("CUEMU_STREAMS");
        if (!v || !*v || strcmp(v, "eager") == 0) return 1;
        if (strcmp(v, "lazy") == 0) return 0;
        die("CUEMU_STREAMS=%s: eager or lazy", v);
    }();
    return eager;
}

Stream *running_stream = nullptr; /* the stream whose operation runs now */

/* Completes st's collective in flight, if any: waits for it when `wait` (a device
 * synchronisation waits as long as it takes), else tests it. True when none is left. */
bool settle(Stream *st, bool wait) {
    InFlight &f = st->inflight;
    if (f.req == MPI_REQUEST_NULL) return true;
    if (!*f.dropped) {
        int done = 1;
        if (wait) MPI_Wait(&f.req, MPI_STATUS_IGNORE);
        else MPI_Test(&f.req, &done, MPI_STATUS_IGNORE);
        if (!done) return false;
        if (f.then) f.then();
    } /* an aborted communicator's request is forgotten: the job ends */
    f = InFlight();
    return true;
}

/* Called by the operation running on `running_stream`: req is in flight, `then` completes it. */
void put_in_flight(MPI_Request req, Op then, std::shared_ptr<bool> dropped) {
    Stream *st = running_stream;
    if (!st) die("an NCCL collective ran outside a stream");
    settle(st, true); /* one at a time (a graph's collectives) */
    st->inflight = InFlight{req, std::move(then), st->executed, std::move(dropped)};
}

/* Runs st's work up to its seq-th operation. A collective in flight completes before the next
 * operation runs and before seq is reached: waited for when `wait`, else (a query) tested, and
 * false if it has not completed (st stops there). */
bool advance(Stream *st, uint64_t seq, bool wait) {
    bool reached = true;
    st->busy++;
    for (size_t i = 0; st->executed < seq && eager_streams() && i < streams.size(); i++) {
        Stream *other = streams[i]; /* runs as far as it can without waiting for a collective */
        if (other != st && !other->busy && other->executed < other->enqueued) advance(other, other->enqueued, false);
    }
    while (st->executed < seq && (reached = settle(st, wait))) {
        Op op = std::move(st->queue.front());
        st->queue.pop_front();
        st->executed++;
        Stream *outer = running_stream;
        running_stream = st;
        if (sticky == cudaSuccess) op(); /* a lost device runs nothing more */
        running_stream = outer;
    }
    if (reached && st->inflight.seq <= seq) reached = settle(st, wait);
    st->busy--;
    return reached;
}
void run_until(Stream *st, uint64_t seq) { advance(st, seq, true); }
void run_all(Stream *st) { run_until(st, st->enqueued); }
void run_everything() {
    for (bool more = true; more;) {
        more = false;
        for (Stream *st : streams)
            if (st->executed < st->enqueued || st->inflight.req != MPI_REQUEST_NULL) {
                run_all(st);
                more = true;
            }
    }
}

/* Fails the capture that `st` takes part in (if any): the call is not allowed while capturing. */
cudaError_t capture_violation(Graph *g, const char *what) {
    if (g) {
        if (!g->invalid) say("%s while a stream is being captured into a CUDA graph: not allowed", what);
        g->invalid = true;
    }
    return note(cudaErrorStreamCaptureUnsupported);
}

Graph *any_capture() {
    for (Stream *st : streams)
        if (st->capture) return st->capture;
    return nullptr;
}

/* Queues op on st (or appends it to the graph st is captured into). The legacy stream and the
 * blocking streams wait for each other's earlier work. */
void enqueue(Stream *st, Op op) {
    if (st->capture) {
        st->capture->ops.push_back(std::move(op));
        st->captured++;
        if (st != st->capture->origin) st->joined = false;
        return;
    }
    if (st->legacy || st->blocking) {
        std::vector<std::pair<Stream *, uint64_t>> before;
        for (Stream *o : streams)
            if (o != st && (st->legacy ? o->blocking : o->legacy) && o->enqueued > o->executed)
                before.emplace_back(o, o->enqueued);
        if (!before.empty()) {
            st->queue.push_back([before] {
                for (auto &b : before) run_until(b.first, b.second);
            });
            st->enqueued++;
        }
    }
    st->queue.push_back(std::move(op));
    st->enqueued++;
    static const bool blocking = [] {
        const char *v = getenv("CUDA_LAUNCH_BLOCKING");
        return v && strcmp(v, "1") == 0;
    }();
    if (blocking) run_all(st); /* CUDA_LAUNCH_BLOCKING=1: every call waits for its work */
}

/* ---- kernels: CUDA threads as coroutines ----------------------------------------------------- */

extern "C" void cuemu_switch(void **save_sp, void *to_sp);
__asm__(".text\n"
        ".globl cuemu_switch\n"
        ".type cuemu_switch,@function\n"
        "cuemu_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size cuemu_switch, .-cuemu_switch\n");

enum FiberState { RUNNABLE, WAIT_BLOCK, WAIT_WARP, DONE };
constexpr size_t kStack = (size_t)256 << 10, kGuard = 4096;

struct Fiber {
    char *stack = nullptr; /* kStack usable bytes above a guard page */
    void *sp = nullptr;
    void *fake = nullptr; /* AddressSanitizer's fake stack while switched out */
    ThreadState ts;
    FiberState state = DONE;
};

std::vector<Fiber> fibers;
std::vector<uint64_t> lanes; /* each thread's shuffle value */
Fiber *running = nullptr;
void *scheduler_sp = nullptr;
const void *scheduler_bottom = nullptr;
size_t scheduler_size = 0;
const std::function<void()> *kernel_body = nullptr;
const char *kernel_name = "";

void asan_start(void **fake, const void *bottom, size_t size) {
#ifdef CUEMU_ASAN
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
}
void asan_finish(void *fake, const void **bottom, size_t *size) {
#ifdef CUEMU_ASAN
    __sanitizer_finish_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
}

/* Back to the scheduler; returns when the scheduler resumes this thread (never when done). */
void yield_thread(bool done) {
    Fiber *f = running;
    asan_start(done ? nullptr : &f->fake, scheduler_bottom, scheduler_size);
    cuemu_switch(&f->sp, scheduler_sp);
    asan_finish(f->fake, &scheduler_bottom, &scheduler_size);
}

extern "C" void cuemu_thread_entry() {
    asan_finish(nullptr, &scheduler_bottom, &scheduler_size);
    (*kernel_body)();
    running->state = DONE;
    yield_thread(true);
    die("a finished CUDA thread was resumed");
}

void start_fiber(Fiber *f) {
    if (!f->stack) {
        void *m = mmap(nullptr, kStack + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) die("no memory for a CUDA thread's stack");
        mprotect(m, kGuard, PROT_NONE); /* an overflow faults instead of corrupting */
        f->stack = (char *)m + kGuard;
    }
    /* cuemu_switch pops six registers and returns into cuemu_thread_entry, which then sees the
     * stack as a call would leave it (rsp + 8 aligned to 16) */
    uintptr_t top = ((uintptr_t)f->stack + kStack) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = nullptr;                      /* the entry's return address: it never returns */
    *--sp = (void *)&cuemu_thread_entry;  /* where the first switch returns to */
    for (int r = 0; r < 6; r++) *--sp = nullptr;
    f->sp = sp;
    f->fake = nullptr;
    f->state = RUNNABLE;
}

void resume(Fiber *f) {
    running = f;
    current = &f->ts;
    void *fake = nullptr;
    asan_start(&fake, f->stack, kStack);
    cuemu_switch(&scheduler_sp, f->sp);
    asan_finish(fake, nullptr, nullptr);
    running = nullptr;
    current = nullptr;
}

void wait_at(FiberState barrier) {
    if (!running) die("__syncthreads or a shuffle outside a kernel");
    running->state = barrier;
    yield_thread(false);
}

[[noreturn]] void deadlock(unsigned n) {
    unsigned counts[4] = {0, 0, 0, 0};
    for (unsigned i = 0; i < n; i++) counts[fibers[i].state]++;
    die("kernel %s, block (%u,%u,%u) of %u threads: deadlock: %u wait at __syncthreads, %u at a warp shuffle "
        "and %u have returned; on a device this hangs or is undefined (a barrier not every thread reaches, or "
        "a full-warp shuffle with lanes missing)",
        kernel_name, block_idx.x, block_idx.y, block_idx.z, n, counts[WAIT_BLOCK], counts[WAIT_WARP], counts[DONE]);
}

bool reversed = false; /* threads and blocks in reverse order (CUEMU_RACECHECK's second run) */

void run_block(unsigned n) {
    if (fibers.size() < n) fibers.resize(n);
    if (lanes.size() < n) lanes.resize(n);
    for (unsigned i = 0; i < n; i++) {
        Fiber *f = &fibers[i];
        start_fiber(f);
        f->ts.linear = i;
        f->ts.idx = uint3(i % block_dim.x, (i / block_dim.x) % block_dim.y, i / (block_dim.x * block_dim.y));
    }
    unsigned left = n;
    while (left) {
        bool ran = false;
        for (unsigned k = 0; k < n; k++) {
            const unsigned i = reversed ? n - 1 - k : k;
            if (fibers[i].state == RUNNABLE) {
                resume(&fibers[i]);
                ran = true;
                if (fibers[i].state == DONE) left--;
            }
        }
        if (ran || !left) continue;
        /* everyone still running waits: release the warps whose 32 lanes all wait at a shuffle,
         * else the block if every thread waits at __syncthreads */
        bool released = false;
        for (unsigned w = 0; w * 32 < n; w++) {
            unsigned waiting = 0;
            for (unsigned i = w * 32; i < n && i < w * 32 + 32; i++) waiting += fibers[i].state == WAIT_WARP;
            if (waiting == 32) {
                for (unsigned i = w * 32; i < w * 32 + 32; i++) fibers[i].state = RUNNABLE;
                released = true;
            }
        }
        if (released) continue;
        unsigned at_block = 0;
        for (unsigned i = 0; i < n; i++) at_block += fibers[i].state == WAIT_BLOCK;
        if (at_block != left) deadlock(n);
        for (unsigned i = 0; i < n; i++)
            if (fibers[i].state == WAIT_BLOCK) fibers[i].state = RUNNABLE;
    }
}

long launches = 0; /* kernels run so far, for CUEMU_FAIL_LAUNCH */

/* CUEMU_STATS=1: the number of kernel launches at exit (to aim CUEMU_FAIL_LAUNCH). */
struct Stats {
    ~Stats() {
        const char *v = getenv("CUEMU_STATS");
        if (v && strcmp(v, "1") == 0) say("%ld kernel launches", launches);
    }
} stats;

void run_grid() {
    const unsigned n = block_dim.x * block_dim.y * block_dim.z;
    const unsigned long long blocks = (unsigned long long)grid_dim.x * grid_dim.y * grid_dim.z;
    for (unsigned long long b = 0; b < blocks; b++) {
        const unsigned long long k = reversed ? blocks - 1 - b : b;
        block_idx = uint3((unsigned)(k % grid_dim.x), (unsigned)(k / grid_dim.x % grid_dim.y),
                          (unsigned)(k / ((unsigned long long)grid_dim.x * grid_dim.y)));
        run_block(n);
    }
}

/* CUEMU_RACECHECK=1 runs every kernel twice from the same memory: threads and blocks in their
 * order, then in reverse. A kernel free of races (and of reads of shared memory it has not
 * written) gives the same bytes both times; one that differs is reported. */
bool racecheck() {
    static const bool on = env_long("CUEMU_RACECHECK", 0) != 0;
    return on;
}

void run_checked(const char *name, const std::vector<const void *> &reach) {
    /* the device memory the kernel can reach: the allocations its pointer arguments are in */
    std::vector<std::pair<char *, size_t>> regions;
    for (const void *p : reach) {
        const auto *a = p ? containing(p, 0) : nullptr;
        if (!a) continue;
        std::pair<char *, size_t> r((char *)a->first, a->second.size);
        if (std::find(regions.begin(), regions.end(), r) == regions.end()) regions.push_back(r);
    }
    std::vector<std::vector<char>> before, first;
    for (auto &r : regions) before.emplace_back(r.first, r.first + r.second);
    run_grid();
    for (size_t k = 0; k < regions.size(); k++) {
        first.emplace_back(regions[k].first, regions[k].first + regions[k].second);
        memcpy(regions[k].first, before[k].data(), regions[k].second);
    }
    reversed = true;
    run_grid();
    reversed = false;
    for (size_t k = 0; k < regions.size(); k++)
        if (memcmp(regions[k].first, first[k].data(), regions[k].second) != 0) {
            size_t at = 0;
            while (regions[k].first[at] == first[k][at]) at++;
            die("kernel %s: its results depend on the order its threads run in (byte %zu of the %zu-byte "
                "allocation at %p): a race, such as a missing __syncthreads, two threads writing one place, or "
                "shared memory read before it is written",
                name, at, regions[k].second, (void *)regions[k].first);
        }
}

void run_kernel(const char *name, dim3 grid, dim3 block, const std::function<void()> &body,
                const std::vector<const void *> &reach) {
    static const long fail_at = env_long("CUEMU_FAIL_LAUNCH", 0);
    if (++launches == fail_at) {
        say("kernel %s: the launch fails, as CUEMU_FAIL_LAUNCH=%ld asks", name, fail_at);
        lose_device(cudaErrorLaunchFailure);
        return;
    }
    kernel_body = &body;
    kernel_name = name;
    grid_dim = grid;
    block_dim = block;
    if (racecheck())
        run_checked(name, reach);
    else
        run_grid();
    kernel_body = nullptr;
}

} // namespace

void syncthreads() { wait_at(WAIT_BLOCK); }

void shuffle(unsigned mask, const void *value, void *out, size_t size, int src_lane) {
    if (!running) die("a warp shuffle outside a kernel");
    if (mask != 0xffffffffu) die("kernel %s: a shuffle with mask %#x: cuemu emulates full-warp shuffles only", kernel_name, mask);
    const unsigned me = current->linear;
    memcpy(&lanes[me], value, size);
    wait_at(WAIT_WARP); /* every lane has written its value */
    memcpy(out, &lanes[(me & ~31u) + (unsigned)src_lane], size);
    wait_at(WAIT_WARP); /* every lane has read before the next shuffle writes */
}

void enqueue_kernel(cudaStream_t s, const char *name, dim3 grid, dim3 block, size_t shared, std::function<void()> body,
                    const void *const *ptrs, size_t nptrs) {
    if (sticky != cudaSuccess) {
        note(sticky);
        return;
    }
    if (!live_stream(s)) {
        note(cudaErrorInvalidResourceHandle);
        return;
    }
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535 || shared > 48 * 1024) {
        say("kernel %s: invalid launch configuration: grid (%u,%u,%u), block (%u,%u,%u), %zu bytes shared", name,
            grid.x, grid.y, grid.z, block.x, block.y, block.z, shared);
        note(cudaErrorInvalidConfiguration);
        return;
    }
    for (size_t k = 0; k < nptrs; k++)
        if (ptrs[k] && kind_of(ptrs[k]) == HOST) {
            say("kernel %s: pointer argument %zu (%p) is neither device nor pinned memory: the kernel would "
                "fault",
                name, k + 1, ptrs[k]);
            lose_device(cudaErrorIllegalAddress);
            return;
        }
    std::vector<const void *> reach(ptrs, ptrs + nptrs);
    enqueue(stream_of(s),
            [name, grid, block, body = std::move(body), reach] { run_kernel(name, grid, block, body, reach); });
}

cudaError_t sort_pairs_i32(void *temp, size_t &temp_bytes, const int32_t *keys_in, int32_t *keys_out,
                           const int32_t *values_in, int32_t *values_out, int n, int begin_bit, int end_bit,
                           cudaStream_t s) {
    const size_t need = 2 * (size_t)(n > 0 ? n : 0) * 2 * sizeof(int32_t) + 64;
    if (!temp) {
        temp_bytes = need;
        return cudaSuccess;
    }
    if (sticky != cudaSuccess) return note(sticky);
    const size_t bytes = (size_t)(n > 0 ? n : 0) * sizeof(int32_t);
    if (n < 0 || begin_bit < 0 || end_bit > 32 || begin_bit >= end_bit || temp_bytes < need ||
        !in_device(temp, temp_bytes) || !in_device(keys_in, bytes) || !in_device(keys_out, bytes) ||
        !in_device(values_in, bytes) || !in_device(values_out, bytes)) {
        say("cub::DeviceRadixSort::SortPairs: bad arguments (n %d, bits [%d, %d), %zu of %zu temporary bytes, or "
            "a buffer outside device memory)",
            n, begin_bit, end_bit, temp_bytes, need);
        return note(cudaErrorInvalidValue);
    }
    if (n == 0) return cudaSuccess;
    if (!live_stream(s)) return note(cudaErrorInvalidResourceHandle);
    enqueue(stream_of(s), [=] {
        const uint32_t mask = end_bit - begin_bit == 32 ? 0xffffffffu : ((1u << (end_bit - begin_bit)) - 1);
        auto digit = [&](int32_t k) { return (((uint32_t)k ^ 0x80000000u) >> begin_bit) & mask; };
        std::vector<int> order((size_t)n);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return digit(keys_in[a]) < digit(keys_in[b]); });
        std::vector<int32_t> k((size_t)n), v((size_t)n);
        for (int i = 0; i < n; i++) k[i] = keys_in[order[i]], v[i] = values_in[order[i]];
        memcpy(keys_out, k.data(), bytes);
        memcpy(values_out, v.data(), bytes);
    });
    return cudaSuccess;
}

} // namespace cuemu

using namespace cuemu;

/* ---- the runtime API ------------------------------------------------------------------------- */

#define CHECK_STICKY()                                         \
    do {                                                       \
        if (sticky != cudaSuccess) return note(sticky);        \
    } while (0)

static int device_count() {
    static long n = env_long("CUEMU_DEVICES", 1);
    return (int)n;
}
static int current_device = 0;

extern "C" {

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 0;
    if (device_count() <= 0) return note(cudaErrorNoDevice);
    *count = device_count();
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    CHECK_STICKY();
    if (device < 0 || device >= device_count()) return note(cudaErrorInvalidDevice);
    current_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    *device = current_device;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    CHECK_STICKY();
    if (Graph *g = any_capture()) return capture_violation(g, "cudaDeviceSynchronize");
    run_everything();
    return sticky != cudaSuccess ? note(sticky) : cudaSuccess;
}

cudaError_t cudaDeviceReset(void) {
    run_everything();
    sticky = cudaSuccess;
    last_error = cudaSuccess;
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = sticky;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

/* Each error cuemu returns, with CUDA's message for it; its name is its enumerator's. */
#define CUEMU_ERROR(e, text) {e, #e, text}
static const struct {
    cudaError_t e;
    const char *name, *text;
} cuda_errors[] = {
    CUEMU_ERROR(cudaSuccess, "no error"),
    CUEMU_ERROR(cudaErrorInvalidValue, "invalid argument"),
    CUEMU_ERROR(cudaErrorMemoryAllocation, "out of memory"),
    CUEMU_ERROR(cudaErrorInitializationError, "initialization error"),
    CUEMU_ERROR(cudaErrorInvalidConfiguration, "invalid configuration argument"),
    CUEMU_ERROR(cudaErrorInvalidMemcpyDirection, "invalid copy direction for memcpy"),
    CUEMU_ERROR(cudaErrorNoDevice, "no CUDA-capable device is detected"),
    CUEMU_ERROR(cudaErrorInvalidDevice, "invalid device ordinal"),
    CUEMU_ERROR(cudaErrorInvalidResourceHandle, "invalid resource handle"),
    CUEMU_ERROR(cudaErrorNotReady, "device not ready"),
    CUEMU_ERROR(cudaErrorIllegalAddress, "an illegal memory access was encountered"),
    CUEMU_ERROR(cudaErrorLaunchFailure, "unspecified launch failure"),
    CUEMU_ERROR(cudaErrorStreamCaptureUnsupported, "operation not permitted when stream is capturing"),
    CUEMU_ERROR(cudaErrorStreamCaptureInvalidated, "operation failed due to a previous error during capture"),
    CUEMU_ERROR(cudaErrorStreamCaptureUnmatched, "capture was not initiated in this stream"),
    CUEMU_ERROR(cudaErrorStreamCaptureUnjoined, "capturing stream has unjoined work"),
};
#undef CUEMU_ERROR

const char *cudaGetErrorName(cudaError_t e) {
    for (const auto &x : cuda_errors)
        if (x.e == e) return x.name;
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
    for (const auto &x : cuda_errors)
        if (x.e == e) return x.text;
    return "unknown error";
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    CHECK_STICKY();
    *total_bytes = device_memory();
    *free_bytes = device_memory() - device_used;
    return cudaSuccess;
}

static cudaError_t allocate(void **p, size_t bytes, Kind kind, const char *call) {
    *p = nullptr;
    CHECK_STICKY();
    if (Graph *g = any_capture()) return capture_violation(g, call);
    if (bytes == 0) return cudaSuccess;
    if (kind == DEVICE && bytes > device_memory() - device_used) return note(cudaErrorMemoryAllocation);
    void *m = nullptr;
    if (posix_memalign(&m, 256, bytes)) return note(cudaErrorMemoryAllocation);
    memset(m, 0xff, bytes); /* NaN floats: what reading memory nobody wrote deserves */
    allocs[(uintptr_t)m] = Alloc{bytes, kind};
    if (kind == DEVICE) device_used += bytes;
    *p = m;
    return cudaSuccess;
}

static cudaError_t release(void *p, Kind kind, const char *call) {
    if (!p) return cudaSuccess;
    if (Graph *g = any_capture()) return capture_violation(g, call);
    run_everything(); /* freeing waits for the device */
    auto it = allocs.find((uintptr_t)p);
    if (it == allocs.end() || it->second.kind != kind) {
        say("%s(%p): not the start of a %s allocation", call, p, kind_name(kind));
        return note(cudaErrorInvalidValue);
    }
    if (kind == DEVICE) device_used -= it->second.size;
    allocs.erase(it);
    free(p);
    return sticky != cudaSuccess ? note(sticky) : cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) { return allocate(p, bytes, DEVICE, "cudaMalloc"); }
cudaError_t cudaFree(void *p) { return release(p, DEVICE, "cudaFree"); }
cudaError_t cudaMallocHost(void **p, size_t bytes) { return allocate(p, bytes, PINNED, "cudaMallocHost"); }
cudaError_t cudaFreeHost(void *p) { return release(p, PINNED, "cudaFreeHost"); }

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a, const void *p) {
    CHECK_STICKY();
    const auto *al = containing(p, 0);
    const Kind k = al ? al->second.kind : HOST;
    a->type = k == DEVICE ? cudaMemoryTypeDevice : k == PINNED ? cudaMemoryTypeHost : cudaMemoryTypeUnregistered;
    a->device = k == HOST ? -2 : current_device;
    a->devicePointer = k == HOST ? nullptr : (void *)p;
    a->hostPointer = k == DEVICE ? nullptr : (void *)p;
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind, cudaStream_t s) {
    CHECK_STICKY();
    if (!live_stream(s)) return note(cudaErrorInvalidResourceHandle);
    if (bytes == 0) return cudaSuccess;
    Stream *st = stream_of(s);
    const Kind kd = kind_of(dst), ks = kind_of(src);
    if (kind == cudaMemcpyDefault)
        kind = ks == DEVICE ? (kd == DEVICE ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
                            : (kd == DEVICE ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
    const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if ((kd == DEVICE) != dst_dev || (ks == DEVICE) != src_dev) {
        say("cudaMemcpyAsync of %zu bytes, kind %d: the destination %p is %s memory and the source %p %s memory",
            bytes, (int)kind, dst, kind_name(kd), src, kind_name(ks));
        return note(cudaErrorInvalidValue);
    }
    if ((dst_dev && !in_device(dst, bytes)) || (src_dev && !in_device(src, bytes))) {
        say("cudaMemcpyAsync of %zu bytes from %p to %p: runs past the end of its device allocation", bytes, src, dst);
        return note(cudaErrorInvalidValue);
    }
    const bool host_pageable = (!dst_dev && kd == HOST) || (!src_dev && ks == HOST);
    if (st->capture && host_pageable && kind != cudaMemcpyHostToHost && kind != cudaMemcpyDeviceToDevice)
        return capture_violation(st->capture, "cudaMemcpyAsync with pageable host memory");
    if (kind == cudaMemcpyHostToDevice && ks == HOST) {
        /* the runtime stages pageable memory before returning: the caller may reuse it at once */
        auto copy = std::make_shared<std::vector<char>>((const char *)src, (const char *)src + bytes);
        enqueue(st, [dst, copy] { memcpy(dst, copy->data(), copy->size()); });
        return cudaSuccess;
    }
    enqueue(st, [dst, src, bytes] { memmove(dst, src, bytes); });
    if (kind == cudaMemcpyDeviceToHost && kd == HOST) run_all(st); /* into pageable memory: synchronous */
    return sticky != cudaSuccess ? note(sticky) : cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind) {
    if (Graph *g = any_capture()) return capture_violation(g, "cudaMemcpy");
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
    if (e != cudaSuccess) return e;
    run_all(&legacy_stream);
    return sticky != cudaSuccess ? note(sticky) : cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t s) {
    CHECK_STICKY();
    if (!live_stream(s)) return note(cudaErrorInvalidResourceHandle);
    if (bytes == 0) return cudaSuccess;
    if (!in_device(dst, bytes)) {
        say("cudaMemsetAsync of %zu bytes at %p: not inside one device allocation", bytes, dst);
        return note(cudaErrorInvalidValue);
    }
    enqueue(stream_of(s), [dst, value, bytes] { memset(dst, value, bytes); });
    return sticky != cudaSuccess ? note(sticky) : cudaSuccess;
}

cudaError_t cudaMemset(void *dst, int value, size_t bytes) {
    if (Graph *g = any_capture()) return capture_violation(g, "cudaMemset");
    cudaError_t e = cudaMemsetAsync(dst, value, bytes, nullptr);
    if (e == cudaSuccess) run_all(&legacy_stream);
    return e;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    CHECK_STICKY();
    Stream *st = new Stream;
    st->blocking = !(flags & cudaStreamNonBlocking);
    streams.push_back(st);
    *s = (cudaStream_t)st;
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (!s || !live_stream(s)) return note(cudaErrorInvalidResourceHandle);
    Stream *st = (Stream *)s;
    if (st->capture) return capture_violation(st->capture, "cudaStreamDestroy of a capturing stream");
    run_everything(); /* its queued work still runs, and so does any other stream's that waits for it */
    streams.erase(std::find(streams.begin(), streams.end(), st));
    delete st;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    CHECK_STICKY();
    if (!live_stream(s)) return note(cudaErrorInvalidResourceHandle);
    Stream *st = stream_of(s);
    if (st->capture) return capture_violation(st->capture, "cudaStreamSynchronize");
    if (st->legacy)
        if (Graph *g = any_capture()) return capture_violation(g, "cudaStreamSynchronize of the legacy stream");
    run_all(st);
    return sticky != cudaSuccess ? note(sticky) : cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t s) {
    CHECK_STICKY();
    if (!live_stream(s)) return note(cudaErrorInvalidResourceHandle);
    Stream *st = stream_of(s);
    if (st->capture) return capture_violation(st->capture, "cudaStreamQuery");
    /* a device makes progress while the host polls */
    if (!advance(st, st->enqueued, false)) return cudaErrorNotReady;
    return sticky != cudaSuccess ? note(sticky) : cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    (void)flags;
    CHECK_STICKY();
    Event *ev = new Event;
    events.push_back(ev);
    *e = (cudaEvent_t)ev;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    if (!live_event(e)) return note(cudaErrorInvalidResourceHandle);
    events.erase(std::find(events.begin(), events.end(), (Event *)e));
    delete (Event *)e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    CHECK_STICKY();
    if (!live_event(e) || !live_stream(s)) return note(cudaErrorInvalidResourceHandle);
    Event *ev = (Event *)e;
    Stream *st = stream_of(s);
    ev->stream = st;
    if (st->capture) {
        ev->capture = st->capture;
        ev->captured = st->captured;
        ev->recorded = false;
        return cudaSuccess;
    }
    ev->capture = nullptr;
    ev->seq = st->enqueued;
    ev->recorded = true;
    return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
    (void)flags;
    CHECK_STICKY();
    if (!live_event(e) || !live_stream(s)) return note(cudaErrorInvalidResourceHandle);
    Event *ev = (Event *)e;
    Stream *st = stream_of(s);
    if (ev->capture) {
        Graph *g = ev->capture;
        if (g->invalid && !st->capture) return note(cudaErrorStreamCaptureInvalidated);
        if (!st->capture) { /* a fork: st joins the capture */
            if (st->legacy) return capture_violation(g, "the legacy stream joining a capture");
            st->capture = g;
            st->captured = 0;
            st->joined = true;
            g->members.push_back(st);
        } else if (st->capture != g) {
            return capture_violation(g, "waiting for an event of another capture");
        }
        /* a join: the event's stream has nothing captured after it */
        if (ev->stream != st && ev->stream->capture == g && ev->captured == ev->stream->captured)
            ev->stream->joined = true;
        return cudaSuccess; /* the captured work is one ordered list */
    }
    if (st->capture) {
        if (ev->recorded) return capture_violation(st->capture, "waiting for an event recorded outside the capture");
        return cudaSuccess;
    }
    if (!ev->recorded) return cudaSuccess; /* never recorded: nothing to wait for */
    Stream *src = ev->stream;
    const uint64_t seq = ev->seq;
    if (src != st) enqueue(st, [src, seq] { run_until(src, seq); });
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    CHECK_STICKY();
    if (!live_event(e)) return note(cudaErrorInvalidResourceHandle);
    Event *ev = (Event *)e;
    if (ev->capture) return capture_violation(ev->capture, "cudaEventSynchronize of a captured event");
    if (ev->recorded) run_until(ev->stream, ev->seq);
    return sticky != cudaSuccess ? note(sticky) : cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t e) {
    CHECK_STICKY();
    if (!live_event(e)) return note(cudaErrorInvalidResourceHandle);
    Event *ev = (Event *)e;
    if (ev->capture) return capture_violation(ev->capture, "cudaEventQuery of a captured event");
    /* a device makes progress while the host polls */
    if (ev->recorded && !advance(ev->stream, ev->seq, false)) return cudaErrorNotReady;
    return sticky != cudaSuccess ? note(sticky) : cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode) {
    CHECK_STICKY();
    if (!live_stream(s)) return note(cudaErrorInvalidResourceHandle);
    Stream *st = stream_of(s);
    /* with one host thread, thread-local capture is global capture; relaxed would allow the
     * calls that cuemu checks, so it is not emulated */
    if (st->legacy || st->capture || mode == cudaStreamCaptureModeRelaxed) {
        say("cudaStreamBeginCapture: %s", st->legacy ? "the legacy stream cannot be captured"
                                          : st->capture ? "the stream is capturing already"
                                                        : "cuemu emulates the global and thread-local modes only");
        return note(st->capture ? cudaErrorStreamCaptureUnsupported : cudaErrorInvalidValue);
    }
    Graph *g = new Graph;
    g->origin = st;
    g->members.push_back(st);
    st->capture = g;
    st->captured = 0;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
    *graph = nullptr;
    if (!live_stream(s)) return note(cudaErrorInvalidResourceHandle);
    Stream *st = stream_of(s);
    if (!st->capture || st->capture->origin != st) return note(cudaErrorStreamCaptureUnmatched);
    Graph *g = st->capture;
    bool unjoined = false;
    for (Stream *m : g->members) {
        if (m != st && !m->joined) unjoined = true;
        m->capture = nullptr;
    }
    for (Event *ev : events) /* recorded inside the capture: nothing to wait for outside it */
        if (ev->capture == g) ev->capture = nullptr, ev->recorded = false;
    if (unjoined) {
        say("cudaStreamEndCapture: a stream forked into the capture has work its origin never waited for");
        delete g;
        return note(cudaErrorStreamCaptureUnjoined);
    }
    if (g->invalid) {
        delete g;
        return note(cudaErrorStreamCaptureInvalidated);
    }
    g->members.clear();
    *graph = (cudaGraph_t)g;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *status) {
    if (!live_stream(s)) return note(cudaErrorInvalidResourceHandle);
    Stream *st = stream_of(s);
    *status = !st->capture ? cudaStreamCaptureStatusNone
              : st->capture->invalid ? cudaStreamCaptureStatusInvalidated
                                     : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
    (void)flags;
    CHECK_STICKY();
    if (!graph) return note(cudaErrorInvalidValue);
    Exec *x = new Exec;
    x->ops = std::make_shared<std::vector<Op>>(((Graph *)graph)->ops);
    *exec = (cudaGraphExec_t)x;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    CHECK_STICKY();
    if (!exec) return note(cudaErrorInvalidValue);
    if (!live_stream(s)) return note(cudaErrorInvalidResourceHandle);
    auto ops = ((Exec *)exec)->ops;
    enqueue(stream_of(s), [ops] {
        for (const Op &op : *ops)
            if (sticky == cudaSuccess) op();
    });
    return sticky != cudaSuccess ? note(sticky) : cudaSuccess; /* run already under CUDA_LAUNCH_BLOCKING */
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete (Exec *)exec; /* a queued launch keeps its own reference to the work */
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete (Graph *)graph;
    return cudaSuccess;
}

/* ---- cuBLAS ------------------------------------------------------------------------------------ */

struct cublasContext {
    cudaStream_t stream = nullptr;
    void *workspace = nullptr;
    size_t workspace_bytes = 0;
    cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
    if (sticky != cudaSuccess) return CUBLAS_STATUS_NOT_INITIALIZED;
    *handle = new cublasContext;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t s) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!live_stream(s)) return CUBLAS_STATUS_INVALID_VALUE;
    handle->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t *s) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    *s = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void *workspace, size_t bytes) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes && !in_device(workspace, bytes)) {
        say("cublasSetWorkspace: %zu bytes at %p are not device memory", bytes, workspace);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    handle->workspace = workspace;
    handle->workspace_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}

/* Whether the column-major rows x cols matrix at p with leading dimension ld lies in device memory. */
static bool operand_ok(const char *name, const float *p, int rows, int cols, int ld) {
    if (rows == 0 || cols == 0) return true;
    const size_t extent = ((size_t)ld * (size_t)(cols - 1) + (size_t)rows) * sizeof(float);
    if (in_device(p, extent)) return true;
    say("cublasSgemm: %s (%d x %d, leading dimension %d, %zu bytes at %p) is not inside one device allocation",
        name, rows, cols, ld, extent, (const void *)p);
    return false;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                           const float *beta, float *C, int ldc) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (sticky != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    if (transa > CUBLAS_OP_C || transb > CUBLAS_OP_C || m < 0 || n < 0 || k < 0 || !alpha || !beta ||
        lda < std::max(1, ta ? k : m) || ldb < std::max(1, tb ? n : k) || ldc < std::max(1, m)) {
        say("cublasSgemm: invalid value (m %d, n %d, k %d, lda %d, ldb %d, ldc %d)", m, n, k, lda, ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    const float a = *alpha, b = *beta; /* host scalars are read at the call */
    if (!operand_ok("A", A, ta ? k : m, ta ? m : k, lda) || !operand_ok("B", B, tb ? n : k, tb ? k : n, ldb) ||
        !operand_ok("C", C, m, n, ldc)) {
        lose_device(cudaErrorIllegalAddress);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    if (!live_stream(handle->stream)) return CUBLAS_STATUS_INVALID_VALUE;
    enqueue(stream_of(handle->stream), [=] {
        if (k == 0 || a == 0) { /* C = beta C; beta 0 does not read C */
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++) C[(size_t)j * ldc + i] = b == 0 ? 0.0f : b * C[(size_t)j * ldc + i];
            return;
        }
        cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, a, A, lda,
                    B, ldb, b, C, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}

#define CUEMU_STATUS(s, text) {s, #s, text}
static const struct {
    cublasStatus_t s;
    const char *name, *text;
} blas_statuses[] = {
    CUEMU_STATUS(CUBLAS_STATUS_SUCCESS, "success"),
    CUEMU_STATUS(CUBLAS_STATUS_NOT_INITIALIZED, "the library was not initialized"),
    CUEMU_STATUS(CUBLAS_STATUS_ALLOC_FAILED, "the resource allocation failed"),
    CUEMU_STATUS(CUBLAS_STATUS_INVALID_VALUE, "an invalid numeric value was used as an argument"),
    CUEMU_STATUS(CUBLAS_STATUS_EXECUTION_FAILED, "the GPU program failed to execute"),
    CUEMU_STATUS(CUBLAS_STATUS_INTERNAL_ERROR, "an internal operation failed"),
    CUEMU_STATUS(CUBLAS_STATUS_NOT_SUPPORTED, "the functionality requested is not supported"),
};
#undef CUEMU_STATUS

const char *cublasGetStatusName(cublasStatus_t s) {
    for (const auto &x : blas_statuses)
        if (x.s == s) return x.name;
    return "CUBLAS_STATUS_UNKNOWN";
}

const char *cublasGetStatusString(cublasStatus_t s) {
    for (const auto &x : blas_statuses)
        if (x.s == s) return x.text;
    return "unknown status";
}

/* ---- NCCL ---------------------------------------------------------------------------------------- */

struct ncclComm {
    int nranks = 1, rank = 0;
    MPI_Comm mpi = MPI_COMM_NULL;
    bool aborted = false;
    std::shared_ptr<bool> dropped = std::make_shared<bool>(false); /* set by ncclCommAbort */
    std::string last;
};

static ncclResult_t nccl_error(ncclComm_t comm, ncclResult_t r, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    say("NCCL: %s", msg);
    if (comm) comm->last = msg;
    return r;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    static unsigned counter = 0;
    uint64_t x = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)time(nullptr) ^ ((uint64_t)++counter << 40);
    for (size_t i = 0; i < sizeof id->internal; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        id->internal[i] = (char)(x >> 56);
    }
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    *comm = nullptr;
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return nccl_error(nullptr, ncclInvalidArgument, "ncclCommInitRank: rank %d of %d", rank, nranks);
    if (sticky != cudaSuccess) return ncclUnhandledCudaError;
    ncclComm_t c = new ncclComm;
    c->nranks = nranks;
    c->rank = rank;
    if (nranks > 1) {
        int inited = 0, size = 0, me = 0;
        MPI_Initialized(&inited);
        if (!inited) {
            delete c;
            return nccl_error(nullptr, ncclInvalidUsage, "cuemu's NCCL needs MPI for %d ranks", nranks);
        }
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        MPI_Comm_rank(MPI_COMM_WORLD, &me);
        if (size != nranks || me != rank) {
            delete c;
            return nccl_error(nullptr, ncclInvalidUsage,
                              "ncclCommInitRank(rank %d of %d) on MPI rank %d of %d: cuemu's NCCL needs MPI_COMM_WORLD's ranks",
                              rank, nranks, me, size);
        }
        MPI_Comm_dup(MPI_COMM_WORLD, &c->mpi);
        /* every rank must hold rank 0's id */
        unsigned long long h = 1469598103934665603ull, lo = 0, hi = 0; /* FNV-1a */
        for (size_t i = 0; i < sizeof id.internal; i++) h = (h ^ (unsigned char)id.internal[i]) * 1099511628211ull;
        MPI_Allreduce(&h, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, c->mpi);
        MPI_Allreduce(&h, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, c->mpi);
        if (lo != hi) {
            MPI_Comm_free(&c->mpi);
            delete c;
            return nccl_error(nullptr, ncclInvalidArgument, "ncclCommInitRank: the ranks hold different ncclUniqueIds");
        }
    }
    *comm = c;
    return ncclSuccess;
}

static void nccl_free(ncclComm_t comm) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (comm->mpi != MPI_COMM_NULL && !finalized) MPI_Comm_free(&comm->mpi);
    delete comm;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    if (!comm) return ncclInvalidArgument;
    run_everything(); /* its queued collectives complete first */
    nccl_free(comm);
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
    if (!comm) return ncclInvalidArgument;
    comm->aborted = true; /* queued collectives are dropped, the MPI communicator is left as is */
    *comm->dropped = true;  /* and so is one in flight */
    delete comm;
    return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *async_error) {
    if (!comm) return ncclInvalidArgument;
    *async_error = ncclSuccess;
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
    if (!comm) return nccl_error(nullptr, ncclInvalidArgument, "ncclAllReduce: no communicator");
    if (sticky != cudaSuccess) return nccl_error(comm, ncclUnhandledCudaError, "ncclAllReduce: the device is lost");
    const size_t width = datatype == ncclFloat32 ? 4 : datatype == ncclFloat64 ? 8 : datatype == ncclInt32 ? 4 : 0;
    if (!width || (op != ncclSum && op != ncclAvg))
        return nccl_error(comm, ncclInvalidArgument, "ncclAllReduce: cuemu emulates float, double and int32 sums and means");
    if (count == 0) return ncclSuccess;
    if (!in_device(sendbuff, count * width) || !in_device(recvbuff, count * width))
        return nccl_error(comm, ncclInvalidArgument, "ncclAllReduce: %zu elements at %p -> %p are not device memory",
                          count, sendbuff, recvbuff);
    if (!live_stream(stream)) return nccl_error(comm, ncclInvalidArgument, "ncclAllReduce: not a stream");
    const int nranks = comm->nranks;
    MPI_Comm mpi = comm->mpi;
    std::shared_ptr<bool> dropped = comm->dropped;
    /* the device goes on with the reduction while the host polls: the MPI request stays in
     * flight on the stream until something waits for it or the stream's next operation runs */
    enqueue(stream_of(stream), [=] {
        if (*dropped) return;
        if (nranks == 1) {
            if (sendbuff != recvbuff) memcpy(recvbuff, sendbuff, count * width);
            return;
        }
        MPI_Datatype t = datatype == ncclFloat32 ? MPI_FLOAT : datatype == ncclFloat64 ? MPI_DOUBLE : MPI_INT;
        MPI_Request req;
        MPI_Iallreduce(sendbuff == recvbuff ? MPI_IN_PLACE : sendbuff, recvbuff, (int)count, t, MPI_SUM, mpi, &req);
        put_in_flight(req, [=] {
            for (size_t i = 0; op == ncclAvg && i < count; i++) {
                if (datatype == ncclFloat32) ((float *)recvbuff)[i] /= (float)nranks;
                else if (datatype == ncclFloat64) ((double *)recvbuff)[i] /= nranks;
                else ((int32_t *)recvbuff)[i] /= nranks;
            }
        }, dropped);
    });
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t r) {
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    }
    return "unknown result code";
}

const char *ncclGetLastError(ncclComm_t comm) { return comm ? comm->last.c_str() : ""; }

} // extern "C"
