/* pubstore.h -- storing one publication in the stream exactly once, whichever
 * of several saltrelay-up instances (same MoM, same Redis) sends it first.
 *
 * Redis 7.0 has no idempotent XADD, so the dedup runs inside Redis, atomically,
 * as a Lua script (loaded with SCRIPT LOAD on each new connection, run with
 * EVALSHA, pipelined). Its keys:
 *   KEYS[1] saltrelay:{C}:pub              the stream
 *   KEYS[2] saltrelay:{C}:pubserial        the last serial given (INCR)
 *   KEYS[3] saltrelay:{C}:pubseen:<hash>   "this publication is stored", with
 *                                          the entry ID as value, for pub_dedup_window
 * <hash> is the SHA-1 of the frames (each preceded by its length): the same
 * Salt publication received by two instances has the same frames, and Salt
 * encrypts each publication with a fresh IV, so two publications never do.
 * If KEYS[3] exists the script stores nothing and answers {0, id}; otherwise
 * it takes the next serial, XADDs with an ID chosen by Redis (`*`: after
 * whatever is in the stream, also an entry with a future ID or another
 * writer's), sets KEYS[3] and answers {1, id, serial}. The entry is
 *     v 1 s <serial> h <hash> f0 <frame> [f1 <frame> ...]
 * (pubrec.h decodes it; the h field lets saltrelay-down drop a publication
 * re-sent after a failover that it had already delivered). Effects
 * replication makes the replicas and the AOF see one MULTI/EXEC with the
 * concrete ID. */
#ifndef SALTRELAY_PUBSTORE_H
#define SALTRELAY_PUBSTORE_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "keys.h"
#include "pubrec.h"
#include "rpipe.h"

#define PUBSTORE_HASH_LEN 40 /* hex SHA-1 */

struct rconn;

struct pubstore {
    char sha[41]; /* the script's digest, for EVALSHA ("" until loaded) */
    char cluster[65];
    char stream[KEY_MAX];
    char serial[KEY_MAX];
    long long maxlen;    /* stream_maxlen, 0 = no trimming */
    long long window_ms; /* pub_dedup_window */
};

void pubstore_init(struct pubstore *ps, const char *cluster, long long maxlen, long long window_ms);
/* SCRIPT LOAD on RC's current connection (do it on every new connection: a
 * new primary after a failover may not have it). 0, or -1 (logged). */
int pubstore_load(struct pubstore *ps, struct rconn *rc);
/* The hash of REC's frames (hex, NUL-terminated). */
void pubstore_hash(const struct pubrec *rec, char out[PUBSTORE_HASH_LEN + 1]);
/* Append the EVALSHA storing REC to pipeline P with TAG (RPIPE_OK or the
 * refusal). */
int pubstore_append(const struct pubstore *ps, struct rpipe *p, uint64_t tag, const struct pubrec *rec);
/* The script's reply: 1 stored, 0 already stored (by another instance, or
 * before a lost connection), -1 an error reply (Redis refused: the caller
 * retries) or a reply of the wrong shape. */
int pubstore_judge(const redisReply *r);

#endif
