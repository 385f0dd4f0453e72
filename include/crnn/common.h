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

/* Exit status of every program (README "Exit status"): 0 done, 1 a runtime error (a file
 * missing or unreadable, a device or a rank failing), 2 a flag or its value is wrong (unknown,
 * malformed, out of range, or at odds with the files it names: a checkpoint's model or
 * vocabulary); crnn-train's 75 (stopped by a signal) is CRNN_EXIT_STOPPED in train.h. */
enum { CRNN_EXIT_OK = 0, CRNN_EXIT_FAILURE = 1, CRNN_EXIT_USAGE = 2 };

typedef struct CrnnError {
    char msg[CRNN_ERROR_MAX];
    int code; /* CRNN_EXIT_USAGE when the user's flags are at fault, else 0 */
} CrnnError;

/* Fills err (if not NULL) with a printf-style message and returns -1, so that
 * `return crnn_fail(err, "...", ...);` reads as one statement. A runtime error (code 0). */
int crnn_fail(CrnnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same for an error in the user's flags or their values (code CRNN_EXIT_USAGE: the programs
 * exit 2). */
int crnn_fail_usage(CrnnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The program's exit status for a failure reported in err: 2 for a flag or value error, else 1. */
int crnn_exit_status(const CrnnError *err);

/* Prepends "context: " to an existing message (e.g. the file being read); keeps its code. */
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
