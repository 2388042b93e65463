/* req_ack.c -- request forwarding's writes to Redis (see req_ack.h, and
 * req_forward.c for the whole): each job's XACK and the XDEL of the entries,
 * and the reply records for the DCs, through the Redis pipeline (rpipe.h), so
 * the thread that serves the MoM's sockets never waits for Redis. A job is
 * settled (sent, dropped, or discarded as a copy) when its XACK answers: the
 * part is told which (req_ack_fn).
 *
 * With pub_wait_replicas, the acknowledgements are made durable before a
 * request goes: a WAIT follows them in the same round trip, and a job whose
 * XACK took its entry is sent only once that WAIT (or a later one) says
 * pub_wait_replicas replicas have it. Otherwise a failover could promote a
 * replica on which the entry is still pending, and it would be read and
 * sent again. Never fewer, however few replicas the primary has: one whose
 * replica was promoted elsewhere lists none, and is the very primary whose
 * acknowledgements are lost (issue 18 item 2; docs/failure-semantics.md).
 * Unconfirmed, the job waits (its socket reserved) and the WAIT is
 * repeated; past its deadline it is dropped (expired). A connection lost before the confirmation: it is acknowledged
 * again on the next primary; an answer 0 there means another instance, or
 * this one's replicated XACK, took it: not sent (at most once: its requester
 * times out). Reply records, too, are kept until a WAIT after their XADD
 * confirmed them, and written again if the connection is lost first (a copy
 * that did reach the replicas is a late reply for saltrelay-down). */
#include "req_ack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define REDIS_TIMEOUT_MS 2000
#define TRIM_MARGIN_MS 60000 /* reply records older than deadline + this are of no use */
#define PIPE_BYTES (8 << 20)  /* formatted commands in flight at once: the pipeline's byte cap */
#define PIPE_CMDS (2 * HOLD_MAX + 64)
#define ACK_ROOM 128          /* an XACK's formatted size beyond the entry id, at most */
#define WAIT_ROOM 64          /* WAIT n ms formatted, at most */
#define REQ_WAIT_MS 200       /* a WAIT for request acknowledgements waits at most this (then asked again) */

enum { TAG_ACK = 1, TAG_DEL, TAG_REC, TAG_WAIT }; /* tag: kind << 32 | job index (WAIT: serial) */
#define TAG(kind, i) ((uint64_t)(kind) << 32 | (uint64_t)(i))

/* Queue reply record ST for the request RID of DC (PAYLOAD moved in if ok). */
void req_ack_reply(struct req_ack *a, const char *dc, const char *rid, long long dl, enum reprec_status st,
                  zmq_msg_t *payload)
{
    size_t i = 0;
    while (i < a->nout && a->out[i].used)
        i++;
    if (i == a->nout) { /* cannot happen: nout covers every request held or in flight */
        metric_add(M_REQ_REDIS_ERR, 1);
        return;
    }
    struct req_out *r = &a->out[i];
    *r = (struct req_out){.used = 1, .st = st, .dl_wall = dl};
    snprintf(r->dc, sizeof r->dc, "%s", dc);
    snprintf(r->rid, sizeof r->rid, "%s", rid);
    zmq_msg_init(&r->payload);
    if (payload)
        zmq_msg_move(&r->payload, payload);
}

static int waiting_mode(const struct req_ack *a)
{
    return a->cfg->pub_wait_replicas > 0;
}

static void free_reply(struct req_out *r)
{
    zmq_msg_close(&r->payload);
    r->used = 0;
}

/* Append reply record R (number I); its payload is copied into the pipeline
 * and freed, or with pub_wait_replicas kept until a WAIT confirms it. */
static int append_reply(struct req_ack *a, struct req_out *r, size_t i, long long minid)
{
    char key[KEY_MAX];
    key_rep_stream(key, a->cfg->cluster, r->dc);
    struct reprec rec = {.rid = r->rid, .ridlen = strlen(r->rid), .st = r->st,
                         .payload = zmq_msg_data(&r->payload), .len = zmq_msg_size(&r->payload)};
    const char *argv[REQREC_ARGC_MAX];
    size_t argvlen[REQREC_ARGC_MAX];
    struct reqrec_scratch scratch;
    int argc = reprec_xadd_argv(&rec, key, minid, &scratch, argv, argvlen);
    if (rpipe_append_argv(a->pipe, TAG(TAG_REC, i), argc, argv, argvlen) != RPIPE_OK)
        return -1;
    if (!waiting_mode(a)) {
        free_reply(r);
        return 0;
    }
    r->written = 1;
    r->stored = 0;
    r->wait_serial = a->wait_next;
    return 0;
}

