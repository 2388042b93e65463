/* pubseen.h -- the publications this saltrelay-down delivered lately, by the
 * hash each entry carries (pubrec.h: raw in version 3, hex in "h" before).
 *
 * After a Redis failover saltrelay-up re-sends to the new primary what the
 * old one had not confirmed; the new primary stores each under a new ID,
 * after this DC's cursor, also one this DC had already delivered from its
 * replica before the replica re-attached to the new primary. Those are
 * recognised here and skipped. Bounded: the last PUBSEEN_MAX hashes (their
 * first 64 bits, the same for the hex and the raw form of one hash), in a
 * ring with an open-addressing index; 1.5 MiB. */
#ifndef SALTRELAY_PUBSEEN_H
#define SALTRELAY_PUBSEEN_H

#include <stddef.h>
#include <stdint.h>

#define PUBSEEN_MAX 65536

struct pubseen;

struct pubseen *pubseen_new(void);
void pubseen_free(struct pubseen *ps);
/* HASH is an entry's hash (LEN bytes), RAW (version 3) or hex. 1: delivered
 * lately (skip it); 0: not seen, now remembered; -1: not a hash (ignored:
 * deliver). */
int pubseen_check(struct pubseen *ps, const char *hash, size_t len, int raw);

#endif
