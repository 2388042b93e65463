/* req_forward.c -- saltrelay-up's request forwarding (see req_forward.h).
 *
 * A child reader (stream_reader.c) takes the cluster's request stream through the
 * consumer group "saltrelay-up" as consumer <host>/<instance or pid>
 * (instance.h: every instance has its own), at most HOLD_MAX entries ahead of
 * what was sent; entries another instance read and left unacknowledged for
 * CLAIM_IDLE_MS (it died) are claimed and sent by whichever instance claims
 * them first. Each request
 * goes to the MoM's request port on a REQ socket of a pool (req_pool), one
 * request in flight per socket, the payload frame byte for byte: to the MoM
 * it is a minion's own REQ exchange. The reply goes to the requesting DC's
 * reply stream.
 *
 * At most once: each entry is acknowledged (its own XACK, then one XDEL of
 * all) in the pipelined round trip right before its request is sent (with
 * pub_wait_replicas, a WAIT in that round trip must confirm it first: see
 * req_forward_redis.c), and it
 * is sent (or dropped with its reply record) only if its XACK answered 1:
 * Redis says which entries this round trip took. 0 means taken before (a
 * copy the reader read again from ID 0 after a reconnect while the original
 * was being sent): discarded silently. An error or a lost answer: the entry
 * stays a job and is acknowledged again next turn. A crash before loses
 * nothing (the entry is still pending and is claimed by a running instance,
 * or by this one restarted), a crash after
 * cannot send it twice (the MoM would refuse a replayed request anyway; see
 * docs/return-path.md). A dropped entry, too, stays a job (holding one of the
 * reader's HOLD_MAX credits) until its XACK answered, so nothing can pile up
 * while Redis refuses acknowledgements.
 *
 * Every request read ends in exactly one reply record: ok, timeout (no reply
 * by the deadline: the socket is destroyed and replaced, never reused),
 * oversize (reply over max_frame_size), expired (already past the deadline
 * when its turn came) or mom_unreachable (no connected socket until the
 * deadline).
 *
 * _auth storms (every minion re-authenticates after the MoM's AES key
 * rotated): ordinary requests go first, oldest first, and never wait behind
 * an _auth; _auth goes newest first (an older attempt's minion is the one
 * most likely to have given up), paced by the MoM's own answers: at most
 * AUTH_POOL_SHARE of the pool carries _auth at once, so the MoM gets a new
 * one as soon as it answered one (auth_rate, if set, caps the rate on top).
 * An _auth is shed unsent (auth_shed_total, one log line per shedding
 * episode) when its deadline passed (saltrelay-down gives it auth_timeout),
 * when a newer _auth of the same minion id was read, or when waiting _auth
 * leave fewer than 128 read-ahead slots free (the oldest go), which keeps
 * room for ordinary requests behind them in the stream.
 *
 * This file is the MoM side; the acknowledgements and reply records go
 * through the Redis pipeline in req_forward_redis.c. */
#include "req_forward.h"
#include "req_held.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "envelope.h"
#include "part.h"
#include "frames.h"
#include "keys.h"
#include "instance.h"
#include "log.h"
#include "metrics.h"
#include "rconn.h"
#include "reqrec.h"
#include "rpipe.h"
#include "sockmon.h"
#include "stream_reader.h"
#include "warnrate.h"


static void conn_close(struct conn *c)
{
    zsock_destroy(&c->sock); /* first: its monitor stops with it */
    zsock_destroy(&c->mon);
}

