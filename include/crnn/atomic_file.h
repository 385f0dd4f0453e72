/* One way to write a file: into a new temporary file next to the target, then fsync, rename
 * over the target and fsync of the folder. A crash or a failure at any point leaves either the
 * old file or the new one under the target's name, never a half-written one, and a committed
 * file survives a power cut. Every file crnn writes goes through here.
 *
 *   AtomicFile af;
 *   if (atomic_file_create(&af, path, err)) return -1;
 *   ... write to af.fd, to atomic_file_stream(&af, err), or (HDF5) H5Fcreate(af.tmp, ...) and
 *       H5Fclose before the commit ...
 *   if (failed) { atomic_file_abandon(&af); return -1; }
 *   return atomic_file_commit(&af, err);
 *
 * The temporary file is "<path>.tmp", always a new file (O_EXCL, mode 0666 & ~umask): one a
 * crash left behind is removed first, never written through (it may be a hard link to another
 * file, as the best model's is). One writer per target is the caller's rule (crnn-train holds
 * the run lock). Errors are CRNN_ERR_IO and name the target, its temporary file and the cause. */
#ifndef CRNN_ATOMIC_FILE_H
#define CRNN_ATOMIC_FILE_H

#include <stdio.h>

#include "crnn/common.h"

typedef struct AtomicFile {
    char *path; /* the target */
    char *tmp;  /* the temporary file next to it */
    int fd;     /* open for writing on tmp; -1 once closed */
    FILE *fp;   /* the stream of atomic_file_stream, or NULL */
} AtomicFile;

/* Creates the temporary file for path. On failure (no folder, no permission, path a folder)
 * nothing is created and af needs no abandon. */
int atomic_file_create(AtomicFile *af, const char *path, CrnnError *err);

/* A stdio stream on the temporary file (made once, then the same one); NULL with err on
 * failure. Closed by commit or abandon, never by the caller. */
FILE *atomic_file_stream(AtomicFile *af, CrnnError *err);

/* atomic_file_create, then atomic_file_stream: the stream to write path through, or NULL with
 * err and nothing left behind (no abandon needed then). */
FILE *atomic_file_open(AtomicFile *af, const char *path, CrnnError *err);

/* Writes n bytes at the current position of af->fd (all of them, through EINTR and short
 * writes); "check the free space of its disk" on failure. Not mixed with the stream. */
int atomic_file_write(AtomicFile *af, const void *buf, size_t n, CrnnError *err);

/* Flushes the stream (if any) and fsyncs the file, without putting it in place: for callers
 * that make several files whole before they rename any (crnn-preprocess's .h5 and .json). On
 * failure af stays open; the caller abandons it. */
int atomic_file_sync(AtomicFile *af, CrnnError *err);

/* Flushes the stream (if any), fsyncs the file, closes it, renames it over the target and
 * fsyncs the folder. On any failure before the rename the temporary file is removed and the
 * target is untouched; af is released either way. */
int atomic_file_commit(AtomicFile *af, CrnnError *err);

/* Closes and removes the temporary file, leaving the target as it was; releases af. Safe on a
 * zeroed or already released AtomicFile. */
void atomic_file_abandon(AtomicFile *af);

/* Makes dir and its missing parents (mode 0777 & ~umask), like `mkdir -p`. An existing folder
 * is fine; an existing file of that name is an error. */
int atomic_file_mkdir_p(const char *dir, CrnnError *err);

/* Makes path (atomically, as commit does) a hard link to the existing file src, or, where the
 * file system has no hard links, a copy of it. */
int atomic_file_link_or_copy(const char *src, const char *path, CrnnError *err);

/* fsyncs the folder holding path (after a rename into it). File systems that cannot fsync a
 * folder (EINVAL, ENOTSUP) are taken as done. */
int atomic_file_sync_folder(const char *path, CrnnError *err);

#endif
