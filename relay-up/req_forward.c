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
 * all) in the pipelined round trip right before its request is sent, and it
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
 * fill more than half the read-ahead (the oldest go), which keeps room for
 * ordinary requests behind them in the stream. */
#include "req_forward.h"

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
#include "stream_reader.h"
#include "warnrate.h"

#define GROUP "saltrelay-up"
#define JOB_FRAMES 13       /* entry id + v 1 dc D rid R dl L c C p P */
#define HOLD_MAX 1024       /* entries read from Redis and not yet sent or dropped */
#define AUTH_WAIT_MAX (HOLD_MAX / 2) /* waiting _auth beyond: the oldest are shed */
#define AUTH_POOL_SHARE 0.75 /* of req_pool, may carry _auth at once (at least 1) */
#define SHED_QUIET_MS 5000  /* no _auth shed for this long: the episode is over */
#define REDIS_TIMEOUT_MS 2000
#define CLAIM_IDLE_MS 5000  /* a request read by an instance that died is taken over after this */
#define STOP_WAIT_MS 5000   /* how long a stop waits for the MoM's replies in flight */
#define TRIM_MARGIN_MS 60000 /* reply records older than deadline + this are of no use */
#define DC_MAX 65
#define MOM_DOWN_AFTER_MS 1000 /* new sockets take a moment to connect: not an outage */

enum ack_answer { ACK_NONE, ACK_TAKEN, ACK_GONE }; /* XACK: no answer (yet), 1, 0 */

struct held_req {               /* an entry read and not yet sent or dropped */
    int used;
    uint64_t order;
    zmq_msg_t m[JOB_FRAMES];
    size_t n;
    struct reqrec rec;     /* points into m */
    int has_rec;           /* rec decoded (not a malformed or trimmed entry) */
    int conn;              /* chosen for this turn's send, -1 */
    int drop;              /* to be dropped unsent once acknowledged: */
    enum reprec_status st; /*   its reply record (if has_rec) */
    enum metric_id metric; /*   and its counter */
    enum ack_answer ack;   /* this turn's XACK */
    char id[ENVELOPE_ID_MAX]; /* _auth: the minion id ("" if not readable) */
};

struct conn {              /* one REQ socket to the MoM */
    zsock_t *sock;
    int busy;
    int auth;              /* carries an _auth */
    long long sent_at;     /* monotonic, for request_latency_seconds */
    long long dl_wall;
    char dc[DC_MAX], rid[REQREC_RID_MAX + 1];
};

struct out {               /* a reply record waiting for Redis */
    int used;
    enum reprec_status st;
    long long dl_wall;
    zmq_msg_t payload;
    char dc[DC_MAX], rid[REQREC_RID_MAX + 1];
};

struct req_forward {
    const struct config *cfg;
    int opened;
    zactor_t *reader;
    struct rconn *rc;
    char req_key[KEY_MAX];
    struct held_req held[HOLD_MAX];
    uint64_t order;
    struct conn *conn;
    size_t nconn;
    struct out *out;
    size_t nout;
    long long credit_due;
    double tokens;
    long long tokens_at;
    int mom_down, stop;
    long long unwritable_since; /* monotonic; 0 while a socket can send */
    int auth_busy, auth_busy_max; /* connections carrying _auth, and their bound */
    int shedding;          /* an _auth shedding episode is on (logged once) */
    long long shed_at;     /* monotonic: last _auth shed */
    int64_t shed_count;    /* shed in this episode */
    struct warnrate warn;
};