static int conn_open(struct req_forward *o, struct conn *c)
{
    memset(c, 0, sizeof *c);
    c->sock = zsock_new(ZMQ_REQ);
    /* DISCONNECTED events, no limit: libzmq's I/O thread never waits on them */
    if (!c->sock || !(c->mon = sockmon_new(c->sock, ZMQ_EVENT_DISCONNECTED, 0)))
        return -1;
    zsock_set_immediate(c->sock, 1); /* not writable until connected: "MoM unreachable" is visible */
    zsock_set_linger(c->sock, 0);
    zsock_set_reconnect_ivl_max(c->sock, MOM_RECONNECT_MAX_MS);
    if (zsock_connect(c->sock, "%s", o->cfg->master_ret) < 0) {
        log_error("cannot connect to master_ret %s: %s", o->cfg->master_ret, zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

void fwd_held_free(struct req_forward *o, struct held_req *j)
{
    frames_close(j->m, j->n, JOB_FRAMES);
    j->used = 0;
    o->credit_due++;
}

/* Drop job J unsent, once its entry is acknowledged: reply record ST (if it
 * has one), counted in METRIC (and in auth_shed_total if an _auth). */
void fwd_held_drop(struct held_req *j, enum reprec_status st, enum metric_id metric)
{
    j->drop = 1;
    j->st = st;
    j->metric = metric;
}

/* Job J's entry was taken by this turn's XACK: the drop's record and counter. */
void fwd_held_dropped(struct req_forward *o, struct held_req *j)
{
    if (j->has_rec) {
        char dc[DC_MAX], rid[REQREC_RID_MAX + 1];
        snprintf(dc, sizeof dc, "%.*s", (int)j->rec.dclen, j->rec.dc);
        snprintf(rid, sizeof rid, "%.*s", (int)j->rec.ridlen, j->rec.rid);
        fwd_reply(o, dc, rid, j->rec.dl_ms, j->st, NULL);
    }
    metric_add(j->metric, 1);
    metric_add(M_AUTH_SHED, j->has_rec && j->rec.cmd == REQREC_AUTH);
    fwd_held_free(o, j);
}

static int held(struct req_forward *o, zmq_msg_t *entry)
{
    for (size_t i = 0; i < HOLD_MAX; i++)
        if (o->held[i].used && zmq_msg_size(&o->held[i].m[0]) == zmq_msg_size(entry) &&
            memcmp(zmq_msg_data(&o->held[i].m[0]), zmq_msg_data(entry), zmq_msg_size(entry)) == 0)
            return 1;
    return 0;
}

/* Take one entry from the reader into job J (a free slot). It counts as
 * read (requests_in) once its XACK took it. */
static void take_entry(struct req_forward *o, struct held_req *j)
{
    const char *fv[JOB_FRAMES];
    size_t fl[JOB_FRAMES];
    const char *why = "too many fields";
    j->used = 1;
    j->conn = -1;
    j->drop = j->has_rec = 0;
    j->acking = j->acked = j->counted = 0;
    j->order = ++o->order;
    if (j->n == 1) { /* trimmed while pending: past any deadline */
        fwd_held_drop(j, ST_EXPIRED, M_REQ_EXPIRED);
        return;
    }
    if (j->n <= JOB_FRAMES) {
        frames_view(j->m, 0, j->n, fv, fl);
        if (reqrec_decode(fv + 1, fl + 1, j->n - 1, &j->rec, &why) == 0) {
            j->has_rec = 1;
            fwd_note_auth_id(o, j);
            return;
        }
    }
    warn_throttled(&o->warn, "skipping malformed entry of %s: %s", o->req_key, why);
    fwd_held_drop(j, ST_EXPIRED, M_REQ_BAD);
}

static void drain_reader(struct req_forward *o)
{
    void *sock = zsock_resolve(o->reader);
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *j = &o->held[i];
        if (j->used)
            continue;
        j->n = frames_recv(sock, j->m, JOB_FRAMES);
        if (j->n == 0)
            return;
        if (held(o, &j->m[0])) { /* read again after a reconnect: already ours */
            frames_close(j->m, j->n, JOB_FRAMES);
            o->credit_due++;
            continue;
        }
        take_entry(o, j);
    }
}

/* The MoM answered connection C. */
static void take_reply(struct req_forward *o, struct conn *c)
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
        warn_throttled(&o->warn, "MoM reply of more than one frame: not forwarded (st timeout)");
        fwd_reply(o, c->dc, c->rid, c->dl_wall, ST_TIMEOUT, NULL);
    } else if (zmq_msg_size(&m[0]) > (size_t)o->cfg->max_frame_size) {
        metric_add(M_REQ_OVERSIZE, 1);
        warn_throttled(&o->warn, "MoM reply of %zu bytes is larger than max_frame_size: not forwarded",
                       zmq_msg_size(&m[0]));
        fwd_reply(o, c->dc, c->rid, c->dl_wall, ST_OVERSIZE, NULL);
    } else {
        metric_add(M_REQ_ANSWERED, 1);
        fwd_reply(o, c->dc, c->rid, c->dl_wall, ST_OK, &m[0]);
    }
    frames_close(m, n, 1);
}

