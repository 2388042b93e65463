/* warnrate.c -- see warnrate.h. */
#include "warnrate.h"

#include <stdarg.h>
#include <stdio.h>

#include "clock.h"
#include "log.h"

void warn_throttled(struct warnrate *w, const char *fmt, ...)
{
    long long now = clock_mono_ms();
    if (w->at && now - w->at < WARNRATE_EVERY_MS)
        return;
    w->at = now;
    char line[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_warn("%s (further such lines suppressed for %d s; see the counters)", line, WARNRATE_EVERY_MS / 1000);
}
