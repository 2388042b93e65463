/* req_intake.c -- saltrelay-down's request intake (see req_intake.h).
 *
 * A ROUTER at ret_bind takes each minion's or syndic's [identity, "", payload]
 * and keeps the identity in a table of pending requests (bounded by
 * max_pending, and by max_pending_bytes for payloads not yet in Redis). The
 * payload goes, unchanged, into the cluster's request stream on redis_primary
 * in pipelined batches, together with the minion registry updates (a minion
 * is registered when the MoM's reply accepts its _auth). A child
 * reader (stream_reader.c) follows this DC's reply stream; each reply record is
 * matched by its rid to the pending request and its payload sent back to the
 * very socket that asked.
 *
 * A rid is "<boot id>-<sequence>-<slot>" (req_table.c): a random 64-bit id
 * drawn at start, so no incarnation can take another's reply, plus the slot
 * in the table, so a lookup is one index and one comparison. A request is
 * given up at its
 * deadline plus GRACE_MS (saltrelay-up reports the MoM's timeout itself at the
 * deadline; the grace lets that record arrive first and name the reason).
 * An _auth's deadline is auth_timeout (Salt's minion waits that long, then
 * re-sends on a new socket whose identity differs: nobody reads a later
 * reply), so saltrelay-up does not feed the MoM stale attempts and an
 * abandoned one leaves the table after seconds. Auths expire in their own
 * FIFO (same timeout each, so arrival order is deadline order there too).
 * Whatever its deadline, a request leaves the table as soon as the
 * connection that sent it closes (req_conns.c): a Salt client that gave up
 * re-sends on a new socket and the old one never reads a reply.
 *
 * Requests go to Redis through the pipeline (rpipe.h; req_store.c):
 * this thread never waits for Redis's replies (they are read when the socket
 * is readable) and never holds more than PIPE_BYTES of formatted commands;
 * what does not fit waits in the table, whose payload bytes
 * max_pending_bytes bounds.
 *
 * Exactly once into Redis: a request is stored by a script that does the
 * XADD only if its sequence number is above the highest this incarnation
 * stored (saltrelay:{C}:reqhi, field boot id). Commands run in order, so what
 * a lost connection took with it is a suffix of what was in flight: those
 * requests keep their payload until Redis answers, go back to waiting, and
 * are sent again; the script stores the ones that never arrived and skips
 * the others (req_store.c). This file is the part: the ROUTER, the reply
 * reader and the loop; the table of pending requests is req_table.c. */
#include "req_intake.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "dcsock.h"
#include "envelope.h"
#include "frames.h"
#include "log.h"
#include "metrics.h"
#include "part.h"
#include "rconn.h"
#include "req_conns.h"
#include "req_store.h"
#include "req_table.h"
#include "reqrec.h"
#include "rpipe.h"
#include "stream_reader.h"
#include "warnrate.h"

#define DRAIN_MAX 1024       /* messages taken from a socket per loop turn */
#define DEPARTED_QUIET_MS 10000 /* drops for closed connections this far apart are separate episodes (log) */
#define CLOCK_SKEW_MS 10000  /* reply IDs are the primary's clock: start reading this much before boot */
#define READER_CREDIT 512
#define STOP_WAIT_MS 5000    /* how long a stop waits for replies in flight */
#define REP_FRAMES_MAX 9     /* entry id + v 1 rid R st S p P */
#define WAIT_MAX_MS 500      /* expire runs at least this often */
/* frames over max_frame_size are refused and counted up to this much over; a
 * larger one is never taken whole into memory: ZeroMQ drops its connection */
#define FRAME_MARGIN (64 * 1024)

struct req_intake {
    const struct config *cfg;
    int opened;
    int ev_router, ev_reader; /* indices in the part's wait */
    zsock_t *router;
    struct req_conns *conns; /* the router's connections: requests of a closed one are dropped */
    int ev_conns;
    zactor_t *reader;
    struct req_table table; /* the pending requests */
    struct req_store store; /* what goes to Redis */
    struct warnrate warn;
    int refusing;
    long long departed_at; /* monotonic ms of the last drop for a closed connection, 0: none */
};

/* N requests dropped because the connection that sent them closed: its
 * socket will never read a reply (Salt re-sends on a new socket). One log
 * line per episode. */
