/* req_store.h -- request intake's writer (req_store.c): the table's requests
 * stored in this DC's request stream (req_layout.h: during an upgrade, the
 * shared one), each once (a script keyed by this incarnation's sequence
 * numbers), with their minion registry updates, the
 * registrations of accepted _auth, the reply stream's trim and the deletion
 * of requests whose requester left, all through the Redis pipeline: the
 * ROUTER's thread never waits for Redis, and what the pipeline's byte cap
 * does not take waits in the table. */
#ifndef SALTRELAY_REQ_STORE_H
#define SALTRELAY_REQ_STORE_H

#include <stddef.h>

#include "config.h"
#include "envelope.h"
#include "keys.h"
#include "rconn.h"
#include "registry.h"
#include "req_layout.h"
#include "req_table.h"
#include "rpipe.h"
#include "streamid.h"
#include "warnrate.h"

struct req_store {
    const struct config *cfg;
    struct req_table *table;
    struct rconn *rc;
    struct rpipe *pipe;
    char req_key[KEY_MAX], hi_key[KEY_MAX];               /* this DC's request stream and sequence numbers */
    char shared_key[KEY_MAX], shared_hi_key[KEY_MAX];     /* the ones all DCs shared (req_layout.h) */
    char rep_key[KEY_MAX];
    struct req_layout layout;
    char trim_to[STREAMID_STRLEN]; /* last reply entry handled: the reply stream is trimmed up to it */
    long long trimmed_at; /* monotonic ms of the last XTRIM */
    int refusing;         /* Redis refuses requests (log once) */
    struct registry_ctx reg;
    char (*accepted)[ENVELOPE_ID_MAX]; /* ids whose _auth the MoM accepted, to register */
    int naccepted;
    struct warnrate reg_warn;
};

/* Store TABLE's requests in CFG's redis_primary. 0, or -1 (no memory);
 * req_store_fini either way, before the table's. */
int req_store_init(struct req_store *s, const struct config *cfg, struct req_table *table);
void req_store_fini(struct req_store *s);
/* Append the waiting requests, registry updates and the reply stream's
 * trim, and write what the socket takes. */
void req_store_flush(struct req_store *s);
/* Slot I's requester left: delete its entry from the request stream if it
 * is stored (saltrelay-up does not send what it has not read yet). */
void req_store_unsend(struct req_store *s, int i);
/* The MoM accepted the _auth of minion ID: registered with the next batch. */
void req_store_register(struct req_store *s, const char *id);
/* The reply entry ID (LEN bytes) was handled: the reply stream is trimmed
 * up to it. */
void req_store_handled(struct req_store *s, const char *id, size_t len);

#endif
