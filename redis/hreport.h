/* hreport.h -- writing one periodic report hash to Redis: the HSET argument
 * list (field names and values formatted in place, no allocation) and the
 * check of pipelined integer replies. Shared by the DC report
 * (returner/report.c) and saltrelay-up's heartbeat (relay-up/heartbeat.c). */
#ifndef SALTRELAY_HREPORT_H
#define SALTRELAY_HREPORT_H

#include <stddef.h>

#include "metrics.h"
#include "rpipe.h"

#define HREPORT_MAX_FIELDS 64
#define HREPORT_HEAD_MAX 10
#define HREPORT_VALUE 24 /* a long long in decimal, sign and NUL */

struct hreport {
    const char *argv[HREPORT_HEAD_MAX + 2 * HREPORT_MAX_FIELDS];
    size_t argvlen[HREPORT_HEAD_MAX + 2 * HREPORT_MAX_FIELDS];
    char values[HREPORT_MAX_FIELDS][HREPORT_VALUE];
    size_t argc, head;
};

/* Start "HSET KEY"; KEY must outlive the hreport. */
void hreport_init(struct hreport *h, const char *key);
/* Start with the N (at most HREPORT_HEAD_MAX) arguments of HEAD instead,
 * e.g. a script's "EVAL ..." that takes the fields as its last arguments;
 * they must outlive the hreport. */
void hreport_init_head(struct hreport *h, const char *const *head, size_t n);
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
/* Append the HSET to pipeline P with TAG (RPIPE_OK or the refusal). */
int hreport_append(struct hreport *h, struct rpipe *p, uint64_t tag);

/* The replies to one report's commands, taken as they come (rpipe): each
 * must be an integer. An error reply (NOREPLICAS, READONLY, OOM) leaves the
 * connection usable: failing it would log a reconnect at every report. */
struct hreport_replies {
    const char *what; /* "DC report to redis_primary", for the log */
    int failing;      /* the last report failed (log once per state change) */
    char why[160];    /* the first failure of the report being answered */
};
/* Take reply R (NULL: lost with the connection); after the LAST command's
 * the report's outcome is logged if it changed. Returns 1 when LAST and the
 * whole report succeeded. */
int hreport_take(struct hreport_replies *s, const redisReply *r, int last);

/* The report could not be appended: RC's connection is down (unreachable,
 * or the login refused), logged as for hreport_note. */
void hreport_unsent(struct hreport_replies *s, const struct rconn *rc);

/* Log "WHAT fails: WHY" or "WHAT works again" when the state changes
 * (*FAILING holds the previous one), so a Redis that stays down logs once. */
void hreport_note(int *failing, const char *what, const char *why);

#endif
