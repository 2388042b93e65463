/* redis_gate.h -- what a daemon does with Redis around its parts
 * (daemon.h's gate): the Sentinels' switches are watched from before the
 * parts start until after they stopped (sentinel_watch.h), saltrelay-down
 * serves only while its DC's lease is its own (dclease.h), and READY=1 waits
 * until Redis answers, so that it means it. */
#ifndef SALTRELAY_REDIS_GATE_H
#define SALTRELAY_REDIS_GATE_H

#include "daemon.h"

extern const struct daemon_gate redis_gate;

#endif
