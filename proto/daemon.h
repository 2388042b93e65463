/* daemon.h -- what saltrelay-up and saltrelay-down share as programs:
 * command line, config loading (exit 2 on a bad file), logging, signals,
 * the worker threads ("parts", each a czmq actor), systemd notification and
 * the drain on SIGTERM/SIGINT. */
#ifndef SALTRELAY_DAEMON_H
#define SALTRELAY_DAEMON_H

#include <czmq.h>
#include <stdatomic.h>

#include "config.h"

/* What an actor receives as its ARGS. */
struct part_ctx {
    const struct config *cfg;
    _Atomic long long alive_ms; /* monotonic time of the part's last loop turn */
    _Atomic int failed;         /* set before zsock_signal if the part could not start */
};

/* Call once per loop turn (at least every second): the systemd watchdog is
 * only fed while every part keeps doing so. */
static inline void part_alive(struct part_ctx *ctx, long long now_mono_ms)
{
    atomic_store_explicit(&ctx->alive_ms, now_mono_ms, memory_order_relaxed);
}

/* Tell zactor_new, which waits for it, whether the part came up. */
void part_started(zsock_t *pipe, struct part_ctx *ctx, int ok);
/* Read the command waiting on PIPE; 1 if it is $TERM (or the pipe broke). */
int part_stop_requested(zsock_t *pipe);

/* The loop of a part that does one thing periodically: TURN(ARG) at once,
 * then every INTERVAL_MS (1 s if not positive) until $TERM on PIPE; the
 * part is marked alive at least every 500 ms meanwhile. */
void part_every(zsock_t *pipe, struct part_ctx *ctx, long long interval_ms, void (*turn)(void *arg),
                void *arg);

struct part {
    const char *name;
    zactor_fn *fn;
};

/* Runs the program; returns its exit status. PARTS may be filled in by
 * PICK after the config is loaded (to choose parts by mode). */
typedef size_t (*part_picker)(const struct config *cfg, struct part *parts, size_t max);
int daemon_main(int argc, char **argv, int role, const char *progname, part_picker pick);

#endif