static int conn_open(struct req_forward *o, struct conn *c)
{
    memset(c, 0, sizeof *c);
    c->sock = zsock_new(ZMQ_REQ);
    if (!c->sock)
        return -1;
    zsock_set_immediate(c->sock, 1); /* not writable until connected: "MoM unreachable" is visible */
    zsock_set_linger(c->sock, 0);
    zsock_set_reconnect_ivl_max(c->sock, 5000);
    if (zsock_connect(c->sock, "%s", o->cfg->master_ret) < 0) {
        log_error("cannot connect to master_ret %s: %s", o->cfg->master_ret, zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

/* Queue reply record ST for the request RID of DC (PAYLOAD moved in if ok). */
static void reply(struct req_forward *o, const char *dc, const char *rid, long long dl, enum reprec_status st,
                  zmq_msg_t *payload)
{
    size_t i = 0;
    while (i < o->nout && o->out[i].used)
        i++;
    if (i == o->nout) { /* cannot happen: nout covers every request held or in flight */
        metric_add(M_REQ_REDIS_ERR, 1);
        return;
    }
    struct out *r = &o->out[i];
    *r = (struct out){.used = 1, .st = st, .dl_wall = dl};
    snprintf(r->dc, sizeof r->dc, "%s", dc);
    snprintf(r->rid, sizeof r->rid, "%s", rid);
    zmq_msg_init(&r->payload);
    if (payload)
        zmq_msg_move(&r->payload, payload);
}

static void held_free(struct req_forward *o, struct held_req *j)
{
    frames_close(j->m, j->n, JOB_FRAMES);
    j->used = 0;
    o->credit_due++;
}

/* Drop job J unsent, once its entry is acknowledged: reply record ST (if it
 * has one), counted in METRIC (and in auth_shed_total if an _auth). */
static void held_drop(struct held_req *j, enum reprec_status st, enum metric_id metric)
{
    j->drop = 1;
    j->st = st;
    j->metric = metric;
}

/* Job J's entry was taken by this turn's XACK: the drop's record and counter. */
static void held_dropped(struct req_forward *o, struct held_req *j)
{
    if (j->has_rec) {
        char dc[DC_MAX], rid[REQREC_RID_MAX + 1];
        snprintf(dc, sizeof dc, "%.*s", (int)j->rec.dclen, j->rec.dc);
        snprintf(rid, sizeof rid, "%.*s", (int)j->rec.ridlen, j->rec.rid);
        reply(o, dc, rid, j->rec.dl_ms, j->st, NULL);
    }
    metric_add(j->metric, 1);
    metric_add(M_AUTH_SHED, j->has_rec && j->rec.cmd == REQREC_AUTH);
    held_free(o, j);
}

/* Shed _auth job J (REASON for the episode's log line). */
static void shed_auth(struct req_forward *o, struct held_req *j, const char *reason)
{
    held_drop(j, ST_EXPIRED, M_REQ_EXPIRED);
    o->shed_at = clock_mono_ms();
    o->shed_count++;
    if (!o->shedding)
        log_warn("shedding _auth requests (first: %s); the MoM is not keeping up with re-authentication "
                 "(counted in auth_shed_total)", reason);
    o->shedding = 1;
}

static void end_shedding(struct req_forward *o)
{
    if (!o->shedding || clock_mono_ms() - o->shed_at < SHED_QUIET_MS)
        return;
    log_info("no _auth shed for %d s: shedding over (%lld shed)", SHED_QUIET_MS / 1000,
             (long long)o->shed_count);
    o->shedding = 0;
    o->shed_count = 0;
}

/* A newer _auth of minion J->id was read: an older one still waiting is
 * abandoned by its minion (it re-sent on a new socket). */
static void shed_older_auth(struct req_forward *o, const struct held_req *j)
{
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *k = &o->held[i];
        if (k != j && k->used && k->has_rec && k->rec.cmd == REQREC_AUTH && k->conn < 0 && !k->drop &&
            k->order < j->order && strcmp(k->id, j->id) == 0)
            shed_auth(o, k, "a newer _auth of the same minion");
    }
}

/* Keep waiting _auth within AUTH_WAIT_MAX: the oldest go. */
static void shed_overload(struct req_forward *o)
{
    size_t waiting = 0;
    for (size_t i = 0; i < HOLD_MAX; i++) {
        const struct held_req *j = &o->held[i];
        waiting += j->used && j->has_rec && j->rec.cmd == REQREC_AUTH && j->conn < 0 && !j->drop;
    }
    while (waiting-- > AUTH_WAIT_MAX) {
        struct held_req *oldest = NULL;
        for (size_t i = 0; i < HOLD_MAX; i++) {
            struct held_req *j = &o->held[i];
            if (j->used && j->has_rec && j->rec.cmd == REQREC_AUTH && j->conn < 0 && !j->drop &&
                (!oldest || j->order < oldest->order))
                oldest = j;
        }
        shed_auth(o, oldest, "more waiting than the read-ahead keeps");
    }
}

static int held(struct req_forward *o, zmq_msg_t *entry)
{
    for (size_t i = 0; i < HOLD_MAX; i++)
        if (o->held[i].used && zmq_msg_size(&o->held[i].m[0]) == zmq_msg_size(entry) &&
            memcmp(zmq_msg_data(&o->held[i].m[0]), zmq_msg_data(entry), zmq_msg_size(entry)) == 0)
            return 1;
    return 0;
}

/* An _auth: read its minion id in clear, shed an older attempt of that id. */
static void note_auth_id(struct req_forward *o, struct held_req *j)
{
    struct salt_envelope env;
    const char *why;
    j->id[0] = '\0';
    if (j->rec.cmd != REQREC_AUTH || envelope_peek(j->rec.payload, j->rec.len, &env, &why) < 0 || !env.id[0])
        return;
    memcpy(j->id, env.id, sizeof j->id);
    shed_older_auth(o, j);
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
    j->ack = ACK_NONE;
    j->order = ++o->order;
    if (j->n == 1) { /* trimmed while pending: past any deadline */
        held_drop(j, ST_EXPIRED, M_REQ_EXPIRED);
        return;
    }
    if (j->n <= JOB_FRAMES) {
        frames_view(j->m, 0, j->n, fv, fl);
        if (reqrec_decode(fv + 1, fl + 1, j->n - 1, &j->rec, &why) == 0) {
            j->has_rec = 1;
            note_auth_id(o, j);
            return;
        }
    }
    warn_throttled(&o->warn, "skipping malformed entry of %s: %s", o->req_key, why);
    held_drop(j, ST_EXPIRED, M_REQ_BAD);
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
        reply(o, c->dc, c->rid, c->dl_wall, ST_TIMEOUT, NULL);
    } else if (zmq_msg_size(&m[0]) > (size_t)o->cfg->max_frame_size) {
        metric_add(M_REQ_OVERSIZE, 1);
        warn_throttled(&o->warn, "MoM reply of %zu bytes is larger than max_frame_size: not forwarded",
                       zmq_msg_size(&m[0]));
        reply(o, c->dc, c->rid, c->dl_wall, ST_OVERSIZE, NULL);
    } else {
        metric_add(M_REQ_ANSWERED, 1);
        reply(o, c->dc, c->rid, c->dl_wall, ST_OK, &m[0]);
    }
    frames_close(m, n, 1);
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
        reply(o, c->dc, c->rid, c->dl_wall, ST_TIMEOUT, NULL);
        zsock_destroy(&c->sock);
        if (conn_open(o, c) < 0)
            log_error("cannot replace a request socket to the MoM");
    }
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
            shed_auth(o, j, "older than its minion waits (auth_timeout)");
        else
            held_drop(j, o->mom_down ? ST_MOM_UNREACHABLE : ST_EXPIRED,
                      o->mom_down ? M_REQ_MOM_UNREACHABLE : M_REQ_EXPIRED);
    }
}