static void conn_replace(struct req_forward *o, struct conn *c)
{
    conn_close(c);
    if (conn_open(o, c) < 0)
        log_error("cannot replace a request socket to the MoM");
}

/* Connections whose reply did not come by the deadline: replaced, never reused
 * (a REQ socket still waiting cannot send, and a late reply must not be taken
 * for the next request's). */
static void expire_conns(struct req_forward *o, long long now_wall)
{
    for (size_t i = 0; i < o->nconn; i++) {
        struct conn *c = &o->conn[i];
        if (!c->busy || c->dl_wall > now_wall)
            continue;
        metric_add(M_REQ_TIMEOUT, 1);
        fwd_reply(o, c->dc, c->rid, c->dl_wall, ST_TIMEOUT, NULL);
        conn_replace(o, c);
    }
}

/* C's connection to the MoM dropped. A request in flight on it will never be
 * answered (REQ does not re-send): it fails at once (mom_unreachable; its
 * minion re-sends) and the socket is replaced, instead of staying busy until
 * the request's deadline. An idle socket reconnects by itself. */
static void check_disconnect(struct req_forward *o, struct conn *c)
{
    int dropped = 0;
    unsigned ev;
    int fd;
    while (c->mon && sockmon_next(c->mon, &ev, &fd))
        dropped = 1;
    if (!dropped || !c->busy)
        return;
    metric_add(M_REQ_MOM_UNREACHABLE, 1);
    warn_throttled(&o->warn, "MoM request port %s: connection lost with a request in flight; it fails "
                   "(mom_unreachable) and the socket is replaced", o->cfg->master_ret);
    fwd_reply(o, c->dc, c->rid, c->dl_wall, ST_MOM_UNREACHABLE, NULL);
    conn_replace(o, c);
}

static void refill_tokens(struct req_forward *o, long long now)
{
    double rate = o->cfg->auth_rate, burst = rate > 1 ? rate : 1;
    o->tokens += (double)(now - o->tokens_at) * rate / 1000.0;
    if (o->tokens > burst)
        o->tokens = burst;
    o->tokens_at = now;
}

/* The job that may go now, or NULL: the oldest ordinary request, else the
 * newest _auth if the MoM has room for one more (and auth_rate a token). */
static struct held_req *next_held(struct req_forward *o)
{
    struct held_req *req = NULL, *auth = NULL;
    int auth_ok = o->auth_busy < o->auth_busy_max && !(o->cfg->auth_rate > 0 && o->tokens < 1);
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *j = &o->held[i];
        if (!j->used || j->conn >= 0 || j->drop)
            continue;
        if (j->rec.cmd != REQREC_AUTH && (!req || j->order < req->order))
            req = j;
        else if (j->rec.cmd == REQREC_AUTH && auth_ok && (!auth || j->order > auth->order))
            auth = j;
    }
    return req ? req : auth;
}

static void set_mom_down(struct req_forward *o, int down)
{
    long long now = clock_mono_ms();
    if (!down)
        o->unwritable_since = 0;
    else if (!o->unwritable_since)
        o->unwritable_since = now;
    if (down && now - o->unwritable_since < MOM_DOWN_AFTER_MS)
        return;
    if (down != o->mom_down)
        log_msg(down ? LOG_LVL_WARN : LOG_LVL_INFO, "MoM request port %s: %s", o->cfg->master_ret,
                down ? "not connected; requests wait until their deadline" : "connected");
    o->mom_down = down;
}

/* Drop what is past its deadline. */
static void drop_expired(struct req_forward *o, long long now_wall)
{
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *j = &o->held[i];
        if (!j->used || j->conn >= 0 || j->drop || j->rec.dl_ms > now_wall)
            continue;
        if (j->has_rec && j->rec.cmd == REQREC_AUTH && !o->mom_down)
            fwd_shed_auth(o, j, "older than its minion waits (auth_timeout)");
        else
            fwd_held_drop(j, o->mom_down ? ST_MOM_UNREACHABLE : ST_EXPIRED,
                      o->mom_down ? M_REQ_MOM_UNREACHABLE : M_REQ_EXPIRED);
    }
}

