/* pub_write.h -- publication intake's writer (pub_write.c): the ring's
 * publications (pub_ring.h) written to Redis through the Redis pipeline (in
 * stream mode a batch per call of the store script), each reply taken for
 * the oldest slots in flight, and with
 * pub_wait_replicas a WAIT after each write. What Redis stored is popped
 * from the ring. */
#ifndef SALTRELAY_PUB_WRITE_H
#define SALTRELAY_PUB_WRITE_H

#include <stdint.h>

#include "config.h"
#include "keys.h"
#include "pub_ring.h"
#include "pubstore.h"
#include "rconn.h"
#include "rpipe.h"

struct pub_write {
    const struct config *cfg;
    struct pub_ring *ring;
    int channel_mode;
    struct rconn *rc;
    struct rpipe *pipe;
    char key[KEY_MAX]; /* channel mode: the channel */
    struct pubstore store; /* stream mode */
    struct pubstore_batch pending; /* stream mode: the call being built (its buffer kept) */
    unsigned loaded;   /* rconn generation the store script was loaded on */
    uint64_t serial;   /* channel mode: the last serial given */
    size_t sent;       /* slots from the head written to Redis (replies awaited, or held) */
    size_t skip;       /* replies to read and ignore (sent after a refused one) */
    /* pub_wait_replicas: a write of slots is followed by WAIT, and the next
     * write waits for its answer; slots Redis stored stay HELD at the head
     * until then, so that a failover before the replicas had them finds them
     * still here, re-sent to the new primary (whose store script skips what
     * it has). */
    size_t held;
    size_t batch;   /* script replies (commands) still to come before the WAIT reply */
    int wait_owed;  /* a WAIT reply is to come */
    int refusing;      /* Redis answers XADD with an error (log once) */
    int unreceived;    /* channel mode: the last PUBLISH reached no saltrelay-down (log once) */
    int unconfirmed;   /* the last WAIT had too few replicas (log once) */
    long long retry_at; /* monotonic: nothing is written before */
    /* the join hold (pub_intake.c): slots from the join_from-th from the
     * head on came after a (re)connect to the MoM: not written before
     * join_until (monotonic ms) */
    size_t join_from;
    long long join_until;
    /* Order across a failover that lost this instance's newest stores while
     * another instance still holds them: each batch names the slot before it
     * (pubstore.h); while Redis lacks that one ("W") the batch waits for the
     * other instance to store it, up to ORDER_WAIT_MS, then goes without. */
    unsigned char last_hash[PUBREC_HASH_LEN]; /* the newest slot popped (stored) */
    long long last_ms;     /* its recv_ms (wall); 0: none yet */
    long long order_since; /* monotonic: this wait's first "W"; 0: not waiting */
    int order_forced;      /* the wait ran out: batches went without their predecessor */
};

/* Write RING's publications to CFG's Redis. 0, or -1 (no memory);
 * pub_write_fini either way, before the ring's. */
int pub_write_init(struct pub_write *w, const struct config *cfg, struct pub_ring *ring);
void pub_write_fini(struct pub_write *w);
/* Append the buffered messages not yet in flight while the pipeline takes
 * them, and write what the socket takes. */
void pub_write_more(struct pub_write *w);
/* Move publications towards Redis: replies first (they free ring slots). */
void pub_write_pump(struct pub_write *w);
/* Write none of the ring's slots from FROM on (counted from the head, and
 * any taken later) before UNTIL (monotonic ms); the slots before FROM go
 * on. A hold still on keeps its start and lasts until UNTIL. */
void pub_write_join_hold(struct pub_write *w, size_t from, long long until);

#endif
