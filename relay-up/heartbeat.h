/* heartbeat.h -- saltrelay-up's heartbeat part: every second a small report
 * of this instance (name, wall clock, start time, counters; schema in
 * proto/upreport.h) goes to the Redis primary. It replicates to every DC, so
 * each saltrelay-down measures its replica's delay even when no job flows,
 * and saltrelay-status lists the instances alive.
 *
 * Written as open / turn / drain / close so that it runs under any part
 * loop; heartbeat_actor is the loop it runs under today. */
#ifndef SALTRELAY_HEARTBEAT_H
#define SALTRELAY_HEARTBEAT_H

#include <czmq.h>

#include "config.h"

struct heartbeat;

/* NULL if out of memory (the Redis connection is made lazily). */
struct heartbeat *heartbeat_open(const struct config *cfg);
/* Write one heartbeat ("running"). */
void heartbeat_turn(struct heartbeat *hb);
/* The last heartbeat, "stopped", at shutdown. */
void heartbeat_drain(struct heartbeat *hb);
void heartbeat_close(struct heartbeat **hb);
/* This instance's name (upreport.h). */
const char *heartbeat_name(const struct heartbeat *hb);

/* zactor body; ARGS is a struct part_ctx * (daemon.h). */
void heartbeat_actor(zsock_t *pipe, void *args);

#endif
