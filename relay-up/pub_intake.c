/* pub_intake.c -- saltrelay-up's publication intake.
 *
 * A SUB socket subscribed to everything on the MoM's publish port receives
 * each Salt publication (1 frame, or [topic, payload] with zmq_filtering).
 * Messages go into a bounded ring, then to Redis through the Redis pipeline
 * (rpipe.h; pub_intake_redis.c): up to INFLIGHT_MAX commands and PIPE_BYTES
 * of them are written, without blocking, before their replies come back, and
 * the replies are read when the Redis socket is readable, from the same poll
 * loop that drains the SUB socket, so receiving, sending and Redis's work
 * overlap.
 * Replies come in order, each for the oldest slot in flight:
 *   stream mode:  EVALSHA of the store script (pubstore.h): Redis stores the
 *                 publication unless it is already stored (by another
 *                 saltrelay-up, or before a lost connection), and gives the
 *                 ID and serial, so any number of instances may run at once
 *                 and a batch re-sent after a lost connection or a failover
 *                 is never stored twice;
 *   channel mode: PUBLISH of the packed record (no replay, no dedup: one
 *                 instance only).
 * While Redis is unreachable the ring holds up to pub_buffer messages and
 * pub_buffer_bytes of frames (plus the one message that crosses it); past
 * that new publications are dropped and counted. The frames stay in their
 * zmq_msg_t from receipt to XADD, except small ones: ZeroMQ hands a frame
 * that fits its 8 KiB receive buffer as a reference into that buffer, so one
 * held 200-byte frame would pin 8 KiB (20,000 of them: 160 MiB for 4 MiB
 * counted); those are copied into a buffer of their own size, and what is
 * counted against pub_buffer_bytes is what is held.
 *
 * Copies merged: with zmq_filtering the MoM sends a targeted job as one
 * [sha1hex(id), payload] message per minion, same payload each time, then a
 * [syndic, payload] copy. A message whose payload equals the newest buffered
 * one (not yet written to Redis) and whose topic that record does not hold
 * yet is folded into it: one version-2 record (pubrec.h) with the payload once
 * and the list of topics. A repeated topic starts a new record, so two
 * publications are never merged; order is kept. While the newest record ends
 * with a per-minion topic it is held back up to pub_merge_window after its
 * last copy arrived (PUB copies come in a burst), so that the whole run
 * becomes one entry; "syndic" and "broadcast" topics end a run at once.
 *
 * Memory bound: pub_buffer x sizeof(struct slot) (184 bytes on 64-bit) +
 * pub_buffer_bytes (frames and topic lists, + allocator overhead), plus up to
 * PIPE_BYTES of formatted commands in hiredis's output buffer and the topic
 * set of the run being merged (about 100 bytes per topic). */
#include "pub_intake.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "frames.h"
#include "config.h"
#include "part.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "pubrec.h"
#include "pubstore.h"
#include "rconn.h"
#include "rpipe.h"
#include "strset.h"
#include "topiclist.h"

#define INFLIGHT_MAX 2048   /* commands written whose replies are awaited */
#define DRAIN_MAX 1024      /* messages taken from the SUB socket per wakeup */
#define STOP_FLUSH_MS 5000  /* how long a stop may spend storing the ring */
#define REPLY_TIMEOUT_MS 2000 /* no reply for that long (+ pub_wait_timeout): the connection is dead */
#define PIPE_BYTES (16 << 20) /* formatted commands in flight at once (one larger goes alone) */
#define CMD_ROOM 1024       /* a command's formatted size beyond its frames and topics, at most */
#define TRIM_AFTER 1000     /* buffered messages after which memory is given back */
#define INLINE_FRAMES 2     /* Salt sends [payload] or [topic, payload] */
#define MERGE_HOLD_MAX_MS 2000 /* a run still growing after that is cut into several entries */

/* One buffered message. Frames past INLINE_FRAMES (rare) live in MORE, so a
 * slot of the pub_buffer-long ring stays small. */
struct slot {
    zmq_msg_t frame[INLINE_FRAMES];
    zmq_msg_t *more; /* PUBREC_MAX_FRAMES - INLINE_FRAMES, or NULL */
    struct topiclist *topics; /* merged copies: every topic, frame[1] the payload */
    long long recv_ms;
    uint64_t serial; /* channel mode: given at its first PUBLISH, kept for a retry */
    unsigned char nframes;
    unsigned char written; /* sent to Redis once (maybe stored): it takes no more copies */
    unsigned char refused; /* Redis refused it once (channel mode: its retry is no repeat) */
};

