/* req_intake_redis.c -- request intake's Redis side (see req_intake.c for
 * the whole): each request's store (XADD in a script that stores it once,
 * so a request whose answer was lost with the connection is sent again) with
 * its registry update, the
 * registrations of accepted _auth and the reply stream's trim, through the
 * Redis pipeline (rpipe.h): the ROUTER's thread never waits for Redis, and
 * what the pipeline's byte cap does not take waits in the table. */
#include "req_table.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "reqrec.h"

int intake_rid_format(const struct req_intake *q, int i, char *buf, size_t len)
{
    return snprintf(buf, len, "%016" PRIx64 "-%" PRIx64 "-%x", q->boot, q->slot[i].seq, (unsigned)i);
}

static uint64_t tag_of(const struct req_intake *q, int i)
{
    return (uint64_t)i << TAG_SEQ_BITS | (q->slot[i].seq & ((1ULL << TAG_SEQ_BITS) - 1));
}

/* KEYS: the request stream, the incarnations' highest stored sequence
 * numbers; ARGV: boot id, sequence number, the XADD's arguments after its
 * key. Returns the entry's id if stored, 0 if stored before (a re-send
 * after a lost reply). */
static const char store_script[] =
    "local hi = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') "
    "if tonumber(ARGV[2]) <= hi then return 0 end "
    "local id = redis.call('XADD', KEYS[1], unpack(ARGV, 3)) "
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) "
    "redis.call('PEXPIRE', KEYS[2], 86400000) "
    "return id";

/* EVAL of store_script around the XADD in XARGV (command name and key first). */
static int append_store(struct req_intake *q, int i, int xargc, const char **xargv, const size_t *xargvlen)
{
    const char *argv[REQREC_ARGC_MAX + 5];
    size_t argvlen[REQREC_ARGC_MAX + 5];
    char boot[24], seq[24];
    snprintf(boot, sizeof boot, "%016" PRIx64, q->boot);
    snprintf(seq, sizeof seq, "%" PRIu64, q->slot[i].seq);
    const char *head[] = {"EVAL", store_script, "2", q->req_key, q->hi_key, boot, seq};
    int n = 0;
    for (; n < 7; n++) {
        argv[n] = head[n];
        argvlen[n] = strlen(head[n]);
    }
    for (int k = 2; k < xargc; k++, n++) {
        argv[n] = xargv[k];
        argvlen[n] = xargvlen[k];
    }
    return rpipe_append_argv(q->pipe, tag_of(q, i), n, argv, argvlen);
}

/* Append slot I's store; the payload is kept until Redis answers. */
static int append_request(struct req_intake *q, int i, long long minid)
{
    struct pend *p = &q->slot[i];
    char rid[REQREC_RID_MAX + 1];
    struct reqrec rec = {.dc = q->cfg->datacenter, .dclen = strlen(q->cfg->datacenter), .rid = rid,
                         .dl_ms = p->dl_wall, .cmd = p->auth ? REQREC_AUTH : REQREC_REQ,
                         .payload = zmq_msg_data(&p->payload), .len = zmq_msg_size(&p->payload)};
    rec.ridlen = (size_t)intake_rid_format(q, i, rid, sizeof rid);
    const char *argv[REQREC_ARGC_MAX];
    size_t argvlen[REQREC_ARGC_MAX];
    struct reqrec_scratch scratch;
    int argc = reqrec_xadd_argv(&rec, q->req_key, minid, &scratch, argv, argvlen);
    int rc = append_store(q, i, argc, argv, argvlen);
    if (rc != RPIPE_OK)
        return rc;
    q->unstored_bytes -= (long long)rec.len;
    p->stored = 1;
    return RPIPE_OK;
}

/* A request whose answer was lost with the connection goes back to waiting
 * (in arrival order: lost ones come back oldest first) and is sent again;
 * the store script skips it if it had arrived. */
static void resend_later(struct req_intake *q, int i)
{
    struct pend *p = &q->slot[i];
    if (p->stored != 1)
        return;
    p->stored = 0;
    q->unstored_bytes += (long long)zmq_msg_size(&p->payload);
    if (q->unstored < 0 || p->seq < q->slot[q->unstored].seq)
        q->unstored = i;
}