/* Pair the jobs with idle connected sockets. */
static void choose_sends(struct req_forward *o)
{
    refill_tokens(o, clock_mono_ms());
    int idle = 0, writable = 0;
    o->auth_busy = 0;
    for (size_t i = 0; i < o->nconn; i++)
        o->auth_busy += o->conn[i].busy && o->conn[i].auth;
    for (size_t i = 0; i < o->nconn; i++) {
        struct conn *c = &o->conn[i]; /* no job holds a conn yet: dispatch() settles each turn */
        if (c->busy || !c->sock)
            continue;
        idle++;
        if (!(zsock_events(c->sock) & ZMQ_POLLOUT))
            continue;
        writable++;
        struct held_req *j = next_held(o);
        if (!j)
            break;
        j->conn = (int)i;
        o->tokens -= j->rec.cmd == REQREC_AUTH;
        o->auth_busy += j->rec.cmd == REQREC_AUTH; /* picked: next_held counts it */
    }
    if (idle && next_held(o))
        set_mom_down(o, writable == 0);
}

static void send_held(struct req_forward *o, struct held_req *j)
{
    struct conn *c = &o->conn[j->conn];
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
        reply(o, c->dc, c->rid, c->dl_wall, ST_MOM_UNREACHABLE, NULL);
    } else {
        set_mom_down(o, 0);
    }
    held_free(o, j);
}