static int to_acknowledge(const struct held_req *j)
{
    return j->used && !j->acking && !j->acked && (j->conn >= 0 || j->drop);
}

/* Jobs acknowledged, or reply records stored, whose WAIT is not in the
 * pipeline: one is due. */
static int wait_due(const struct req_ack *a)
{
    if (a->wait_inflight)
        return 0;
    for (size_t i = 0; i < HOLD_MAX; i++)
        if (a->held->job[i].used && a->held->job[i].acked)
            return 1;
    for (size_t i = 0; i < a->nout; i++)
        if (a->out[i].used && a->out[i].stored)
            return 1;
    return 0;
}

/* 1 if Redis has something to do: an entry to acknowledge, a WAIT or a
 * reply record. */
int req_ack_work(const struct req_ack *a)
{
    if (wait_due(a))
        return 1;
    for (size_t i = 0; i < HOLD_MAX; i++)
        if (to_acknowledge(&a->held->job[i]))
            return 1;
    for (size_t i = 0; i < a->nout; i++)
        if (a->out[i].used && !a->out[i].written)
            return 1;
    return 0;
}

/* The WAIT's timeout: pub_wait_timeout, at most REQ_WAIT_MS (the commands
 * behind a WAIT wait for it, and an unconfirmed request is asked about again
 * anyway). WAIT n 0 would never return: at least 1 ms. */
static long long wait_ms(const struct config *cfg)
{
    long long ms = cfg->pub_wait_timeout_ms < REQ_WAIT_MS ? cfg->pub_wait_timeout_ms : REQ_WAIT_MS;
    return ms < 1 ? 1 : ms;
}

/* WAIT for the replicas to have every write before it (room was kept by
 * append_acks; if it does not go, it is due again next turn). */
static void append_wait(struct req_ack *a)
{
    if (rpipe_append(a->pipe, TAG(TAG_WAIT, a->wait_next), "WAIT %lld %lld", a->cfg->pub_wait_replicas,
                     wait_ms(a->cfg)) == RPIPE_OK) {
        a->wait_next++;
        a->wait_inflight = 1;
    }
}

static int cmp_src(const void *a, const void *b)
{
    const struct held_req *x = *(const struct held_req *const *)a, *y = *(const struct held_req *const *)b;
    return (x->src > y->src) - (x->src < y->src);
}

/* One XDEL per stream of the N jobs in DONE (the entries are of no more
 * use): jobs of one stream are next to each other once sorted. */
static void append_dels(struct req_ack *a, struct held_req **done, size_t n)
{
    static const char *argv[2 + HOLD_MAX]; /* only the part's thread writes acknowledgements */
    static size_t argvlen[2 + HOLD_MAX];
    qsort(done, n, sizeof *done, cmp_src);
    for (size_t i = 0, k; i < n; i = k) {
        argv[0] = "XDEL", argvlen[0] = 4;
        argv[1] = zmq_msg_data(&done[i]->m[0]), argvlen[1] = zmq_msg_size(&done[i]->m[0]);
        for (k = i; k < n && done[k]->src == done[i]->src; k++)
            argv[2 + k - i] = zmq_msg_data(&done[k]->m[1]), argvlen[2 + k - i] = zmq_msg_size(&done[k]->m[1]);
        rpipe_append_argv(a->pipe, TAG(TAG_DEL, 0), (int)(2 + k - i), argv, argvlen);
    }
}

/* Append one XACK per job to acknowledge (picked or dropped) and then one
 * XDEL per stream of them all, as far as the pipeline takes them; in
 * waiting mode a WAIT after them. */
