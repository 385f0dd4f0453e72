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

/* What went wrong, for callers that act on it (-resume auto falls back to an older checkpoint
 * only when the newer one is CRNN_ERR_CORRUPT) and for the exit status (CRNN_ERR_BAD_INPUT
 * exits 2, every other kind 1). */
typedef enum CrnnErrorKind {
    CRNN_ERR_OTHER = 0,  /* a runtime failure of no kind below */
    CRNN_ERR_BAD_INPUT,  /* the user's flags or their values (crnn_fail_usage) */
    CRNN_ERR_CORRUPT,    /* a file that exists and opens but is not what it should be */
    CRNN_ERR_IO,         /* a file that cannot be opened, read, written or renamed */
    CRNN_ERR_NOMEM,      /* an allocation failed */
    CRNN_ERR_DEVICE,     /* the GPU or its libraries (CUDA, cuBLAS) failed */
    CRNN_ERR_PEER_LOST,  /* another rank is gone or did not answer within -comm_timeout */
} CrnnErrorKind;

typedef struct CrnnError {
    char msg[CRNN_ERROR_MAX];
    int code;           /* CRNN_EXIT_USAGE when kind is CRNN_ERR_BAD_INPUT, else 0 */
    CrnnErrorKind kind;
} CrnnError;

/* Fills err (if not NULL) with a printf-style message and returns -1, so that
 * `return crnn_fail(err, "...", ...);` reads as one statement. Kind CRNN_ERR_OTHER. */
int crnn_fail(CrnnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same with a kind. */
int crnn_fail_kind(CrnnError *err, CrnnErrorKind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same for an error in the user's flags or their values (kind CRNN_ERR_BAD_INPUT, code
 * CRNN_EXIT_USAGE: the programs exit 2). */
int crnn_fail_usage(CrnnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Kind CRNN_ERR_CORRUPT, CRNN_ERR_IO, CRNN_ERR_NOMEM, CRNN_ERR_DEVICE, CRNN_ERR_PEER_LOST. */
int crnn_fail_corrupt(CrnnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int crnn_fail_io(CrnnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int crnn_fail_nomem(CrnnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int crnn_fail_device(CrnnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int crnn_fail_peer_lost(CrnnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The kind of the failure reported in err (CRNN_ERR_OTHER for NULL). */
CrnnErrorKind crnn_error_kind(const CrnnError *err);
/* Its name for messages and tests: "bad input", "corrupt file", "I/O", "out of memory",
 * "device", "peer lost", "other". */
const char *crnn_error_kind_name(CrnnErrorKind kind);

/* The program's exit status for a failure reported in err: 2 for a flag or value error, else 1. */
int crnn_exit_status(const CrnnError *err);

/* Prepends "context: " to an existing message (e.g. the file being read); keeps its kind. */
int crnn_fail_context(CrnnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* malloc/calloc that report failure through err (kind CRNN_ERR_NOMEM); size 0 still returns a
 * unique pointer. */
void *crnn_malloc(size_t bytes, CrnnError *err);
void *crnn_calloc(size_t count, size_t size, CrnnError *err);

/* Turns off HDF5's own error stack printing; crnn reports HDF5 failures itself. */
void crnn_hdf5_quiet(void);

/* Seconds on the monotonic clock (for durations and deadlines, not dates). */
double crnn_now_seconds(void);

#define CRNN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
