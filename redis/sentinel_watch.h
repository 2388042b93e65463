/* sentinel_watch.h -- notice a failover the moment the Sentinels make it,
 * even while the old primary still answers (it was cut off from the
 * Sentinels, not from us, and is demoted only when it is back in their
 * sight, if ever): one thread per sentinel:// URL of the process holds a
 * subscription to the Sentinels' "+switch-master" channel (redis.io's
 * Sentinel client rules) and counts the switches of its master. Every rconn
 * of that master compares the count with the one it connected under and, if
 * it moved, drops its connection and asks the Sentinels again (rconn.h).
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

struct sentinel_watch;

/* Start watching U (nothing for a redis:// URL, or a master already
 * watched: NULL). Before the threads that use rconn start. */
struct sentinel_watch *sentinel_watch_start(const struct redis_url *u);
/* Stop and join (after the threads that use rconn stopped). */
void sentinel_watch_stop(struct sentinel_watch **wp);

/* How many times the Sentinels switched U's master since the start (0 if
 * not watched). */
unsigned sentinel_watch_switches(const struct redis_url *u);

#endif
