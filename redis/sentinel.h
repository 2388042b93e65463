/* sentinel.h -- find the current Redis primary through Redis Sentinel, the way
 * redis.io's "Sentinel client spec" asks clients to: try each Sentinel in
 * turn with a short timeout, ask it for the master's address, move the one
 * that answered to the front of the list, and check with ROLE that the
 * address given really is a primary before using it. Each answer carries
 * the Sentinel's configuration epoch, asked in the same round trip, so that
 * answers of Sentinels that disagree (one has not learned a failover yet)
 * can be ordered (sentinel_watch.h).
 *
 * Used by rconn for sentinel:// URLs and by sentinel_watch.c. */
#ifndef SALTRELAY_SENTINEL_H
#define SALTRELAY_SENTINEL_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "config.h"

/* A Sentinel's answer: the primary's address, and the configuration epoch
 * it belongs to (SENTINEL MASTER's config-epoch: each failover makes a
 * larger one, so of two answers the one with the larger epoch is the newer;
 * -1 if the Sentinel did not say). */
struct sentinel_answer {
    struct redis_addr addr;
    long long epoch;
};

#define SENTINEL_REFUSED (-2)

/* Ask U's Sentinels for the address of U->master; each connection and command
 * bounded by TIMEOUT_MS. 0: *OUT is set and the Sentinel that answered is
 * U->sentinel[0] from now on. -1: WHY says why (no Sentinel reachable, or
 * none knows the master name); SENTINEL_REFUSED: the Sentinels that
 * answered all refused U's login. */
int sentinel_resolve(struct redis_url *u, int timeout_ms, struct sentinel_answer *out, char *why, size_t len);
/* The same from the one Sentinel S. 1: *OUT set; 0: S does not know the
 * master name; -1: WHY says why (unreachable, or nonsense); SENTINEL_REFUSED:
 * S refused U's login (WHY: its answer). */
int sentinel_ask(const struct redis_url *u, const struct redis_addr *s, int timeout_ms, struct sentinel_answer *out,
                 char *why, size_t len);

/* FMT with ARG (one %s) on a connection to a Sentinel; a Sentinel with
 * requirepass answers NOAUTH: then log in with U's credentials (the same as
 * the data nodes') and send it again. The reply (AUTH's error reply if the
 * login was refused), or NULL. */
redisReply *sentinel_command(redisContext *c, const struct redis_url *u, const char *fmt, const char *arg);
/* The same for N commands FMT[i] with ARG, pipelined: 0 and the N replies in
 * R (the caller frees them); SENTINEL_REFUSED: the login was refused, AUTH's
 * error reply in R[0] (the others NULL); or -1. */
int sentinel_commands(redisContext *c, const struct redis_url *u, int n, const char *const *fmt, const char *arg,
                      redisReply **r);

/* On a connection to the address a Sentinel gave: 0 if ROLE says master,
 * else -1 and WHY (a replica the Sentinels have not yet noticed, or not Redis). */
int sentinel_verify_primary(redisContext *c, char *why, size_t len);

#endif
