/* pub_output.c -- saltrelay-down's publication output.
 *
 * Reads the cluster's publication stream (XREAD, batches, from `redis`, which
 * may be a read-only replica) and sends each record's frames unchanged on the
 * PUB socket at publish_bind, so that ZeroMQ topic filtering at the minions
 * and syndics works as with a direct MoM.
 *
 * Delivery is tracked by a cursor (last stream ID handled; pub_cursor.c) saved
 * in state_dir/pub.state (one pwrite into the file kept open, see
 * statefile.h; fdatasync once a second); a restart resumes right after it.
 * The cursor saved is the newest record known to have left ZeroMQ
 * (pub_flow.h), for every subscriber, filtered or not (pub_class.h), not the
 * last one handed to it: a SIGKILL repeats the few after it (Salt minions
 * ignore a jid they have already run) but never skips what ZeroMQ still held; a clean stop waits up to pub_drain_timeout for the
 * subscribers to take it all. A subscriber whose queue stays full loses
 * publications, counted (pub_flow.h: deliver or count). After a restart the backlog is held until as many
 * subscribers as were connected before are back with as many subscriptions
 * (pub_subs.h; however late they come), or subscriber_grace passed:
 * a PUB socket drops what it sends to nobody. A publication delivered lately
 * that comes again under a new ID (re-sent by saltrelay-up after a Redis
 * failover) is skipped and counted (pubseen.h).
 *
 * A merged record (version 2, copies of one payload under many topics) is
 * sent as one [topic, payload] message per topic, in order, byte-identical to
 * what the MoM sent; the socket is an XPUB so that topics no local subscriber
 * asked for are skipped (pub_subs.h), and the payload is copied into ZeroMQ
 * once and shared by every message. */
#include "pub_output.h"
#include "pub_output_int.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "dcsock.h"
#include "part.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "pubrec.h"
#include "pubseen.h"
#include "pubtop.h"
#include "pub_flow.h"
#include "rconn.h"
#include "pub_subs.h"
#include "statefile.h"
#include "topiclist.h"


/* A monitor event: [name, value (the connection's descriptor), endpoint]. */
static void note_monitor_event(struct pub_output *p)
{
    zmsg_t *ev = zmsg_recv(p->monitor);
    char *name = ev ? zmsg_popstr(ev) : NULL;
    char *value = ev ? zmsg_popstr(ev) : NULL;
    int fd = value ? atoi(value) : -1;
    if (name && strcmp(name, "ACCEPTED") == 0) {
        p->subscribers++;
        pub_flow_watch(&p->flow, fd, 1);
    } else if (name && strcmp(name, "DISCONNECTED") == 0) {
        p->subscribers -= p->subscribers > 0;
        pub_flow_watch(&p->flow, fd, 0);
    }
    metric_set(M_SUBSCRIBERS, p->subscribers);
    free(name);
    free(value);
    zmsg_destroy(&ev);
    cursor_save(p, 0);
}

/* Take every monitor event waiting. */
static void take_monitor_events(struct pub_output *p)
{
    while (zsock_events(p->monitor) & ZMQ_POLLIN)
        note_monitor_event(p);
}

/* After a restart: hold the backlog until as many subscribers as before are
 * back with as many subscriptions as they held (each sent after its
 * connection's handshake, however late ZeroMQ or the subscriber gets the
 * CPU), or subscriber_grace passed. */
static void start_hold(struct pub_output *p)
{
    if (p->expected <= 0)
        return;
    p->hold_until = clock_mono_ms() + p->cfg->subscriber_grace_ms;
    log_info("holding publications until %d subscriber(s) reconnect with %lu subscription(s) (at most %.0f s)",
             p->expected, p->expected_subs, p->cfg->subscriber_grace_ms / 1000.0);
}

/* One turn of the hold: ends it when its time has come. */
static void hold_turn(struct pub_output *p)
{
    int back = p->subscribers >= p->expected && p->subs.live >= p->expected_subs;
    if (!back && clock_mono_ms() < p->hold_until)
        return;
    p->holding = 0;
    log_info("delivering: %d subscriber(s) connected, %lu subscription(s)%s", p->subscribers, p->subs.live,
             back ? "" : " (grace period over)");
}