/* Pair the jobs with idle connected sockets (each reserved until the job's
 * XACK answers); none while Redis is so slow that reply records pile up
 * (their table would overflow). */
static void choose_sends(struct req_forward *o)
{
    if (fwd_records_waiting(o) >= o->nout / 2)
        return;
    refill_tokens(o, clock_mono_ms());
    int idle = 0, writable = 0;
    o->auth_busy = 0;
    for (size_t i = 0; i < o->nconn; i++)
        o->auth_busy += (o->conn[i].busy || o->conn[i].reserved) && o->conn[i].auth;
    for (size_t i = 0; i < o->nconn; i++) {
        struct conn *c = &o->conn[i];
        if (c->busy || c->reserved || !c->sock)
            continue;
        idle++;
        if (!(zsock_events(c->sock) & ZMQ_POLLOUT))
            continue;
        writable++;
        struct held_req *j = next_held(o);
        if (!j)
            break;
        j->conn = (int)i;
        c->reserved = 1;
        c->auth = j->rec.cmd == REQREC_AUTH;
        o->tokens -= j->rec.cmd == REQREC_AUTH;
        o->auth_busy += j->rec.cmd == REQREC_AUTH; /* picked: next_held counts it */
    }
    if (idle && next_held(o))
        set_mom_down(o, writable == 0);
}

void fwd_send_held(struct req_forward *o, struct held_req *j)
{
    struct conn *c = &o->conn[j->conn];
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
        fwd_reply(o, c->dc, c->rid, c->dl_wall, ST_MOM_UNREACHABLE, NULL);
    } else {
        set_mom_down(o, 0);
    }
    fwd_held_free(o, j);
}

static void dispatch(struct req_forward *o)
{
    long long now = clock_wall_ms();
    expire_conns(o, now);
    if (!o->stop) {
        drop_expired(o, now);
        fwd_shed_overload(o);
        fwd_end_shedding(o);
        choose_sends(o);
    }
    fwd_drop_stale_replies(o, now);
    fwd_flush_redis(o);
    if (o->credit_due) {
        stream_reader_credit(o->reader, o->credit_due);
        o->credit_due = 0;
    }
}

static int req_forward_open(void *self, const struct config *cfg)
{
    struct req_forward *o = self;
    o->cfg = cfg;
    o->tokens_at = clock_mono_ms();
    o->tokens = o->cfg->auth_rate > 1 ? o->cfg->auth_rate : 1;
    o->nconn = (size_t)o->cfg->req_pool;
    o->auth_busy_max = (int)((double)o->nconn * AUTH_POOL_SHARE);
    if (o->auth_busy_max < 1)
        o->auth_busy_max = 1;
    o->nout = o->nconn + HOLD_MAX;
    o->conn = calloc(o->nconn, sizeof *o->conn);
    o->out = calloc(o->nout, sizeof *o->out);
    key_req_stream(o->req_key, o->cfg->cluster);
    o->rc = rconn_new(&o->cfg->redis_url, "requests", REDIS_TIMEOUT_MS);
    o->replicas = -1;
    int timeout = (int)(REDIS_TIMEOUT_MS + fwd_wait_ms(o->cfg)); /* a WAIT may take its own */
    o->pipe = o->rc ? rpipe_new(o->rc, PIPE_BYTES, PIPE_CMDS, timeout, fwd_on_reply, o) : NULL;
    if (!o->conn || !o->out || !o->pipe)
        return -1;
    for (size_t i = 0; i < o->nconn; i++)
        if (conn_open(o, &o->conn[i]) < 0)
            return -1;
    struct stream_reader_cfg rcfg = {.url = o->cfg->redis_url, .credit = HOLD_MAX};
    snprintf(rcfg.label, sizeof rcfg.label, "requests (reader)");
    snprintf(rcfg.key, sizeof rcfg.key, "%s", o->req_key);
    snprintf(rcfg.group, sizeof rcfg.group, GROUP);
    instance_name(o->cfg, rcfg.consumer, sizeof rcfg.consumer);
    rcfg.claim_idle_ms = CLAIM_IDLE_MS;
    o->reader = stream_reader_new(&rcfg);
    if (!o->reader)
        return -1;
    log_info("requests: forwarding to %s with %zu sockets (consumer %s)", o->cfg->master_ret, o->nconn,
             rcfg.consumer);
    o->opened = 1;
    return 0;
}

