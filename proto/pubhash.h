/* pubhash.h -- the hash that identifies a publication (pubrec.h, version 3):
 * the same Salt publication received by two saltrelay-up instances has the
 * same frames, hence the same hash, and Salt encrypts each publication with a
 * fresh IV, so two publications never do (pubstore.h stores each once by it;
 * saltrelay-down skips a re-sent one by it, pubseen.h).
 *
 * SipHash-2-4 with its 128-bit output and a fixed key, over the topic list
 * (if any) and each frame, each preceded by its length as 8 bytes little
 * endian (so [ab][c] and [a][bc] differ); the first PUBREC_HASH_LEN bytes are
 * kept. Not a secret-keyed MAC: the MoM is trusted; what matters is that
 * distinct publications do not collide (96 bits) and that hashing is cheap
 * (about 1.5 cycles a byte; the SHA-1 it replaced cost saltrelay-up about
 * 40 instructions a byte). */
#ifndef SALTRELAY_PUBHASH_H
#define SALTRELAY_PUBHASH_H

#include <stddef.h>
#include <stdint.h>

#include "pubrec.h"

/* SipHash-2-4, 128-bit output, of LEN bytes at IN with KEY (16 bytes): the
 * reference function, for the test vectors. */
void pubhash_siphash128(const void *in, size_t len, const unsigned char key[16], unsigned char out[16]);
/* REC's hash (its topic list and frames; the serial, ID and version are not
 * part of it). */
void pubhash(const struct pubrec *rec, unsigned char out[PUBREC_HASH_LEN]);

#endif
