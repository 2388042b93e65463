/* registry.h -- the cluster's minion registry in Redis: which DC a minion
 * talks through, when it first and last authenticated, when it last sent a
 * request. Fed by saltrelay-down from what it reads in clear (an _auth
 * load's id, a version-3 aes request's top-level id); never a key.
 *
 * A host on a DC network can send any id, and the primary runs noeviction,
 * so made-up ids must not create keys: a minion is registered only when the
 * MoM accepted its _auth (the reply carries the session keys); a later
 * request only refreshes an entry that exists. Every key lives ttl_ms after
 * its last update, so ids that stop talking (retired minions) go away. */
#ifndef SALTRELAY_REGISTRY_H
#define SALTRELAY_REGISTRY_H

#include <hiredis/hiredis.h>

struct registry_ctx {
    const char *cluster, *dc;
    long long ttl_ms;
};

/* Append the commands registering minion ID, whose _auth the MoM accepted at
 * NOW_MS, to C's pipeline; returns how many replies to read. */
int registry_append_auth(redisContext *c, const struct registry_ctx *r, const char *id, long long now_ms);
/* Append the command that refreshes ID's entry for a request at NOW_MS, if
 * that entry exists (one EVAL); returns how many replies to read. */
int registry_append_request(redisContext *c, const struct registry_ctx *r, const char *id, long long now_ms);

#endif
