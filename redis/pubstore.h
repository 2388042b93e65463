/* pubstore.h -- storing publications in the stream exactly once, whichever
 * of several saltrelay-up instances (same MoM, same Redis) sends them first,
 * a batch of them per script call.
 *
 * Redis 7.0 has no idempotent XADD, so the dedup runs inside Redis, atomically,
 * as a Lua script (loaded with SCRIPT LOAD on each new connection, run with
 * EVALSHA, pipelined), one call per batch of up to PUBSTORE_BATCH_MAX
 * publications. Its keys:
 *   KEYS[1] saltrelay:{C}:pub          the stream
 *   KEYS[2] saltrelay:{C}:pubserial    the serial older saltrelay-ups kept (read only)
 *   KEYS[3] saltrelay:{C}:pubidx       the index: a hash of top (the newest
 *                                      entry it covers), serial (the last given),
 *                                      b0, b1 (the time bucket each set holds)
 *   KEYS[4] saltrelay:{C}:pubidx:0, KEYS[5] ...:1   the index's sets of hashes
 *   KEYS[6] saltrelay:{C}:puborder     the instances waiting for a predecessor
 * A publication is known by its hash (pubhash.h), the last bytes of its
 * version-3 record (pubrec.h), so the stream itself says what it holds.
 *
 * Per call: the index is brought up to the stream (below); when the caller
 * names the publication it received right before the batch (its
 * predecessor) and the index does not hold it, nothing is stored and the
 * reply is "W": the caller waits for another instance to store it first
 * (its own write of it went to a primary that a failover replaced), so that
 * the stream keeps the MoM's order; unless the index holds one of the
 * batch's (another instance is past it already). When every instance lost its
 * predecessor, the one holding the oldest publication (the batch's first
 * receive time, registered by each waiter) goes first; a lone waiter gives
 * up after a while (the caller sends no predecessor). Then the batch's hashes
 * are looked up in the sets of the current time bucket and the one before
 * (bucket = TIME / pub_dedup_window: whatever was stored within the window is
 * found, what is older than two windows is forgotten); each one not found
 * (nor earlier in the batch) gets the next serial and is appended (XADD with
 * ID `*`, its field named by its serial); then one XTRIM MAXLEN ~ for the
 * batch, and the new hashes go into the current bucket's set. The reply is
 * one character per publication, '1' stored, '0' already stored.
 *
 * Only the entries are replicated (and XTRIM when it trims): the index is
 * written with redis.set_repl(REPL_NONE), since every byte replicated crosses
 * every DC's WAN link, and it is derived from the stream. Where it is missing
 * (a promoted replica, a restart from the AOF, a first start) it is rebuilt
 * from the window's entries and the serial taken from the newest entry; where
 * the stream holds entries after its top (this server was a replica when they
 * were written: partial resync keeps the server's keys; or another writer)
 * those are indexed, the serial taken again. Either way it runs before the
 * batch is looked up, in the same call. Effects replication sends a batch as
 * one MULTI/EXEC; a batch of one is its XADD alone. */
#ifndef SALTRELAY_PUBSTORE_H
#define SALTRELAY_PUBSTORE_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "keys.h"
#include "pubrec.h"
#include "rpipe.h"

#define PUBSTORE_BATCH_MAX 256          /* publications per script call */
#define PUBSTORE_BATCH_BYTES (1 << 20)  /* a batch's records at most (one larger goes alone) */

struct rconn;

struct pubstore {
    char sha[41]; /* the script's digest, for EVALSHA ("" until loaded) */
    char keys[6][KEY_MAX];
    char token[24]; /* this process among the waiters (below) */
    char maxlen[24], window[24];
};

/* One EVALSHA being built, in Redis's protocol: room for the header, the
 * script's keys and arguments, then one record per publication. The buffer
 * is kept from batch to batch. */
struct pubstore_batch {
    char *buf;
    size_t len, cap;
    size_t count; /* publications in it */
};

void pubstore_init(struct pubstore *ps, const char *cluster, long long maxlen, long long window_ms);
/* SCRIPT LOAD on RC's current connection (do it on every new connection: a
 * new primary after a failover may not have it). 0, or -1 (logged). */
int pubstore_load(struct pubstore *ps, struct rconn *rc);
/* An empty batch (the script must be loaded) whose first publication,
 * received at FIRST_MS (wall), follows the one hashed PRED (PUBREC_HASH_LEN
 * bytes), or NULL: store whatever the index holds. */
void pubstore_batch_begin(const struct pubstore *ps, struct pubstore_batch *b, const unsigned char *pred,
                          long long first_ms);
/* Add REC to the batch; its hash goes to HASH. 0, or -1 (no memory, or not a
 * record: then nothing was added). */
int pubstore_batch_add(struct pubstore_batch *b, const struct pubrec *rec, unsigned char hash[PUBREC_HASH_LEN]);
/* The bytes REC would add to a batch. */
size_t pubstore_batch_cost(const struct pubrec *rec);
/* Append the batch to pipeline P with TAG: RPIPE_OK or the refusal. */
int pubstore_batch_send(struct pubstore_batch *b, struct rpipe *p, uint64_t tag);
void pubstore_batch_free(struct pubstore_batch *b);

/* Did the script answer "W" (the batch's predecessor is not stored)? */
int pubstore_waits(const redisReply *r);
/* The script's reply to a batch of N: its verdicts, one character per
 * publication ('1' stored, '0' already stored), or NULL for an error reply
 * (Redis refused: the caller retries) or a reply of the wrong shape. */
const char *pubstore_verdicts(const redisReply *r, size_t n);

#endif