struct pub_intake {
    const struct config *cfg;
    int opened, draining;
    int ev_sub, ev_monitor; /* indices in the part's wait */
    int channel_mode;
    zsock_t *sub;
    zactor_t *monitor;
    struct rconn *rc;
    struct rpipe *pipe;
    char key[KEY_MAX]; /* channel mode: the channel */
    struct slot *ring; /* calloc'd at full size: untouched pages cost no memory */
    size_t cap, head, count;
    size_t bytes; /* frame bytes in the ring, against pub_buffer_bytes */
    size_t peak;       /* most buffered since the ring was last empty */
    struct pubstore store; /* stream mode */
    unsigned loaded;   /* rconn generation the store script was loaded on */
    uint64_t serial;   /* channel mode: the last serial given */
    size_t sent;       /* slots from the head written to Redis (replies awaited, or held) */
    size_t skip;       /* replies to read and ignore (sent after a refused one) */
    /* pub_wait_replicas: a write of slots is followed by WAIT, and the next
     * write waits for its answer; slots Redis stored stay HELD at the head
     * until then, so that a failover before the replicas had them finds them
     * still here, re-sent to the new primary (whose store script skips what
     * it has). */
    size_t held;
    size_t batch;   /* script replies still to come before the WAIT reply */
    int wait_owed;  /* a WAIT reply is to come */
    int refusing;      /* Redis answers XADD with an error (log once) */
    int unreceived;    /* channel mode: the last PUBLISH reached no saltrelay-down (log once) */
    int unconfirmed;   /* the last WAIT had too few replicas (log once) */
    long long retry_at;
    int dropping;      /* ring full (log once per episode) */
    struct slot overflow; /* receives what a full ring cannot take */
    /* the run of copies that may still grow: the newest slot, not yet sent */
    struct strset run_topics; /* its topics, so a repeat starts a new record */
    int run_open;             /* it ends with a per-minion topic: hold it back */
    long long run_first_ms, run_last_ms; /* monotonic: its first and latest copy */
    int stopping;             /* flush everything, hold nothing */
};

static struct slot *slot_at(struct pub_intake *p, size_t i) { return &p->ring[(p->head + i) % p->cap]; }

static zmq_msg_t *slot_frame(struct slot *s, size_t i)
{
    return i < INLINE_FRAMES ? &s->frame[i] : &s->more[i - INLINE_FRAMES];
}

static void slot_release(struct slot *s)
{
    for (size_t i = 0; i < s->nframes; i++)
        zmq_msg_close(slot_frame(s, i));
    free(s->more);
    s->more = NULL;
    if (s->topics) {
        topiclist_free(s->topics);
        free(s->topics);
        s->topics = NULL;
    }
    s->nframes = 0;
    s->serial = 0;
    s->written = 0;
    s->refused = 0;
}

static size_t slot_bytes(struct slot *s)
{
    size_t n = s->topics ? s->topics->len : 0;
    for (size_t i = 0; i < s->nframes; i++)
        n += zmq_msg_size(slot_frame(s, i));
    return n;
}

static void ring_pop(struct pub_intake *p)
{
    p->bytes -= slot_bytes(slot_at(p, 0));
    slot_release(slot_at(p, 0));
    p->head = (p->head + 1) % p->cap;
    p->count--;
    metric_set(M_PUB_BUFFERED, (int64_t)p->count);
    if (!p->count && p->peak > TRIM_AFTER) {
        /* A burst's frames were allocated by ZeroMQ's I/O thread and freed
         * here; without a trim glibc keeps those pages for good. */
        malloc_trim(0);
        p->peak = 0;
    }
}

/* Where frame N of the message being received goes: a slot frame, or TRASH
 * past PUBREC_MAX_FRAMES (the message will be refused). NULL: out of memory. */
static zmq_msg_t *frame_for(struct slot *s, size_t n, zmq_msg_t *trash)
{
    if (n >= PUBREC_MAX_FRAMES)
        return trash;
    if (n == INLINE_FRAMES && !s->more) /* only here: a later frame must not skip a failed one */
        s->more = malloc((PUBREC_MAX_FRAMES - INLINE_FRAMES) * sizeof *s->more);
    return n >= INLINE_FRAMES && !s->more ? trash : slot_frame(s, n);
}

/* Receive one whole message into S. Returns 1, 0 if none is waiting, -1 if
 * it was refused (too many or too large frames) and discarded. */
