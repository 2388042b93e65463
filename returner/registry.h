/* registry.h -- the cluster's minion registry in Redis: which DC a minion
 * talks through, when it first and last authenticated, when it last sent a
 * request. Fed by saltrelay-down from what it reads in clear (an _auth
 * load's id, a version-3 aes request's top-level id); never a key.
 *
 * A host on a DC network can send any id, and the primary runs noeviction,
 * so made-up ids must not create keys: a minion is registered only when the
 * MoM accepted its _auth (the reply carries the session keys); a later
 * request only refreshes an entry that exists. Every key lives ttl_ms after
 * its last update, so ids that stop talking (retired minions) go away. */
#ifndef SALTRELAY_REGISTRY_H
#define SALTRELAY_REGISTRY_H

#include <stdint.h>

#include "rpipe.h"

struct registry_ctx {
    const char *cluster, *dc;
    long long ttl_ms;
};

#define REGISTRY_CMDS_MAX 5     /* commands one call below appends */
#define REGISTRY_BYTES_MAX 2048 /* and their formatted size, at most */

/* Append the commands registering minion ID, whose _auth the MoM accepted at
 * NOW_MS, to pipeline P, each with TAG; RPIPE_OK (also when ID is not
 * registered: empty or too long), or the first append's refusal (nothing
 * appended then; check rpipe_room first to append all or none). */
int registry_append_auth(struct rpipe *p, uint64_t tag, const struct registry_ctx *r, const char *id,
                         long long now_ms);
/* Append the command that refreshes ID's entry for a request at NOW_MS, if
 * that entry exists (one EVAL); as above. */
int registry_append_request(struct rpipe *p, uint64_t tag, const struct registry_ctx *r, const char *id,
                            long long now_ms);

#endif