static void append_acks(struct req_ack *a, size_t records)
{
    static struct held_req *done[HOLD_MAX];
    static unsigned in_del[HELD_SOURCES], round; /* in_del[src] == round: its stream has an XDEL */
    size_t n = 0, dels = 0, del_bytes = 0;
    round++;
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *j = &a->held->job[i];
        if (!to_acknowledge(j))
            continue;
        size_t idlen = zmq_msg_size(&j->m[1]), keylen = zmq_msg_size(&j->m[0]);
        int new_del = in_del[j->src] != round;
        /* its XACK, its share of the XDELs, and the WAIT after them */
        size_t cmds = 1 + dels + (size_t)new_del + 1, bytes = idlen + keylen + ACK_ROOM + del_bytes + idlen +
                      (new_del ? keylen + ACK_ROOM : 0) + WAIT_ROOM;
        if (!rpipe_room(a->pipe, cmds, bytes))
            break;
        const char *xack[4] = {"XACK", zmq_msg_data(&j->m[0]), REQ_GROUP, zmq_msg_data(&j->m[1])};
        size_t xacklen[4] = {4, keylen, strlen(REQ_GROUP), idlen};
        if (rpipe_append_argv(a->pipe, TAG(TAG_ACK, i), 4, xack, xacklen) != RPIPE_OK)
            break;
        in_del[j->src] = round;
        dels += (size_t)new_del;
        del_bytes += idlen + (new_del ? keylen + ACK_ROOM : 0);
        j->acking = 1;
        j->wait_serial = a->wait_next;
        done[n++] = j;
    }
    append_dels(a, done, n);
    /* one WAIT at a time: those acknowledged meanwhile wait for the next
     * (a WAIT that takes its timeout would otherwise hold up each later one) */
    if (waiting_mode(a) && !a->wait_inflight && (n || records || wait_due(a)))
        append_wait(a);
}

/* Append the reply records and the acknowledgements, and write what the
 * socket takes. */
void req_ack_write(struct req_ack *a)
{
    if (!req_ack_work(a))
        return;
    long long minid = clock_wall_ms() - a->cfg->request_timeout_ms - TRIM_MARGIN_MS;
    size_t records = 0;
    for (size_t i = 0; i < a->nout; i++) {
        if (!a->out[i].used || a->out[i].written)
            continue;
        if (append_reply(a, &a->out[i], i, minid > 0 ? minid : 0) < 0)
            break;
        records++;
    }
    append_acks(a, records);
    rpipe_io(a->pipe);
}

/* Job J's XACK answered R (NULL: lost with the connection). An entry it took
 * is sent or dropped (and counted as read); one taken before is a copy,
 * discarded; one without an answer stays, to be acknowledged (and a socket
 * chosen) again. */
static void settle(struct req_ack *a, struct held_req *j, const redisReply *r)
{
    j->acking = 0;
    if (r && r->type != REDIS_REPLY_INTEGER)
        warn_throttled(a->warn, "redis refuses an acknowledgement: %s",
                       r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        a->fn(a->arg, j, REQ_ACK_RETRY);
    } else if (r->integer != 1) {
        a->fn(a->arg, j, REQ_ACK_COPY);
    } else {
        metric_add(M_REQ_IN, !j->counted);
        if (j->drop) {
            a->fn(a->arg, j, REQ_ACK_DROP);
        } else {
            metric_add(M_AUTH_IN, !j->counted && j->rec.cmd == REQREC_AUTH);
            j->counted = 1;
            if (waiting_mode(a))
                j->acked = 1; /* sent once its WAIT confirms */
            else
                a->fn(a->arg, j, REQ_ACK_SEND);
        }
    }
}

/* Acknowledged job J is confirmed: sent, or dropped if past its deadline
 * meanwhile. */
static void send_confirmed(struct req_ack *a, struct held_req *j, long long now_wall)
{
    j->acked = 0;
    if (j->rec.dl_ms > now_wall) {
        a->fn(a->arg, j, REQ_ACK_SEND);
        return;
    }
    req_held_drop(j, ST_EXPIRED, M_REQ_EXPIRED);
    a->fn(a->arg, j, REQ_ACK_DROP);
}

static void log_confirmed(struct req_ack *a, int ok)
{
    if (ok == !a->unconfirmed)
        return;
    log_msg(ok ? LOG_LVL_INFO : LOG_LVL_WARN, "%s", ok ? "request acknowledgements are confirmed by the replicas "
            "again" : "request acknowledgements not confirmed by pub_wait_replicas replicas; those "
            "requests wait (counted in requests_unconfirmed_total), sent once confirmed or expired at their deadline");
    a->unconfirmed = !ok;
}

