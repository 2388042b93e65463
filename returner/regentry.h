/* regentry.h -- one minion registry entry (registry.h) as saltrelay-status
 * reads it back: the reply to REGENTRY_HMGET on key_minion(id), validated.
 * Shared by per-job accounting (status_job.c) and the minion list
 * (status_minions.c), so both call the same entries "seen". */
#ifndef SALTRELAY_REGENTRY_H
#define SALTRELAY_REGENTRY_H

#include <hiredis/hiredis.h>

#include "dcstate.h"

#define REGENTRY_HMGET "HMGET %s dc first_auth last_auth last_request"

struct regentry {
    char dc[DC_NAME_MAX]; /* "" if absent (expired), never seen, or damaged */
    long long first_auth_ms, last_auth_ms, last_request_ms; /* wall ms, -1 unknown */
};

/* Parse R, the REGENTRY_HMGET reply for minion ID (named on stderr, escaped,
 * when the entry is damaged). An entry counts as seen when its DC is a
 * valid name and at least one of its times is there. */
void regentry_parse(const redisReply *r, const char *id, struct regentry *out);

#endif
