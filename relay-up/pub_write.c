/* pub_write.c -- publication intake's writer (see pub_write.h, and
 * pub_intake.c for the whole): the buffered messages go to Redis through the
 * Redis pipeline (rpipe.h): in stream mode a batch of slots per call of the
 * store script (pubstore.h), tagged with its number of slots, in channel
 * mode one PUBLISH per slot; each reply taken for the oldest slots in
 * flight, and with pub_wait_replicas a WAIT after each write. */
#include "pub_write.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "pubrec.h"

#define INFLIGHT_MAX 2048   /* commands written whose replies are awaited */
#define REPLY_TIMEOUT_MS 2000 /* no reply for that long (+ pub_wait_timeout): the connection is dead */
#define PIPE_BYTES (16 << 20) /* formatted commands in flight at once (one larger goes alone) */
#define CMD_ROOM 1024       /* a command's formatted size beyond its frames and topics, at most */
/* Store script calls awaiting their replies at once: enough to keep Redis
 * busy; past it the ring fills meanwhile and the next call takes more. */
#define BATCHES_IN_FLIGHT 4
/* A batch whose predecessor Redis lacks is tried again every ORDER_RETRY_MS
 * for up to ORDER_WAIT_MS: long enough for another instance, reconnecting to
 * the new primary too, to re-send what it still holds; a lone instance (or a
 * predecessor lost by all) pays it once per such failover. */
#define ORDER_RETRY_MS 20
#define ORDER_WAIT_MS 2000

/* Stream mode: the store script on this connection (a new primary after a
 * failover, or one whose script cache was flushed, does not have it). */
static int script_ready(struct pub_write *w)
{
    if (w->channel_mode || w->loaded == rconn_generation(w->rc))
        return 1;
    if (pubstore_load(&w->store, w->rc) < 0)
        return 0;
    w->loaded = rconn_generation(w->rc);
    return 1;
}

/* Slot S as a record (its frames stay where they are). */
static void slot_record(struct pub_slot *s, struct pubrec *rec)
{
    *rec = (struct pubrec){.id = {(uint64_t)s->recv_ms, 0}, .nframes = s->nframes};
    for (size_t i = 0; i < s->nframes; i++) {
        rec->frame[i] = zmq_msg_data(pub_slot_frame(s, i));
        rec->len[i] = zmq_msg_size(pub_slot_frame(s, i));
    }
    if (s->topics) { /* merged copies: the payload once, the topics in a list */
        rec->topics = s->topics->buf;
        rec->topics_len = s->topics->len;
        rec->frame[0] = rec->frame[1];
        rec->len[0] = rec->len[1];
        rec->nframes = 1;
    }
}

/* Channel mode: one PUBLISH of slot S. */
static int publish_one(struct pub_write *w, struct pub_slot *s)
{
    struct pubrec rec;
    slot_record(s, &rec);
    rec.serial = s->serial ? s->serial : w->serial + 1;
    size_t len;
    char *buf = pubrec_pack(&rec, &len);
    int rc = rpipe_append(w->pipe, 1, "PUBLISH %s %b", w->key, buf, len);
    free(buf);
    if (rc == RPIPE_OK && !s->serial)
        s->serial = ++w->serial;
    return rc;
}

static int waiting_mode(const struct pub_write *w)
{
    return !w->channel_mode && w->cfg->pub_wait_replicas > 0;
}

/* The hash of the slot before slot SENT (one in flight, or the newest
 * stored), or NULL: none received within half the dedup window (the index
 * no longer holds older ones), or the wait for it ran out. */
static const unsigned char *order_pred(struct pub_write *w)
{
    const unsigned char *h = w->last_hash;
    long long ms = w->last_ms;
    if (w->sent) {
        struct pub_slot *s = pub_ring_at(w->ring, w->sent - 1);
        h = s->hash;
        ms = s->recv_ms;
    }
    if (w->order_since && clock_mono_ms() - w->order_since >= ORDER_WAIT_MS) {
        w->order_forced = 1;
        return NULL;
    }
    return ms && clock_wall_ms() - ms < w->cfg->pub_dedup_window_ms / 2 ? h : NULL;
}

