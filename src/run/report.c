/* Formatting a message for a Reporter (include/crnn/report.h); the program's emit shows it. */
#include "crnn/report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void report_text(const Reporter *rep, ReportKind kind, const char *text, size_t len) {
    if (rep && rep->emit) rep->emit(rep->ctx, kind, text, len);
}

void report(const Reporter *rep, ReportKind kind, const char *fmt, ...) {
    if (!rep || !rep->emit) return;
    char small[512], *text = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof small) { /* a long one (paths): format it again at its size */
        text = malloc((size_t)n + 1);
        if (!text) return;
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    rep->emit(rep->ctx, kind, text, (size_t)n);
    if (text != small) free(text);
}
