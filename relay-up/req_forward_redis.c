/* req_forward_redis.c -- request forwarding's Redis side (see
 * req_forward.c for the whole): each job's XACK and the XDEL of the entries,
 * and the reply records for the DCs, through the Redis pipeline (rpipe.h), so
 * the thread that serves the MoM's sockets never waits for Redis. A job is
 * settled (sent, dropped, or discarded as a copy) when its XACK answers. */
#include "req_forward_int.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"

enum { TAG_ACK = 1, TAG_DEL, TAG_REC }; /* a command's tag: kind << 32 | job index */
#define TAG(kind, i) ((uint64_t)(kind) << 32 | (uint64_t)(i))

/* Queue reply record ST for the request RID of DC (PAYLOAD moved in if ok). */
void fwd_reply(struct req_forward *o, const char *dc, const char *rid, long long dl, enum reprec_status st,
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

/* Append reply record R; its payload is copied into the pipeline and freed. */
static int append_reply(struct req_forward *o, struct out *r, long long minid)
{
    char key[KEY_MAX];
    key_rep_stream(key, o->cfg->cluster, r->dc);
    struct reprec rec = {.rid = r->rid, .ridlen = strlen(r->rid), .st = r->st,
                         .payload = zmq_msg_data(&r->payload), .len = zmq_msg_size(&r->payload)};
    const char *argv[REQREC_ARGC_MAX];
    size_t argvlen[REQREC_ARGC_MAX];
    struct reqrec_scratch scratch;
    int argc = reprec_xadd_argv(&rec, key, minid, &scratch, argv, argvlen);
    if (rpipe_append_argv(o->pipe, TAG(TAG_REC, 0), argc, argv, argvlen) != RPIPE_OK)
        return -1;
    zmq_msg_close(&r->payload);
    r->used = 0;
    return 0;
}

static int to_acknowledge(const struct held_req *j)
{
    return j->used && !j->acking && (j->conn >= 0 || j->drop);
}

/* 1 if Redis has something to do: an entry to acknowledge or a reply record. */
int fwd_redis_work(const struct req_forward *o)
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
 * XDEL of them all (the entries are of no more use), as far as the
 * pipeline takes them. */
static void append_acks(struct req_forward *o)
{
    const char *argv[2 + HOLD_MAX];
    size_t argvlen[2 + HOLD_MAX], n = 0;
    argv[0] = "XDEL", argv[1] = o->req_key;
    argvlen[0] = 4, argvlen[1] = strlen(o->req_key);
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *j = &o->held[i];
        if (!to_acknowledge(j))
            continue;
        size_t idlen = zmq_msg_size(&j->m[0]);
        if (!rpipe_room(o->pipe, 2, 2 * (idlen + ACK_ROOM))) /* its XACK, and its share of the XDEL */
            break;
        argv[2 + n] = zmq_msg_data(&j->m[0]), argvlen[2 + n] = idlen;
        const char *xack[4] = {"XACK", o->req_key, GROUP, argv[2 + n]};
        size_t xacklen[4] = {4, argvlen[1], strlen(GROUP), idlen};
        if (rpipe_append_argv(o->pipe, TAG(TAG_ACK, i), 4, xack, xacklen) != RPIPE_OK)
            break;
        j->acking = 1;
        n++;
    }
    if (n)
        rpipe_append_argv(o->pipe, TAG(TAG_DEL, 0), (int)(2 + n), argv, argvlen);
}

/* Append the reply records and the acknowledgements, and write what the
 * socket takes. */
void fwd_flush_redis(struct req_forward *o)
{
    if (!fwd_redis_work(o))
        return;
    long long minid = clock_wall_ms() - o->cfg->request_timeout_ms - TRIM_MARGIN_MS;
    for (size_t i = 0; i < o->nout; i++)
        if (o->out[i].used && append_reply(o, &o->out[i], minid > 0 ? minid : 0) < 0)
            break;
    append_acks(o);
    rpipe_io(o->pipe);
}

/* Job J's XACK answered R (NULL: lost with the connection). An entry it took
 * is sent or dropped (and counted as read); one taken before is a copy,
 * discarded; one without an answer stays, to be acknowledged (and a socket
 * chosen) again. */
static void settle(struct req_forward *o, struct held_req *j, const redisReply *r)
{
    j->acking = 0;
    if (r && r->type != REDIS_REPLY_INTEGER)
        warn_throttled(&o->warn, "redis refuses an acknowledgement: %s",
                       r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        if (j->conn >= 0)
            o->conn[j->conn].reserved = 0;
        j->conn = -1;
    } else if (r->integer != 1) {
        if (j->conn >= 0)
            o->conn[j->conn].reserved = 0;
        fwd_held_free(o, j);
    } else {
        metric_add(M_REQ_IN, 1);
        if (j->drop) {
            fwd_held_dropped(o, j);
        } else {
            metric_add(M_AUTH_IN, j->rec.cmd == REQREC_AUTH);
            fwd_send_held(o, j);
        }
    }
}

/* A reply from the pipeline: an XACK's settles its job; a reply record not
 * written (refused, or lost with the connection) is counted. */
void fwd_on_reply(void *arg, uint64_t tag, redisReply *r)
{
    struct req_forward *o = arg;
    unsigned kind = (unsigned)(tag >> 32);
    if (kind == TAG_ACK) {
        settle(o, &o->held[tag & 0xffffffffu], r);
        return;
    }
    if (r && r->type == REDIS_REPLY_ERROR)
        warn_throttled(&o->warn, "redis refuses %s: %s", kind == TAG_DEL ? "a deletion" : "a reply record", r->str);
    if (kind == TAG_REC && (!r || r->type == REDIS_REPLY_ERROR))
        metric_add(M_REQ_REDIS_ERR, 1);
}

/* Reply records that could not be written before their deadline are useless. */
void fwd_drop_stale_replies(struct req_forward *o, long long now_wall)
{
    for (size_t i = 0; i < o->nout; i++)
        if (o->out[i].used && o->out[i].dl_wall + TRIM_MARGIN_MS < now_wall) {
            zmq_msg_close(&o->out[i].payload);
            o->out[i].used = 0;
            metric_add(M_REQ_REDIS_ERR, 1);
        }
}

size_t fwd_records_waiting(const struct req_forward *o)
{
    size_t n = 0;
    for (size_t i = 0; i < o->nout; i++)
        n += (size_t)o->out[i].used;
    return n;
}

