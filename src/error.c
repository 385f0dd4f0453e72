/* Error values and checked allocation. */
#include "crnn/common.h"

#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int crnn_fail(CrnnError *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = 0;
    }
    return -1;
}

int crnn_fail_usage(CrnnError *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = CRNN_EXIT_USAGE;
    }
    return -1;
}

int crnn_exit_status(const CrnnError *err) {
    return err && err->code == CRNN_EXIT_USAGE ? CRNN_EXIT_USAGE : CRNN_EXIT_FAILURE;
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
    return -1;
}

void *crnn_malloc(size_t bytes, CrnnError *err) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) crnn_fail(err, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *crnn_calloc(size_t count, size_t size, CrnnError *err) {
    if (size && count > SIZE_MAX / size) {
        crnn_fail(err, "out of memory: %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) crnn_fail(err, "out of memory allocating %zu bytes", count * size);
    return p;
}

void crnn_print_error(const char *prog, const CrnnError *err) {
    fprintf(stderr, "%s: error: %s\n", prog, err->msg);
    fflush(stderr);
}

void crnn_hdf5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
