/* rconn.h -- one synchronous hiredis connection owned by one thread, with
 * reconnect and exponential backoff. A sentinel:// URL is resolved through
 * the Sentinels at every (re)connect (see sentinel.h), so after a failover
 * the next connection goes to the new primary (or to a newer one the
 * process knows, if the Sentinel asked has not learned the switch yet:
 * sentinel_watch.h); the connection is dropped when it breaks, when the
 * server answers READONLY (it was demoted) or when the newest primary known
 * is another (a +switch-master, sentinel_watch.h). Logs only state changes:
 * connected, lost (once), and back (with how long it was down). A login
 * Redis (or a Sentinel) refuses (authrefusal.h) is not an outage: logged as
 * such once, counted in redis_auth_refused_total, and tried again every 5 s.
 *
 * Each saltrelay thread that talks to Redis owns an rconn; blocking calls on
 * it block only that thread's own path, never another's. */
#ifndef SALTRELAY_RCONN_H
#define SALTRELAY_RCONN_H

#include <hiredis/hiredis.h>

#include "config.h"

struct rconn;

/* LABEL names the connection in logs ("publications", "requests", ...).
 * TIMEOUT_MS bounds every command; blocking reads must use a shorter BLOCK. */
struct rconn *rconn_new(const struct redis_url *url, const char *label, int timeout_ms);
void rconn_destroy(struct rconn **rc);

/* A connected context, or NULL while Redis is unreachable. Never waits
 * longer than the connect timeout; between failed attempts returns NULL at
 * once until the backoff has passed (see rconn_retry_in_ms). */
redisContext *rconn_get(struct rconn *rc);
/* How many connections were made so far: a change means a new connection,
 * perhaps to a new primary (state kept per connection must be set up again). */
unsigned rconn_generation(const struct rconn *rc);
/* 1 if the newest primary the process knows is no longer the one this
 * connection was made to (sentinel_watch.h): the connection must go
 * (rconn_get drops it; a pipeline with commands in flight fails them first). */
int rconn_switched(struct rconn *rc);
/* NULL while connected; else what the last attempt met, to follow "redis"
 * in a message: "unreachable" or "refused the login (user, password)". */
const char *rconn_problem(const struct rconn *rc);
/* Milliseconds until the next connection attempt is due (0 if connected). */
int rconn_retry_in_ms(const struct rconn *rc);
/* The connection broke or answered nonsense: close it and back off. */
void rconn_fail(struct rconn *rc, const char *why);
/* Run a command; on an I/O error fails the connection and returns NULL.
 * An error reply is returned as is (the caller decides). */
redisReply *rconn_command(struct rconn *rc, const char *fmt, ...);
/* Look at a reply read without rconn (pipelines): 1 if it says the server is
 * no longer the primary (READONLY); the connection is then replaced at the
 * next rconn_get. rconn_command and rconn_reply do this themselves. */
int rconn_note_reply(struct rconn *rc, const redisReply *r);
/* Read one pipelined reply (after redisAppendCommand*); NULL on I/O error. */
redisReply *rconn_reply(struct rconn *rc);

#endif