static void send_frames(struct pub_output *p, const struct pubrec *rec)
{
    size_t bytes = 0;
    for (size_t i = 0; i < rec->nframes; i++)
        bytes += rec->len[i];
    if (rec->nframes == 0)
        return;
    void *sock = zsock_resolve(p->pub);
    pub_subs_drain(&p->subs, sock); /* the class follows ZeroMQ's own filter (pub_subs.c) */
    int klen = pub_subs_class(&p->subs, rec->frame[0], rec->len[0]);
    int rc = pub_flow_send(&p->flow, sock, (const void *const *)rec->frame, rec->len, rec->nframes, NULL,
                           rec->frame[0], klen);
    if (pub_subs_drain(&p->subs, sock) > 0)
        pub_flow_untrack_last(&p->flow); /* the send may have matched them (pub_class.h) */
    if (rc < 0)
        return;
    metric_add(M_PUB_OUT_MSGS, 1);
    metric_add(M_PUB_OUT_BYTES, (int64_t)bytes);
}

/* A merged record: [topic, payload] per topic some local subscriber wants. */
static void send_topics(struct pub_output *p, const struct pubrec *rec)
{
    void *sock = zsock_resolve(p->pub);
    pub_subs_drain(&p->subs, sock);
    zmq_msg_t payload;
    if (zmq_msg_init_size(&payload, rec->len[0]) < 0)
        return;
    memcpy(zmq_msg_data(&payload), rec->frame[0], rec->len[0]);
    struct topiclist_iter it;
    char topic[TOPICLIST_MAX_TOPIC];
    size_t tlen;
    int64_t sent = 0, skipped = 0, bytes = 0;
    topiclist_iter_init(&it, rec->topics, rec->topics_len);
    while (topiclist_next(&it, topic, &tlen) > 0) {
        int klen = pub_subs_class(&p->subs, topic, tlen);
        if (klen == PUB_FLOW_NOBODY) {
            skipped++;
            continue;
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_copy(&m, &payload); /* shares the buffer: no copy per topic */
        const void *t = topic;
        int rc = pub_flow_send(&p->flow, sock, &t, &tlen, 1, &m, topic, klen);
        if (pub_subs_drain(&p->subs, sock) > 0)
            pub_flow_untrack_last(&p->flow); /* the send may have matched them (pub_class.h) */
        if (rc < 0) {
            zmq_msg_close(&m);
            continue;
        }
        sent++;
        bytes += (int64_t)(tlen + rec->len[0]);
    }
    zmq_msg_close(&payload);
    metric_add(M_PUB_OUT_MSGS, sent);
    metric_add(M_PUB_OUT_BYTES, bytes);
    metric_add(M_PUB_TOPICS_SKIPPED, skipped);
}

static void end_expired_run(struct pub_output *p)
{
    if (p->expired_run)
        log_warn("skipped %llu publication(s) older than replay_max_age (%.0f s); delivering again",
                 (unsigned long long)p->expired_run, p->cfg->replay_max_age_ms / 1000.0);
    p->expired_run = 0;
}

/* Check serial continuity: a jump means entries were trimmed unread. */
static void check_serial(struct pub_output *p, uint64_t serial)
{
    if (p->serial && serial > p->serial + 1) {
        uint64_t lost = serial - p->serial - 1;
        metric_add(M_PUB_GAP, (int64_t)lost);
        log_error("%llu publication(s) were trimmed from Redis before this DC read them "
                  "(stream_maxlen too small for the outage); continuing with the oldest available",
                  (unsigned long long)lost);
    } else if (p->serial && serial <= p->serial) {
        log_warn("publication serials restarted at %llu (stream recreated?); continuing",
                 (unsigned long long)serial);
    }
}

static void deliver(struct pub_output *p, const struct pubrec *rec)
{
    long long now = clock_wall_ms();
    long long age = now - (long long)rec->id.ms;
    if (p->cfg->replay_max_age_ms > 0 && age > p->cfg->replay_max_age_ms) {
        if (!p->expired_run++)
            log_warn("publication %.1f s old is past replay_max_age: not sending it, nor any "
                     "other that old", age / 1000.0);
        metric_add(M_PUB_EXPIRED, 1);
    } else {
        end_expired_run(p);
        if (rec->topics)
            send_topics(p, rec);
        else
            send_frames(p, rec);
        metric_set(M_CURSOR_LAG_MS, age > 0 ? age : 0);
    }
    cursor_publish(p, now);
}

/* One XREAD entry: decode, deliver, move the cursor. -1 if the reply is unusable. */
static int handle_entry(struct pub_output *p, const redisReply *e)
{
    struct pubrec rec;
    const char *why;
    if (pubrec_from_entry(e, &rec, &why) < 0) {
        struct streamid id;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 || e->element[0]->type != REDIS_REPLY_STRING ||
            streamid_parse(e->element[0]->str, (size_t)e->element[0]->len, &id) < 0)
            return -1;
        metric_add(M_PUB_DECODE_ERR, 1);
        log_warn("skipping malformed entry %.*s of %s: %s (counted in pub_decode_errors_total)",
                 (int)e->element[0]->len, e->element[0]->str, p->key, why);
        p->cursor = id;
        p->have_cursor = 1;
        pub_flow_handed(&p->flow, id, p->serial);
        return 0;
    }
    int again = rec.hash && pubseen_check(p->seen, rec.hash, rec.hashlen, rec.version == 3) == 1;
    if (again && !p->dup_run++)
        log_warn("skipping publications delivered already under other IDs (re-sent after a Redis failover; "
                 "counted in pub_duplicates_skipped_total)");
    if (again)
        metric_add(M_PUB_DC_DUP, 1);
    else
        check_serial(p, rec.serial);
    if (!again && p->dup_run) {
        log_info("skipped %llu publication(s) delivered already; delivering again", (unsigned long long)p->dup_run);
        p->dup_run = 0;
    }
    p->cursor = rec.id; /* before deliver(), which exports the cursor */
    p->serial = rec.serial;
    p->have_cursor = 1;
    if (!again)
        deliver(p, &rec);
    else
        cursor_publish(p, clock_wall_ms());
    pub_flow_handed(&p->flow, rec.id, rec.serial);
    return 0;
}