static void count_departed(struct req_intake *q, int n)
{
    long long now = clock_mono_ms();
    metric_add(M_REQ_DEPARTED, n);
    if (!q->departed_at || now - q->departed_at >= DEPARTED_QUIET_MS)
        log_info("requesters disconnected with requests pending: those requests are dropped at once "
                 "(counted in requests_requester_gone_total)");
    q->departed_at = now;
}

/* req_conns_fn: connection FD closed (GONE) or was replaced unseen. */
static void conn_ended(void *arg, int fd, int gone)
{
    struct req_intake *q = arg;
    int n = 0;
    for (int i = req_table_conn_first(&q->table, fd); i >= 0 && n < (int)q->table.cap;
         i = req_table_conn_first(&q->table, fd), n++) {
        if (gone) {
            req_store_unsend(&q->store, i);
            req_table_release(&q->table, i); /* a request still waiting for Redis is never stored */
        } else {
            req_table_conn_unlink(&q->table, i);
        }
    }
    if (gone && n)
        count_departed(q, n);
}

/* Check one received message; takes it into the table if it is a request. */
static void accept_request(struct req_intake *q, zmq_msg_t *m, size_t n)
{
    metric_add(M_REQ_IN, 1);
    struct salt_envelope env;
    const char *why = NULL;
    int fd = REQ_CONN_UNTRACKED;
    if (n != 3 || zmq_msg_size(&m[1]) != 0) {
        metric_add(M_REQ_BAD, 1);
        warn_throttled(&q->warn, "request refused: not [identity, empty, payload] (%zu frames)", n);
    } else if (zmq_msg_size(&m[2]) > (size_t)q->cfg->max_frame_size) {
        metric_add(M_REQ_OVERSIZE, 1);
        warn_throttled(&q->warn, "request of %zu bytes refused: larger than max_frame_size", zmq_msg_size(&m[2]));
    } else if (envelope_peek(zmq_msg_data(&m[2]), zmq_msg_size(&m[2]), &env, &why) < 0) {
        metric_add(M_REQ_BAD, 1);
        warn_throttled(&q->warn, "request refused: not a Salt request (%s)", why);
    } else if ((fd = req_conns_of(q->conns, &m[2])) == REQ_CONN_GONE) {
        count_departed(q, 1); /* read after its connection closed */
    } else if (req_table_add(&q->table, m, &env, fd) < 0) {
        metric_add(M_REQ_REFUSED, 1);
        if (!q->refusing)
            log_error("request table full (max_pending %lld, max_pending_bytes %lld): refusing new "
                      "requests (counted in requests_refused_total)", q->cfg->max_pending,
                      q->cfg->max_pending_bytes);
        q->refusing = 1;
    } else {
        metric_add(M_AUTH_IN, env.is_auth);
        if (q->refusing && q->table.nfree > q->table.cap / 2) {
            log_info("request table below half full again: accepting requests");
            q->refusing = 0;
        }
    }
}

static void drain_router(struct req_intake *q)
{
    void *sock = zsock_resolve(q->router);
    for (int k = 0; k < DRAIN_MAX; k++) {
        zmq_msg_t m[3];
        size_t n = frames_recv(sock, m, 3);
        if (n == 0)
            return;
        accept_request(q, m, n);
        frames_close(m, n, 3);
    }
}

