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
#include "pub_ring.h"

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

size_t pub_slot_bytes(struct slot *s)
{
    size_t n = s->topics ? s->topics->len : 0;
    for (size_t i = 0; i < s->nframes; i++)
        n += zmq_msg_size(slot_frame(s, i));
    return n;
}

void pub_ring_pop(struct pub_intake *p)
{
    p->bytes -= pub_slot_bytes(slot_at(p, 0));
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
    size_t before = pub_slot_bytes(run);
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
    p->bytes += pub_slot_bytes(run) - before;
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
        p->bytes += pub_slot_bytes(s);
        p->peak = p->count > p->peak ? p->count : p->peak;
        metric_set(M_PUB_BUFFERED, (int64_t)p->count);
        if (p->dropping && p->count < p->cap / 2 && p->bytes < (size_t)p->cfg->pub_buffer_bytes / 2) {
            log_info("publication buffer below half full again: no longer dropping");
            p->dropping = 0;
        }
    }
}

/* Milliseconds the newest record is still held for more copies; 0: not held. */
long long pub_run_hold_ms(const struct pub_intake *p)
{
    if (p->stopping || !p->run_open || !run_slot(p))
        return 0;
    long long now = clock_mono_ms();
    long long until = p->run_last_ms + p->cfg->pub_merge_window_ms;
    if (until > p->run_first_ms + MERGE_HOLD_MAX_MS)
        until = p->run_first_ms + MERGE_HOLD_MAX_MS;
    return until > now ? until - now : 0;
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
        long long join = clock_mono_ms() + JOIN_HOLD_MS;
        if (!p->joined && !p->channel_mode)
            p->retry_at = p->retry_at > join ? p->retry_at : join;
        p->joined = 1;
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
    int timeout = (int)(REPLY_TIMEOUT_MS + cfg->pub_wait_timeout_ms); /* a WAIT may take its own */
    p->pipe = p->rc ? rpipe_new(p->rc, PIPE_BYTES, INFLIGHT_MAX + 1, timeout, pub_on_reply, p) : NULL;
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
        pub_ring_pop(p);
    strset_free(&p->run_topics);
    zactor_destroy(&p->monitor);
    zsock_destroy(&p->sub);
    rconn_destroy(&p->rc);
    free(p->ring);
}

static int loop_timeout(const struct pub_intake *p)
{
    long long hold = pub_run_hold_ms(p);
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
    pub_pump(p);
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
        pub_send_more(p);
    } else {
        pub_pump(p);
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