/* A first start has no cursor: begin at the stream's current end. */
static int init_cursor(struct pub_output *p)
{
    if (pubtop_read(p->rc, p->key, &p->cursor, &p->serial) < 0)
        return -1;
    p->have_cursor = 1;
    cursor_publish(p, 0);
    char id[STREAMID_STRLEN];
    log_info("no cursor in %s: starting at the end of the stream (%s)", p->cfg->state_dir,
             streamid_format(p->cursor, id));
    cursor_sent(p);
    cursor_save(p, 1);
    return 0;
}

/* An error reply to XREAD is Redis refusing for now (LOADING after a
 * restart, MASTERDOWN on a replica whose link is down with
 * replica-serve-stale-data no), not a malformed entry: one log line per
 * episode, nothing counted, the next XREAD a second later on the same
 * connection. Returns 1 if R was such a reply. */
static int note_read_refusal(struct pub_output *p, const redisReply *r)
{
    int refused = r->type == REDIS_REPLY_ERROR;
    if (refused && !p->read_refused)
        log_warn("redis refuses to read %s (%s); retrying every second", p->key, r->str);
    else if (!refused && p->read_refused)
        log_info("redis reads of %s work again", p->key);
    p->read_refused = refused;
    if (refused)
        p->read_retry_at = clock_mono_ms() + READ_RETRY_MS;
    return refused;
}

static void read_stream(struct pub_output *p)
{
    if (clock_mono_ms() < p->read_retry_at)
        return;
    if (!p->have_cursor && init_cursor(p) < 0)
        return;
    char id[STREAMID_STRLEN];
    /* while sent records wait to be known sent, wake within the quiet period to check */
    int block = p->flow.n ? SETTLE_BLOCK_MS : READ_BLOCK_MS;
    redisReply *r = rconn_command(p->rc, "XREAD COUNT %lld BLOCK %d STREAMS %s %s", p->cfg->read_batch,
                                  block, p->key, streamid_format(p->cursor, id));
    if (!r)
        return;
    if (note_read_refusal(p, r)) {
        freeReplyObject(r);
        return;
    }
    int bad = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2 && r->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
        const redisReply *entries = r->element[0]->element[1];
        long long now = clock_mono_ms(), until = now + TURN_BUDGET_MS, save_at = now + SAVE_EVERY_MS;
        for (size_t i = 0; i < entries->elements && !bad && now < until; i++) { /* the rest: read again */
            bad = handle_entry(p, entries->element[i]) < 0;
            now = clock_mono_ms();
            if (now >= save_at) { /* sends waited for a slow subscriber: keep the saved cursor close */
                cursor_save_left(p);
                save_at = now + SAVE_EVERY_MS;
            }
        }
    } else if (r->type != REDIS_REPLY_NIL) {
        bad = 1;
    }
    if (bad) {
        metric_add(M_PUB_DECODE_ERR, 1);
        log_error("unexpected XREAD reply from redis (wrong shape); reconnecting");
        rconn_fail(p->rc, "unexpected XREAD reply");
    }
    freeReplyObject(r);
}

