/* hreport.h -- writing one periodic report hash to Redis: the HSET argument
 * list (field names and values formatted in place, no allocation) and the
 * check of pipelined integer replies. Shared by the DC report
 * (returner/report.c) and saltrelay-up's heartbeat (relay-up/heartbeat.c). */
#ifndef SALTRELAY_HREPORT_H
#define SALTRELAY_HREPORT_H

#include <stddef.h>

#include "metrics.h"
#include "rconn.h"

#define HREPORT_MAX_FIELDS 64
#define HREPORT_VALUE 24 /* a long long in decimal, sign and NUL */

struct hreport {
    const char *argv[2 + 2 * HREPORT_MAX_FIELDS];
    size_t argvlen[2 + 2 * HREPORT_MAX_FIELDS];
    char values[HREPORT_MAX_FIELDS][HREPORT_VALUE];
    size_t argc;
};

/* Start "HSET KEY"; KEY must outlive the hreport. */
void hreport_init(struct hreport *h, const char *key);
/* Add a field; past HREPORT_MAX_FIELDS fields are ignored (a programming
 * error the unit test would show). TEXT must outlive the hreport. */
void hreport_int(struct hreport *h, const char *name, long long v);
void hreport_text(struct hreport *h, const char *name, const char *text);
/* A field whose value is a process-wide metric. */
struct hreport_metric {
    const char *name;
    enum metric_id id;
};
#define HREPORT_METRIC(name, id) {name, M_##id},
/* Add the N metric fields of LIST with their current values. */
void hreport_metrics(struct hreport *h, const struct hreport_metric *list, size_t n);
/* Append the HSET to C's pipeline. */
void hreport_append(struct hreport *h, redisContext *c);

/* Read N pipelined replies that should all be integers. NULL if they were,
 * else why not ("connection lost", or the first error reply's text, in a
 * static buffer). An error reply (NOREPLICAS, READONLY, OOM) leaves the
 * connection usable: failing it would log a reconnect at every report. */
const char *hreport_int_replies(struct rconn *rc, int n);

/* Log "WHAT fails: WHY" or "WHAT works again" when the state changes
 * (*FAILING holds the previous one), so a Redis that stays down logs once. */
void hreport_note(int *failing, const char *what, const char *why);

#endif
