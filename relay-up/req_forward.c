/* req_forward.c -- saltrelay-up's request forwarding (see req_forward.h).
 *
 * A child reader (stream_reader.c, stream_group.c) takes every DC's request
 * stream (the DCs named in saltrelay:{C}:dcs; and, while it exists, the
 * stream all DCs shared before) in one XREADGROUP through the consumer
 * group "saltrelay-up" as consumer <host>/<instance or slot> (instance.h:
 * every instance has its own, a restart the same), at most HOLD_MAX entries ahead of what was
 * sent, each read sharing them out equally among the streams; a record
 * naming another DC than its stream's is dropped as bad (its answer would
 * go to that DC). Entries another instance read and left unacknowledged for
 * CLAIM_IDLE_MS (it died) are claimed and sent by whichever instance claims
 * them first. Each request
 * goes to the MoM's request port on a REQ socket of a pool (req_pool), one
 * request in flight per socket, the payload frame byte for byte: to the MoM
 * it is a minion's own REQ exchange. The reply goes to the requesting DC's
 * reply stream.
 *
 * At most once: each entry is acknowledged (its own XACK, then one XDEL
 * per stream) in the pipelined round trip right before its request is sent (with
 * pub_wait_replicas, a WAIT in that round trip must confirm it first: see
 * req_ack.c), and it
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
 * This file is the part: the loop, which job goes on which socket, and what
 * each acknowledgement's answer makes of its job. The jobs held and the
 * _auth shed among them are req_held.c, the sockets to the MoM req_pool.c,
 * the acknowledgements and reply records through the Redis pipeline
 * req_ack.c. */
#include "req_forward.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "instance.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "part.h"
#include "req_ack.h"
#include "req_held.h"
#include "req_pool.h"
#include "reqrec.h"
#include "rpipe.h"
#include "stream_reader.h"
#include "warnrate.h"

#define AUTH_POOL_SHARE 0.75 /* of req_pool, may carry _auth at once (at least 1) */
#define CLAIM_IDLE_MS 5000  /* a request read by an instance that died is taken over after this */
#define STOP_WAIT_MS 5000   /* how long a stop waits for the MoM's replies in flight */

struct req_forward {
    const struct config *cfg;
    int opened;
    zactor_t *reader;
    char prefix[KEY_MAX];  /* a DC's request stream: this + its name */
    char shared[KEY_MAX];  /* the request stream every DC wrote before per-DC ones (read while it exists) */
    struct req_held held;  /* entries read and not yet sent or dropped */
    struct req_pool pool;  /* the REQ sockets to the MoM */
    struct req_ack ack;    /* acknowledgements and reply records */
    double tokens;
    long long tokens_at;
    int stop;
    int auth_busy, auth_busy_max; /* connections carrying _auth, and their bound */
    struct warnrate warn;
};

/* Job J's entry was taken by its XACK: the drop's record and counter. */
static void held_dropped(struct req_forward *o, struct held_req *j)
{
    if (j->has_rec) {
        char dc[REQ_DC_MAX], rid[REQREC_RID_MAX + 1];
        snprintf(dc, sizeof dc, "%.*s", (int)j->rec.dclen, j->rec.dc);
        snprintf(rid, sizeof rid, "%.*s", (int)j->rec.ridlen, j->rec.rid);
        req_ack_reply(&o->ack, dc, rid, j->rec.dl_ms, j->st, NULL);
    }
    metric_add(j->metric, 1);
    metric_add(M_AUTH_SHED, j->has_rec && j->rec.cmd == REQREC_AUTH);
    req_held_free(&o->held, j);
}

/* req_ack_fn: what job J's acknowledgement answered. */
static void settled(void *arg, struct held_req *j, enum req_ack_verdict v)
{
    struct req_forward *o = arg;
    if (v == REQ_ACK_SEND) {
        req_pool_send(&o->pool, j, &o->ack);
        req_held_free(&o->held, j);
        return;
    }
    if (j->conn >= 0)
        o->pool.conn[j->conn].reserved = 0;
    if (v == REQ_ACK_RETRY)
        j->conn = -1;
    else if (v == REQ_ACK_COPY)
        req_held_free(&o->held, j);
    else
        held_dropped(o, j);
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
    int auth_ok = o->auth_busy < o->auth_busy_max && !(o->cfg->auth_rate > 0 && o->tokens < 1);
    return req_held_next(&o->held, auth_ok);
}

/* Pair the jobs with idle connected sockets (each reserved until the job's
 * XACK answers); none while Redis is so slow that reply records pile up
 * (their table would overflow). */