static void append_reply(struct req_forward *o, redisContext *rc, struct out *r, long long minid)
{
    char key[KEY_MAX];
    key_rep_stream(key, o->cfg->cluster, r->dc);
    struct reprec rec = {.rid = r->rid, .ridlen = strlen(r->rid), .st = r->st,
                         .payload = zmq_msg_data(&r->payload), .len = zmq_msg_size(&r->payload)};
    const char *argv[REQREC_ARGC_MAX];
    size_t argvlen[REQREC_ARGC_MAX];
    struct reqrec_scratch scratch;
    int argc = reprec_xadd_argv(&rec, key, minid, &scratch, argv, argvlen);
    redisAppendCommandArgv(rc, argc, argv, argvlen);
    zmq_msg_close(&r->payload);
    r->used = 0;
}

static int to_acknowledge(const struct held_req *j)
{
    return j->used && (j->conn >= 0 || j->drop);
}

/* 1 if a round trip to Redis has something to do: an entry to acknowledge or a reply record. */
static int redis_work(const struct req_forward *o)
{
    for (size_t i = 0; i < HOLD_MAX; i++)
        if (to_acknowledge(&o->held[i]))
            return 1;
    for (size_t i = 0; i < o->nout; i++)
        if (o->out[i].used)
            return 1;
    return 0;
}

/* Append one XACK per job to acknowledge (picked or dropped) and then one
 * XDEL of them all; returns the number of XACKs, the jobs in ACKING. */
static size_t append_acks(struct req_forward *o, redisContext *rc, struct held_req **acking)
{
    const char *argv[2 + HOLD_MAX];
    size_t argvlen[2 + HOLD_MAX], n = 0;
    argv[0] = "XDEL", argv[1] = o->req_key; /* the entry itself is of no more use */
    argvlen[0] = 4, argvlen[1] = strlen(o->req_key);
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *j = &o->held[i];
        if (!to_acknowledge(j))
            continue;
        argv[2 + n] = zmq_msg_data(&j->m[0]), argvlen[2 + n] = zmq_msg_size(&j->m[0]);
        const char *xack[4] = {"XACK", o->req_key, GROUP, argv[2 + n]};
        size_t xacklen[4] = {4, argvlen[1], strlen(GROUP), argvlen[2 + n]};
        redisAppendCommandArgv(rc, 4, xack, xacklen);
        acking[n++] = j;
    }
    if (n)
        redisAppendCommandArgv(rc, (int)(2 + n), argv, argvlen);
    return n;
}

