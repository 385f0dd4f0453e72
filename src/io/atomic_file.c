/* Writing a file atomically (include/crnn/atomic_file.h): a new temporary file next to the
 * target, fsync, rename, fsync of the folder. */
#include "crnn/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "<path>.tmp", malloc'd. */
static char *tmp_name(const char *path, CrnnError *err) {
    size_t n = strlen(path);
    char *t = crnn_malloc(n + 5, err);
    if (t) {
        memcpy(t, path, n);
        memcpy(t + n, ".tmp", 5);
    }
    return t;
}

static void release(AtomicFile *af) {
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
    af->fd = -1;
    af->fp = NULL;
}

int atomic_file_create(AtomicFile *af, const char *path, CrnnError *err) {
    memset(af, 0, sizeof *af);
    af->fd = -1;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return crnn_fail_io(err, "cannot write %s: it is a folder; give a file name", path);
    size_t plen = strlen(path) + 1;
    af->tmp = tmp_name(path, err);
    af->path = af->tmp ? crnn_malloc(plen, err) : NULL;
    if (!af->path) {
        release(af);
        return -1;
    }
    memcpy(af->path, path, plen);
    /* a new file, never one a crash left (which may be a hard link to another file) */
    af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (af->fd < 0 && errno == EEXIST && unlink(af->tmp) == 0)
        af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (af->fd < 0) {
        int e = errno;
        crnn_fail_io(err, "cannot write %s: cannot create %s: %s; check that the folder exists and is writable",
                     path, af->tmp, strerror(e));
        release(af);
        return -1;
    }
    return 0;
}

FILE *atomic_file_stream(AtomicFile *af, CrnnError *err) {
    if (af->fp) return af->fp;
    if (af->fd < 0) {
        crnn_fail_io(err, "cannot write %s: its temporary file is closed", af->path ? af->path : "?");
        return NULL;
    }
    af->fp = fdopen(af->fd, "wb");
    if (!af->fp)
        crnn_fail_kind(err, errno == ENOMEM ? CRNN_ERR_NOMEM : CRNN_ERR_IO, "cannot write %s: %s",
                       af->path, strerror(errno));
    return af->fp;
}

FILE *atomic_file_open(AtomicFile *af, const char *path, CrnnError *err) {
    if (atomic_file_create(af, path, err)) return NULL;
    FILE *fp = atomic_file_stream(af, err);
    if (!fp) atomic_file_abandon(af);
    return fp;
}

int atomic_file_write(AtomicFile *af, const void *buf, size_t n, CrnnError *err) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(af->fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return crnn_fail_io(err, "cannot write %s: %s; check the free space of its disk", af->tmp,
                                strerror(w < 0 ? errno : ENOSPC));
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The folder holding path: "." for a bare name, "/" for one at the root. */
static void parent_dir(const char *path, char *out, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, len, ".");
    else if (slash == path)
        snprintf(out, len, "/");
    else
        snprintf(out, len, "%.*s", (int)(slash - path), path);
}