/* Send the reply payload M back to the requester of slot I. */
static void answer(struct req_intake *q, int i, zmq_msg_t *payload)
{
    void *sock = zsock_resolve(q->router);
    struct req_pend *p = &q->table.slot[i];
    zmq_msg_t empty;
    zmq_msg_init(&empty);
    if (zmq_msg_send(&p->ident, sock, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        metric_add(M_REQ_GONE, 1); /* ROUTER_MANDATORY: the socket that asked is gone */
        zmq_msg_close(&empty);
        return;
    }
    zmq_msg_init(&p->ident); /* sent: the slot's copy is empty now */
    zmq_msg_send(&empty, sock, ZMQ_SNDMORE);
    zmq_msg_send(payload, sock, 0);
    metric_add(M_REQ_ANSWERED, 1);
    hist_observe_us(H_REQ_LATENCY, (clock_mono_ms() - p->arrived) * 1000);
}

static void count_failure(enum reprec_status st)
{
    static const enum metric_id by_status[ST__COUNT] = {
        [ST_TIMEOUT] = M_REQ_TIMEOUT, [ST_OVERSIZE] = M_REQ_OVERSIZE, [ST_EXPIRED] = M_REQ_EXPIRED,
        [ST_MOM_UNREACHABLE] = M_REQ_MOM_UNREACHABLE};
    metric_add(by_status[st], 1);
}

/* An _auth the MoM accepted: its minion is registered with the next batch
 * (before, a made-up id cost nothing but a refused _auth). */
static void note_auth_reply(struct req_intake *q, const struct req_pend *p, zmq_msg_t *reply)
{
    if (!p->auth || !p->id[0] || !envelope_auth_accepted(zmq_msg_data(reply), zmq_msg_size(reply)))
        return;
    req_store_register(&q->store, p->id);
}

static void handle_reply(struct req_intake *q, zmq_msg_t *m, size_t n)
{
    const char *fv[REP_FRAMES_MAX];
    size_t fl[REP_FRAMES_MAX];
    struct reprec rec;
    const char *why = "too many fields";
    if (n <= REP_FRAMES_MAX) {
        frames_view(m, 0, n, fv, fl);
        req_store_handled(&q->store, fv[0], fl[0]);
    }
    if (n > REP_FRAMES_MAX || reprec_decode(fv + 1, fl + 1, n - 1, &rec, &why) < 0) {
        metric_add(M_REQ_LATE, 1); /* answers no request: not in requests_bad, whose sum it would break */
        warn_throttled(&q->warn, "skipping malformed entry of %s: %s", q->store.rep_key, why);
        return;
    }
    int i = req_table_lookup(&q->table, rec.rid, rec.ridlen);
    if (i < 0) {
        metric_add(M_REQ_LATE, 1); /* given up, or asked of another incarnation */
        return;
    }
    if (rec.st == ST_OK) {
        note_auth_reply(q, &q->table.slot[i], &m[n - 1]);
        answer(q, i, &m[n - 1]);
    }
    else
        count_failure(rec.st);
    req_table_release(&q->table, i);
}

static void drain_replies(struct req_intake *q)
{
    void *sock = zsock_resolve(q->reader);
    long long taken = 0;
    for (int k = 0; k < DRAIN_MAX; k++) {
        zmq_msg_t m[REP_FRAMES_MAX];
        size_t n = frames_recv(sock, m, REP_FRAMES_MAX);
        if (n == 0)
            break;
        taken++;
        handle_reply(q, m, n);
        frames_close(m, n, REP_FRAMES_MAX);
    }
    if (taken)
        stream_reader_credit(q->reader, taken);
}

static int req_intake_open(void *self, const struct config *cfg)
{
    struct req_intake *q = self;
    q->cfg = cfg;
    if (req_table_init(&q->table, cfg) < 0 || req_store_init(&q->store, cfg, &q->table) < 0)
        return -1;
    struct stream_reader_cfg rcfg = {.url = q->cfg->redis_primary_url, .credit = READER_CREDIT};
    /* Replies to this incarnation are stored after it started, however late
     * the reader connects (the request connection may win the race after an
     * outage); what is older is another incarnation's, counted late. */
    snprintf(rcfg.start, sizeof rcfg.start, "%lld-0", clock_wall_ms() - CLOCK_SKEW_MS);
    snprintf(rcfg.label, sizeof rcfg.label, "primary (replies)");
    snprintf(rcfg.key, sizeof rcfg.key, "%s", q->store.rep_key);
    q->reader = stream_reader_new(&rcfg);
    q->router = zsock_new(ZMQ_ROUTER);
    if (!q->reader || !q->router)
        return -1;
    q->conns = req_conns_new(q->router, conn_ended, q);
    if (!q->conns)
        return -1;
    q->table.conns = q->conns;
    zsock_set_router_mandatory(q->router, 1);
    /* a requester reconnecting with the same identity (Salt 3008 REQ sockets
     * keep theirs) takes the old connection's place instead of leaving it
     * stuck, as on Salt's own request server */
    zsock_set_router_handover(q->router, 1);
    dcsock_setup(q->router, q->cfg);
    /* -1: no limit, for a max_frame_size so large that adding the margin would overflow */
    int64_t maxmsg = q->cfg->max_frame_size > INT64_MAX - FRAME_MARGIN ? -1 : q->cfg->max_frame_size + FRAME_MARGIN;
    zmq_setsockopt(zsock_resolve(q->router), ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zsock_set_rcvhwm(q->router, 100000);
    zsock_set_sndhwm(q->router, 100000);
    zsock_set_linger(q->router, 1000);
    if (zsock_bind(q->router, "%s", q->cfg->ret_bind) < 0) {
        log_error("cannot bind ret_bind %s: %s", q->cfg->ret_bind, zmq_strerror(zmq_errno()));
        return -1;
    }
    log_info("requests: accepting at %s (request ids %016" PRIx64 "-*)", q->cfg->ret_bind, q->table.boot);
    q->opened = 1;
    return 0;
}

static void log_totals(void)
{
    log_info("requests: %lld in, %lld answered, %lld timed out, %lld expired, %lld mom unreachable, "
             "%lld oversize, %lld refused, %lld bad, %lld redis errors, %lld requester gone, %lld undeliverable, "
             "%lld late",
             (long long)metric_get(M_REQ_IN), (long long)metric_get(M_REQ_ANSWERED),
             (long long)metric_get(M_REQ_TIMEOUT), (long long)metric_get(M_REQ_EXPIRED),
             (long long)metric_get(M_REQ_MOM_UNREACHABLE), (long long)metric_get(M_REQ_OVERSIZE),
             (long long)metric_get(M_REQ_REFUSED), (long long)metric_get(M_REQ_BAD),
             (long long)metric_get(M_REQ_REDIS_ERR), (long long)metric_get(M_REQ_DEPARTED),
             (long long)metric_get(M_REQ_GONE),
             (long long)metric_get(M_REQ_LATE));
}

/* After a drain: what is still unanswered is counted as timed out. */
static void req_intake_close(void *self)
{
    struct req_intake *q = self;
    if (q->opened) {
        size_t left = q->table.cap - q->table.nfree;
        if (left)
            log_warn("stopping with %zu request(s) unanswered (counted as timed out)", left);
        metric_add(M_REQ_TIMEOUT, (int64_t)left);
        log_totals();
    }
    req_store_fini(&q->store); /* before the table: what it hands back as lost is looked up there */
    req_table_fini(&q->table);
    zactor_destroy(&q->reader);
    req_conns_destroy(&q->conns, q->router);
    zsock_destroy(&q->router);
}

/* The next deadline; requests waiting for a connection retry when it is
 * due (while the pipeline is busy, its socket wakes the part). */
static long long next_wait(struct req_intake *q)
{
    long long d = req_table_wait_ms(&q->table, WAIT_MAX_MS);
    if (q->table.unstored >= 0 && !rpipe_inflight(q->store.pipe)) {
        long long retry = rconn_retry_in_ms(q->store.rc) > 0 ? rconn_retry_in_ms(q->store.rc) : 1;
        d = retry < d ? retry : d;
    }
    return d;
}

/* Requests from the ROUTER, replies from the reader; while stopping, only
 * the replies to what is in flight. */
static void req_intake_wait(void *self, struct part_poll *w, int stopping)
{
    struct req_intake *q = self;
    q->ev_router = stopping ? -1 : part_poll_socket(w, q->router, ZMQ_POLLIN);
    /* while stopping too: a full monitor queue would stall libzmq's I/O thread */
    q->ev_conns = part_poll_socket(w, req_conns_sock(q->conns), ZMQ_POLLIN);
    q->ev_reader = part_poll_socket(w, q->reader, ZMQ_POLLIN);
    rpipe_wait(q->store.pipe, w);
    part_poll_timeout(w, next_wait(q));
}

static void req_intake_turn(void *self, const struct part_poll *w)
{
    struct req_intake *q = self;
    (void)w; /* each step below reads without waiting: nothing to read is cheap */
    rpipe_io(q->store.pipe);
    req_conns_drain(q->conns); /* first: a request's connection is known before it is read */
    drain_router(q);
    drain_replies(q);
    req_table_expire(&q->table, clock_mono_ms());
    req_store_flush(&q->store);
}

/* After the stop request: store what waits, take the replies in flight. */
static int req_intake_drain(void *self, const struct part_poll *w)
{
    struct req_intake *q = self;
    (void)w;
    rpipe_io(q->store.pipe);
    req_conns_drain(q->conns);
    drain_replies(q);
    req_table_expire(&q->table, clock_mono_ms());
    req_store_flush(&q->store);
    return q->table.head >= 0 || rpipe_inflight(q->store.pipe);
}

const struct part_def req_intake_part = {
    .name = "request intake",
    .size = sizeof(struct req_intake),
    .drain_ms = STOP_WAIT_MS,
    .open = req_intake_open,
    .wait = req_intake_wait,
    .turn = req_intake_turn,
    .drain = req_intake_drain,
    .close = req_intake_close,
};
