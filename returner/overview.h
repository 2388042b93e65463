/* overview.h -- saltrelay-status's DC overview: every DC's state, read from
 * Redis and judged at once (overview.c), printed as JSON (overview.c) or as
 * the table a Nagios/Zabbix check shows (overview_text.c). */
#ifndef SALTRELAY_OVERVIEW_H
#define SALTRELAY_OVERVIEW_H

#include <stdio.h>

#include "config.h"
#include "dcstate.h"
#include "rconn.h"
#include "upstate.h"

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

/* Read the overview; -1 if Redis failed (ERROR holds the CRITICAL line). */
int overview_load(struct rconn *rc, const struct config *cfg, struct overview *ov);
void overview_free(struct overview *ov);
/* The table with its verdict line; RATES (one per DC, or NULL) adds the
 * PUB/S and REQ/S columns. */
void overview_print_text(const struct overview *ov, const struct dc_rates *rates, int colour, FILE *f);
/* The overview as one JSON object on stdout, with CFG's thresholds. */
void overview_print_json(const struct overview *ov, const struct config *cfg);

#endif
