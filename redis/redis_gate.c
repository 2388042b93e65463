/* redis_gate.c -- what a daemon does with Redis around its parts; see
 * redis_gate.h. */
#include "redis_gate.h"

#include <stdlib.h>

#include "rconn.h"
#include "sentinel_watch.h"

struct watches {
    struct sentinel_watch *watch[2];
};

/* Before the parts: their connections follow the Sentinels' switches. */
static void *gate_open(const struct config *cfg)
{
    struct watches *w = calloc(1, sizeof *w);
    if (w) {
        w->watch[0] = sentinel_watch_start(&cfg->redis_url);
        w->watch[1] = sentinel_watch_start(&cfg->redis_primary_url);
    }
    return w;
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
    sentinel_watch_stop(&w->watch[0]);
    sentinel_watch_stop(&w->watch[1]);
    free(w);
}

const struct daemon_gate redis_gate = {.open = gate_open, .ready = gate_ready, .close = gate_close};
