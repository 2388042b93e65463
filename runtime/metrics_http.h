/* metrics_http.h -- the Prometheus endpoint of a daemon: GET /metrics on
 * metrics_bind serves the text exposition format of the metrics (metrics.h)
 * whose role matches the daemon, with libmicrohttpd's own thread; GET
 * /healthz says whether the daemon is serving (200) or not (503).
 *
 * metrics_bind is "host:port" or "tcp://host:port", host an IPv4 address or
 * a name resolving to one (e.g. 127.0.0.1:9105). */
#ifndef SALTRELAY_METRICS_HTTP_H
#define SALTRELAY_METRICS_HTTP_H

#include <stddef.h>

#include "config.h"

struct metrics_http;

/* Start serving for CFG's role. NULL on error, with the reason in ERR. */
struct metrics_http *metrics_http_start(const struct config *cfg, char *err, size_t errlen);
void metrics_http_stop(struct metrics_http **mh);

/* What GET /healthz answers, set by the main thread (daemon.c): 200 "serving"
 * from READY=1 until the stop while every part turns (the watchdog's
 * judgement), 503 with the reason otherwise. STALLED names the silent part. */
enum health { HEALTH_STARTING, HEALTH_WAITING, HEALTH_SERVING, HEALTH_STALLED, HEALTH_STOPPING };
void health_set(enum health state, const char *stalled);
/* HEALTH_WAITING: the daemon may not serve yet, for WHY (copied). */
void health_waiting(const char *why);
/* 1 once the daemon has been serving (what its DC report tells). */
int health_served(void);

#endif
