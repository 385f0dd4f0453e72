/* The atomic file writer (src/io/atomic_file.c) and the error kinds (src/base/error.c): a commit
 * replaces the target whole; an abandon, a failed write or a failed commit leaves the old
 * target as it was and no temporary file; mkdir -p; the hard link or copy of the best model;
 * crnn_fail_context keeps the kind, and the exit status follows it; the checkpoint and vocabulary
 * readers tell a corrupt file from a missing one. */
#include "crnn/atomic_file.h"
#include "check.h"
#include "crnn/checkpoint.h"
#include "crnn/vocab.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *in_dir(const char *name) {
    static char buf[8][512];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* The whole content of path ("" when missing; "<missing>" marks that). */
static const char *content(const char *path) {
    static char buf[256];
    FILE *f = fopen(path, "rb");
    if (!f) return "<missing>";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

/* The number of files in folder d whose names end in ".tmp". */
static int tmp_files(const char *d) {
    DIR *dp = opendir(d);
    int n = 0;
    struct dirent *e;
    while (dp && (e = readdir(dp))) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) n++;
    }
    if (dp) closedir(dp);
    return n;
}

static void test_commit_replaces(void) {
    const char *target = in_dir("a.txt");
    put(target, "old");
    AtomicFile af;
    CrnnError err = {0};
    CHECK(atomic_file_create(&af, target, &err) == 0, "%s", err.msg);
    CHECK(strcmp(af.tmp, in_dir("a.txt.tmp")) == 0, "the temporary file %s is not next to %s", af.tmp, target);
    CHECK(atomic_file_write(&af, "new ", 4, &err) == 0, "%s", err.msg);
    /* until the commit, the target is the old file */
    CHECK(strcmp(content(target), "old") == 0, "before the commit: %s", content(target));
    CHECK(atomic_file_write(&af, "text", 4, &err) == 0, "%s", err.msg);
    CHECK(atomic_file_commit(&af, &err) == 0, "%s", err.msg);
    CHECK(strcmp(content(target), "new text") == 0, "after the commit: %s", content(target));
    CHECK(tmp_files(tmpdir) == 0, "%d temporary files left", tmp_files(tmpdir));
    CHECK(af.tmp == NULL && af.path == NULL && af.fd < 0, "the AtomicFile is not released");

    /* through the stream, into a file that did not exist */
    const char *fresh = in_dir("b.txt");
    CHECK(atomic_file_create(&af, fresh, &err) == 0, "%s", err.msg);
    FILE *fp = atomic_file_stream(&af, &err);
    CHECK(fp && atomic_file_stream(&af, &err) == fp, "the stream");
    fprintf(fp, "%d lines\n", 2);
    CHECK(access(fresh, F_OK) != 0, "%s exists before its commit", fresh);
    /* sync makes it whole on the disk, and only commit puts it in place */
    CHECK(atomic_file_sync(&af, &err) == 0, "%s", err.msg);
    CHECK(access(fresh, F_OK) != 0 && strcmp(content(af.tmp), "2 lines\n") == 0, "after sync: %s", content(af.tmp));
    CHECK(atomic_file_commit(&af, &err) == 0, "%s", err.msg);
    CHECK(strcmp(content(fresh), "2 lines\n") == 0, "%s", content(fresh));

    /* a temporary file a crash left, here a hard link to another file, is replaced, never
     * written through */
    const char *other = in_dir("other.txt"), *stale = in_dir("a.txt.tmp");
    put(other, "other file");
    CHECK(link(other, stale) == 0, "link: %s", strerror(errno));
    CHECK(atomic_file_create(&af, target, &err) == 0, "%s", err.msg);
    CHECK(strcmp(af.tmp, stale) == 0, "the temporary file is %s", af.tmp);
    CHECK(atomic_file_write(&af, "newer", 5, &err) == 0 && atomic_file_commit(&af, &err) == 0, "%s", err.msg);
    CHECK(strcmp(content(other), "other file") == 0, "written through the leftover link: %s", content(other));
    CHECK(strcmp(content(target), "newer") == 0, "%s", content(target));
    /* and the files are made 0666 less the umask, as open(2) would */
    struct stat st;
    mode_t mask = umask(022);
    umask(mask);
    CHECK(stat(fresh, &st) == 0 && (st.st_mode & 0777) == (0666 & ~mask), "mode %o", st.st_mode & 0777);
}

