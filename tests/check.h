/* The one harness of crnn's C tests (tests/README.md). Every test program includes it and
 * counts its failures here, nowhere else:
 *
 *   CHECK(cond, fmt, ...)   a condition that must hold; when it does not, counts a failure and
 *                           prints file:line, the condition and the printf-style message
 *                           (optional: CHECK(cond) prints the condition alone; fmt must be
 *                           a string literal)
 *   FAIL(fmt, ...)          counts a failure with its message (for checks a condition does
 *                           not say well, e.g. a loop that looks for the first difference)
 *   failures                the count so far
 *   check_exit("name")      the end of main: prints "name: N check(s) failed" or "name: all
 *                           checks passed" and gives main's exit status (1 or 0)
 *   CHECK_SKIP              exit status 77, what ctest counts as a skip (SKIP_RETURN_CODE)
 *   check_tmpdir("name")    makes the test's own temporary folder (tmpdir) under $TMPDIR or
 *                           /tmp; tmp_path("file") names a file in it; check_tmpdir_remove()
 *                           removes it with all it holds (read-only files too)
 *
 * Everything is static inline or a macro, so a test that uses only a part of it compiles
 * without warnings; all counts live in the one translation unit of each test program. */
#ifndef CRNN_TESTS_CHECK_H
#define CRNN_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_SKIP 77

static int failures = 0;

#define CHECK(cond, ...)                                                               \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            failures++;                                                                \
            fprintf(stderr, "%s:%d: check failed: %s", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, ": " __VA_ARGS__);                                         \
            fprintf(stderr, "\n");                                                     \
        }                                                                              \
    } while (0)

#define FAIL(...)                                                                      \
    do {                                                                               \
        failures++;                                                                    \
        fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                          \
        fprintf(stderr, __VA_ARGS__);                                                  \
        fprintf(stderr, "\n");                                                         \
    } while (0)

/* main's exit status: 0 when every check held */
static inline int check_exit(const char *test) {
    if (failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", test, failures);
        return 1;
    }
    fprintf(stderr, "%s: all checks passed\n", test);
    return 0;
}

static char tmpdir[256];

/* tmpdir/name; up to 128 distinct paths live until the end of the test */
static inline const char *tmp_path(const char *name) {
    static char buf[128][512];
    static int k = 0;
    k = (k + 1) % 128;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* mkdtemp's $TMPDIR/<name>.XXXXXX (or /tmp/...) into tmpdir; 0, or -1 with the reason printed */
static inline int check_tmpdir(const char *name) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/%s.XXXXXX", base && *base ? base : "/tmp", name);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}

/* removes tmpdir and everything in it (made writable first: some tests make files read-only) */
static inline void check_tmpdir_remove(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", tmpdir, tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

#endif
