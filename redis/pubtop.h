/* pubtop.h -- the newest publication of the stream, read with XREVRANGE:
 * where saltrelay-down starts when it has no cursor (a first start, or a
 * state file that says "none"). */
#ifndef SALTRELAY_PUBTOP_H
#define SALTRELAY_PUBTOP_H

#include <stdint.h>

#include "rconn.h"
#include "streamid.h"

/* The newest entry of the stream KEY: its ID and serial ({0,0} and 0 if the
 * stream is empty or missing; serial 0 if the entry is not a saltrelay
 * record). -1 if Redis failed or answered nonsense: the connection is
 * failed, the caller retries later. */
int pubtop_read(struct rconn *rc, const char *key, struct streamid *id, uint64_t *serial);

#endif
