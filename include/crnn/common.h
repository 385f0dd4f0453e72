/* Shared basics: the error value every library function fills, the `real` type of the math
 * modules, and small helpers. Library code never prints or exits: it returns -1 with a
 * message in a CrnnError, and the program prints "<program>: error: <message>". */
#ifndef CRNN_COMMON_H
#define CRNN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef CRNN_DOUBLE
typedef double real; /* the finite-difference build */
#else
typedef float real;
#endif

#define CRNN_ERROR_MAX 1024

typedef struct CrnnError {
    char msg[CRNN_ERROR_MAX];
} CrnnError;

/* Fills err (if not NULL) with a printf-style message and returns -1, so that
 * `return crnn_fail(err, "...", ...);` reads as one statement. */
int crnn_fail(CrnnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "context: " to an existing message (e.g. the file being read). */
int crnn_fail_context(CrnnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* malloc/calloc that report failure through err; size 0 still returns a unique pointer. */
void *crnn_malloc(size_t bytes, CrnnError *err);
void *crnn_calloc(size_t count, size_t size, CrnnError *err);

/* Program-level helpers: print "prog: error: msg" to stderr. */
void crnn_print_error(const char *prog, const CrnnError *err);

/* Turns off HDF5's own error stack printing; crnn reports HDF5 failures itself. */
void crnn_hdf5_quiet(void);

#define CRNN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