/* Stream mode: the slots from SENT on (fewer than READY), up to a batch,
 * in one call of the store script, tagged with their number. How many went. */
static size_t append_batch(struct pub_write *w, size_t ready)
{
    struct pubstore_batch *b = &w->pending;
    pubstore_batch_begin(&w->store, b, order_pred(w), pub_ring_at(w->ring, w->sent)->recv_ms);
    size_t k = 0;
    for (; w->sent + k < ready && k < PUBSTORE_BATCH_MAX; k++) {
        struct pub_slot *s = pub_ring_at(w->ring, w->sent + k);
        struct pubrec rec;
        slot_record(s, &rec);
        size_t cost = pubstore_batch_cost(&rec);
        if ((k && b->len + cost > PUBSTORE_BATCH_BYTES) ||
            !rpipe_room(w->pipe, 1 + (size_t)waiting_mode(w), b->len + cost) ||
            pubstore_batch_add(b, &rec, s->hash) < 0)
            break;
    }
    if (!k || pubstore_batch_send(b, w->pipe, k) != RPIPE_OK)
        return 0;
    for (size_t i = 0; i < k; i++)
        pub_ring_at(w->ring, w->sent + i)->written = 1;
    return k;
}

/* Channel mode: slot SENT alone. 1 if it went. */
static size_t append_one(struct pub_write *w)
{
    struct pub_slot *s = pub_ring_at(w->ring, w->sent);
    size_t room = pub_slot_bytes(s) + (s->topics ? s->topics->len : 0) + CMD_ROOM;
    if (!rpipe_room(w->pipe, 1, room))
        return 0;
    int resent = s->written && !s->refused;
    if (publish_one(w, s) != RPIPE_OK)
        return 0;
    if (resent)
        metric_add(M_PUB_RESENT, 1); /* its PUBLISH may have been delivered: no dedup on a channel */
    s->written = 1;
    return 1;
}

/* Nothing in flight any more: what was written and not confirmed is sent
 * again (the store script skips what Redis has). */
static void forget_in_flight(struct pub_write *w)
{
    w->sent = 0;
    w->held = 0;
    w->wait_owed = 0;
}

/* After the commands just written: WAIT for the replicas, one reply to come.
 * While the replicas do not confirm, WAIT only looks (1 ms): a replica that
 * is gone must not cost pub_wait_timeout per write. */
static void append_wait(struct pub_write *w, size_t cmds)
{
    long long ms = w->unconfirmed || w->cfg->pub_wait_timeout_ms < 1 ? 1 : w->cfg->pub_wait_timeout_ms;
    /* WAIT n 0 would never return; room for it was kept by pub_write_more */
    rpipe_append(w->pipe, 0, "WAIT %lld %lld", w->cfg->pub_wait_replicas, ms);
    w->batch = cmds;
    w->wait_owed = 1;
}

/* The oldest slot is done with (stored): popped from the ring. */
static void pop_head(struct pub_write *w)
{
    struct pub_slot *s = pub_ring_at(w->ring, 0);
    if (!w->channel_mode) {
        memcpy(w->last_hash, s->hash, sizeof w->last_hash);
        w->last_ms = s->recv_ms;
    }
    pub_ring_pop(w->ring);
    w->join_from -= w->join_from > 0;
}

/* Slots at the head that may be written now: not the run of copies still
 * held for more, nor what came after a (re)connect while its join hold is
 * on (a stop stores everything). */
static size_t ready_slots(const struct pub_write *w)
{
    size_t ready = w->ring->count - (pub_ring_hold_ms(w->ring) > 0);
    if (w->join_from < ready && !w->ring->stopping && clock_mono_ms() < w->join_until)
        ready = w->join_from;
    return ready;
}

/* Append the buffered messages not yet in flight while the pipeline takes
 * them (keeping room for the WAIT after them), and write what the socket
 * takes. Stream mode: batches, at most BATCHES_IN_FLIGHT awaiting replies;
 * under a flood the ring fills meanwhile and the next batch is larger. */
