/* What the fuzz targets of tests/fuzz share: a private scratch folder (on /dev/shm when there
 * is one, so that the fsyncs of the writers cost nothing) and a helper that puts the fuzz input
 * into a file there, since the readers under test take file names. Each target is built twice:
 * with libFuzzer's main (CRNN_FUZZ=ON, clang) and with tests/fuzz/replay.c, which runs saved
 * inputs (the seeds and tests/fuzz/regressions) under any compiler. */
#ifndef CRNN_FUZZ_COMMON_H
#define CRNN_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_dir[256];

/* Creates the scratch folder once (removed at exit with what is in it). */
static void fuzz_cleanup(void) {
    if (!fuzz_dir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", fuzz_dir);
}

static void fuzz_setup(void) {
    if (fuzz_dir[0]) return;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/crnn-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_dir)) {
        perror("mkdtemp");
        abort();
    }
    atexit(fuzz_cleanup);
}

/* fuzz_dir/name */
static const char *fuzz_path(const char *name) {
    static char buf[8][512];
    static int k = 0;
    fuzz_setup();
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", fuzz_dir, name);
    return buf[k];
}

/* Writes data to fuzz_dir/name and returns the path. */
static const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size) {
    const char *path = fuzz_path(name);
    FILE *fp = fopen(path, "wb");
    if (!fp || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0) {
        perror(path);
        abort();
    }
    return path;
}

/* An invariant of the code under test does not hold: a bug, reported as a crash. */
#define FUZZ_ASSERT(cond, ...)                                                                \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fprintf(stderr, "\n");                                                            \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* A message must be there and name the file (errors name the file, docs/FORMATS.md). */
#define FUZZ_ASSERT_NAMES(err, path)                                                          \
    FUZZ_ASSERT((err).msg[0] && strstr((err).msg, (path)), "message '%s' does not name %s",  \
                (err).msg, (path))

/* 1 when the file would trip a bug of libhdf5 1.10 itself (not of crnn), so that the targets
 * skip it. Both are in the global heap collections ("GCOL", where variable-length strings
 * live), which HDF5 does not check against their own size:
 *  - an object size that makes the heap parser (H5HG__cache_heap_deserialize) take a step of
 *    0 bytes (a free-space object of size 0) or wrap around: it loops forever (h5py hangs on
 *    such files too);
 *  - an object that reaches past the end of its collection: H5HG_read copies it from beyond
 *    the collection's buffer (a heap overflow inside libhdf5). */
static inline int fuzz_hdf5_known_hang(const uint8_t *data, size_t size) {
    for (size_t at = 0; at + 16 <= size; at++) {
        if (memcmp(data + at, "GCOL", 4) != 0) continue;
        uint64_t cs = 0;
        for (int k = 7; k >= 0; k--) cs = cs << 8 | data[at + 8 + k];
        size_t end = cs < size - at ? at + (size_t)cs : size;
        for (size_t p = at + 16; p + 16 <= end;) {
            unsigned idx = data[p] | (unsigned)data[p + 1] << 8;
            uint64_t obj = 0;
            for (int k = 7; k >= 0; k--) obj = obj << 8 | data[p + 8 + k];
            uint64_t need = idx > 0 ? 16 + ((obj + 7) & ~(uint64_t)7) : obj;
            if (need == 0 || need > ((uint64_t)1 << 62)) return 1;
            if (need > end - p) {
                if (idx > 0) return 1; /* H5HG_read copies it, past the collection's buffer */
                break;
            }
            p += (size_t)need;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