static void log_totals(void)
{
    log_info("requests: %lld read, %lld answered, %lld timed out, %lld expired, %lld mom unreachable, "
             "%lld oversize, %lld bad, %lld redis errors", (long long)metric_get(M_REQ_IN),
             (long long)metric_get(M_REQ_ANSWERED), (long long)metric_get(M_REQ_TIMEOUT),
             (long long)metric_get(M_REQ_EXPIRED), (long long)metric_get(M_REQ_MOM_UNREACHABLE),
             (long long)metric_get(M_REQ_OVERSIZE), (long long)metric_get(M_REQ_BAD),
             (long long)metric_get(M_REQ_REDIS_ERR));
}

/* After the drain: store the reply records of what is left, then release. */
static void req_forward_close(void *self)
{
    struct req_forward *o = self;
    if (o->opened) {
        dispatch(o);
        rpipe_flush(o->pipe, REDIS_TIMEOUT_MS);
        dispatch(o); /* the reply records of what the acknowledgements settled */
        rpipe_flush(o->pipe, REDIS_TIMEOUT_MS);
        log_totals();
    }
    rpipe_destroy(&o->pipe); /* before the jobs and sockets: what it hands back as lost is looked up there */
    zactor_destroy(&o->reader);
    for (size_t i = 0; i < HOLD_MAX; i++)
        if (o->held[i].used)
            frames_close(o->held[i].m, o->held[i].n, JOB_FRAMES);
    for (size_t i = 0; o->out && i < o->nout; i++)
        if (o->out[i].used)
            zmq_msg_close(&o->out[i].payload);
    for (size_t i = 0; o->conn && i < o->nconn; i++)
        conn_close(&o->conn[i]);
    rconn_destroy(&o->rc);
    free(o->conn);
    free(o->out);
}

/* The reader (not while stopping) and the connections awaiting the MoM's
 * reply; jobs waiting for a socket, a token or Redis are looked at again soon. */
static void req_forward_wait(void *self, struct part_poll *w, int stopping)
{
    struct req_forward *o = self;
    if (!stopping)
        part_poll_socket(w, o->reader, ZMQ_POLLIN);
    for (size_t i = 0; i < o->nconn; i++)
        if (o->conn[i].busy) {
            part_poll_socket(w, o->conn[i].sock, ZMQ_POLLIN);
            part_poll_socket(w, o->conn[i].mon, ZMQ_POLLIN);
        }
    rpipe_wait(o->pipe, w);
    part_poll_timeout(w, stopping ? 20 : next_held(o) || fwd_redis_work(o) ? 10 : 200);
}

static int busy_count(const struct req_forward *o)
{
    int n = 0;
    for (size_t i = 0; i < o->nconn; i++)
        n += o->conn[i].busy;
    return n;
}

static void take_replies(struct req_forward *o)
{
    for (size_t i = 0; i < o->nconn; i++) {
        if (o->conn[i].busy && (zsock_events(o->conn[i].sock) & ZMQ_POLLIN))
            take_reply(o, &o->conn[i]);
        check_disconnect(o, &o->conn[i]);
    }
}

static void req_forward_turn(void *self, const struct part_poll *w)
{
    struct req_forward *o = self;
    (void)w; /* every socket is read without waiting */
    rpipe_io(o->pipe);
    drain_reader(o);
    take_replies(o);
    dispatch(o);
}

/* After the stop request: no new sends; the replies in flight are awaited
 * (bounded by drain_ms) and stored. */
static int req_forward_drain(void *self, const struct part_poll *w)
{
    struct req_forward *o = self;
    (void)w;
    o->stop = 1;
    rpipe_io(o->pipe);
    take_replies(o);
    dispatch(o);
    return busy_count(o) > 0 || rpipe_inflight(o->pipe);
}

const struct part_def req_forward_part = {
    .name = "request forwarding",
    .size = sizeof(struct req_forward),
    .drain_ms = STOP_WAIT_MS,
    .open = req_forward_open,
    .wait = req_forward_wait,
    .turn = req_forward_turn,
    .drain = req_forward_drain,
    .close = req_forward_close,
};
