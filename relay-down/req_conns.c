/* req_conns.c -- the request ROUTER's connections, by fd (see req_conns.h).
 *
 * The monitor's events come in the order libzmq emits them: a connection's
 * DISCONNECTED before its fd is closed (so before any reuse of that fd), its
 * ACCEPTED before any of its messages reaches the ROUTER (emitted by the
 * listener as it hands the fd to the session, which attaches it only after
 * the listener's turn, on the one I/O thread, and a message needs the ZMTP
 * handshake first). So once a message was received, every event that
 * preceded it can be read from the monitor: a fd seen live before that
 * message may meanwhile have closed and been handed to a newer connection
 * (DISCONNECTED and ACCEPTED both unread) that sent it. Hence every message
 * is attributed only after reading the monitor to the end: an fd number
 * alone does not name a connection, the events read up to the message do.
 * A fd's list of pending requests is its current connection's (dropped when
 * it closes, forgotten if the fd shows up accepted again without a close
 * event, as after a ROUTER_HANDOVER), so a request is never dropped for
 * another connection's close; a request read after its fd was reused (sent
 * just before its connection closed) is taken as the new connection's and
 * then waits for that one's close or its deadline. Reading the monitor per
 * message costs one non-blocking receive that finds it empty (a poll of its
 * mailbox): far below what a request costs.
 *
 * Memory: a few bytes per possible fd (the open-files limit); the monitor's
 * queue holds at most MON_HWM messages (when full, libzmq's I/O thread waits
 * for this thread to read: back-pressure, no event is lost). */
#include "req_conns.h"

#include <stdlib.h>
#include <sys/resource.h>

#include "log.h"
#include "sockmon.h"

#define FD_MAX (1 << 20) /* fds above are not tracked */
#define MON_HWM 100000   /* monitor messages queued at most (2 per event) */

struct conn {
    int head;   /* first pending request of the live connection, -1: none */
    char alive; /* accepted, not yet disconnected */
};

struct req_conns {
    zsock_t *mon;
    req_conns_fn fn;
    void *arg;
    int nfd;
    struct conn *fd;
};

static int fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > FD_MAX)
        return FD_MAX;
    return (int)rl.rlim_cur;
}

struct req_conns *req_conns_new(zsock_t *router, req_conns_fn fn, void *arg)
{
    struct req_conns *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fn = fn;
    c->arg = arg;
    c->nfd = fd_limit();
    c->fd = malloc((size_t)c->nfd * sizeof *c->fd);
    c->mon = c->fd ? sockmon_new(router, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED, MON_HWM) : NULL;
    if (!c->mon) {
        log_error("request connections: cannot monitor the request socket: %s", zmq_strerror(zmq_errno()));
        req_conns_destroy(&c, NULL);
        return NULL;
    }
    for (int i = 0; i < c->nfd; i++)
        c->fd[i] = (struct conn){.head = -1};
    return c;
}

void req_conns_destroy(struct req_conns **cp, zsock_t *router)
{
    struct req_conns *c = *cp;
    if (!c)
        return;
    if (router) {
        /* empty first: libzmq stops the monitor under the lock its I/O
         * thread holds while it waits for room in a full queue */
        req_conns_drain(c);
        zmq_socket_monitor(zsock_resolve(router), NULL, 0);
    }
    zsock_destroy(&c->mon);
    free(c->fd);
    free(c);
    *cp = NULL;
}

zsock_t *req_conns_sock(struct req_conns *c)
{
    return c->mon;
}

static void on_event(struct req_conns *c, unsigned ev, int fd)
{
    if (fd < 0 || fd >= c->nfd)
        return;
    struct conn *k = &c->fd[fd];
    if (ev == ZMQ_EVENT_ACCEPTED) {
        if (k->alive && k->head >= 0)
            c->fn(c->arg, fd, 0); /* closed without an event: its requests wait for their deadline */
        k->alive = 1;
    } else if (ev == ZMQ_EVENT_DISCONNECTED && k->alive) {
        k->alive = 0;
        if (k->head >= 0)
            c->fn(c->arg, fd, 1);
    }
}

/* One event; 0 if none was waiting. */
static int read_event(struct req_conns *c)
{
    unsigned ev;
    int fd;
    if (!sockmon_next(c->mon, &ev, &fd))
        return 0;
    on_event(c, ev, fd);
    return 1;
}

void req_conns_drain(struct req_conns *c)
{
    for (int k = 0; k < MON_HWM && read_event(c); k++)
        ;
}

int req_conns_of(struct req_conns *c, zmq_msg_t *msg)
{
    int fd = zmq_msg_get(msg, ZMQ_SRCFD);
    if (fd < 0 || fd >= c->nfd)
        return REQ_CONN_UNTRACKED;
    /* always: the fd may look live from its previous connection while that
     * one's DISCONNECTED and the sender's ACCEPTED are both unread */
    req_conns_drain(c);
    return c->fd[fd].alive ? fd : REQ_CONN_GONE;
}

int *req_conns_head(struct req_conns *c, int fd)
{
    return &c->fd[fd].head;
}
