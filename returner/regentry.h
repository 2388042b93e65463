/* regentry.h -- one minion registry entry (registry.h) as saltrelay-status
 * reads it back: the reply to REGENTRY_HMGET on key_minion(dc, id), or, for
 * an entry of the layout before per-DC entries, REGENTRY_HMGET_SHARED on
 * key_minion_shared(id), validated. Read for per-job accounting and the
 * minion list through regmap.h, so both call the same entries "seen". */
#ifndef SALTRELAY_REGENTRY_H
#define SALTRELAY_REGENTRY_H

#include <hiredis/hiredis.h>

#include "dcstate.h"

#define REGENTRY_HMGET "HMGET %s first_auth last_auth last_request"
#define REGENTRY_HMGET_SHARED "HMGET %s dc first_auth last_auth last_request"

struct regentry {
    char dc[DC_NAME_MAX]; /* "" if absent (expired), never seen, or damaged */
    long long first_auth_ms, last_auth_ms, last_request_ms; /* wall ms, -1 unknown */
};

/* Parse R, the REGENTRY_HMGET reply for minion ID in DC (with DC NULL: the
 * REGENTRY_HMGET_SHARED reply, which names the DC); damage is named on
 * stderr, escaped. An entry counts as seen when at least one of its times is
 * there (and a shared one's DC is a valid name). */
void regentry_parse(const redisReply *r, const char *id, const char *dc, struct regentry *out);
/* The newest of E's times (-1 if none). */
long long regentry_newest(const struct regentry *e);

#endif
