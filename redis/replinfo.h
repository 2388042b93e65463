/* replinfo.h -- the answer of Redis' INFO replication, parsed and
 * validated: whether the server is a primary or a replica, and for a replica
 * whether its link to the primary is up, since when it is down and when it
 * last heard from it. The text comes from a server: anything unexpected is
 * refused with a reason, never trusted. */
#ifndef SALTRELAY_REPLINFO_H
#define SALTRELAY_REPLINFO_H

#include <stddef.h>

#define REPLINFO_ABSENT (-1) /* a duration Redis did not give (or gave as -1) */

struct replinfo {
    int replica;        /* role:slave */
    int link_up;        /* master_link_status:up (always 1 on a primary) */
    int syncing;        /* master_sync_in_progress:1 */
    long long down_s;   /* master_link_down_since_seconds, or REPLINFO_ABSENT */
    long long last_io_s; /* master_last_io_seconds_ago, or REPLINFO_ABSENT */
};

/* Parse LEN bytes of INFO text; 0, or -1 with WHY set. */
int replinfo_parse(const char *text, size_t len, struct replinfo *out, const char **why);

#endif
