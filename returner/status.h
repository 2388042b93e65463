/* status.h -- the two reports of saltrelay-status: the DC overview
 * (status.c) and per-job accounting (statusjob.c). Each prints to stdout and
 * returns the exit status: 0 ok, 1 warning, 2 critical or error. */
#ifndef SALTRELAY_STATUS_H
#define SALTRELAY_STATUS_H

#include "config.h"
#include "dcstate.h"
#include "rconn.h"
#include "upstate.h"

#define STATUS_MAX_DCS 256

struct status_opts {
    const struct config *cfg;
    struct rconn *rc;
    int json;
    int colour;
    int watch;
};

/* Every DC's state, read and judged at once. */
struct overview {
    struct dc_state *dcs; /* N of them, sorted by name */
    int n;
    enum health worst;
    struct stream_head head;
    long long at_ms; /* wall time it was read */
    struct up_list ups; /* the saltrelay-up instances alive */
    char error[160]; /* the verdict line when it could not be read */
};

/* Per-DC rates for the live view: publications sent and requests received
 * per second since the previous overview (negative: unknown). */
struct dc_rates {
    double pub, req;
};

int status_overview(const struct status_opts *o);
/* Read the overview; -1 if Redis failed (ERROR holds the CRITICAL line). */
int overview_load(const struct status_opts *o, struct overview *ov);
void overview_free(struct overview *ov);
/* The table with its verdict line; RATES (one per DC, or NULL) adds the
 * PUB/S and REQ/S columns. */
void overview_print_text(const struct overview *ov, const struct dc_rates *rates, int colour, FILE *f);
/* --watch: the table redrawn every second until SIGINT/SIGTERM. */
int status_watch(const struct status_opts *o);
int status_job(const struct status_opts *o, const char *jid);
/* minions [DC]: the registry's minions of every DC, or of DC ONLY (status_minions.c). */
int status_minions(const struct status_opts *o, const char *only);

#endif
