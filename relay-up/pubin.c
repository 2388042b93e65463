/* pubin.c -- saltrelay-up's publication intake.
 *
 * A SUB socket subscribed to everything on the MoM's publish port receives
 * each Salt publication (1 frame, or [topic, payload] with zmq_filtering).
 * Messages go into a bounded ring, then to Redis in pipelined batches:
 *   stream mode:  XADD with an ID chosen here, so that a batch re-sent after a
 *                 lost connection is refused for entries Redis already has
 *                 ("equal or smaller" error) instead of being stored twice;
 *   channel mode: PUBLISH of the packed record (no replay, no dedup).
 * While Redis is unreachable the ring holds up to pub_buffer messages; past
 * that new publications are dropped and counted. The frames stay in their
 * zmq_msg_t from receipt to XADD: no copy of the payload is made here. */
#include "pubin.h"

#include <string.h>

#include "clock.h"
#include "config.h"
#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "pubrec.h"
#include "rconn.h"

#define BATCH_MAX 512
#define DRAIN_MAX 1024      /* messages taken from the SUB socket per wakeup */
#define STOP_FLUSH_MS 5000  /* how long a stop may spend storing the ring */

struct slot {
    zmq_msg_t frame[PUBREC_MAX_FRAMES];
    size_t nframes;
    long long recv_ms;
    int assigned; /* id/serial fixed at its first XADD, reused on retry */
    struct streamid id;
    uint64_t serial;
};

struct pubin {
    const struct config *cfg;
    int channel_mode;
    zsock_t *sub;
    zactor_t *monitor;
    struct rconn *rc;
    char key[KEY_MAX];
    struct slot *ring; /* calloc'd at full size: untouched pages cost no memory */
    size_t cap, head, count;
    int synced;        /* last ID and serial read from the stream */
    struct streamid last;
    uint64_t serial;
    int refusing;      /* Redis answers XADD with an error (log once) */
    long long retry_at;
    int dropping;      /* ring full (log once per episode) */
    struct slot overflow; /* receives what a full ring cannot take */
};

static struct slot *slot_at(struct pubin *p, size_t i) { return &p->ring[(p->head + i) % p->cap]; }

static void slot_release(struct slot *s)
{
    for (size_t i = 0; i < s->nframes; i++)
        zmq_msg_close(&s->frame[i]);
    s->nframes = 0;
    s->assigned = 0;
}

static void ring_pop(struct pubin *p)
{
    slot_release(slot_at(p, 0));
    p->head = (p->head + 1) % p->cap;
    p->count--;
    metric_set(M_PUB_BUFFERED, (int64_t)p->count);
}

/* Receive one whole message into S. Returns 1, 0 if none is waiting, -1 if
 * it was refused (too many or too large frames) and discarded. */
static int receive_into(struct pubin *p, struct slot *s)
{
    void *sock = zsock_resolve(p->sub);
    size_t n = 0, bytes = 0;
    int bad = 0, more = 1;
    while (more) {
        zmq_msg_t *m = &s->frame[n < PUBREC_MAX_FRAMES ? n : PUBREC_MAX_FRAMES - 1];
        if (n >= PUBREC_MAX_FRAMES) {
            zmq_msg_close(m);
            bad = 1;
        }
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(m);
            s->nframes = n < PUBREC_MAX_FRAMES ? n : PUBREC_MAX_FRAMES - 1;
            slot_release(s);
            return n == 0 ? 0 : -1;
        }
        bytes += zmq_msg_size(m);
        more = zmq_msg_more(m);
        if (n < PUBREC_MAX_FRAMES)
            n++;
    }
    s->nframes = n;
    if (bad || bytes > (size_t)p->cfg->max_frame_size) {
        slot_release(s);
        metric_add(M_PUB_BAD, 1);
        log_warn("publication refused: %s (counted in pub_bad_frames_total)",
                 bad ? "more than 8 frames" : "larger than max_frame_size");
        return -1;
    }
    metric_add(M_PUB_IN_MSGS, 1);
    metric_add(M_PUB_IN_BYTES, (int64_t)bytes);
    s->recv_ms = clock_wall_ms();
    return 1;
}

