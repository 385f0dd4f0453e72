/* The small harness the C unit tests of the file modules share: CHECK counts and reports a
 * failed condition with a printf-style message, tmp_path names a file in the test's own
 * temporary folder (tmpdir, which the test's main fills with mkdtemp). */
#ifndef CRNN_TESTS_CHECK_H
#define CRNN_TESTS_CHECK_H

#include <stdio.h>

static int failures = 0;
#define CHECK(cond, ...)                                                               \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            failures++;                                                                \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fprintf(stderr, "\n");                                                     \
        }                                                                              \
    } while (0)

static char tmpdir[256];

/* tmpdir/name; up to 128 distinct paths live until the end of the test */
static const char *tmp_path(const char *name) {
    static char buf[128][512];
    static int k = 0;
    k = (k + 1) % 128;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

#endif
