/* LD_PRELOAD shim for the fault-injection tests (tests/fault/test_fault.py): a file system that
 * fills up. Writes to files under CRNN_FAULTFS_DIR succeed until CRNN_FAULTFS_BYTES bytes have
 * been written there in all (counted over the whole process), then fail with ENOSPC, as a full
 * disk does; fallocate takes from the same budget, and later writes use what it reserved.
 * Used where a small tmpfs cannot be mounted. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static atomic_llong used = 0, reserved = 0;

/* 1 when fd is a file under the folder, and the write of n bytes would not fit. */
static int no_space(int fd, size_t n) {
    const char *dir = getenv("CRNN_FAULTFS_DIR"), *bytes = getenv("CRNN_FAULTFS_BYTES");
    if (!dir || !bytes) return 0;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, sizeof path - 1);
    if (len < 0) return 0;
    path[len] = '\0';
    size_t dl = strlen(dir);
    if (strncmp(path, dir, dl) != 0 || (path[dl] != '/' && path[dl] != '\0')) return 0;
    long long budget = atoll(bytes);
    long long r = atomic_load(&reserved);
    while (r > 0) { /* a write into space fallocate reserved */
        long long take = r < (long long)n ? r : (long long)n;
        if (atomic_compare_exchange_weak(&reserved, &r, r - take)) {
            n -= (size_t)take;
            break;
        }
    }
    if (n == 0) return 0;
    long long after = atomic_fetch_add(&used, (long long)n) + (long long)n;
    if (after <= budget) return 0;
    atomic_fetch_sub(&used, (long long)n);
    return 1;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
#define REAL(name, type)                                                                       \
    static type real_##name;                                                                   \
    if (!real_##name) real_##name = (type)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write, write_fn);
    if (n && no_space(fd, n)) {
        errno = ENOSPC;
        return -1;
    }
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite, pwrite_fn);
    if (n && no_space(fd, n)) {
        errno = ENOSPC;
        return -1;
    }
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite64, pwrite_fn);
    if (n && no_space(fd, n)) {
        errno = ENOSPC;
        return -1;
    }
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    REAL(writev, writev_fn);
    size_t n = 0;
    for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
    if (n && no_space(fd, n)) {
        errno = ENOSPC;
        return -1;
    }
    return real_writev(fd, iov, cnt);
}

int fallocate(int fd, int mode, off_t off, off_t len) {
    typedef int (*fallocate_fn)(int, int, off_t, off_t);
    REAL(fallocate, fallocate_fn);
    if (len > 0 && no_space(fd, (size_t)len)) {
        errno = ENOSPC;
        return -1;
    }
    int rc = real_fallocate(fd, mode, off, len);
    if (rc == 0) atomic_fetch_add(&reserved, (long long)len);
    return rc;
}

int fallocate64(int fd, int mode, off_t off, off_t len) { return fallocate(fd, mode, off, len); }
