/* registry.h -- the cluster's minion registry in Redis: which DC a minion
 * talks through, when it first and last authenticated, when it last sent a
 * request. Fed by saltrelay-down from what a request shows in clear (the
 * _auth load's id, or a version-3 aes request's top-level id); never a key.
 * The id is a claim, not a proof: the MoM, not the relay, checks keys. */
#ifndef SALTRELAY_REGISTRY_H
#define SALTRELAY_REGISTRY_H

#include <hiredis/hiredis.h>

/* Append the registry commands for minion ID (a request from DC at NOW_MS,
 * an _auth if AUTH) to C's pipeline; returns how many replies to read. */
int registry_append(redisContext *c, const char *cluster, const char *dc, const char *id, int auth,
                    long long now_ms);

#endif
