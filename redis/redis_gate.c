/* redis_gate.c -- what a daemon does with Redis around its parts; see
 * redis_gate.h. */
#include "redis_gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dclease.h"
#include "log.h"
#include "rconn.h"
#include "sentinel_watch.h"

struct watches {
    struct sentinel_watch *watch[2];
    struct dclease *lease; /* saltrelay-down's */
    const char *dc;
};

/* Before the parts: their connections follow the Sentinels' switches, and
 * saltrelay-down takes its DC's lease. */
static void *gate_open(const struct config *cfg)
{
    struct watches *w = calloc(1, sizeof *w);
    if (w) {
        w->watch[0] = sentinel_watch_start(&cfg->redis_url);
        w->watch[1] = sentinel_watch_start(&cfg->redis_primary_url);
        if (cfg->role == CONFIG_DOWN)
            w->lease = dclease_start(cfg);
        w->dc = cfg->datacenter;
    } else {
        log_error("cannot start: out of memory");
    }
    return w;
}

/* saltrelay-down: wait until the DC's lease is this process's (dclease.h). */
static int gate_claim(void *state, const struct config *cfg, daemon_signal_wait wait, void *ctx)
{
    struct watches *w = state;
    char who[300], why[400], told[400] = "";
    if (cfg->role != CONFIG_DOWN)
        return 0;
    if (!w || !w->lease)
        return -2; /* logged: out of memory or no thread */
    for (;;) {
        enum dclease_state st = dclease_get(w->lease, who, sizeof who);
        if (st == DCLEASE_OURS)
            return 0;
        snprintf(why, sizeof why, "datacenter %s is held by saltrelay-down on %s", cfg->datacenter, who);
        if (st == DCLEASE_OTHER && strcmp(why, told) != 0) /* until Redis answers: "starting" */
            daemon_waiting(strcpy(told, why));
        if (wait(ctx, 200))
            return -1;
    }
}

/* While serving: the DC's lease found held by another. */
static int gate_lost(void *state, char *why, size_t len)
{
    struct watches *w = state;
    char who[300];
    if (!w || !w->lease || dclease_get(w->lease, who, sizeof who) != DCLEASE_OTHER)
        return 0;
    snprintf(why, len, "datacenter %s is held by saltrelay-down on %s now (this one did not reach Redis for more "
             "than %d s and was replaced): exit 1", w->dc, who, DCLEASE_MS / 1000);
    return 1;
}

/* Wait until Redis answers, so READY=1 means it; 0, or -1 if a stop signal
 * came first. */
static int gate_ready(const struct config *cfg, daemon_signal_wait wait, void *ctx)
{
    struct rconn *rc = rconn_new(cfg->role == CONFIG_DOWN ? &cfg->redis_primary_url : &cfg->redis_url,
                                 "startup check", 2000);
    int stop = 0;
    while (rc && !stop && !rconn_get(rc))
        stop = wait(ctx, rconn_retry_in_ms(rc) > 200 ? 200 : rconn_retry_in_ms(rc) + 1);
    rconn_destroy(&rc);
    return stop ? -1 : 0;
}

/* After the parts stopped. */
static void gate_close(void *state)
{
    struct watches *w = state;
    if (!w)
        return;
    dclease_stop(&w->lease);
    sentinel_watch_stop(&w->watch[0]);
    sentinel_watch_stop(&w->watch[1]);
    free(w);
}

const struct daemon_gate redis_gate = {
    .open = gate_open, .claim = gate_claim, .ready = gate_ready, .lost = gate_lost, .close = gate_close};