static int receive_into(struct pub_intake *p, struct slot *s)
{
    void *sock = zsock_resolve(p->sub);
    size_t n = 0, bytes = 0;
    int more = 1;
    zmq_msg_t trash;
    while (more) {
        zmq_msg_t *m = frame_for(s, n, &trash);
        zmq_msg_init(m);
        int got = zmq_msg_recv(m, sock, n == 0 ? ZMQ_DONTWAIT : 0) >= 0;
        bytes += zmq_msg_size(m);
        more = got && zmq_msg_more(m);
        if (m == &trash || !got) {
            zmq_msg_close(m);
        } else {
            frames_own(m); /* counted is held (frames.h) */
            s->nframes = (unsigned char)(n + 1);
        }
        if (!got) {
            slot_release(s);
            return n == 0 ? 0 : -1;
        }
        n++;
    }
    if (n > s->nframes || bytes > (size_t)p->cfg->max_frame_size) {
        slot_release(s);
        metric_add(M_PUB_BAD, 1);
        log_warn("publication refused: %s (counted in pub_bad_frames_total)",
                 n > PUBREC_MAX_FRAMES ? "more than 8 frames"
                 : n > s->nframes      ? "out of memory"
                                       : "larger than max_frame_size");
        return -1;
    }
    metric_add(M_PUB_IN_MSGS, 1);
    metric_add(M_PUB_IN_BYTES, (int64_t)bytes);
    s->recv_ms = clock_wall_ms();
    return 1;
}

/* The newest buffered slot becomes the run that later copies may join. */
static void start_run(struct pub_intake *p, struct slot *s)
{
    strset_clear(&p->run_topics);
    p->run_open = 0;
    if (s->nframes != 2)
        return;
    zmq_msg_t *t = &s->frame[0];
    if (strset_add(&p->run_topics, zmq_msg_data(t), zmq_msg_size(t)) < 0)
        return;
    p->run_open = topiclist_is_sha1hex(zmq_msg_data(t), zmq_msg_size(t));
    p->run_first_ms = p->run_last_ms = clock_mono_ms();
}

/* The newest slot if it can still take copies: buffered, not yet written. */
static struct slot *run_slot(const struct pub_intake *p)
{
    if (!p->count || p->sent >= p->count || !p->run_topics.count)
        return NULL;
    struct slot *tail = &p->ring[(p->head + p->count - 1) % p->cap];
    return tail->written || tail->nframes != 2 ? NULL : tail;
}

/* Fold message S into the run if it is a copy of its payload under a topic
 * the run does not hold yet. 1 if merged (S is then released). */
static int merge_copy(struct pub_intake *p, struct slot *s)
{
    struct slot *run = run_slot(p);
    if (!run || s->nframes != 2)
        return 0;
    const char *topic = zmq_msg_data(&s->frame[0]);
    size_t tlen = zmq_msg_size(&s->frame[0]), plen = zmq_msg_size(&s->frame[1]);
    if (!topiclist_encodable(tlen) || plen != zmq_msg_size(&run->frame[1]) ||
        memcmp(zmq_msg_data(&s->frame[1]), zmq_msg_data(&run->frame[1]), plen) != 0 ||
        strset_has(&p->run_topics, topic, tlen))
        return 0;
    size_t before = slot_bytes(run);
    if (!run->topics) {
        zmq_msg_t *first = &run->frame[0];
        run->topics = calloc(1, sizeof *run->topics);
        if (!run->topics || topiclist_append(run->topics, zmq_msg_data(first), zmq_msg_size(first)) < 0) {
            free(run->topics);
            run->topics = NULL;
            return 0;
        }
    }
    if (topiclist_append(run->topics, topic, tlen) < 0 || strset_add(&p->run_topics, topic, tlen) < 0)
        return 0; /* topic list full (or no memory): the next record starts here */
    p->bytes += slot_bytes(run) - before;
    p->run_open = topiclist_is_sha1hex(topic, tlen);
    p->run_last_ms = clock_mono_ms();
    slot_release(s);
    metric_add(M_PUB_MERGED, 1);
    return 1;
}

