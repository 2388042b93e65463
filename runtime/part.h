/* part.h -- the one part skeleton: every worker thread ("part") of both
 * daemons runs this loop, and supplies only its own open/wait/turn/drain/close.
 *
 * The skeleton owns the thread's life: it opens the part, tells the starter
 * whether that worked, then loops (wait on the part's sockets and file
 * descriptors with a timeout; note a loop turn for the watchdog; stop when the
 * main thread asks), drains for at most the part's drain_ms, and closes.
 *
 * Signals belong to the main thread alone: a part's thread blocks every
 * signal, so no poll, read or wait in it is ever cut short by one, and no
 * part reads czmq's zsys_interrupted. The main thread stops a part with
 * part_stop_request() and then waits with part_wait() until the thread has
 * really ended (pthread join), however long the drain takes. */
#ifndef SALTRELAY_PART_H
#define SALTRELAY_PART_H

#include <czmq.h>

#include "config.h"

/* What one loop turn waits on, built anew by the part before each wait. */
struct part_poll {
    zmq_pollitem_t *items; /* items[0] is the skeleton's own (the stop request) */
    int n, cap;
    int timeout_ms;        /* the part lowers it with part_poll_timeout() */
};

/* Wait for EVENTS (ZMQ_POLLIN, ZMQ_POLLOUT) on a zsock_t, zactor_t or raw
 * ZeroMQ socket. Returns the index to pass to part_poll_revents, or -1 (out
 * of memory: the part then simply runs on its timeout). */
int part_poll_socket(struct part_poll *w, void *sock, short events);
/* The same for a file descriptor (a Redis connection). */
int part_poll_fd(struct part_poll *w, int fd, short events);
/* Wait at most MS (a negative MS is taken as 0). */
void part_poll_timeout(struct part_poll *w, long long ms);
/* What happened at INDEX in the last wait; 0 for index -1. */
short part_poll_revents(const struct part_poll *w, int index);

struct part_def {
    const char *name; /* as in the logs: "request intake" */
    size_t size;      /* the part's state, given zeroed to every callback */
    int drain_ms;     /* the drain after a stop request lasts at most this */
    /* Open sockets and connections; 0, or -1 (logged) if the part cannot run. */
    int (*open)(void *self, const struct config *cfg);
    /* Say what the next wait is for (STOPPING: during the drain). */
    void (*wait)(void *self, struct part_poll *w, int stopping);
    /* One loop turn after the wait (whatever woke it). */
    void (*turn)(void *self, const struct part_poll *w);
    /* One drain turn after a stop request: store or answer what is held;
     * returns 1 while something is still worth waiting for. NULL: none. */
    int (*drain)(void *self, const struct part_poll *w);
    /* Log and store what is left, release everything; also after a failed
     * open (the state is then partly opened). */
    void (*close)(void *self);
};

/* For a part that does one thing periodically: at once, then every
 * INTERVAL_MS (1 s if not positive). Its wait calls part_every_wait, its
 * turn does the work when part_every_due says so. */
struct part_every {
    long long interval_ms, due; /* due: monotonic ms */
};
void part_every_start(struct part_every *e, long long interval_ms);
void part_every_wait(const struct part_every *e, struct part_poll *w);
/* 1 if the work is due now (the next time is then set). */
int part_every_due(struct part_every *e);

struct part;

/* Start DEF's thread and wait until it opened; NULL if it could not (the
 * thread has then already ended). CFG must outlive part_wait(). */
struct part *part_start(const struct part_def *def, const struct config *cfg);
/* Ask the part to drain and stop (returns at once). */
void part_stop_request(struct part *p);
/* Wait up to TIMEOUT_MS for the part's thread to end; 1 once it has (then
 * *PP is freed and NULL), 0 while it still runs. */
int part_wait(struct part **pp, int timeout_ms);
/* Monotonic ms of the part's last loop turn (for the watchdog). */
long long part_last_turn(const struct part *p);
const char *part_name(const struct part *p);

#endif