static void handle_channel_message(struct pub_output *p, redisReply *m)
{
    struct pubrec rec;
    const char *why;
    if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 || m->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(m->element[0]->str, "message") != 0 || m->element[2]->type != REDIS_REPLY_STRING)
        return; /* subscribe confirmations */
    if (pubrec_unpack(m->element[2]->str, (size_t)m->element[2]->len, &rec, &why) < 0) {
        metric_add(M_PUB_DECODE_ERR, 1);
        log_warn("skipping malformed message on %s: %s", p->key, why);
        return;
    }
    check_serial(p, rec.serial);
    p->serial = rec.serial;
    deliver(p, &rec);
}

/* Channel mode: no cursor; wait on the socket, never past READ_BLOCK_MS. */
static void read_channel(struct pub_output *p)
{
    redisContext *c = rconn_get(p->rc);
    if (!c)
        return;
    if (!p->subscribed) {
        redisAppendCommand(c, "SUBSCRIBE %s", p->key);
        p->subscribed = 1;
        p->serial = 0; /* messages published while unsubscribed are gone anyway */
    }
    int done = 0;
    if (redisBufferWrite(c, &done) != REDIS_OK) {
        rconn_fail(p->rc, "write failed");
        p->subscribed = 0;
        return;
    }
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    if (poll(&pfd, 1, READ_BLOCK_MS) > 0 && redisBufferRead(c) != REDIS_OK) {
        rconn_fail(p->rc, c->errstr[0] ? c->errstr : "read failed");
        p->subscribed = 0;
        return;
    }
    void *reply = NULL;
    int rc;
    while ((rc = redisGetReplyFromReader(c, &reply)) == REDIS_OK && reply) {
        handle_channel_message(p, reply);
        freeReplyObject(reply);
        reply = NULL;
    }
    if (rc != REDIS_OK) { /* a protocol error: this context is unusable */
        rconn_fail(p->rc, c->errstr[0] ? c->errstr : "protocol error");
        p->subscribed = 0;
    }
}

/* A send is about to wait for a subscriber's room (pub_flow.h). */
static void save_before_wait(void *self) { cursor_save_left(self); }

static int pub_output_open(void *self, const struct config *cfg)
{
    struct pub_output *p = self;
    p->cfg = cfg;
    p->channel_mode = strcmp(p->cfg->mode, "channel") == 0;
    if (p->channel_mode)
        key_pub_channel(p->key, p->cfg->cluster);
    else
        key_pub_stream(p->key, p->cfg->cluster);
    p->sf.fd = -1;
    if (pub_flow_init(&p->flow, (int)p->cfg->pub_hwm, p->cfg->pub_slow_wait_ms) < 0)
        return -1;
    p->flow.before_wait = save_before_wait;
    p->flow.before_wait_arg = p;
    if (cursor_load(p) < 0)
        return -1;
    p->loaded = 1;
    cursor_sent(p);
    cursor_save(p, 1);
    if (p->state_error)
        return -1;
    /* blocking reads need a socket timeout longer than their BLOCK */
    p->rc = rconn_new(&p->cfg->redis_url, "publications", READ_BLOCK_MS + 2000);
    p->pub = zsock_new(ZMQ_XPUB);
    p->seen = pubseen_new();
    if (!p->rc || !p->pub || !p->seen)
        return -1;
    pub_subs_init(&p->subs);
    pub_subs_socket(zsock_resolve(p->pub));
    dcsock_setup(p->pub, p->cfg);
    pub_flow_socket(&p->flow, zsock_resolve(p->pub));
    zsock_set_linger(p->pub, 2000);
    p->monitor = zactor_new(zmonitor, p->pub);
    zstr_sendx(p->monitor, "LISTEN", "ACCEPTED", "DISCONNECTED", NULL);
    zstr_sendx(p->monitor, "START", NULL);
    zsock_wait(p->monitor);
    if (zsock_bind(p->pub, "%s", p->cfg->publish_bind) < 0) {
        log_error("cannot bind publish_bind %s: %s", p->cfg->publish_bind, zmq_strerror(zmq_errno()));
        return -1;
    }
    start_hold(p);
    return 0;
}

