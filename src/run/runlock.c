/* The run's lock file: see include/crnn/runlock.h. */
#define _GNU_SOURCE /* F_OFD_SETLK */
#include "crnn/runlock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int no_locks_here(int e) { return e == ENOLCK || e == ENOSYS || e == EOPNOTSUPP || e == EINVAL; }

int runlock_acquire(RunLock *l, const char *prefix, char *warning, size_t cap, CrnnError *err) {
    char path[PATH_MAX + 8];
    l->fd = -1;
    if (warning && cap) warning[0] = '\0';
    if ((size_t)snprintf(path, sizeof path, "%s.lock", prefix) >= sizeof path)
        return crnn_fail(err, "the checkpoint name %s is too long", prefix);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return crnn_fail(err, "cannot create the run's lock file %s: %s; choose another -checkpoint_name", path,
                         strerror(errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        int e = errno;
        if (e == EAGAIN || e == EACCES) { /* held: say by whom, from what the holder wrote */
            char holder[256] = "";
            ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
            holder[n > 0 ? n : 0] = '\0';
            holder[strcspn(holder, "\n")] = '\0';
            close(fd);
            return crnn_fail(err,
                             "another crnn-train is writing this run: %s is locked by %s; wait until it has ended "
                             "(send it SIGUSR1 to checkpoint and stop) or choose another -checkpoint_name",
                             path, holder[0] ? holder : "a process that has not said who it is");
        }
        close(fd);
        if (no_locks_here(e)) {
            if (warning && cap)
                snprintf(warning, cap,
                         "the file system of %s does not lock files (%s): nothing stops a second crnn-train from "
                         "writing this run at the same time (on Lustre, mount with -o flock)",
                         path, strerror(e));
            return 0;
        }
        return crnn_fail(err, "cannot lock %s: %s", path, strerror(e));
    }
    /* who holds it, for the message of a second start */
    char host[256] = "?", text[512], when[64] = "";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    int len = snprintf(text, sizeof text, "host %s, pid %ld, since %s\n", host, (long)getpid(), when);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) {
        /* the lock holds all the same; only the message of a second start is poorer */
    }
    l->fd = fd;
    return 0;
}

void runlock_release(RunLock *l) {
    if (l->fd >= 0) close(l->fd);
    l->fd = -1;
}
