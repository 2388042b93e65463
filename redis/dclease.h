/* dclease.h -- one running saltrelay-down per datacenter: a lease on the
 * primary (keys.h key_dc_owner) names the saltrelay-down that serves the
 * DC. Two started with the same datacenter (a copy-paste mistake) would
 * otherwise both serve, overwrite each other's report and show a running DC
 * as stopped.
 *
 * A thread of its own takes the lease and renews it every DCLEASE_RENEW_MS
 * (SET ... PX DCLEASE_MS through lease.h's script, a blocking command on its
 * own connection: never on a thread that serves sockets). The daemon starts
 * its parts only once the lease is its (redis_gate.c): a second instance
 * logs one line naming the holder's host and pid, binds nothing, is not
 * ready, and takes over by itself once the holder is gone: at a clean stop
 * the holder releases the lease; a holder killed on the same host is seen
 * to have ended (hostproc.h) and is replaced at once; otherwise its lease
 * runs out DCLEASE_MS after its last renewal.
 *
 * While serving, the lease found held by another (this instance could not
 * reach the primary for longer than DCLEASE_MS and another took its place)
 * makes the daemon step down. Until then Redis does not know which of the
 * two serves: the DC report's writes are fenced by the lease (report.c), so
 * the one that lost it never overwrites the other's report. An outage alone
 * never stops the holder: it keeps delivering from the DC's replica. */
#ifndef SALTRELAY_DCLEASE_H
#define SALTRELAY_DCLEASE_H

#include <stddef.h>

#include "config.h"

#define DCLEASE_MS 6000
#define DCLEASE_RENEW_MS 1000

enum dclease_state {
    DCLEASE_UNKNOWN, /* not yet taken, or Redis does not answer */
    DCLEASE_OURS,
    DCLEASE_OTHER, /* another saltrelay-down holds it */
};

struct dclease;

struct dclease *dclease_start(const struct config *cfg);
/* The state as the thread last saw it; with DCLEASE_OTHER, the holder
 * ("host H pid P") in WHO. */
enum dclease_state dclease_get(struct dclease *l, char *who, size_t len);
/* Stop the thread and release the lease if ours, so that a successor
 * need not wait for it to run out. */
void dclease_stop(struct dclease **lp);

/* This process's token, the lease's value while it holds it:
 * "<host>/<pid>#<hostproc mark>#<random>". */
const char *dclease_token(void);

#endif
