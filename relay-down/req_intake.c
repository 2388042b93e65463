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
 * A rid is "<boot id>-<sequence>-<slot>": a random 64-bit id drawn at start,
 * so no incarnation can take another's reply, plus the slot in the table, so
 * a lookup is one index and one comparison. A request is given up at its
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
 * Requests go to Redis through the pipeline (rpipe.h; req_intake_redis.c):
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
 * the others (req_intake_redis.c). */
#include "req_intake.h"
#include "req_table.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "dcsock.h"
#include "envelope.h"
#include "frames.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "part.h"
#include "rconn.h"
#include "registry.h"
#include "req_conns.h"
#include "rpipe.h"
#include "reqrec.h"
#include "stream_reader.h"
#include "streamid.h"
#include "warnrate.h"


static uint64_t random_boot_id(void)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&v, sizeof v, 1, f) != 1)
            v = 0;
        fclose(f);
    }
    /* never 0; without /dev/urandom, time and pid still differ per start */
    return v ? v : ((uint64_t)clock_wall_ms() << 20) ^ (uint64_t)getpid() ^ 1;
}

/* The slot of a pending request of this incarnation named by RID, or -1. */
static int rid_lookup(const struct req_intake *q, const char *rid, size_t len)
{
    char buf[REQREC_RID_MAX + 1];
    memcpy(buf, rid, len);
    buf[len] = '\0';
    char *end;
    if (len < 18 || buf[16] != '-' || strtoull(buf, &end, 16) != q->boot || end != buf + 16)
        return -1;
    uint64_t seq = strtoull(buf + 17, &end, 16);
    if (*end != '-')
        return -1;
    unsigned long i = strtoul(end + 1, &end, 16);
    if (*end || i >= q->cap || q->slot[i].seq != seq || seq == 0)
        return -1;
    return (int)i;
}

static void list_unlink(struct req_intake *q, int i)
{
    struct pend *p = &q->slot[i];
    if (q->unstored == i)
        q->unstored = p->next;
    if (p->prev >= 0)
        q->slot[p->prev].next = p->next;
    else
        q->head = p->next;
    if (p->next >= 0)
        q->slot[p->next].prev = p->prev;
    else
        q->tail = p->prev;
}

/* Take slot I off its connection's list; it waits for its reply or deadline. */
static void conn_unlink(struct req_intake *q, int i)
{
    struct pend *p = &q->slot[i];
    if (p->cfd < 0)
        return;
    if (p->cprev >= 0)
        q->slot[p->cprev].cnext = p->cnext;
    else
        *req_conns_head(q->conns, p->cfd) = p->cnext;
    if (p->cnext >= 0)
        q->slot[p->cnext].cprev = p->cprev;
    p->cfd = -1;
}

static void conn_link(struct req_intake *q, int i, int fd)
{
    struct pend *p = &q->slot[i];
    int *head = req_conns_head(q->conns, fd);
    p->cfd = fd;
    p->cprev = -1;
    p->cnext = *head;
    if (*head >= 0)
        q->slot[*head].cprev = i;
    *head = i;
}

void intake_pend_release(struct req_intake *q, int i)
{
    struct pend *p = &q->slot[i];
    list_unlink(q, i);
    conn_unlink(q, i);
    if (!p->stored)
        q->unstored_bytes -= (long long)zmq_msg_size(&p->payload);
    if (p->stored < 2)
        zmq_msg_close(&p->payload);
    zmq_msg_close(&p->ident);
    p->seq = 0;
    q->free_list[q->nfree++] = i;
    metric_set(M_REQ_INFLIGHT, (int64_t)(q->cap - q->nfree));
}

/* Drop the FIFO's entries of auths already answered or given up, to make room. */
static void auth_fifo_compact(struct req_intake *q)
{
    size_t n = 0;
    for (size_t k = 0; k < q->af_count; k++) {
        size_t from = (q->af_head + k) % q->cap, to = (q->af_head + n) % q->cap;
        if (q->slot[q->auth_fifo[from].slot].seq == q->auth_fifo[from].seq)
            q->auth_fifo[to] = q->auth_fifo[from], n++;
    }
    q->af_count = n;
}

static void auth_fifo_push(struct req_intake *q, int i)
{
    if (q->af_count == q->cap)
        auth_fifo_compact(q); /* at most cap live auths: leaves room */
    size_t at = (q->af_head + q->af_count++) % q->cap;
    q->auth_fifo[at].slot = i;
    q->auth_fifo[at].seq = q->slot[i].seq;
}

/* Take a request from connection FD (or REQ_CONN_UNTRACKED) into the
 * table; returns 0, or -1 if the table is full. */