static void choose_sends(struct req_forward *o)
{
    if (req_ack_records(&o->ack) >= o->ack.nout / 2)
        return;
    refill_tokens(o, clock_mono_ms());
    int idle = 0, writable = 0;
    o->auth_busy = 0;
    for (size_t i = 0; i < o->pool.nconn; i++)
        o->auth_busy += (o->pool.conn[i].busy || o->pool.conn[i].reserved) && o->pool.conn[i].auth;
    for (size_t i = 0; i < o->pool.nconn; i++) {
        struct req_conn *c = &o->pool.conn[i];
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
        req_held_picked(&o->held, j);
        c->reserved = 1;
        c->auth = j->rec.cmd == REQREC_AUTH;
        o->tokens -= j->rec.cmd == REQREC_AUTH;
        o->auth_busy += j->rec.cmd == REQREC_AUTH; /* picked: next_held counts it */
    }
    if (idle && next_held(o))
        req_pool_note_down(&o->pool, writable == 0);
}

static void dispatch(struct req_forward *o)
{
    long long now = clock_wall_ms();
    req_pool_expire(&o->pool, &o->ack, now);
    if (!o->stop) {
        req_held_drop_expired(&o->held, now, o->pool.mom_down);
        req_held_shed_overload(&o->held);
        choose_sends(o);
    }
    req_ack_drop_stale(&o->ack, now);
    req_ack_write(&o->ack);
    if (o->held.credit_due) {
        stream_reader_credit(o->reader, o->held.credit_due);
        o->held.credit_due = 0;
    }
}

static int req_forward_open(void *self, const struct config *cfg)
{
    struct req_forward *o = self;
    o->cfg = cfg;
    o->tokens_at = clock_mono_ms();
    o->tokens = o->cfg->auth_rate > 1 ? o->cfg->auth_rate : 1;
    o->auth_busy_max = (int)((double)o->cfg->req_pool * AUTH_POOL_SHARE);
    if (o->auth_busy_max < 1)
        o->auth_busy_max = 1;
    size_t nout = (size_t)o->cfg->req_pool + HOLD_MAX; /* every request held or in flight */
    if (req_ack_init(&o->ack, cfg, &o->held, nout, settled, o, &o->warn) < 0)
        return -1;
    key_req_stream(o->prefix, cfg->cluster, "");
    key_req_shared(o->shared, cfg->cluster);
    req_held_init(&o->held, o->prefix, o->shared, &o->warn);
    if (req_pool_init(&o->pool, cfg, &o->warn) < 0)
        return -1;
    struct stream_reader_cfg rcfg = {.url = o->cfg->redis_url, .credit = HOLD_MAX};
    snprintf(rcfg.label, sizeof rcfg.label, "requests (reader)");
    snprintf(rcfg.key, sizeof rcfg.key, "%s", o->shared);
    snprintf(rcfg.prefix, sizeof rcfg.prefix, "%s", o->prefix);
    key_dc_set(rcfg.set_key, cfg->cluster);
    snprintf(rcfg.group, sizeof rcfg.group, REQ_GROUP);
    instance_name(o->cfg, rcfg.consumer, sizeof rcfg.consumer);
    rcfg.claim_idle_ms = CLAIM_IDLE_MS;
    o->reader = stream_reader_new(&rcfg);
    if (!o->reader)
        return -1;
    log_info("requests: forwarding to %s with %zu sockets (consumer %s)", o->cfg->master_ret, o->pool.nconn,
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
        req_ack_drain(&o->ack);
        dispatch(o); /* the reply records of what the acknowledgements settled */
        req_ack_drain(&o->ack);
        log_totals();
    }
    req_ack_fini(&o->ack); /* before the jobs and sockets: what it hands back as lost is looked up there */
    zactor_destroy(&o->reader);
    req_held_fini(&o->held);
    req_pool_fini(&o->pool);
}

/* The reader (not while stopping) and the connections awaiting the MoM's
 * reply; jobs waiting for a socket, a token or Redis are looked at again soon. */
static void req_forward_wait(void *self, struct part_poll *w, int stopping)
{
    struct req_forward *o = self;
    if (!stopping)
        part_poll_socket(w, o->reader, ZMQ_POLLIN);
    req_pool_wait(&o->pool, w);
    rpipe_wait(o->ack.pipe, w);
    part_poll_timeout(w, stopping ? 20 : next_held(o) || req_ack_work(&o->ack) ? 10 : 200);
}

static void req_forward_turn(void *self, const struct part_poll *w)
{
    struct req_forward *o = self;
    (void)w; /* every socket is read without waiting */
    rpipe_io(o->ack.pipe);
    req_held_take(&o->held, zsock_resolve(o->reader));
    req_pool_take_replies(&o->pool, &o->ack);
    dispatch(o);
}

/* After the stop request: no new sends; the replies in flight are awaited
 * (bounded by drain_ms) and stored. */
static int req_forward_drain(void *self, const struct part_poll *w)
{
    struct req_forward *o = self;
    (void)w;
    o->stop = 1;
    rpipe_io(o->ack.pipe);
    req_pool_take_replies(&o->pool, &o->ack);
    dispatch(o);
    return req_pool_busy(&o->pool) > 0 || rpipe_inflight(o->ack.pipe);
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