/* A reply from the pipeline. A store refused (an error reply) means not
 * stored: the request is dropped and counted. A reply lost with the
 * connection (NULL): sent again once connected. */
void intake_on_reply(void *arg, uint64_t tag, redisReply *r)
{
    struct req_intake *q = arg;
    if (tag == TAG_OTHER)
        return;
    int i = (int)(tag >> TAG_SEQ_BITS);
    int mine = q->slot[i].seq && tag_of(q, i) == tag;
    if (mine && !r) {
        resend_later(q, i);
        return;
    }
    if (!r)
        return;
    if (mine && r->type != REDIS_REPLY_ERROR && q->slot[i].stored == 1) {
        struct pend *p = &q->slot[i];
        zmq_msg_close(&p->payload);
        p->stored = 2;
        p->sid[0] = '\0';
        if (r->type == REDIS_REPLY_STRING && r->len < STREAMID_STRLEN)
            memcpy(p->sid, r->str, (size_t)r->len + 1);
    }
    int refused = r->type == REDIS_REPLY_ERROR;
    if (refused && mine) {
        metric_add(M_REQ_REDIS_ERR, 1);
        intake_pend_release(q, i);
    }
    if (refused && !q->redis_refusing)
        log_error("redis refuses requests (%s); they are dropped and counted in requests_redis_errors_total",
                  r->str);
    else if (!refused && q->redis_refusing)
        log_info("redis accepts requests again");
    q->redis_refusing = refused;
}

/* Best effort: without room in the pipeline or a connection, the entry
 * stays and saltrelay-up's deadline handling bounds what it costs. XDEL of
 * an entry saltrelay-up already read changes nothing for it. */
void intake_unsend(struct req_intake *q, int i)
{
    const struct pend *p = &q->slot[i];
    if (p->stored == 2 && p->sid[0] && rpipe_room(q->pipe, 1, XADD_ROOM))
        rpipe_append(q->pipe, TAG_OTHER, "XDEL %s %s", q->req_key, p->sid);
}

/* Append the waiting requests (each with its registry update) while the
 * pipeline takes them: what does not fit waits in the table. */
static void append_requests(struct req_intake *q, long long now)
{
    /* requests older than their deadline are of no use to anyone: trim them */
    long long minid = now - q->cfg->request_timeout_ms - 60000;
    while (q->unstored >= 0) {
        int i = q->unstored;
        size_t bytes = zmq_msg_size(&q->slot[i].payload) + XADD_ROOM + REGISTRY_BYTES_MAX;
        if (!rpipe_room(q->pipe, 1 + REGISTRY_CMDS_MAX, bytes) ||
            append_request(q, i, minid > 0 ? minid : 0) != RPIPE_OK)
            return;
        q->unstored = q->slot[i].next;
        if (!q->slot[i].auth)
            registry_append_request(q->pipe, TAG_OTHER, &q->reg, q->slot[i].id, now);
    }
}

/* Append the waiting requests, registry updates and the reply stream's
 * trim, and write what the socket takes. */
void intake_flush(struct req_intake *q)
{
    long long mono = clock_mono_ms(), now = clock_wall_ms();
    int trim = q->trim_to[0] && mono - q->trimmed_at >= TRIM_EVERY_MS;
    if (q->unstored < 0 && !trim && !q->naccepted)
        return;
    append_requests(q, now);
    while (q->naccepted && rpipe_room(q->pipe, REGISTRY_CMDS_MAX, REGISTRY_BYTES_MAX) &&
           registry_append_auth(q->pipe, TAG_OTHER, &q->reg, q->accepted[q->naccepted - 1], now) == RPIPE_OK)
        q->naccepted--;
    /* replies read are done with: only this DC reads its stream */
    if (trim && rpipe_room(q->pipe, 1, REGISTRY_BYTES_MAX) &&
        rpipe_append(q->pipe, TAG_OTHER, "XTRIM %s MINID %s", q->rep_key, q->trim_to) == RPIPE_OK) {
        q->trim_to[0] = '\0';
        q->trimmed_at = mono;
    }
    rpipe_io(q->pipe);
}