int atomic_file_sync_folder(const char *path, CrnnError *err) {
    char dir[4096];
    parent_dir(path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 ? -1 : fsync(fd);
    /* some file systems cannot fsync a folder; the rename has still happened */
    if (rc < 0 && fd >= 0 && (errno == EINVAL || errno == ENOTSUP)) rc = 0;
    int e = errno;
    if (fd >= 0) close(fd);
    if (rc < 0)
        return crnn_fail_io(err, "wrote %s but cannot fsync its folder %s: %s", path, dir, strerror(e));
    return 0;
}

int atomic_file_sync(AtomicFile *af, CrnnError *err) {
    if (!af->tmp || af->fd < 0)
        return crnn_fail_io(err, "cannot write %s: its temporary file is closed", af->path ? af->path : "?");
    const char *step = NULL;
    int e = 0;
    if (af->fp) {
        if (fflush(af->fp) != 0) step = "write", e = errno;
        else if (ferror(af->fp)) step = "write", e = EIO; /* an earlier write failed; its errno is gone */
    }
    if (!step && fsync(af->fd) != 0) step = "fsync", e = errno;
    if (!step) return 0;
    return crnn_fail_io(err, "cannot write %s: cannot %s %s: %s; check the free space of its disk", af->path, step,
                        af->tmp, strerror(e));
}

int atomic_file_commit(AtomicFile *af, CrnnError *err) {
    int rc = atomic_file_sync(af, err);
    if (rc == 0) {
        int closed = af->fp ? fclose(af->fp) : close(af->fd);
        af->fp = NULL;
        af->fd = -1;
        if (closed != 0)
            rc = crnn_fail_io(err, "cannot write %s: cannot close %s: %s; check the free space of its disk", af->path,
                              af->tmp, strerror(errno));
    }
    if (rc == 0 && rename(af->tmp, af->path) != 0)
        rc = crnn_fail_io(err, "cannot write %s: cannot rename %s onto it: %s; check that %s is not a folder and its folder is writable",
                          af->path, af->tmp, strerror(errno), af->path);
    if (rc < 0) {
        atomic_file_abandon(af);
        return -1;
    }
    rc = atomic_file_sync_folder(af->path, err);
    release(af);
    return rc;
}

void atomic_file_abandon(AtomicFile *af) {
    if (af->fp) fclose(af->fp);
    else if (af->fd >= 0) close(af->fd);
    if (af->tmp) unlink(af->tmp);
    release(af);
}

int atomic_file_mkdir_p(const char *dir, CrnnError *err) {
    size_t n = strlen(dir);
    char *p = crnn_malloc(n + 1, err);
    if (!p) return -1;
    memcpy(p, dir, n + 1);
    int rc = 0;
    /* each prefix ending before a '/', then the whole; "a//b" and a trailing '/' are fine */
    for (size_t i = 1; i <= n && rc == 0; i++) {
        if (i < n && p[i] != '/') continue;
        char saved = p[i];
        p[i] = '\0';
        struct stat st;
        if (mkdir(p, 0777) != 0) {
            if (errno != EEXIST)
                rc = crnn_fail_io(err, "cannot create the folder %s: %s", p, strerror(errno));
            else if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
                rc = crnn_fail_io(err, "cannot create the folder %s: a file of that name is in the way", p);
        }
        p[i] = saved;
    }
    free(p);
    return rc;
}

/* Copies the file src into af (an open AtomicFile). */
static int copy_into(AtomicFile *af, const char *src, CrnnError *err) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return crnn_fail_io(err, "cannot read %s: %s", src, strerror(errno));
    char buf[1 << 16];
    int rc = 0;
    for (;;) {
        ssize_t got = read(in, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            rc = crnn_fail_io(err, "cannot read %s: %s", src, strerror(errno));
            break;
        }
        if (got == 0 || (rc = atomic_file_write(af, buf, (size_t)got, err)) != 0) break;
    }
    close(in);
    return rc;
}

int atomic_file_link_or_copy(const char *src, const char *path, CrnnError *err) {
    char *tmp = tmp_name(path, err);
    if (!tmp) return -1;
    unlink(tmp); /* a crash's leftover */
    int linked = link(src, tmp), e = errno;
    if (linked == 0) {
        int rc = 0;
        if (rename(tmp, path) != 0) {
            e = errno;
            rc = crnn_fail_io(err, "cannot write %s: cannot rename %s onto it: %s", path, tmp, strerror(e));
        }
        /* also after a rename that did nothing: path was already a link to src */
        unlink(tmp);
        free(tmp);
        return rc == 0 ? atomic_file_sync_folder(path, err) : rc;
    }
    free(tmp);
    if (e == ENOENT || e == EACCES || e == ENOTDIR)
        return crnn_fail_io(err, "cannot write %s as a link to %s: %s", path, src, strerror(e));
    /* no hard links here (EPERM, EXDEV, EMLINK, ENOTSUP...): a copy */
    AtomicFile af;
    if (atomic_file_create(&af, path, err)) return -1;
    if (copy_into(&af, src, err)) {
        atomic_file_abandon(&af);
        return -1;
    }
    return atomic_file_commit(&af, err);
}
