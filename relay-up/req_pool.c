/* req_pool.c -- request forwarding's sockets to the MoM; see req_pool.h,
 * and req_forward.c for the whole. */
#include "req_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "frames.h"
#include "log.h"
#include "metrics.h"
#include "sockmon.h"

#define MOM_DOWN_AFTER_MS 1000 /* new sockets take a moment to connect: not an outage */
/* REQ sockets to the MoM retry a refused connect at most this far apart: a
 * MoM that comes up (or back) is served within a second (at 5 s, requests
 * queued meanwhile waited up to 5 s more; req_pool sockets on a LAN make
 * at most req_pool attempts a second) */
#define MOM_RECONNECT_MAX_MS 1000

static void conn_close(struct req_conn *c)
{
    zsock_destroy(&c->sock); /* first: its monitor stops with it */
    zsock_destroy(&c->mon);
}

static int conn_open(struct req_pool *p, struct req_conn *c)
{
    memset(c, 0, sizeof *c);
    c->sock = zsock_new(ZMQ_REQ);
    /* DISCONNECTED events, no limit: libzmq's I/O thread never waits on them */
    if (!c->sock || !(c->mon = sockmon_new(c->sock, ZMQ_EVENT_DISCONNECTED, 0)))
        return -1;
    zsock_set_immediate(c->sock, 1); /* not writable until connected: "MoM unreachable" is visible */
    zsock_set_linger(c->sock, 0);
    zsock_set_reconnect_ivl_max(c->sock, MOM_RECONNECT_MAX_MS);
    if (zsock_connect(c->sock, "%s", p->cfg->master_ret) < 0) {
        log_error("cannot connect to master_ret %s: %s", p->cfg->master_ret, zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

/* The MoM answered connection C. */
static void take_reply(struct req_pool *p, struct req_ack *ack, struct req_conn *c)
{
    zmq_msg_t m[1];
    size_t n = frames_recv(zsock_resolve(c->sock), m, 1);
    if (n == 0)
        return;
    c->busy = 0;
    c->auth = 0;
    hist_observe_us(H_REQ_LATENCY, (clock_mono_ms() - c->sent_at) * 1000);
    if (n > 1) {
        metric_add(M_REQ_BAD, 1);
        warn_throttled(p->warn, "MoM reply of more than one frame: not forwarded (st timeout)");
        req_ack_reply(ack, c->dc, c->rid, c->dl_wall, ST_TIMEOUT, NULL);
    } else if (zmq_msg_size(&m[0]) > (size_t)p->cfg->max_frame_size) {
        metric_add(M_REQ_OVERSIZE, 1);
        warn_throttled(p->warn, "MoM reply of %zu bytes is larger than max_frame_size: not forwarded",
                       zmq_msg_size(&m[0]));
        req_ack_reply(ack, c->dc, c->rid, c->dl_wall, ST_OVERSIZE, NULL);
    } else {
        metric_add(M_REQ_ANSWERED, 1);
        req_ack_reply(ack, c->dc, c->rid, c->dl_wall, ST_OK, &m[0]);
    }
    frames_close(m, n, 1);
}

static void conn_replace(struct req_pool *p, struct req_conn *c)
{
    conn_close(c);
    if (conn_open(p, c) < 0)
        log_error("cannot replace a request socket to the MoM");
}

/* Connections whose reply did not come by the deadline: replaced, never reused
 * (a REQ socket still waiting cannot send, and a late reply must not be taken
 * for the next request's). */
void req_pool_expire(struct req_pool *p, struct req_ack *ack, long long now_wall)
{
    for (size_t i = 0; i < p->nconn; i++) {
        struct req_conn *c = &p->conn[i];
        if (!c->busy || c->dl_wall > now_wall)
            continue;
        metric_add(M_REQ_TIMEOUT, 1);
        req_ack_reply(ack, c->dc, c->rid, c->dl_wall, ST_TIMEOUT, NULL);
        conn_replace(p, c);
    }
}

/* C's connection to the MoM dropped. A request in flight on it will never be
 * answered (REQ does not re-send): it fails at once (mom_unreachable; its
 * minion re-sends) and the socket is replaced, instead of staying busy until
 * the request's deadline. An idle socket reconnects by itself. */
static void check_disconnect(struct req_pool *p, struct req_ack *ack, struct req_conn *c)
{
    int dropped = 0;
    unsigned ev;
    int fd;
    while (c->mon && sockmon_next(c->mon, &ev, &fd))
        dropped = 1;
    if (!dropped || !c->busy)
        return;
    metric_add(M_REQ_MOM_UNREACHABLE, 1);
    warn_throttled(p->warn, "MoM request port %s: connection lost with a request in flight; it fails "
                   "(mom_unreachable) and the socket is replaced", p->cfg->master_ret);
    req_ack_reply(ack, c->dc, c->rid, c->dl_wall, ST_MOM_UNREACHABLE, NULL);
    conn_replace(p, c);
}

void req_pool_note_down(struct req_pool *p, int down)
{
    long long now = clock_mono_ms();
    if (!down)
        p->unwritable_since = 0;
    else if (!p->unwritable_since)
        p->unwritable_since = now;
    if (down && now - p->unwritable_since < MOM_DOWN_AFTER_MS)
        return;
    if (down != p->mom_down)
        log_msg(down ? LOG_LVL_WARN : LOG_LVL_INFO, "MoM request port %s: %s", p->cfg->master_ret,
                down ? "not connected; requests wait until their deadline" : "connected");
    p->mom_down = down;
}

void req_pool_send(struct req_pool *p, struct held_req *j, struct req_ack *ack)
{
    struct req_conn *c = &p->conn[j->conn];
    c->reserved = 0;
    c->busy = 1;
    c->auth = j->rec.cmd == REQREC_AUTH;
    c->sent_at = clock_mono_ms();
    c->dl_wall = j->rec.dl_ms;
    snprintf(c->dc, sizeof c->dc, "%.*s", (int)j->rec.dclen, j->rec.dc);
    snprintf(c->rid, sizeof c->rid, "%.*s", (int)j->rec.ridlen, j->rec.rid);
    /* the stream entry's p frame is the payload: moved to the MoM, not copied */
    if (zmq_msg_send(&j->m[j->n - 1], zsock_resolve(c->sock), ZMQ_DONTWAIT) < 0) {
        c->busy = 0;
        metric_add(M_REQ_MOM_UNREACHABLE, 1);
        req_ack_reply(ack, c->dc, c->rid, c->dl_wall, ST_MOM_UNREACHABLE, NULL);
    } else {
        req_pool_note_down(p, 0);
    }
}

int req_pool_busy(const struct req_pool *p)
{
    int n = 0;
    for (size_t i = 0; i < p->nconn; i++)
        n += p->conn[i].busy;
    return n;
}

void req_pool_take_replies(struct req_pool *p, struct req_ack *ack)
{
    for (size_t i = 0; i < p->nconn; i++) {
        if (p->conn[i].busy && (zsock_events(p->conn[i].sock) & ZMQ_POLLIN))
            take_reply(p, ack, &p->conn[i]);
        check_disconnect(p, ack, &p->conn[i]);
    }
}


/* The connections awaiting the MoM's reply. */
void req_pool_wait(struct req_pool *p, struct part_poll *w)
{
    for (size_t i = 0; i < p->nconn; i++)
        if (p->conn[i].busy) {
            part_poll_socket(w, p->conn[i].sock, ZMQ_POLLIN);
            part_poll_socket(w, p->conn[i].mon, ZMQ_POLLIN);
        }
}

int req_pool_init(struct req_pool *p, const struct config *cfg, struct warnrate *warn)
{
    p->cfg = cfg;
    p->warn = warn;
    p->nconn = (size_t)cfg->req_pool;
    p->conn = calloc(p->nconn, sizeof *p->conn);
    if (!p->conn)
        return -1;
    for (size_t i = 0; i < p->nconn; i++)
        if (conn_open(p, &p->conn[i]) < 0)
            return -1;
    return 0;
}

void req_pool_fini(struct req_pool *p)
{
    for (size_t i = 0; p->conn && i < p->nconn; i++)
        conn_close(&p->conn[i]);
    free(p->conn);
}