static void drain_sub(struct pub_intake *p)
{
    for (int i = 0; i < DRAIN_MAX; i++) {
        int full = p->count == p->cap || p->bytes >= (size_t)p->cfg->pub_buffer_bytes;
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
                log_error("publication buffer full (%zu messages, %zu bytes; Redis unreachable or slow): "
                          "dropping new publications (counted in pub_dropped_total)", p->count, p->bytes);
            p->dropping = 1;
            continue;
        }
        if (merge_copy(p, s))
            continue;
        p->count++;
        start_run(p, s);
        p->bytes += slot_bytes(s);
        p->peak = p->count > p->peak ? p->count : p->peak;
        metric_set(M_PUB_BUFFERED, (int64_t)p->count);
        if (p->dropping && p->count < p->cap / 2 && p->bytes < (size_t)p->cfg->pub_buffer_bytes / 2) {
            log_info("publication buffer below half full again: no longer dropping");
            p->dropping = 0;
        }
    }
}

/* Stream mode: the store script on this connection (a new primary after a
 * failover, or one whose script cache was flushed, does not have it). */
static int script_ready(struct pub_intake *p)
{
    if (p->channel_mode || p->loaded == rconn_generation(p->rc))
        return 1;
    if (pubstore_load(&p->store, p->rc) < 0)
        return 0;
    p->loaded = rconn_generation(p->rc);
    return 1;
}

static int append_one(struct pub_intake *p, struct slot *s)
{
    struct pubrec rec = {.id = {(uint64_t)s->recv_ms, 0}, .nframes = s->nframes};
    for (size_t i = 0; i < s->nframes; i++) {
        rec.frame[i] = zmq_msg_data(slot_frame(s, i));
        rec.len[i] = zmq_msg_size(slot_frame(s, i));
    }
    if (s->topics) { /* merged copies: the payload once, the topics in a list */
        rec.topics = s->topics->buf;
        rec.topics_len = s->topics->len;
        rec.frame[0] = rec.frame[1];
        rec.len[0] = rec.len[1];
        rec.nframes = 1;
    }
    if (!p->channel_mode)
        return pubstore_append(&p->store, p->pipe, 0, &rec);
    rec.serial = s->serial ? s->serial : p->serial + 1;
    size_t len;
    char *buf = pubrec_pack(&rec, &len);
    int rc = rpipe_append(p->pipe, 0, "PUBLISH %s %b", p->key, buf, len);
    free(buf);
    if (rc == RPIPE_OK && !s->serial)
        s->serial = ++p->serial;
    return rc;
}

/* Classify one reply. 1: stored, 0: already there, -1: refused. */
static int judge_reply(const struct pub_intake *p, const redisReply *r)
{
    if (p->channel_mode)
        return r->type != REDIS_REPLY_ERROR ? 1 : -1;
    return pubstore_judge(r);
}

/* Nothing in flight any more: what was written and not confirmed is sent
 * again (the store script skips what Redis has). */
static void forget_in_flight(struct pub_intake *p)
{
    p->sent = 0;
    p->held = 0;
    p->wait_owed = 0;
}

static int waiting_mode(const struct pub_intake *p)
{
    return !p->channel_mode && p->cfg->pub_wait_replicas > 0;
}

/* After the slots just written: WAIT for the replicas, one reply to come.
 * While the replicas do not confirm, WAIT only looks (1 ms): a replica that
 * is gone must not cost pub_wait_timeout per write. */
static void append_wait(struct pub_intake *p, size_t slots)
{
    long long ms = p->unconfirmed || p->cfg->pub_wait_timeout_ms < 1 ? 1 : p->cfg->pub_wait_timeout_ms;
    /* WAIT n 0 would never return; room for it was kept by send_more */
    rpipe_append(p->pipe, 0, "WAIT %lld %lld", p->cfg->pub_wait_replicas, ms);
    p->batch = slots;
    p->wait_owed = 1;
}

/* Milliseconds the newest record is still held for more copies; 0: not held. */
static long long run_hold_ms(const struct pub_intake *p)
{
    if (p->stopping || !p->run_open || !run_slot(p))
        return 0;
    long long now = clock_mono_ms();
    long long until = p->run_last_ms + p->cfg->pub_merge_window_ms;
    if (until > p->run_first_ms + MERGE_HOLD_MAX_MS)
        until = p->run_first_ms + MERGE_HOLD_MAX_MS;
    return until > now ? until - now : 0;
}

/* Append the buffered messages not yet in flight while the pipeline takes
 * them (keeping room for the WAIT after them), and write what the socket
 * takes. */
