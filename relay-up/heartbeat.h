/* heartbeat.h -- saltrelay-up's heartbeat part: every second a small report
 * of this instance (name, wall clock, start time, counters; schema in
 * proto/upreport.h) goes to the Redis primary. It replicates to every DC, so
 * each saltrelay-down measures its replica's delay even when no job flows,
 * and saltrelay-status lists the instances alive. */
#ifndef SALTRELAY_HEARTBEAT_H
#define SALTRELAY_HEARTBEAT_H

#include "part.h"

/* This instance's name is "<host>/<instance>", or "<host>/<slot>" without
 * the instance key (instance.h). */
extern const struct part_def heartbeat_part;

#endif
