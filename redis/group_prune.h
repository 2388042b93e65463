/* group_prune.h -- remove the consumers of dead instances from a stream's
 * consumer group. Each saltrelay-up instance reads as its own consumer
 * (instance.h: host/slot), so every instance that ran once (a host gone, a
 * second instance stopped, an `instance` renamed, a name by process id)
 * leaves a name behind, forever: XINFO grows, and so would anything that
 * walks the consumers.
 *
 * A consumer goes when it owns no pending entry and has been idle (no read,
 * no claim) for longer than IDLE_MS; both are checked and the consumer
 * deleted in one Lua script, atomically: no read or XAUTOCLAIM can give it
 * an entry in between (XGROUP DELCONSUMER drops the entries a consumer owns,
 * which would then never be claimed). What a dead instance left pending is
 * first claimed by a live one (XAUTOCLAIM), which empties its list. A live
 * consumer reads every READ_BLOCK_MS and is never that idle; were it
 * removed anyway (a process stopped for long), Redis makes it again at its
 * next read, with nothing lost (it owned nothing). */
#ifndef SALTRELAY_GROUP_PRUNE_H
#define SALTRELAY_GROUP_PRUNE_H

#include <stddef.h>

#include "rconn.h"

/* Remove from GROUP of stream KEY every consumer but SELF that owns no
 * pending entry and was idle longer than IDLE_MS (logged and counted). The
 * number removed, or -1 and WHY (no connection, or Redis refused). */
long long group_prune(struct rconn *rc, const char *key, const char *group, const char *self, long long idle_ms,
                      char *why, size_t len);

#endif
