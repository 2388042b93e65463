/* sentinel_watch.h -- notice a failover the moment the Sentinels make it,
 * even while the old primary still answers (it was cut off from the
 * Sentinels, not from us, and is demoted only when it is back in their
 * sight, if ever): one thread per sentinel:// URL of the process holds a
 * subscription to the Sentinels' "+switch-master" channel (redis.io's
 * Sentinel client rules) and keeps the newest primary known of its master.
 * Every rconn of that master compares the address it connected to with that
 * one and, if they differ, drops its connection and connects again
 * (rconn.h).
 *
 * The newest primary: what the subscription announced, what the watch
 * asked after each (re)subscribe, and what each connection's Sentinel
 * answered, ordered by the Sentinels' configuration epoch (sentinel.h).
 * Sentinels learn a failover one after the other (within about 2 s): a
 * connection made after a switch may ask one that has not learned it yet
 * and be given the old primary, which still answers ROLE master. It goes to
 * the newest primary known instead. And a switch made before the watch's
 * first look is seen there as an address that differs from the one the
 * connections were made to: they move.
 *
 * Why a subscription and not a timer: the message comes within milliseconds
 * of the Sentinels' decision, where a timer leaves its period of writes to a
 * primary that is no longer one, and asking the Sentinels on a timer would
 * put their round trips (a dead Sentinel's connect timeout included) on the
 * threads that serve ZeroMQ. A message missed while the subscription was
 * being re-made is caught by asking for the primary's address right after
 * each (re)subscribe. */
#ifndef SALTRELAY_SENTINEL_WATCH_H
#define SALTRELAY_SENTINEL_WATCH_H

#include "config.h"
#include "sentinel.h"

struct sentinel_watch;

/* Start watching U (nothing for a redis:// URL, or a master already
 * watched: NULL). Before the threads that use rconn start. */
struct sentinel_watch *sentinel_watch_start(const struct redis_url *u);
/* Stop and join (after the threads that use rconn stopped). */
void sentinel_watch_stop(struct sentinel_watch **wp);

/* A connection's Sentinel named A as U's primary: *USE is where the
 * connection must go (A, or a newer primary the watch knows: that Sentinel
 * has not learned the latest switch yet) and *SEEN what to give
 * sentinel_watch_moved later. Without a watch of U: A. */
void sentinel_watch_offer(const struct redis_url *u, const struct sentinel_answer *a, struct redis_addr *use,
                          unsigned *seen);
/* 1 if U's newest primary known is no longer AT (the connection made there
 * must go). SEEN: from sentinel_watch_offer; cheap while nothing changed. */
int sentinel_watch_moved(const struct redis_url *u, unsigned *seen, const struct redis_addr *at);

#endif
