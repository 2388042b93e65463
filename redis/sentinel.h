/* sentinel.h -- find the current Redis primary through Redis Sentinel, the way
 * redis.io's "Sentinel client spec" asks clients to: try each Sentinel in
 * turn with a short timeout, ask it for the master's address, move the one
 * that answered to the front of the list, and check with ROLE that the
 * address given really is a primary before using it.
 *
 * Used by rconn for sentinel:// URLs and by sentinel_watch.c. */
#ifndef SALTRELAY_SENTINEL_H
#define SALTRELAY_SENTINEL_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "config.h"

#define SENTINEL_REFUSED (-2)

/* Ask U's Sentinels for the address of U->master; each connection and command
 * bounded by TIMEOUT_MS. 0: *OUT is set and the Sentinel that answered is
 * U->sentinel[0] from now on. -1: WHY says why (no Sentinel reachable, or
 * none knows the master name); SENTINEL_REFUSED: the Sentinels that
 * answered all refused U's login. */
int sentinel_resolve(struct redis_url *u, int timeout_ms, struct redis_addr *out, char *why, size_t len);

/* FMT with ARG (one %s) on a connection to a Sentinel; a Sentinel with
 * requirepass answers NOAUTH: then log in with U's credentials (the same as
 * the data nodes') and send it again. The reply (AUTH's error reply if the
 * login was refused), or NULL. */
redisReply *sentinel_command(redisContext *c, const struct redis_url *u, const char *fmt, const char *arg);

/* On a connection to the address a Sentinel gave: 0 if ROLE says master,
 * else -1 and WHY (a replica the Sentinels have not yet noticed, or not Redis). */
int sentinel_verify_primary(redisContext *c, char *why, size_t len);

#endif
