/* daemon.h -- what saltrelay-up and saltrelay-down share as programs:
 * command line, config loading (exit 2 on a bad file), logging, signals
 * (taken by the main thread alone, through a signalfd), the worker threads
 * ("parts", see part.h), systemd notification and the drain on SIGTERM/SIGINT. */
#ifndef SALTRELAY_DAEMON_H
#define SALTRELAY_DAEMON_H

#include "config.h"
#include "part.h"

/* Waits up to TIMEOUT_MS for a signal and acts on it (SIGHUP: reload);
 * 1 if it asks to stop. CTX is the daemon's. */
typedef int (*daemon_signal_wait)(void *ctx, int timeout_ms);

/* Around the parts: OPEN before they start (their connections rely on what
 * it starts); CLAIM then waits until this daemon may serve at all (another
 * may hold its place; it tells why with daemon_waiting; -2 if it cannot
 * tell, logged: the daemon then exits 1 as if it had lost its place) and
 * READY once the parts are up and before READY=1 is told (each 0, or -1 if
 * WAIT reported a stop signal first); while serving, LOST says whether this
 * daemon must step down (1, why in WHY: it then stops its parts and exits
 * 1); CLOSE after every part stopped. STATE is what OPEN returned. */
struct daemon_gate {
    void *(*open)(const struct config *cfg);
    int (*claim)(void *state, const struct config *cfg, daemon_signal_wait wait, void *ctx);
    int (*ready)(const struct config *cfg, daemon_signal_wait wait, void *ctx);
    int (*lost)(void *state, char *why, size_t len);
    void (*close)(void *state);
};

/* A gate's CLAIM waiting, for WHY: GET /healthz answers 503 "waiting: WHY"
 * and systemd's status of the unit shows it. */
void daemon_waiting(const char *why);

/* Runs the program; returns its exit status. PICK fills PARTS after the
 * config is loaded (to choose parts by mode); they are started in that order
 * and stopped in the reverse one. GATE is what the program does around its
 * parts with the services they use (redis_gate.h). */
typedef size_t (*part_picker)(const struct config *cfg, const struct part_def **parts, size_t max);
int daemon_main(int argc, char **argv, int role, const char *progname, part_picker pick,
                const struct daemon_gate *gate);

#endif