static void send_more(struct pub_intake *p)
{
    size_t ready = p->count - (run_hold_ms(p) > 0);
    if (p->wait_owed || p->sent >= ready || clock_mono_ms() < p->retry_at)
        return;
    /* SCRIPT LOAD is a blocking command: only on an idle connection (a new
     * one, which is when the script may be missing) */
    if (!rpipe_inflight(p->pipe) && (!rconn_get(p->rc) || !script_ready(p)))
        return;
    size_t first = p->sent;
    for (; p->sent < ready; p->sent++) {
        struct slot *s = slot_at(p, p->sent);
        size_t room = slot_bytes(s) + (s->topics ? s->topics->len : 0) + CMD_ROOM;
        if (!rpipe_room(p->pipe, 1 + (size_t)waiting_mode(p), room))
            break;
        int resent = s->written && p->channel_mode && !s->refused;
        if (append_one(p, s) != RPIPE_OK)
            break;
        if (resent)
            metric_add(M_PUB_RESENT, 1); /* its PUBLISH may have been delivered: no dedup on a channel */
        s->written = 1;
    }
    if (waiting_mode(p) && p->sent > first)
        append_wait(p, p->sent - first);
    rpipe_io(p->pipe);
}

/* What a successful reply counts as: stored, or in channel mode a PUBLISH
 * that no saltrelay-down received (0 receivers: lost, one line per episode). */
static enum metric_id stored_metric(struct pub_intake *p, const redisReply *r)
{
    if (!p->channel_mode || r->type != REDIS_REPLY_INTEGER)
        return M_PUB_STORED;
    int none = r->integer == 0;
    if (none != p->unreceived)
        log_msg(none ? LOG_LVL_WARN : LOG_LVL_INFO, "%s", none ? "channel mode: no saltrelay-down is subscribed, "
                "publications are lost (counted in pub_unreceived_total)" : "channel mode: publications are received again");
    p->unreceived = none;
    return none ? M_PUB_UNRECEIVED : M_PUB_STORED;
}

/* The WAIT after a write answered: the held slots (every one stored before
 * it) are forgotten; counted as unconfirmed when fewer replicas had them. */
static void handle_wait(struct pub_intake *p, const redisReply *r)
{
    int ok = r->type == REDIS_REPLY_INTEGER && r->integer >= p->cfg->pub_wait_replicas;
    if (!ok)
        metric_add(M_PUB_UNCONFIRMED, (int64_t)p->held);
    if ((!ok) != p->unconfirmed)
        log_msg(ok ? LOG_LVL_INFO : LOG_LVL_WARN, "%s", ok ? "publications are confirmed by the replicas again"
                : "publications not confirmed by pub_wait_replicas replicas within pub_wait_timeout; going on "
                  "(a failover now may lose them; counted in pub_unconfirmed_total)");
    p->unconfirmed = !ok;
    for (; p->held; p->held--, p->sent--)
        ring_pop(p);
    p->wait_owed = 0;
}

/* Is the next reply the WAIT? */
static int wait_due(const struct pub_intake *p)
{
    return p->wait_owed && p->batch == 0;
}

/* A stored (or already stored) slot: forgotten, or held for its WAIT. */
static void slot_done(struct pub_intake *p)
{
    if (!p->wait_owed) {
        ring_pop(p);
        p->sent--;
        return;
    }
    p->held++;
    p->batch--;
}

/* A reply for the oldest slot in flight (or the WAIT after it). A refusal
 * keeps it and every later slot buffered for a retry in a second; the
 * replies already on their way (later slots, WAITs) are read and ignored (a
 * stored one is found stored by the script at the retry). */
