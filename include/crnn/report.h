/* Reporting: how library code tells the user what it is doing without printing. The program
 * owns a Reporter and decides where each kind of message goes and how it looks (crnn-train:
 * stdout, its live progress line, the "note: " and "advice: " prefixes, warnings on stderr). */
#ifndef CRNN_REPORT_H
#define CRNN_REPORT_H

#include <stddef.h>

typedef enum {
    REPORT_INFO,     /* a line of the run's story: its start, a checkpoint written, the end */
    REPORT_NOTE,     /* something the user may not expect (shown as "note: <text>") */
    REPORT_ADVICE,   /* what the user could do better (shown as "advice: <text>") */
    REPORT_PROGRESS, /* a progress line in torch-rnn's format */
    REPORT_LIVE,     /* the live progress line: it replaces the one before, in place */
    REPORT_SAMPLE,   /* generated text, exactly as the sampler wrote it (any bytes, its newlines) */
    REPORT_WARNING,  /* a problem that does not stop the run (shown on stderr) */
} ReportKind;

typedef struct Reporter {
    /* text[0..len): one line without its newline, except REPORT_SAMPLE's text. */
    void (*emit)(void *ctx, ReportKind kind, const char *text, size_t len);
    void *ctx;
    int live; /* progress is shown as a live line (REPORT_LIVE), else as lines (REPORT_PROGRESS) */
} Reporter;

/* Formats (printf) and emits one message; nothing when rep is NULL or memory runs out. */
void report(const Reporter *rep, ReportKind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Emits text[0..len) as it is. */
void report_text(const Reporter *rep, ReportKind kind, const char *text, size_t len);

#endif