/* The answer R to the XACK of job J. */
static void take_ack_answer(struct req_forward *o, struct held_req *j, const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        j->ack = r->integer == 1 ? ACK_TAKEN : ACK_GONE;
    else
        warn_throttled(&o->warn, "redis refuses an acknowledgement: %s",
                       r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
}

/* One pipelined round trip: acknowledgements (each job's answer in j->ack),
 * then reply records. */
static void flush_redis(struct req_forward *o)
{
    if (!redis_work(o))
        return;
    redisContext *rc = rconn_get(o->rc);
    if (!rc)
        return;
    struct held_req *acking[HOLD_MAX];
    size_t nacks = append_acks(o, rc, acking), ncmd = nacks + (nacks > 0), nrep = 0;
    long long minid = clock_wall_ms() - o->cfg->request_timeout_ms - TRIM_MARGIN_MS;
    for (size_t i = 0; i < o->nout; i++)
        if (o->out[i].used) {
            append_reply(o, rc, &o->out[i], minid > 0 ? minid : 0);
            nrep++;
        }
    for (size_t k = 0; k < ncmd + nrep; k++) {
        redisReply *r = rconn_reply(o->rc);
        if (!r) { /* lost with the connection: the acknowledgements unknown, the records not written */
            metric_add(M_REQ_REDIS_ERR, (int64_t)(nrep - (k > ncmd ? k - ncmd : 0)));
            return;
        }
        if (k < nacks)
            take_ack_answer(o, acking[k], r);
        else if (r->type == REDIS_REPLY_ERROR)
            warn_throttled(&o->warn, "redis refuses %s: %s", k < ncmd ? "a deletion" : "a reply record", r->str);
        if (k >= ncmd && r->type == REDIS_REPLY_ERROR)
            metric_add(M_REQ_REDIS_ERR, 1);
        freeReplyObject(r);
    }
}

/* After the round trip: an entry its XACK took is sent or dropped (and
 * counted as read); one taken before is a copy, discarded; one without an
 * answer stays, to be acknowledged (and a pick chosen) again next turn. */
static void settle_jobs(struct req_forward *o)
{
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *j = &o->held[i];
        enum ack_answer ack = j->ack;
        j->ack = ACK_NONE;
        if (!j->used || ack == ACK_NONE) {
            j->conn = -1;
            continue;
        }
        if (ack == ACK_GONE) {
            held_free(o, j);
            continue;
        }
        metric_add(M_REQ_IN, 1);
        if (j->drop) {
            held_dropped(o, j);
            continue;
        }
        metric_add(M_AUTH_IN, j->rec.cmd == REQREC_AUTH);
        send_held(o, j);
    }
}

/* Reply records that could not be written before their deadline are useless. */
static void drop_stale_replies(struct req_forward *o, long long now_wall)
{
    for (size_t i = 0; i < o->nout; i++)
        if (o->out[i].used && o->out[i].dl_wall + TRIM_MARGIN_MS < now_wall) {
            zmq_msg_close(&o->out[i].payload);
            o->out[i].used = 0;
            metric_add(M_REQ_REDIS_ERR, 1);
        }
}

static void dispatch(struct req_forward *o)
{
    long long now = clock_wall_ms();
    expire_conns(o, now);
    if (!o->stop) {
        drop_expired(o, now);
        shed_overload(o);
        end_shedding(o);
        choose_sends(o);
    }
    drop_stale_replies(o, now);
    flush_redis(o);
    settle_jobs(o);
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
    if (!o->conn || !o->out || !o->rc)
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
        dispatch(o); /* the reply records of what the first one dropped */
        log_totals();
    }
    zactor_destroy(&o->reader);
    for (size_t i = 0; i < HOLD_MAX; i++)
        if (o->held[i].used)
            frames_close(o->held[i].m, o->held[i].n, JOB_FRAMES);
    for (size_t i = 0; o->out && i < o->nout; i++)
        if (o->out[i].used)
            zmq_msg_close(&o->out[i].payload);
    for (size_t i = 0; o->conn && i < o->nconn; i++)
        zsock_destroy(&o->conn[i].sock);
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
        if (o->conn[i].busy)
            part_poll_socket(w, o->conn[i].sock, ZMQ_POLLIN);
    part_poll_timeout(w, stopping ? 20 : next_held(o) || redis_work(o) ? 10 : 200);
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
    for (size_t i = 0; i < o->nconn; i++)
        if (o->conn[i].busy && (zsock_events(o->conn[i].sock) & ZMQ_POLLIN))
            take_reply(o, &o->conn[i]);
}

static void req_forward_turn(void *self, const struct part_poll *w)
{
    struct req_forward *o = self;
    (void)w; /* every socket is read without waiting */
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
    take_replies(o);
    dispatch(o);
    return busy_count(o) > 0;
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
