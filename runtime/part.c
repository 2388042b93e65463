/* part.c -- the part skeleton: one thread per part, its loop, its drain; see part.h. */
#include "part.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

#define TURN_MAX_MS 500 /* a loop turn at least this often: the watchdog's liveness */
#define POLL_INITIAL 8

struct part {
    const struct part_def *def;
    const struct config *cfg;
    zsock_t *pipe;    /* the main thread's end */
    zsock_t *inner;   /* the part's end, owned by the thread once it runs */
    pthread_t thread;
    _Atomic long long alive_ms;
};

int part_poll_socket(struct part_poll *w, void *sock, short events)
{
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : POLL_INITIAL;
        zmq_pollitem_t *items = realloc(w->items, (size_t)cap * sizeof *items);
        if (!items)
            return -1;
        w->items = items;
        w->cap = cap;
    }
    w->items[w->n] = (zmq_pollitem_t){sock ? zsock_resolve(sock) : NULL, 0, events, 0};
    return w->n++;
}

int part_poll_fd(struct part_poll *w, int fd, short events)
{
    int i = part_poll_socket(w, NULL, events);
    if (i >= 0)
        w->items[i].fd = fd;
    return i;
}

void part_poll_timeout(struct part_poll *w, long long ms)
{
    if (ms < w->timeout_ms)
        w->timeout_ms = ms < 0 ? 0 : (int)ms;
}

short part_poll_revents(const struct part_poll *w, int index)
{
    return index >= 0 && index < w->n ? w->items[index].revents : 0;
}

void part_every_start(struct part_every *e, long long interval_ms)
{
    e->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    e->due = clock_mono_ms();
}

void part_every_wait(const struct part_every *e, struct part_poll *w)
{
    part_poll_timeout(w, e->due - clock_mono_ms());
}

int part_every_due(struct part_every *e)
{
    long long now = clock_mono_ms();
    if (now < e->due)
        return 0;
    e->due = now + e->interval_ms;
    return 1;
}

/* Build the wait (the stop request first, then the part's) and wait. */
static void wait_turn(struct part *p, void *self, struct part_poll *w, int stopping, long long max_ms)
{
    w->n = 0;
    w->timeout_ms = TURN_MAX_MS;
    part_poll_timeout(w, max_ms);
    part_poll_socket(w, p->inner, ZMQ_POLLIN); /* index 0; read only before the stop */
    p->def->wait(self, w, stopping);
    /* with every signal blocked in this thread, zmq_poll is never cut short by one */
    if (zmq_poll(w->items, w->n, w->timeout_ms) <= 0)
        for (int i = 0; i < w->n; i++)
            w->items[i].revents = 0;
    atomic_store_explicit(&p->alive_ms, clock_mono_ms(), memory_order_relaxed);
}

/* The only command the main thread sends is the stop request. */
static int stop_requested(struct part *p, const struct part_poll *w)
{
    if (!(part_poll_revents(w, 0) & ZMQ_POLLIN))
        return 0;
    char *cmd = zstr_recv(p->inner);
    free(cmd);
    return 1;
}

static void run(struct part *p, void *self, struct part_poll *w)
{
    for (;;) {
        wait_turn(p, self, w, 0, TURN_MAX_MS);
        if (stop_requested(p, w))
            break;
        p->def->turn(self, w);
    }
}

/* After the stop request: drain turns until nothing is left or drain_ms passed. */
static void drain(struct part *p, void *self, struct part_poll *w)
{
    if (!p->def->drain)
        return;
    long long until = clock_mono_ms() + p->def->drain_ms;
    w->n = 0; /* the first turn sees no events */
    int more = p->def->drain(self, w);
    while (more && clock_mono_ms() < until) {
        wait_turn(p, self, w, 1, until - clock_mono_ms());
        more = p->def->drain(self, w);
    }
}

static void *thread_main(void *arg)
{
    struct part *p = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* already inherited from the main thread; made sure here */
    char name[16]; /* the thread's name in top -H, ps -L, /proc (15 bytes at most) */
    snprintf(name, sizeof name, "%s", p->def->name);
    pthread_setname_np(pthread_self(), name);
    void *self = calloc(1, p->def->size);
    int ok = self && p->def->open(self, p->cfg) == 0;
    if (!self)
        log_error("%s: out of memory", p->def->name);
    struct part_poll w = {0};
    zsock_signal(p->inner, ok ? 0 : 1);
    if (ok) {
        run(p, self, &w);
        drain(p, self, &w);
    }
    if (self)
        p->def->close(self);
    free(self);
    free(w.items);
    zsock_destroy(&p->inner);
    return NULL;
}

struct part *part_start(const struct part_def *def, const struct config *cfg)
{
    struct part *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->def = def;
    p->cfg = cfg;
    atomic_store(&p->alive_ms, clock_mono_ms());
    p->pipe = zsys_create_pipe(&p->inner);
    if (!p->pipe || pthread_create(&p->thread, NULL, thread_main, p) != 0) {
        zsock_destroy(&p->inner);
        zsock_destroy(&p->pipe);
        free(p);
        return NULL;
    }
    int status;
    while ((status = zsock_wait(p->pipe)) < 0 && zmq_errno() == EINTR)
        ;
    if (status != 0) {
        pthread_join(p->thread, NULL);
        zsock_destroy(&p->pipe);
        free(p);
        return NULL;
    }
    return p;
}

void part_stop_request(struct part *p)
{
    zstr_send(p->pipe, "$TERM");
}

int part_wait(struct part **pp, int timeout_ms)
{
    struct part *p = *pp;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (pthread_timedjoin_np(p->thread, NULL, &until) != 0)
        return 0;
    zsock_destroy(&p->pipe);
    free(p);
    *pp = NULL;
    return 1;
}

long long part_last_turn(const struct part *p)
{
    return atomic_load_explicit(&p->alive_ms, memory_order_relaxed);
}

const char *part_name(const struct part *p)
{
    return p->def->name;
}