static void on_reply(void *arg, uint64_t tag, redisReply *r)
{
    struct pub_intake *p = arg;
    (void)tag;
    if (!r) { /* lost with the connection: what was in flight or held stays buffered */
        forget_in_flight(p);
        p->skip = 0;
        return;
    }
    if (rconn_note_reply(p->rc, r)) { /* demoted by a failover: to the new primary */
        rpipe_fail(p->pipe, "the server is no longer the primary (READONLY)");
        return;
    }
    int verdict = p->skip || wait_due(p) ? 0 : judge_reply(p, r);
    if (p->skip) {
        p->skip--;
    } else if (wait_due(p)) {
        handle_wait(p, r);
    } else if (verdict < 0) {
        slot_at(p, p->held)->refused = 1;
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
            p->loaded = 0; /* SCRIPT FLUSH: load it again */
        if (!p->refusing)
            log_error("redis refuses publications (%s); keeping them buffered and retrying",
                      r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        p->refusing = 1;
        p->retry_at = clock_mono_ms() + 1000;
        p->skip = p->sent - p->held - 1 + (size_t)p->wait_owed;
        forget_in_flight(p);
    } else {
        metric_add(verdict ? stored_metric(p, r) : M_PUB_DUP_SKIPPED, 1);
        slot_done(p);
        if (p->refusing)
            log_info("redis accepts publications again");
        p->refusing = 0;
    }
}

/* Move publications towards Redis: replies first (they free ring slots). */
static void pump(struct pub_intake *p)
{
    rpipe_io(p->pipe);
    send_more(p);
}

static void note_monitor_event(struct pub_intake *p)
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

static int pub_intake_open(void *self, const struct config *cfg)
{
    struct pub_intake *p = self;
    p->cfg = cfg;
    p->channel_mode = strcmp(cfg->mode, "channel") == 0;
    if (p->channel_mode)
        key_pub_channel(p->key, cfg->cluster);
    else
        pubstore_init(&p->store, cfg->cluster, cfg->stream_maxlen, cfg->pub_dedup_window_ms);
    p->cap = (size_t)(cfg->pub_buffer > 0 ? cfg->pub_buffer : 1);
    strset_init(&p->run_topics, TOPICLIST_MAX_COUNT);
    p->ring = calloc(p->cap, sizeof *p->ring);
    p->rc = rconn_new(&cfg->redis_url, "primary (publications)", REPLY_TIMEOUT_MS);
    p->pipe = p->rc ? rpipe_new(p->rc, PIPE_BYTES, INFLIGHT_MAX + 1, (int)(REPLY_TIMEOUT_MS + cfg->pub_wait_timeout_ms),
                                on_reply, p) : NULL;
    p->sub = zsock_new(ZMQ_SUB);
    if (!p->ring || !p->pipe || !p->sub)
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
    p->opened = 1;
    return 0;
}

static void pub_intake_close(void *self)
{
    struct pub_intake *p = self;
    if (p->opened && p->count)
        log_error("stopping with %zu publications not stored in Redis (lost)", p->count);
    rpipe_destroy(&p->pipe); /* before the ring: what it hands back as lost refers to it */
    while (p->count)
        ring_pop(p);
    strset_free(&p->run_topics);
    zactor_destroy(&p->monitor);
    zsock_destroy(&p->sub);
    rconn_destroy(&p->rc);
    free(p->ring);
}

static int loop_timeout(const struct pub_intake *p)
{
    long long hold = run_hold_ms(p);
    if (hold > 0 && p->sent + 1 >= p->count)
        return (int)(hold < 100 ? hold : 100); /* wake to send the run once its window is over */
    if (rpipe_inflight(p->pipe))
        return 100; /* replies awaited: the Redis socket wakes us */
    if (!p->count)
        return 1000;
    int retry = rconn_retry_in_ms(p->rc);
    return retry > 0 ? retry : 10;
}

/* The SUB socket and the monitor (not while stopping) and, while replies are
 * awaited, the Redis socket. */
static void pub_intake_wait(void *self, struct part_poll *w, int stopping)
{
    struct pub_intake *p = self;
    p->ev_sub = stopping ? -1 : part_poll_socket(w, p->sub, ZMQ_POLLIN);
    p->ev_monitor = stopping ? -1 : part_poll_socket(w, p->monitor, ZMQ_POLLIN);
    rpipe_wait(p->pipe, w);
    part_poll_timeout(w, stopping ? 50 : loop_timeout(p));
}

static void pub_intake_turn(void *self, const struct part_poll *w)
{
    struct pub_intake *p = self;
    if (part_poll_revents(w, p->ev_monitor) & ZMQ_POLLIN)
        note_monitor_event(p);
    if (part_poll_revents(w, p->ev_sub) & ZMQ_POLLIN)
        drain_sub(p);
    pump(p);
}

/* After the stop request: take what the SUB socket holds, then store the
 * buffer (bounded by drain_ms). */
static int pub_intake_drain(void *self, const struct part_poll *w)
{
    struct pub_intake *p = self;
    (void)w;
    if (!p->draining) {
        p->draining = 1;
        drain_sub(p);
        p->stopping = 1;
        send_more(p);
    } else {
        pump(p);
    }
    return p->count > 0;
}

const struct part_def pub_intake_part = {
    .name = "publication intake",
    .size = sizeof(struct pub_intake),
    .drain_ms = STOP_FLUSH_MS,
    .open = pub_intake_open,
    .wait = pub_intake_wait,
    .turn = pub_intake_turn,
    .drain = pub_intake_drain,
    .close = pub_intake_close,
};