void pub_write_more(struct pub_write *w)
{
    size_t ready = ready_slots(w);
    if (w->wait_owed || w->sent >= ready || clock_mono_ms() < w->retry_at)
        return;
    /* SCRIPT LOAD is a blocking command: only on an idle connection (a new
     * one, which is when the script may be missing) */
    if (!rpipe_inflight(w->pipe) && (!rconn_get(w->rc) || !script_ready(w)))
        return;
    size_t cmds = 0;
    while (w->sent < ready && (w->channel_mode || rpipe_inflight(w->pipe) < BATCHES_IN_FLIGHT)) {
        size_t k = w->channel_mode ? append_one(w) : append_batch(w, ready);
        if (!k)
            break;
        w->sent += k;
        cmds++;
    }
    if (waiting_mode(w) && cmds)
        append_wait(w, cmds);
    rpipe_io(w->pipe);
}

/* What a successful reply counts as: stored, or in channel mode a PUBLISH
 * that no saltrelay-down received (0 receivers: lost, one line per episode). */
static enum metric_id stored_metric(struct pub_write *w, const redisReply *r)
{
    if (!w->channel_mode || r->type != REDIS_REPLY_INTEGER)
        return M_PUB_STORED;
    int none = r->integer == 0;
    if (none != w->unreceived)
        log_msg(none ? LOG_LVL_WARN : LOG_LVL_INFO, "%s", none ? "channel mode: no saltrelay-down is subscribed, "
                "publications are lost (counted in pub_unreceived_total)" : "channel mode: publications are received again");
    w->unreceived = none;
    return none ? M_PUB_UNRECEIVED : M_PUB_STORED;
}

/* The WAIT after a write answered: the held slots (every one stored before
 * it) are forgotten; counted as unconfirmed when fewer replicas had them. */
static void handle_wait(struct pub_write *w, const redisReply *r)
{
    int ok = r->type == REDIS_REPLY_INTEGER && r->integer >= w->cfg->pub_wait_replicas;
    if (!ok)
        metric_add(M_PUB_UNCONFIRMED, (int64_t)w->held);
    if ((!ok) != w->unconfirmed)
        log_msg(ok ? LOG_LVL_INFO : LOG_LVL_WARN, "%s", ok ? "publications are confirmed by the replicas again"
                : "publications not confirmed by pub_wait_replicas replicas within pub_wait_timeout; going on "
                  "(a failover now may lose them; counted in pub_unconfirmed_total)");
    w->unconfirmed = !ok;
    for (; w->held; w->held--, w->sent--)
        pop_head(w);
    w->wait_owed = 0;
}

/* Is the next reply the WAIT? */
static int wait_due(const struct pub_write *w)
{
    return w->wait_owed && w->batch == 0;
}

/* K stored (or already stored) slots, one command's: forgotten, or held for
 * their WAIT. */
static void slots_done(struct pub_write *w, size_t k)
{
    if (!w->wait_owed) {
        for (; k; k--, w->sent--)
            pop_head(w);
        return;
    }
    w->held += k;
    w->batch--;
}

/* The verdicts of a reply for K slots ('1' stored, '0' already stored), or
 * NULL: refused. */
static const char *verdicts(const struct pub_write *w, const redisReply *r, size_t k)
{
    if (!w->channel_mode)
        return pubstore_verdicts(r, k);
    return r->type != REDIS_REPLY_ERROR ? "1" : NULL;
}

/* A refusal: the oldest slot in flight and every later one stay buffered for
 * a retry in a second; the replies already on their way (later commands,
 * WAITs) are read and ignored (a stored one is found stored by the script
 * at the retry). */
