/* switchmsg.h -- a Sentinel's "+switch-master" message, parsed and
 * validated: "<master name> <old ip> <old port> <new ip> <new port>", five
 * fields separated by single spaces (Sentinel's own format). The text comes
 * from a server: anything else is refused with a reason, never trusted, and
 * the name is kept whole, so that a longer name that starts with ours is
 * never taken for ours (sentinel_watch.c compares it). */
#ifndef SALTRELAY_SWITCHMSG_H
#define SALTRELAY_SWITCHMSG_H

#include <stddef.h>

#include "config.h"

struct switchmsg {
    const char *name;     /* into the text, not terminated */
    size_t namelen;
    struct redis_addr from, to;
};

/* Parse LEN bytes; 0, or -1 with WHY set. */
int switchmsg_parse(const char *text, size_t len, struct switchmsg *out, const char **why);
/* 1 if M is about the master named NAME (the whole name). */
int switchmsg_is(const struct switchmsg *m, const char *name);

#endif
