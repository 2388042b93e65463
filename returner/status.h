/* status.h -- the two reports of saltrelay-status: the DC overview
 * (status.c) and per-job accounting (statusjob.c). Each prints to stdout and
 * returns the exit status: 0 ok, 1 warning, 2 critical or error. */
#ifndef SALTRELAY_STATUS_H
#define SALTRELAY_STATUS_H

#include "config.h"
#include "rconn.h"

#define STATUS_MAX_DCS 256

struct status_opts {
    const struct config *cfg;
    struct rconn *rc;
    int json;
    int colour;
};

int status_overview(const struct status_opts *o);
int status_job(const struct status_opts *o, const char *jid);

#endif
