/* replhealth.h -- the health of the Redis a saltrelay-down reads publications
 * from (its `redis`, usually the DC's replica), checked with each DC report:
 * role, replication link up or down and since when, last I/O with the
 * primary (INFO replication), and the replication delay measured with
 * saltrelay-up's heartbeat (proto/upreport.h), so it is known even when no
 * job flows; and the publications there not delivered yet (how many, the age
 * of the oldest). The results go to the process-wide metrics (SOURCE_*, REPL_*,
 * HEARTBEAT_SEEN_MS, BACKLOG_*), which the report and the Prometheus endpoint export. */
#ifndef SALTRELAY_REPLHEALTH_H
#define SALTRELAY_REPLHEALTH_H

#include "config.h"
#include "rconn.h"

struct replhealth;

struct replhealth *replhealth_new(const struct config *cfg);
/* One check; PRIMARY is the report's connection to redis_primary (the
 * newest heartbeat there tells what the replica lacks). */
void replhealth_check(struct replhealth *h, struct rconn *primary);
void replhealth_destroy(struct replhealth **h);

#endif
