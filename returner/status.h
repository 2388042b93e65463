/* status.h -- what saltrelay-status's reports take (status.c reads the
 * command line): the DC overview (overview.h), its live view (status_watch.c)
 * and per-job accounting (status_job.c). Each prints to stdout and returns
 * the exit status: 0 ok, 1 warning, 2 critical or error. */
#ifndef SALTRELAY_STATUS_H
#define SALTRELAY_STATUS_H

#include "config.h"
#include "rconn.h"

struct status_opts {
    const struct config *cfg;
    struct rconn *rc;
    int json;
    int colour;
    int watch;
};

/* --watch: the table redrawn every second until SIGINT/SIGTERM. */
int status_watch(const struct status_opts *o);
int status_job(const struct status_opts *o, const char *jid);
/* minions [DC]: the registry's minions of every DC, or of DC ONLY (status_minions.c). */
int status_minions(const struct status_opts *o, const char *only);
/* forget DC: remove a stopped DC's keys and its name from the DC set
 * (status_forget.c). */
int status_forget(const struct status_opts *o, const char *dc);

#endif