static void pub_output_close(void *self)
{
    struct pub_output *p = self;
    end_expired_run(p);
    pub_flow_end_slow(&p->flow);
    cursor_save_left(p); /* what left ZeroMQ: all of it if the drain finished */
    if (p->loaded && p->state_error == 0 && p->sf.fd >= 0) /* never overwrite a state we refused */
        cursor_save(p, 1);
    statefile_close(&p->sf);
    zactor_destroy(&p->monitor);
    zsock_destroy(&p->pub);
    pub_subs_free(&p->subs);
    rconn_destroy(&p->rc);
    pubseen_free(p->seen);
    pub_flow_free(&p->flow);
}

/* A clean stop: wait up to pub_drain_timeout until the subscribers took all
 * that was handed to ZeroMQ, so that the final cursor covers it. */
static int pub_output_drain(void *self, const struct part_poll *w)
{
    struct pub_output *p = self;
    long long now = clock_mono_ms();
    if (!p->drain_until)
        p->drain_until = now + p->cfg->pub_drain_timeout_ms;
    if (part_poll_revents(w, p->ev_monitor) & ZMQ_POLLIN)
        take_monitor_events(p);
    if (p->channel_mode || pub_flow_settle(&p->flow, now))
        return 0;
    if (now < p->drain_until)
        return 1;
    log_warn("stopping before the subscribers took all that was sent (pub_drain_timeout): the cursor saved is "
             "the last publication known sent, a restart sends the %zu after it again", p->flow.n);
    return 0;
}

static void pub_output_wait(void *self, struct part_poll *w, int stopping)
{
    struct pub_output *p = self;
    p->ev_monitor = part_poll_socket(w, p->monitor, ZMQ_POLLIN);
    p->ev_pub = part_poll_socket(w, p->pub, ZMQ_POLLIN); /* subscriptions (XPUB) */
    if (stopping)
        part_poll_timeout(w, 20); /* the drain looks at the send queues */
    else if (p->holding)
        part_poll_timeout(w, 100);
    else if (clock_mono_ms() < p->read_retry_at)
        part_poll_timeout(w, p->read_retry_at - clock_mono_ms());
    else
        part_poll_timeout(w, rconn_retry_in_ms(p->rc) > 200 ? 200 : rconn_retry_in_ms(p->rc));
}

/* Monitor events, then (after the hold) one read: XREAD blocks up to
 * READ_BLOCK_MS, the channel's read waits as long. */
static void pub_output_turn(void *self, const struct part_poll *w)
{
    struct pub_output *p = self;
    if (part_poll_revents(w, p->ev_monitor) & ZMQ_POLLIN)
        take_monitor_events(p);
    if (part_poll_revents(w, p->ev_pub) & ZMQ_POLLIN)
        pub_subs_drain(&p->subs, zsock_resolve(p->pub));
    if (p->holding) {
        hold_turn(p);
        cursor_save_subs(p);
        return;
    }
    if (p->channel_mode)
        read_channel(p);
    else
        read_stream(p);
    /* the kernel can tell whether all has left once nothing new was sent for a while;
     * a steady trickle of publications never leaves an XREAD idle, so check every turn;
     * every connection accepted so far must be watched (the sweeps, pub_flow.h) */
    take_monitor_events(p);
    pub_flow_settle(&p->flow, clock_mono_ms());
    cursor_save_left(p);
    cursor_save_subs(p);
    if (clock_mono_ms() - p->synced_at > SYNC_EVERY_MS)
        cursor_sync(p);
}

const struct part_def pub_output_part = {
    .name = "publication output",
    .size = sizeof(struct pub_output),
    .open = pub_output_open,
    .wait = pub_output_wait,
    .turn = pub_output_turn,
    .drain = pub_output_drain,
    .drain_ms = 3600 * 1000, /* bounded by pub_drain_timeout */
    .close = pub_output_close,
};
