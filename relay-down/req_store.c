/* req_store.c -- request intake's writer (see req_store.h, and req_intake.c
 * for the whole): each request's store (XADD in a script that stores it
 * once, so a request whose answer was lost with the connection is sent
 * again) with its registry update, the registrations of accepted _auth and
 * the reply stream's trim, through the Redis pipeline (rpipe.h). */
#include "req_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "reqrec.h"

#define PIPE_BYTES (8 << 20) /* formatted commands in flight at once: the pipeline's byte cap */
#define PIPE_CMDS 2048       /* commands in flight at once */
#define XADD_ROOM 512        /* an XADD's formatted size beyond its payload, at most */
#define REDIS_TIMEOUT_MS 1000 /* a connect; and no reply for this long while some are awaited fails the connection */
#define TRIM_EVERY_MS 1000   /* the reply stream's XTRIM, at most this often */
#define ACCEPTED_MAX 256     /* accepted _auth waiting to be registered */
#define TAG_SEQ_BITS 40      /* a command's tag: slot << 40 | the request's seq (low bits) */
#define TAG_OTHER UINT64_MAX /* registry and trim commands */
#define TAG_LAYOUT (UINT64_MAX - 2) /* and - 1: which request stream (req_layout.h) */

static uint64_t tag_of(const struct req_store *s, int i)
{
    return (uint64_t)i << TAG_SEQ_BITS | (s->table->slot[i].seq & ((1ULL << TAG_SEQ_BITS) - 1));
}

/* KEYS: the request stream, the incarnations' highest stored sequence
 * numbers (both this DC's: an ACL user of the DC may run scripts on its own
 * keys only); ARGV: boot id, sequence number, the XADD's arguments after its
 * key. Returns the entry's id if stored, 0 if stored before (a re-send
 * after a lost reply). */
static const char store_script[] =
    "local hi = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') "
    "if tonumber(ARGV[2]) <= hi then return 0 end "
    "local id = redis.call('XADD', KEYS[1], unpack(ARGV, 3)) "
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) "
    "redis.call('PEXPIRE', KEYS[2], 86400000) "
    "return id";

/* The stream slot I goes to. */
static const char *stream_of(const struct req_store *s, int i)
{
    return s->table->slot[i].stream == REQ_STREAM_SHARED ? s->shared_key : s->req_key;
}

/* EVAL of store_script around the XADD in XARGV (command name and key first). */
static int append_store(struct req_store *s, int i, int xargc, const char **xargv, const size_t *xargvlen)
{
    const char *argv[REQREC_ARGC_MAX + 5];
    size_t argvlen[REQREC_ARGC_MAX + 5];
    char boot[24], seq[24];
    snprintf(boot, sizeof boot, "%016" PRIx64, s->table->boot);
    snprintf(seq, sizeof seq, "%" PRIu64, s->table->slot[i].seq);
    int shared = s->table->slot[i].stream == REQ_STREAM_SHARED;
    const char *head[] = {"EVAL", store_script, "2", shared ? s->shared_key : s->req_key,
                          shared ? s->shared_hi_key : s->hi_key, boot, seq};
    int n = 0;
    for (; n < 7; n++) {
        argv[n] = head[n];
        argvlen[n] = strlen(head[n]);
    }
    for (int k = 2; k < xargc; k++, n++) {
        argv[n] = xargv[k];
        argvlen[n] = xargvlen[k];
    }
    return rpipe_append_argv(s->pipe, tag_of(s, i), n, argv, argvlen);
}

/* Append slot I's store; the payload is kept until Redis answers. */
static int append_request(struct req_store *s, int i, long long minid)
{
    struct req_pend *p = &s->table->slot[i];
    char rid[REQREC_RID_MAX + 1];
    struct reqrec rec = {.dc = s->cfg->datacenter, .dclen = strlen(s->cfg->datacenter), .rid = rid,
                         .dl_ms = p->dl_wall, .cmd = p->auth ? REQREC_AUTH : REQREC_REQ,
                         .payload = zmq_msg_data(&p->payload), .len = zmq_msg_size(&p->payload)};
    rec.ridlen = (size_t)req_table_rid(s->table, i, rid, sizeof rid);
    if (!p->stream) /* and kept: a request sent again goes where its first send went */
        p->stream = s->layout.now;
    const char *argv[REQREC_ARGC_MAX];
    size_t argvlen[REQREC_ARGC_MAX];
    struct reqrec_scratch scratch;
    int argc = reqrec_xadd_argv(&rec, stream_of(s, i), minid, &scratch, argv, argvlen);
    return append_store(s, i, argc, argv, argvlen);
}

/* A reply from the pipeline. A store refused (an error reply) means not
 * stored: the request is dropped and counted. A reply lost with the
 * connection (NULL): sent again once connected. */
static void on_reply(void *arg, uint64_t tag, redisReply *r)
{
    struct req_store *s = arg;
    struct req_table *t = s->table;
    if (tag == TAG_LAYOUT || tag == TAG_LAYOUT + 1)
        req_layout_answer(&s->layout, (int)(tag - TAG_LAYOUT), r);
    if (tag >= TAG_LAYOUT)
        return;
    int i = (int)(tag >> TAG_SEQ_BITS);
    int mine = t->slot[i].seq && tag_of(s, i) == tag;
    if (mine && !r) {
        req_table_resend(t, i);
        return;
    }
    if (!r)
        return;
    if (mine && r->type != REDIS_REPLY_ERROR && t->slot[i].stored == 1)
        req_table_stored(t, i, r->type == REDIS_REPLY_STRING ? r->str : NULL, (size_t)r->len);
    int refused = r->type == REDIS_REPLY_ERROR;
    if (refused && mine) {
        metric_add(M_REQ_REDIS_ERR, 1);
        req_table_release(t, i);
    }
    if (refused && !s->refusing)
        log_error("redis refuses requests (%s); they are dropped and counted in requests_redis_errors_total",
                  r->str);
    else if (!refused && s->refusing)
        log_info("redis accepts requests again");
    s->refusing = refused;
}