static void test_abandon_keeps_old(void) {
    const char *target = in_dir("c.txt");
    put(target, "precious");
    AtomicFile af;
    CrnnError err = {0};
    CHECK(atomic_file_create(&af, target, &err) == 0, "%s", err.msg);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", af.tmp);
    CHECK(atomic_file_write(&af, "half", 4, &err) == 0, "%s", err.msg);
    atomic_file_abandon(&af);
    CHECK(strcmp(content(target), "precious") == 0, "%s", content(target));
    CHECK(access(tmp, F_OK) != 0, "%s left", tmp);
    atomic_file_abandon(&af); /* twice is harmless */
    AtomicFile zero = {0};
    zero.fd = -1;
    atomic_file_abandon(&zero);
}

static void test_failures_leave_target(void) {
    const char *target = in_dir("d.txt");
    put(target, "kept");
    AtomicFile af;
    CrnnError err = {0};
    /* a write that fails (the descriptor closed under it, as a disk error would) */
    CHECK(atomic_file_create(&af, target, &err) == 0, "%s", err.msg);
    close(af.fd);
    CHECK(atomic_file_write(&af, "x", 1, &err) == -1, "a write to a closed file succeeded");
    CHECK(crnn_error_kind(&err) == CRNN_ERR_IO && strstr(err.msg, "d.txt"), "%d %s", err.kind, err.msg);
    af.fd = -1;
    atomic_file_abandon(&af);
    CHECK(strcmp(content(target), "kept") == 0, "%s", content(target));

    /* a stream whose writes fail: the commit fails, the target stays, no .tmp is left */
    CHECK(atomic_file_create(&af, target, &err) == 0, "%s", err.msg);
    FILE *fp = atomic_file_stream(&af, &err);
    fputs("lost", fp);
    int fd = af.fd;
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, fd); /* now read-only: the flush in the commit fails */
    close(devnull);
    CHECK(atomic_file_commit(&af, &err) == -1, "a commit whose flush failed succeeded");
    CHECK(crnn_error_kind(&err) == CRNN_ERR_IO && strstr(err.msg, "d.txt"), "%s", err.msg);
    CHECK(strcmp(content(target), "kept") == 0, "%s", content(target));
    CHECK(tmp_files(tmpdir) == 0, "%d temporary files left", tmp_files(tmpdir));

    /* a rename that fails (the target is a folder): nothing changes */
    const char *folder = in_dir("e");
    mkdir(folder, 0777);
    CHECK(atomic_file_create(&af, folder, &err) == -1 && strstr(err.msg, "folder"), "%s", err.msg);

    /* a folder that does not exist: create fails, naming it */
    CHECK(atomic_file_create(&af, in_dir("no/such/f.txt"), &err) == -1 && strstr(err.msg, "no/such/f.txt") &&
              strstr(err.msg, "No such file"),
          "%s", err.msg);
    CHECK(tmp_files(tmpdir) == 0, "%d temporary files left", tmp_files(tmpdir));
}

static void test_mkdir_p(void) {
    CrnnError err = {0};
    const char *deep = in_dir("m/n//o/p/");
    CHECK(atomic_file_mkdir_p(deep, &err) == 0, "%s", err.msg);
    struct stat st;
    CHECK(stat(in_dir("m/n/o/p"), &st) == 0 && S_ISDIR(st.st_mode), "m/n/o/p was not made");
    CHECK(atomic_file_mkdir_p(deep, &err) == 0, "again: %s", err.msg);
    put(in_dir("m/file"), "x");
    CHECK(atomic_file_mkdir_p(in_dir("m/file/q"), &err) == -1 && strstr(err.msg, "m/file") &&
              crnn_error_kind(&err) == CRNN_ERR_IO,
          "%s", err.msg);
    CHECK(atomic_file_mkdir_p(in_dir("m/file"), &err) == -1 && strstr(err.msg, "in the way"), "%s", err.msg);
}

static void test_link_or_copy(void) {
    CrnnError err = {0};
    const char *src = in_dir("ck_4.h5"), *best = in_dir("ck_best.h5");
    put(src, "checkpoint 4");
    put(best, "checkpoint 2");
    CHECK(atomic_file_link_or_copy(src, best, &err) == 0, "%s", err.msg);
    CHECK(strcmp(content(best), "checkpoint 4") == 0, "%s", content(best));
    struct stat a, b;
    CHECK(stat(src, &a) == 0 && stat(best, &b) == 0 && a.st_ino == b.st_ino, "not a hard link here");
    /* again, onto a link to the same file: a rename that does nothing leaves no .tmp */
    CHECK(atomic_file_link_or_copy(src, best, &err) == 0, "%s", err.msg);
    CHECK(tmp_files(tmpdir) == 0, "%d temporary files left", tmp_files(tmpdir));
    /* a source that is missing: an error naming it, the old target kept */
    CHECK(atomic_file_link_or_copy(in_dir("ck_6.h5"), best, &err) == -1 && strstr(err.msg, "ck_6.h5"), "%s",
          err.msg);
    CHECK(strcmp(content(best), "checkpoint 4") == 0, "%s", content(best));
}

