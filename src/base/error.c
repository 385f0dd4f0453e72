/* Error values with kinds, and checked allocation. */
#include "crnn/common.h"

#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void fill(CrnnError *err, CrnnErrorKind kind, const char *fmt, va_list ap) {
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    err->kind = kind;
    err->code = kind == CRNN_ERR_BAD_INPUT ? CRNN_EXIT_USAGE : 0;
}

/* One definition per kind: `int name(CrnnError *err, const char *fmt, ...)`. */
#define CRNN_FAIL_WITH(name, kind)                                                             \
    int name(CrnnError *err, const char *fmt, ...) {                                           \
        if (err) {                                                                             \
            va_list ap;                                                                        \
            va_start(ap, fmt);                                                                 \
            fill(err, kind, fmt, ap);                                                          \
            va_end(ap);                                                                        \
        }                                                                                      \
        return -1;                                                                             \
    }
CRNN_FAIL_WITH(crnn_fail, CRNN_ERR_OTHER)
CRNN_FAIL_WITH(crnn_fail_usage, CRNN_ERR_BAD_INPUT)
CRNN_FAIL_WITH(crnn_fail_corrupt, CRNN_ERR_CORRUPT)
CRNN_FAIL_WITH(crnn_fail_io, CRNN_ERR_IO)
CRNN_FAIL_WITH(crnn_fail_nomem, CRNN_ERR_NOMEM)
CRNN_FAIL_WITH(crnn_fail_device, CRNN_ERR_DEVICE)
CRNN_FAIL_WITH(crnn_fail_peer_lost, CRNN_ERR_PEER_LOST)

int crnn_fail_kind(CrnnError *err, CrnnErrorKind kind, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        fill(err, kind, fmt, ap);
        va_end(ap);
    }
    return -1;
}

CrnnErrorKind crnn_error_kind(const CrnnError *err) {
    if (!err) return CRNN_ERR_OTHER;
    /* code alone marks a usage error where a caller set it by hand */
    return err->code == CRNN_EXIT_USAGE ? CRNN_ERR_BAD_INPUT : err->kind;
}

const char *crnn_error_kind_name(CrnnErrorKind kind) {
    switch (kind) {
    case CRNN_ERR_BAD_INPUT: return "bad input";
    case CRNN_ERR_CORRUPT: return "corrupt file";
    case CRNN_ERR_IO: return "I/O";
    case CRNN_ERR_NOMEM: return "out of memory";
    case CRNN_ERR_DEVICE: return "device";
    case CRNN_ERR_PEER_LOST: return "peer lost";
    default: return "other";
    }
}

int crnn_exit_status(const CrnnError *err) {
    return crnn_error_kind(err) == CRNN_ERR_BAD_INPUT ? CRNN_EXIT_USAGE : CRNN_EXIT_FAILURE;
}

int crnn_fail_context(CrnnError *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[CRNN_ERROR_MAX / 2], old[CRNN_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strlen(prefix);
    if (n + 2 >= sizeof err->msg) return -1;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t rest = sizeof err->msg - n - 3;
    size_t m = strnlen(old, rest);
    memcpy(err->msg + n + 2, old, m);
    err->msg[n + 2 + m] = '\0';
    return -1; /* kind and code stay */
}

void *crnn_malloc(size_t bytes, CrnnError *err) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) crnn_fail_nomem(err, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *crnn_calloc(size_t count, size_t size, CrnnError *err) {
    if (size && count > SIZE_MAX / size) {
        crnn_fail_nomem(err, "out of memory: %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) crnn_fail_nomem(err, "out of memory allocating %zu bytes", count * size);
    return p;
}

void crnn_hdf5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

double crnn_now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