/* Best effort: without room in the pipeline or a connection, the entry
 * stays and saltrelay-up's deadline handling bounds what it costs. XDEL of
 * an entry saltrelay-up already read changes nothing for it. */
void req_store_unsend(struct req_store *s, int i)
{
    const struct req_pend *p = &s->table->slot[i];
    if (p->stored == 2 && p->sid[0] && rpipe_room(s->pipe, 1, XADD_ROOM))
        rpipe_append(s->pipe, TAG_OTHER, "XDEL %s %s", stream_of(s, i), p->sid);
}

/* Append the waiting requests (each with its registry update) while the
 * pipeline takes them: what does not fit waits in the table. */
static void append_requests(struct req_store *s, long long now)
{
    struct req_table *t = s->table;
    if (s->layout.now == REQ_STREAM_NONE)
        return; /* which stream is not known yet */
    /* requests older than their deadline are of no use to anyone: trim them */
    long long minid = now - s->cfg->request_timeout_ms - 60000;
    while (t->unstored >= 0) {
        int i = t->unstored;
        size_t bytes = zmq_msg_size(&t->slot[i].payload) + XADD_ROOM + REGISTRY_BYTES_MAX;
        if (!rpipe_room(s->pipe, 1 + REGISTRY_CMDS_MAX, bytes) ||
            append_request(s, i, minid > 0 ? minid : 0) != RPIPE_OK)
            return;
        req_table_sent(t, i);
        if (!t->slot[i].auth)
            registry_append_request(s->pipe, TAG_OTHER, &s->reg, t->slot[i].id, now);
    }
}

void req_store_flush(struct req_store *s)
{
    long long mono = clock_mono_ms(), now = clock_wall_ms();
    int trim = s->trim_to[0] && mono - s->trimmed_at >= TRIM_EVERY_MS;
    req_layout_ask(&s->layout, s->pipe, TAG_LAYOUT);
    if (s->table->unstored < 0 && !trim && !s->naccepted) {
        rpipe_io(s->pipe);
        return;
    }
    append_requests(s, now);
    while (s->naccepted && rpipe_room(s->pipe, REGISTRY_CMDS_MAX, REGISTRY_BYTES_MAX) &&
           registry_append_auth(s->pipe, TAG_OTHER, &s->reg, s->accepted[s->naccepted - 1], now) == RPIPE_OK)
        s->naccepted--;
    /* replies read are done with: only this DC reads its stream */
    if (trim && rpipe_room(s->pipe, 1, REGISTRY_BYTES_MAX) &&
        rpipe_append(s->pipe, TAG_OTHER, "XTRIM %s MINID %s", s->rep_key, s->trim_to) == RPIPE_OK) {
        s->trim_to[0] = '\0';
        s->trimmed_at = mono;
    }
    rpipe_io(s->pipe);
}

/* Before, a made-up id cost nothing but a refused _auth. */
void req_store_register(struct req_store *s, const char *id)
{
    if (s->naccepted == ACCEPTED_MAX) {
        warn_throttled(&s->reg_warn, "more than %d accepted _auth in one turn: some minions are registered "
                       "at their next _auth", ACCEPTED_MAX);
        return;
    }
    memcpy(s->accepted[s->naccepted++], id, ENVELOPE_ID_MAX);
}

void req_store_handled(struct req_store *s, const char *id, size_t len)
{
    snprintf(s->trim_to, sizeof s->trim_to, "%.*s", (int)len, id);
}

int req_store_init(struct req_store *s, const struct config *cfg, struct req_table *table)
{
    s->cfg = cfg;
    s->table = table;
    s->accepted = malloc(ACCEPTED_MAX * sizeof *s->accepted);
    s->reg = (struct registry_ctx){cfg->cluster, cfg->datacenter, cfg->registry_ttl_ms};
    key_req_stream(s->req_key, cfg->cluster, cfg->datacenter);
    key_req_high(s->hi_key, cfg->cluster, cfg->datacenter);
    key_req_shared(s->shared_key, cfg->cluster);
    key_req_high_shared(s->shared_hi_key, cfg->cluster);
    key_rep_stream(s->rep_key, cfg->cluster, cfg->datacenter);
    req_layout_init(&s->layout, cfg);
    s->rc = rconn_new(&cfg->redis_primary_url, "primary (requests)", REDIS_TIMEOUT_MS);
    s->pipe = s->rc ? rpipe_new(s->rc, PIPE_BYTES, PIPE_CMDS, REDIS_TIMEOUT_MS, on_reply, s) : NULL;
    return s->accepted && s->pipe ? 0 : -1;
}

/* Before the table's: what the pipeline hands back as lost is looked up there. */
void req_store_fini(struct req_store *s)
{
    rpipe_destroy(&s->pipe);
    rconn_destroy(&s->rc);
    free(s->accepted);
}