static void test_error_kinds(void) {
    CrnnError err = {0};
    CHECK(crnn_fail_corrupt(&err, "bad %s", "file") == -1 && crnn_error_kind(&err) == CRNN_ERR_CORRUPT &&
              strcmp(err.msg, "bad file") == 0 && crnn_exit_status(&err) == CRNN_EXIT_FAILURE,
          "%s", err.msg);
    crnn_fail_context(&err, "checkpoint %s", "x.h5");
    CHECK(crnn_error_kind(&err) == CRNN_ERR_CORRUPT && strcmp(err.msg, "checkpoint x.h5: bad file") == 0,
          "the context lost the kind: %d %s", err.kind, err.msg);
    crnn_fail_usage(&err, "-rnn_size must be positive");
    crnn_fail_context(&err, "flags");
    CHECK(crnn_error_kind(&err) == CRNN_ERR_BAD_INPUT && err.code == CRNN_EXIT_USAGE &&
              crnn_exit_status(&err) == CRNN_EXIT_USAGE,
          "usage: %d %d", err.kind, err.code);
    crnn_fail(&err, "something");
    CHECK(crnn_error_kind(&err) == CRNN_ERR_OTHER && err.code == 0 && crnn_exit_status(&err) == 1, "other");
    const CrnnErrorKind kinds[] = {CRNN_ERR_IO, CRNN_ERR_NOMEM, CRNN_ERR_DEVICE, CRNN_ERR_PEER_LOST};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        crnn_fail_kind(&err, kinds[k], "k");
        CHECK(crnn_error_kind(&err) == kinds[k] && crnn_exit_status(&err) == 1 &&
                  strcmp(crnn_error_kind_name(kinds[k]), "other") != 0,
              "kind %d", (int)kinds[k]);
    }
    /* an allocation that cannot succeed says out of memory, with its kind */
    void *p = crnn_calloc(SIZE_MAX / 2, 4, &err);
    CHECK(!p && crnn_error_kind(&err) == CRNN_ERR_NOMEM && strstr(err.msg, "out of memory"), "%s", err.msg);
    CHECK(crnn_fail_io(NULL, "no error value") == -1, "NULL err");
}

/* The readers' kinds: a file that is there but wrong is corrupt (what -resume auto may pass
 * over), one that is missing is I/O. */
static void test_reader_kinds(void) {
    CrnnError err = {0};
    Checkpoint ck;
    const char *junk = in_dir("junk_4.h5");
    put(junk, "not an HDF5 file at all, cut short");
    CHECK(checkpoint_read(junk, &ck, 1, &err) == -1 && crnn_error_kind(&err) == CRNN_ERR_CORRUPT &&
              strstr(err.msg, "junk_4.h5"),
          "junk: %s %s", crnn_error_kind_name(crnn_error_kind(&err)), err.msg);
    CHECK(checkpoint_read(in_dir("none_6.h5"), &ck, 1, &err) == -1 && crnn_error_kind(&err) == CRNN_ERR_IO &&
              strstr(err.msg, "none_6.h5"),
          "missing: %s %s", crnn_error_kind_name(crnn_error_kind(&err)), err.msg);
    Vocab v;
    const char *json = in_dir("v.json");
    put(json, "{\"token_to_idx\": {\"a\": 1, \"b\": 1}}");
    CHECK(vocab_read_json(&v, json, &err) == -1 && crnn_error_kind(&err) == CRNN_ERR_CORRUPT, "json: %s", err.msg);
    CHECK(vocab_read_json(&v, in_dir("none.json"), &err) == -1 && crnn_error_kind(&err) == CRNN_ERR_IO, "%s",
          err.msg);
}

int main(void) {
    if (check_tmpdir("crnn-atomic")) return 1;
    test_commit_replaces();
    test_abandon_keeps_old();
    test_failures_leave_target();
    test_mkdir_p();
    test_link_or_copy();
    test_error_kinds();
    crnn_hdf5_quiet();
    test_reader_kinds();
    check_tmpdir_remove();
    return check_exit("atomic_file");
}