/* WAIT number SERIAL answered R (NULL: lost with the connection). */
static void on_wait(struct req_ack *a, uint32_t serial, const redisReply *r)
{
    a->wait_inflight = 0;
    int ok = r && r->type == REDIS_REPLY_INTEGER && r->integer >= a->cfg->pub_wait_replicas;
    long long now = clock_wall_ms();
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *j = &a->held->job[i];
        if (!j->used || !j->acked)
            continue;
        if (!r) { /* the XACK may be lost with the primary: acknowledged again on the next */
            j->acked = 0;
            a->fn(a->arg, j, REQ_ACK_RETRY);
        } else if (ok && (int32_t)(j->wait_serial - serial) <= 0) { /* its XACK went before this WAIT */
            send_confirmed(a, j, now);
        } else if (!ok) {
            metric_add(M_REQ_UNCONFIRMED, (int32_t)(j->wait_serial - serial) <= 0);
            if (j->rec.dl_ms <= now)
                send_confirmed(a, j, now); /* past its deadline: dropped */
        }
    }
    for (size_t i = 0; i < a->nout; i++) {
        struct req_out *rec = &a->out[i];
        if (!rec->used || !rec->written)
            continue;
        if (!r) /* written again on the next primary (a copy is a late reply there) */
            rec->written = rec->stored = 0;
        else if (ok && rec->stored && (int32_t)(rec->wait_serial - serial) <= 0)
            free_reply(rec);
    }
    if (r)
        log_confirmed(a, ok);
}

/* With pub_wait_replicas, reply record REC's XADD answered R (NULL: lost
 * with the connection, written again). Refused: counted and dropped. */
static void on_record(struct req_out *rec, const redisReply *r)
{
    if (!rec->used || !rec->written)
        return; /* already handed back as lost, or dropped as stale */
    if (!r) {
        rec->written = 0;
    } else if (r->type == REDIS_REPLY_ERROR) {
        metric_add(M_REQ_REDIS_ERR, 1);
        free_reply(rec);
    } else {
        rec->stored = 1;
    }
}

/* A reply from the pipeline: an XACK's settles its job; a reply record not
 * written (refused, or lost with the connection) is counted. */
static void on_reply(void *arg, uint64_t tag, redisReply *r)
{
    struct req_ack *a = arg;
    unsigned kind = (unsigned)(tag >> 32);
    if (kind == TAG_ACK) {
        settle(a, &a->held->job[tag & 0xffffffffu], r);
        return;
    }
    if (kind == TAG_WAIT) {
        on_wait(a, (uint32_t)tag, r);
        return;
    }
    if (r && r->type == REDIS_REPLY_ERROR)
        warn_throttled(a->warn, "redis refuses %s: %s", kind == TAG_DEL ? "a deletion" : "a reply record", r->str);
    if (kind == TAG_REC && waiting_mode(a))
        on_record(&a->out[tag & 0xffffffffu], r);
    else if (kind == TAG_REC && (!r || r->type == REDIS_REPLY_ERROR))
        metric_add(M_REQ_REDIS_ERR, 1);
}

/* Reply records that could not be written before their deadline are useless. */
void req_ack_drop_stale(struct req_ack *a, long long now_wall)
{
    for (size_t i = 0; i < a->nout; i++)
        if (a->out[i].used && a->out[i].dl_wall + TRIM_MARGIN_MS < now_wall) {
            metric_add(M_REQ_REDIS_ERR, !a->out[i].stored); /* one stored and unconfirmed is likely there */
            free_reply(&a->out[i]);
        }
}

size_t req_ack_records(const struct req_ack *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->nout; i++)
        n += (size_t)a->out[i].used;
    return n;
}

void req_ack_drain(struct req_ack *a)
{
    rpipe_flush(a->pipe, REDIS_TIMEOUT_MS);
}

int req_ack_init(struct req_ack *a, const struct config *cfg, struct req_held *held, size_t nout,
                 req_ack_fn fn, void *arg, struct warnrate *warn)
{
    a->cfg = cfg;
    a->held = held;
    a->fn = fn;
    a->arg = arg;
    a->warn = warn;
    a->nout = nout;
    a->out = calloc(a->nout, sizeof *a->out);
    a->rc = rconn_new(&cfg->redis_url, "requests", REDIS_TIMEOUT_MS);
    int timeout = (int)(REDIS_TIMEOUT_MS + wait_ms(cfg)); /* a WAIT may take its own */
    a->pipe = a->rc ? rpipe_new(a->rc, PIPE_BYTES, PIPE_CMDS, timeout, on_reply, a) : NULL;
    return a->out && a->pipe ? 0 : -1;
}

/* Before the jobs and sockets: what the pipeline hands back as lost is
 * looked up there. */
void req_ack_fini(struct req_ack *a)
{
    rpipe_destroy(&a->pipe);
    for (size_t i = 0; a->out && i < a->nout; i++)
        if (a->out[i].used)
            zmq_msg_close(&a->out[i].payload);
    rconn_destroy(&a->rc);
    free(a->out);
}