static void drain_sub(struct pubin *p)
{
    for (int i = 0; i < DRAIN_MAX; i++) {
        int full = p->count == p->cap;
        struct slot *s = full ? &p->overflow : slot_at(p, p->count);
        int r = receive_into(p, s);
        if (r == 0)
            return;
        if (r < 0)
            continue;
        if (full) {
            slot_release(s);
            metric_add(M_PUB_DROPPED, 1);
            if (!p->dropping)
                log_error("publication buffer full (%zu messages, Redis unreachable or slow): "
                          "dropping new publications (counted in pub_dropped_total)", p->cap);
            p->dropping = 1;
            continue;
        }
        p->count++;
        metric_set(M_PUB_BUFFERED, (int64_t)p->count);
        if (p->dropping && p->count < p->cap / 2) {
            log_info("publication buffer below half full again: no longer dropping");
            p->dropping = 0;
        }
    }
}

/* Learn the newest ID and serial in the stream, so ours continue after them. */
static int sync_top(struct pubin *p)
{
    redisReply *r = rconn_command(p->rc, "XREVRANGE %s + - COUNT 1", p->key);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        struct pubrec rec;
        const char *why;
        if (pubrec_from_entry(r->element[0], &rec, &why) == 0) {
            p->last = rec.id;
            p->serial = rec.serial;
        } else {
            log_warn("newest entry of %s is not a saltrelay record (%s); continuing after its ID",
                     p->key, why);
            const redisReply *e = r->element[0];
            if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 && e->element[0]->type == REDIS_REPLY_STRING)
                streamid_parse(e->element[0]->str, (size_t)e->element[0]->len, &p->last);
        }
    } else if (r->type == REDIS_REPLY_ERROR) {
        log_error("cannot read %s: %s", p->key, r->str);
        freeReplyObject(r);
        rconn_fail(p->rc, "stream not readable");
        return -1;
    }
    freeReplyObject(r);
    p->synced = 1;
    return 0;
}

static void append_one(struct pubin *p, struct slot *s, redisContext *c)
{
    struct pubrec rec = {.id = s->id, .serial = s->serial, .nframes = s->nframes};
    for (size_t i = 0; i < s->nframes; i++) {
        rec.frame[i] = zmq_msg_data(&s->frame[i]);
        rec.len[i] = zmq_msg_size(&s->frame[i]);
    }
    if (p->channel_mode) {
        size_t len;
        char *buf = pubrec_pack(&rec, &len);
        redisAppendCommand(c, "PUBLISH %s %b", p->key, buf, len);
        free(buf);
        return;
    }
    const char *argv[PUBREC_ARGC_MAX];
    size_t argvlen[PUBREC_ARGC_MAX];
    struct pubrec_scratch scratch;
    int argc = pubrec_xadd_argv(&rec, p->key, p->cfg->stream_maxlen, &scratch, argv, argvlen);
    redisAppendCommandArgv(c, argc, argv, argvlen);
}

/* Classify one XADD/PUBLISH reply. 1: stored, 0: already there, -1: refused. */
static int judge_reply(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ERROR)
        return 1;
    return strstr(r->str, "equal or smaller") ? 0 : -1;
}

/* Store up to BATCH_MAX buffered messages in one pipeline round trip. */
static void flush_batch(struct pubin *p)
{
    if (!p->count || clock_mono_ms() < p->retry_at)
        return;
    redisContext *c = rconn_get(p->rc);
    if (!c || (!p->synced && sync_top(p) < 0))
        return;
    size_t n = p->count < BATCH_MAX ? p->count : BATCH_MAX;
    for (size_t i = 0; i < n; i++) {
        struct slot *s = slot_at(p, i);
        if (!s->assigned) {
            s->id = streamid_next(p->last, (uint64_t)s->recv_ms);
            s->serial = ++p->serial;
            s->assigned = 1;
            p->last = s->id;
        }
        append_one(p, s, c);
    }
    int refused = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = rconn_reply(p->rc);
        if (!r)
            return; /* connection lost: the rest stay buffered with their IDs */
        int verdict = judge_reply(r);
        if (verdict < 0 && !refused) {
            refused = 1;
            if (!p->refusing)
                log_error("redis refuses publications (%s); keeping them buffered and retrying", r->str);
            p->refusing = 1;
            p->retry_at = clock_mono_ms() + 1000;
        }
        freeReplyObject(r);
        if (refused)
            continue; /* keep this and later messages for the retry */
        metric_add(verdict ? M_PUB_STORED : M_PUB_DUP_SKIPPED, 1);
        ring_pop(p);
    }
    if (!refused && p->refusing) {
        log_info("redis accepts publications again");
        p->refusing = 0;
    }
}

