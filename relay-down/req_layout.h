/* req_layout.h -- which request stream saltrelay-down writes (req_layout.c):
 * its DC's own (key_req_stream), or, while an upgrade is under way, the one
 * stream all DCs shared before (key_req_shared), as long as only
 * saltrelay-ups older than per-DC streams run: they read nothing else.
 *
 * Asked every LAYOUT_EVERY_MS through the request pipeline (two reads, no
 * wait): a saltrelay-up that reads per-DC streams sets key_req_layout; when
 * no one set it and a saltrelay-up has a heartbeat (key_up_set: it runs, or
 * ran within a day), an older one runs: shared. Anything else (no
 * saltrelay-up yet, a read Redis refuses) is own: the ACL user a DC has once
 * the upgrade is done (docs/security.md) may write nothing but its own keys.
 * Requests wait for the first answer. docs/deployment.md, "Upgrading". */
#ifndef SALTRELAY_REQ_LAYOUT_H
#define SALTRELAY_REQ_LAYOUT_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "config.h"
#include "keys.h"
#include "rpipe.h"

enum req_stream { REQ_STREAM_NONE, REQ_STREAM_OWN, REQ_STREAM_SHARED };

struct req_layout {
    char mark_key[KEY_MAX], ups_key[KEY_MAX];
    enum req_stream now;  /* REQ_STREAM_NONE until the first answer */
    int asked;            /* a round is in the pipeline */
    int mark, ups;        /* its answers so far: the mark exists, a saltrelay-up has a heartbeat */
    long long due;        /* monotonic ms of the next round */
};

void req_layout_init(struct req_layout *l, const struct config *cfg);
/* Append a round to P if one is due (tags TAG and TAG + 1). */
void req_layout_ask(struct req_layout *l, struct rpipe *p, uint64_t tag);
/* The answer R (NULL: lost with the connection) to the command tagged
 * TAG + WHICH (0 or 1). */
void req_layout_answer(struct req_layout *l, int which, const redisReply *r);

#endif
