/* One writer per run: rank 0 of crnn-train locks <checkpoint_name>.lock before it writes any
 * of the run's files and holds the lock until it exits, so that a second start on the same
 * checkpoint name (a requeued job while the last one's ranks are still exiting, a host cut off
 * that trains on) refuses instead of truncating the metrics and writing checkpoints beside it.
 * The lock is an open file description lock (fcntl F_OFD_SETLK): the kernel releases it when
 * the process ends, however it ends; the file stays (removing it would race a new holder). */
#ifndef CRNN_RUNLOCK_H
#define CRNN_RUNLOCK_H

#include <stddef.h>

#include "crnn/common.h"

typedef struct RunLock {
    int fd; /* -1 when not held */
} RunLock;

/* Takes the lock of the run whose files start with `prefix`. 0 when held, or when the file
 * system has no locks (ENOLCK, ENOSYS, EOPNOTSUPP: then *warning says so and the run goes on
 * unprotected); -1 when another process holds it (err names its host and pid) or the lock file
 * cannot be made. */
int runlock_acquire(RunLock *l, const char *prefix, char *warning, size_t cap, CrnnError *err);
void runlock_release(RunLock *l);

#endif