static void refused(struct pub_write *w, const redisReply *r)
{
    pub_ring_at(w->ring, w->held)->refused = 1;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
        w->loaded = 0; /* SCRIPT FLUSH: load it again */
    if (!w->refusing)
        log_error("redis refuses publications (%s); keeping them buffered and retrying",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    w->refusing = 1;
    w->retry_at = clock_mono_ms() + 1000;
    w->skip = rpipe_inflight(w->pipe);
    forget_in_flight(w);
}

/* "W": the batch's predecessor is not in Redis (this instance's write of it
 * went to a primary a failover replaced). It and every later slot stay
 * buffered and go again in ORDER_RETRY_MS, while another instance may store
 * the predecessor first; the replies already on their way are read and
 * ignored, as after a refusal. */
static void wait_for_order(struct pub_write *w)
{
    long long now = clock_mono_ms();
    if (!w->order_since)
        w->order_since = now;
    w->retry_at = now + ORDER_RETRY_MS;
    w->skip = rpipe_inflight(w->pipe);
    forget_in_flight(w);
}

/* A batch stored after a wait for its predecessor: the wait's one line. */
static void order_done(struct pub_write *w)
{
    double s = (double)(clock_mono_ms() - w->order_since) / 1000;
    metric_add(w->order_forced ? M_PUB_ORDER_GIVEN_UP : M_PUB_ORDER_WAITED, 1);
    if (w->order_forced)
        log_warn("publications: the one before the next to store reached no primary that still holds it, "
                 "from any instance, within %.1f s (lost in a failover); storing on", s);
    else
        log_info("publications: a failover lost the one before our next; waited %.1f s so that the "
                 "instance holding the oldest stored first: the stream keeps the MoM's order", s);
    w->order_since = 0;
    w->order_forced = 0;
}

/* A reply for the oldest command in flight: TAG slots (or the WAIT after
 * them). */
static void on_reply(void *arg, uint64_t tag, redisReply *r)
{
    struct pub_write *w = arg;
    if (!r) { /* lost with the connection: what was in flight or held stays buffered */
        forget_in_flight(w);
        w->skip = 0;
        return;
    }
    if (rconn_note_reply(w->rc, r)) { /* demoted by a failover: to the new primary */
        rpipe_fail(w->pipe, "the server is no longer the primary (READONLY)");
        return;
    }
    if (w->skip) {
        w->skip--;
        return;
    }
    if (wait_due(w)) {
        handle_wait(w, r);
        return;
    }
    if (!w->channel_mode && pubstore_waits(r)) {
        wait_for_order(w);
        return;
    }
    const char *v = verdicts(w, r, (size_t)tag);
    if (!v) {
        refused(w, r);
        return;
    }
    int64_t stored = 0;
    for (size_t i = 0; i < tag; i++)
        stored += v[i] == '1';
    if (stored)
        metric_add(stored_metric(w, r), stored);
    metric_add(M_PUB_DUP_SKIPPED, (int64_t)tag - stored);
    slots_done(w, (size_t)tag);
    if (w->order_since)
        order_done(w);
    if (w->refusing)
        log_info("redis accepts publications again");
    w->refusing = 0;
}

/* Move publications towards Redis: replies first (they free ring slots). */
void pub_write_pump(struct pub_write *w)
{
    rpipe_io(w->pipe);
    pub_write_more(w);
}


void pub_write_join_hold(struct pub_write *w, size_t from, long long until)
{
    if (clock_mono_ms() >= w->join_until)
        w->join_from = from;
    w->join_until = until;
}

int pub_write_init(struct pub_write *w, const struct config *cfg, struct pub_ring *ring)
{
    w->cfg = cfg;
    w->ring = ring;
    w->channel_mode = strcmp(cfg->mode, "channel") == 0;
    if (w->channel_mode)
        key_pub_channel(w->key, cfg->cluster);
    else
        pubstore_init(&w->store, cfg->cluster, cfg->stream_maxlen, cfg->pub_dedup_window_ms);
    w->rc = rconn_new(&cfg->redis_url, "primary (publications)", REPLY_TIMEOUT_MS);
    int timeout = (int)(REPLY_TIMEOUT_MS + cfg->pub_wait_timeout_ms); /* a WAIT may take its own */
    w->pipe = w->rc ? rpipe_new(w->rc, PIPE_BYTES, INFLIGHT_MAX + 1, timeout, on_reply, w) : NULL;
    return w->pipe ? 0 : -1;
}

/* Before the ring's: what the pipeline hands back as lost refers to it. */
void pub_write_fini(struct pub_write *w)
{
    rpipe_destroy(&w->pipe);
    rconn_destroy(&w->rc);
    pubstore_batch_free(&w->pending);
}