static void note_monitor_event(struct pubin *p)
{
    zmsg_t *ev = zmsg_recv(p->monitor);
    if (!ev)
        return;
    char *name = zmsg_popstr(ev);
    char *value = zmsg_popstr(ev);
    char *addr = zmsg_popstr(ev);
    if (name && strcmp(name, "CONNECTED") == 0) {
        metric_add(M_MASTER_CONNECTS, 1);
        log_info("MoM publish port %s: connected", addr ? addr : "?");
    } else if (name && strcmp(name, "DISCONNECTED") == 0) {
        metric_add(M_MASTER_DISCONNECTS, 1);
        log_warn("MoM publish port %s: disconnected; what the MoM publishes until the reconnect is "
                 "lost at the MoM", addr ? addr : "?");
    }
    free(name);
    free(value);
    free(addr);
    zmsg_destroy(&ev);
}

static int pubin_open(struct pubin *p, const struct config *cfg)
{
    p->cfg = cfg;
    p->channel_mode = strcmp(cfg->mode, "channel") == 0;
    if (p->channel_mode) {
        key_pub_channel(p->key, cfg->cluster);
        p->synced = 1;
    } else {
        key_pub_stream(p->key, cfg->cluster);
    }
    p->cap = (size_t)(cfg->pub_buffer > 0 ? cfg->pub_buffer : 1);
    p->ring = calloc(p->cap, sizeof *p->ring);
    p->rc = rconn_new(&cfg->redis_url, "primary (publications)", 2000);
    p->sub = zsock_new(ZMQ_SUB);
    if (!p->ring || !p->rc || !p->sub)
        return -1;
    zsock_set_rcvhwm(p->sub, 10000);
    zsock_set_heartbeat_ivl(p->sub, 5000); /* notice a dead MoM link without TCP's hours */
    zsock_set_heartbeat_timeout(p->sub, 15000);
    zsock_set_reconnect_ivl_max(p->sub, 5000);
    zsock_set_subscribe(p->sub, "");
    p->monitor = zactor_new(zmonitor, p->sub);
    zstr_sendx(p->monitor, "LISTEN", "CONNECTED", "DISCONNECTED", NULL);
    zstr_sendx(p->monitor, "START", NULL);
    zsock_wait(p->monitor);
    if (zsock_connect(p->sub, "%s", cfg->master_publish) < 0) {
        log_error("cannot connect to master_publish %s: %s", cfg->master_publish, zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

static void pubin_close(struct pubin *p)
{
    while (p->count)
        ring_pop(p);
    zactor_destroy(&p->monitor);
    zsock_destroy(&p->sub);
    rconn_destroy(&p->rc);
    free(p->ring);
}

/* After $TERM: store what is buffered, for a bounded time. */
static void flush_before_stop(struct pubin *p)
{
    long long until = clock_mono_ms() + STOP_FLUSH_MS;
    drain_sub(p);
    while (p->count && clock_mono_ms() < until) {
        flush_batch(p);
        if (p->count)
            zclock_sleep(50);
    }
    if (p->count)
        log_error("stopping with %zu publications not stored in Redis (lost)", p->count);
}

void pubin_actor(zsock_t *pipe, void *args)
{
    struct part_ctx *ctx = args;
    struct pubin p = {0};
    int ok = pubin_open(&p, ctx->cfg) == 0;
    part_started(pipe, ctx, ok);
    if (!ok) {
        pubin_close(&p);
        return;
    }
    zpoller_t *poller = zpoller_new(pipe, p.sub, p.monitor, NULL);
    zpoller_set_nonstop(poller, true); /* the main thread decides when to stop */
    for (;;) {
        int timeout = p.count ? (rconn_retry_in_ms(p.rc) > 0 ? rconn_retry_in_ms(p.rc) : 10) : 1000;
        void *which = zpoller_wait(poller, timeout);
        part_alive(ctx, clock_mono_ms());
        if (which == pipe && part_stop_requested(pipe))
            break;
        else if (which == p.monitor) {
            note_monitor_event(&p);
        } else if (which == p.sub) {
            drain_sub(&p);
        }
        flush_batch(&p);
    }
    flush_before_stop(&p);
    zpoller_destroy(&poller);
    pubin_close(&p);
}
