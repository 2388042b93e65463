/* warnrate.h -- a warning about bad input from outside (a malformed request,
 * record or reply) at most once per interval, so a misbehaving peer cannot
 * flood the log; the counters hold the full numbers. */
#ifndef SALTRELAY_WARNRATE_H
#define SALTRELAY_WARNRATE_H

#define WARNRATE_EVERY_MS 10000

struct warnrate {
    long long at; /* monotonic ms of the last line, 0: none yet */
};

void warn_throttled(struct warnrate *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