static int pend_add(struct req_intake *q, zmq_msg_t *frames, const struct salt_envelope *env, int fd)
{
    long long size = (long long)zmq_msg_size(&frames[2]);
    if (!q->nfree || q->unstored_bytes + size > q->cfg->max_pending_bytes)
        return -1;
    int i = q->free_list[--q->nfree];
    struct pend *p = &q->slot[i];
    p->seq = ++q->seq;
    zmq_msg_init(&p->ident);
    zmq_msg_move(&p->ident, &frames[0]);
    zmq_msg_init(&p->payload);
    zmq_msg_move(&p->payload, &frames[2]);
    frames_own(&p->payload); /* what max_pending_bytes counts is what is held (frames.h) */
    q->unstored_bytes += size;
    long long timeout = env->is_auth && q->cfg->auth_timeout_ms < q->cfg->request_timeout_ms
                            ? q->cfg->auth_timeout_ms : q->cfg->request_timeout_ms;
    p->arrived = clock_mono_ms();
    p->give_up = p->arrived + timeout + GRACE_MS;
    p->dl_wall = clock_wall_ms() + timeout;
    p->stored = 0;
    p->auth = env->is_auth;
    if (p->auth)
        auth_fifo_push(q, i);
    memcpy(p->id, env->id, sizeof p->id);
    p->cfd = -1;
    if (fd >= 0)
        conn_link(q, i, fd);
    p->prev = q->tail;
    p->next = -1;
    if (q->tail >= 0)
        q->slot[q->tail].next = i;
    else
        q->head = i;
    q->tail = i;
    if (q->unstored < 0)
        q->unstored = i;
    metric_set(M_REQ_INFLIGHT, (int64_t)(q->cap - q->nfree));
    return 0;
}

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
    int *head = req_conns_head(q->conns, fd), n = 0;
    for (int i = *head; i >= 0 && n < (int)q->cap; i = *head, n++) {
        if (gone) {
            intake_unsend(q, i);
            intake_pend_release(q, i); /* a request still waiting for Redis is never stored */
        } else {
            conn_unlink(q, i);
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
    } else if (pend_add(q, m, &env, fd) < 0) {
        metric_add(M_REQ_REFUSED, 1);
        if (!q->refusing)
            log_error("request table full (max_pending %lld, max_pending_bytes %lld): refusing new "
                      "requests (counted in requests_refused_total)", q->cfg->max_pending,
                      q->cfg->max_pending_bytes);
        q->refusing = 1;
    } else {
        metric_add(M_AUTH_IN, env.is_auth);
        if (q->refusing && q->nfree > q->cap / 2) {
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
    struct pend *p = &q->slot[i];
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
static void note_auth_reply(struct req_intake *q, const struct pend *p, zmq_msg_t *reply)
{
    if (!p->auth || !p->id[0] || !envelope_auth_accepted(zmq_msg_data(reply), zmq_msg_size(reply)))
        return;
    if (q->naccepted == ACCEPTED_MAX) {
        warn_throttled(&q->reg_warn, "more than %d accepted _auth in one turn: some minions are registered "
                       "at their next _auth", ACCEPTED_MAX);
        return;
    }
    memcpy(q->accepted[q->naccepted++], p->id, ENVELOPE_ID_MAX);
}

static void handle_reply(struct req_intake *q, zmq_msg_t *m, size_t n)
{
    const char *fv[REP_FRAMES_MAX];
    size_t fl[REP_FRAMES_MAX];
    struct reprec rec;
    const char *why = "too many fields";
    if (n <= REP_FRAMES_MAX) {
        frames_view(m, 0, n, fv, fl);
        snprintf(q->trim_to, sizeof q->trim_to, "%.*s", (int)fl[0], fv[0]);
    }
    if (n > REP_FRAMES_MAX || reprec_decode(fv + 1, fl + 1, n - 1, &rec, &why) < 0) {
        metric_add(M_REQ_LATE, 1); /* answers no request: not in requests_bad, whose sum it would break */
        warn_throttled(&q->warn, "skipping malformed entry of %s: %s", q->rep_key, why);
        return;
    }
    int i = rid_lookup(q, rec.rid, rec.ridlen);
    if (i < 0) {
        metric_add(M_REQ_LATE, 1); /* given up, or asked of another incarnation */
        return;
    }
    if (rec.st == ST_OK) {
        note_auth_reply(q, &q->slot[i], &m[n - 1]);
        answer(q, i, &m[n - 1]);
    }
    else
        count_failure(rec.st);
    intake_pend_release(q, i);
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

static void give_up(struct req_intake *q, int i)
{
    metric_add(q->slot[i].stored ? M_REQ_TIMEOUT : M_REQ_REDIS_ERR, 1);
    intake_pend_release(q, i);
}

/* Give up the requests whose deadline (plus grace) has passed: in arrival
 * order, and the _auth (shorter deadline) in theirs. */
static void expire(struct req_intake *q, long long now)
{
    while (q->head >= 0 && q->slot[q->head].give_up <= now)
        give_up(q, q->head);
    while (q->af_count) {
        int i = q->auth_fifo[q->af_head].slot;
        int live = q->slot[i].seq == q->auth_fifo[q->af_head].seq;
        if (live && q->slot[i].give_up > now)
            break;
        if (live)
            give_up(q, i);
        q->af_head = (q->af_head + 1) % q->cap;
        q->af_count--;
    }
}

static int req_intake_open(void *self, const struct config *cfg)
{
    struct req_intake *q = self;
    q->cfg = cfg;
    q->boot = random_boot_id();
    q->head = q->tail = q->unstored = -1;
    if (q->cfg->max_pending > PENDING_MAX) {
        log_error("max_pending %lld is over %d", q->cfg->max_pending, PENDING_MAX);
        return -1;
    }
    q->cap = (size_t)(q->cfg->max_pending > 0 ? q->cfg->max_pending : 1);
    q->slot = calloc(q->cap, sizeof *q->slot); /* untouched pages cost no memory */
    q->free_list = malloc(q->cap * sizeof *q->free_list);
    q->accepted = malloc(ACCEPTED_MAX * sizeof *q->accepted);
    q->auth_fifo = malloc(q->cap * sizeof *q->auth_fifo);
    if (!q->slot || !q->free_list || !q->accepted || !q->auth_fifo)
        return -1;
    q->reg = (struct registry_ctx){q->cfg->cluster, q->cfg->datacenter, q->cfg->registry_ttl_ms};
    for (size_t i = 0; i < q->cap; i++)
        q->free_list[q->nfree++] = (int)(q->cap - 1 - i);
    key_req_stream(q->req_key, q->cfg->cluster);
    key_rep_stream(q->rep_key, q->cfg->cluster, q->cfg->datacenter);
    key_req_high(q->hi_key, q->cfg->cluster);
    q->rc = rconn_new(&q->cfg->redis_primary_url, "primary (requests)", REDIS_TIMEOUT_MS);
    q->pipe = q->rc ? rpipe_new(q->rc, PIPE_BYTES, PIPE_CMDS, REDIS_TIMEOUT_MS, intake_on_reply, q) : NULL;
    struct stream_reader_cfg rcfg = {.url = q->cfg->redis_primary_url, .credit = READER_CREDIT};
    /* Replies to this incarnation are stored after it started, however late
     * the reader connects (the request connection may win the race after an
     * outage); what is older is another incarnation's, counted late. */
    snprintf(rcfg.start, sizeof rcfg.start, "%lld-0", clock_wall_ms() - CLOCK_SKEW_MS);
    snprintf(rcfg.label, sizeof rcfg.label, "primary (replies)");
    snprintf(rcfg.key, sizeof rcfg.key, "%s", q->rep_key);
    q->reader = stream_reader_new(&rcfg);
    q->router = zsock_new(ZMQ_ROUTER);
    if (!q->pipe || !q->reader || !q->router)
        return -1;
    q->conns = req_conns_new(q->router, conn_ended, q);
    if (!q->conns)
        return -1;
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
    log_info("requests: accepting at %s (request ids %016" PRIx64 "-*)", q->cfg->ret_bind, q->boot);
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
        size_t left = q->cap - q->nfree;
        if (left)
            log_warn("stopping with %zu request(s) unanswered (counted as timed out)", left);
        metric_add(M_REQ_TIMEOUT, (int64_t)left);
        log_totals();
    }
    rpipe_destroy(&q->pipe); /* before the table: what it hands back as lost is looked up there */
    while (q->head >= 0)
        intake_pend_release(q, q->head);
    zactor_destroy(&q->reader);
    req_conns_destroy(&q->conns, q->router);
    zsock_destroy(&q->router);
    rconn_destroy(&q->rc);
    free(q->slot);
    free(q->free_list);
    free(q->accepted);
    free(q->auth_fifo);
}

/* The next deadline; requests waiting for a connection retry when it is
 * due (while the pipeline is busy, its socket wakes the part). */
static long long next_wait(struct req_intake *q)
{
    long long d = WAIT_MAX_MS;
    if (q->head >= 0)
        d = q->slot[q->head].give_up - clock_mono_ms();
    if (q->af_count) { /* the oldest _auth's deadline (shorter than the others') */
        const struct pend *a = &q->slot[q->auth_fifo[q->af_head].slot];
        long long da = a->seq == q->auth_fifo[q->af_head].seq ? a->give_up - clock_mono_ms() : 0;
        d = da < d ? da : d;
    }
    if (q->unstored >= 0 && !rpipe_inflight(q->pipe)) {
        long long retry = rconn_retry_in_ms(q->rc) > 0 ? rconn_retry_in_ms(q->rc) : 1;
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
    rpipe_wait(q->pipe, w);
    part_poll_timeout(w, next_wait(q));
}

static void req_intake_turn(void *self, const struct part_poll *w)
{
    struct req_intake *q = self;
    (void)w; /* each step below reads without waiting: nothing to read is cheap */
    rpipe_io(q->pipe);
    req_conns_drain(q->conns); /* first: a request's connection is known before it is read */
    drain_router(q);
    drain_replies(q);
    expire(q, clock_mono_ms());
    intake_flush(q);
}

/* After the stop request: store what waits, take the replies in flight. */
static int req_intake_drain(void *self, const struct part_poll *w)
{
    struct req_intake *q = self;
    (void)w;
    rpipe_io(q->pipe);
    req_conns_drain(q->conns);
    drain_replies(q);
    expire(q, clock_mono_ms());
    intake_flush(q);
    return q->head >= 0 || rpipe_inflight(q->pipe);
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
