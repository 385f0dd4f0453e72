/* LD_PRELOAD shim for the fault-injection tests (tests/fault/test_fault.py): fails one chosen
 * memory allocation made by crnn's own code. crnn's modules are linked statically into each
 * program, so an allocation whose caller lies in the main executable is one of crnn's; those
 * of HDF5, Open MPI, OpenBLAS, jansson and libc (strdup, stdio) are let through. Environment:
 *   CRNN_FAILALLOC_N      fail the N-th such allocation (1-based; 0 or unset: fail none)
 *   CRNN_FAILALLOC_COUNT  a file to which the number of such allocations is written at exit
 * Not for sanitizer builds (AddressSanitizer owns malloc). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define MAX_RANGES 16
static uintptr_t lo[MAX_RANGES], hi[MAX_RANGES];
static int num_ranges = -1; /* -1: not looked up yet */
static long fail_at = 0;
static atomic_long count = 0;

/* The main executable's loaded segments: the first object dl_iterate_phdr reports. */
static int first_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    (void)data;
    num_ranges = 0;
    for (int i = 0; i < info->dlpi_phnum && num_ranges < MAX_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        lo[num_ranges] = info->dlpi_addr + ph->p_vaddr;
        hi[num_ranges] = lo[num_ranges] + ph->p_memsz;
        num_ranges++;
    }
    return 1; /* stop after the first */
}

static void setup(void) {
    if (num_ranges >= 0) return;
    const char *n = getenv("CRNN_FAILALLOC_N");
    fail_at = n ? atol(n) : 0;
    dl_iterate_phdr(first_object, NULL);
}

/* 1 when this allocation, made from caller, is the one to fail. */
static int should_fail(void *caller) {
    setup();
    uintptr_t c = (uintptr_t)caller;
    int ours = 0;
    for (int i = 0; i < num_ranges; i++)
        if (c >= lo[i] && c < hi[i]) ours = 1;
    if (!ours) return 0;
    long k = atomic_fetch_add(&count, 1) + 1;
    return fail_at > 0 && k == fail_at;
}

void *malloc(size_t n) {
    if (should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b) {
    if (num_ranges >= 0 && should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n) {
    if (should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
    if (should_fail(__builtin_return_address(0))) return ENOMEM;
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n) {
    if (should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_memalign(align, n);
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("CRNN_FAILALLOC_COUNT");
    if (!path) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0666);
    if (fd < 0) return;
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%ld\n", (long)atomic_load(&count));
    if (write(fd, buf, (size_t)len) < 0) { /* nothing to do */
    }
    close(fd);
}
