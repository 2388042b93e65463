/* pub_write.c -- publication intake's writer (see pub_write.h, and
 * pub_intake.c for the whole): the buffered messages go to Redis through the
 * Redis pipeline (rpipe.h), each reply taken for the oldest slot in flight,
 * and with pub_wait_replicas a WAIT after each write. */
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

static int append_one(struct pub_write *w, struct pub_slot *s)
{
    struct pubrec rec = {.id = {(uint64_t)s->recv_ms, 0}, .nframes = s->nframes};
    for (size_t i = 0; i < s->nframes; i++) {
        rec.frame[i] = zmq_msg_data(pub_slot_frame(s, i));
        rec.len[i] = zmq_msg_size(pub_slot_frame(s, i));
    }
    if (s->topics) { /* merged copies: the payload once, the topics in a list */
        rec.topics = s->topics->buf;
        rec.topics_len = s->topics->len;
        rec.frame[0] = rec.frame[1];
        rec.len[0] = rec.len[1];
        rec.nframes = 1;
    }
    if (!w->channel_mode)
        return pubstore_append(&w->store, w->pipe, 0, &rec);
    rec.serial = s->serial ? s->serial : w->serial + 1;
    size_t len;
    char *buf = pubrec_pack(&rec, &len);
    int rc = rpipe_append(w->pipe, 0, "PUBLISH %s %b", w->key, buf, len);
    free(buf);
    if (rc == RPIPE_OK && !s->serial)
        s->serial = ++w->serial;
    return rc;
}

/* Classify one reply. 1: stored, 0: already there, -1: refused. */
static int judge_reply(const struct pub_write *w, const redisReply *r)
{
    if (w->channel_mode)
        return r->type != REDIS_REPLY_ERROR ? 1 : -1;
    return pubstore_judge(r);
}

/* Nothing in flight any more: what was written and not confirmed is sent
 * again (the store script skips what Redis has). */
static void forget_in_flight(struct pub_write *w)
{
    w->sent = 0;
    w->held = 0;
    w->wait_owed = 0;
}

static int waiting_mode(const struct pub_write *w)
{
    return !w->channel_mode && w->cfg->pub_wait_replicas > 0;
}

/* After the slots just written: WAIT for the replicas, one reply to come.
 * While the replicas do not confirm, WAIT only looks (1 ms): a replica that
 * is gone must not cost pub_wait_timeout per write. */
static void append_wait(struct pub_write *w, size_t slots)
{
    long long ms = w->unconfirmed || w->cfg->pub_wait_timeout_ms < 1 ? 1 : w->cfg->pub_wait_timeout_ms;
    /* WAIT n 0 would never return; room for it was kept by pub_write_more */
    rpipe_append(w->pipe, 0, "WAIT %lld %lld", w->cfg->pub_wait_replicas, ms);
    w->batch = slots;
    w->wait_owed = 1;
}

/* The oldest slot is done with (stored): popped from the ring. */
static void pop_head(struct pub_write *w)
{
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
 * takes. */
void pub_write_more(struct pub_write *w)
{
    size_t ready = ready_slots(w);
    if (w->wait_owed || w->sent >= ready || clock_mono_ms() < w->retry_at)
        return;
    /* SCRIPT LOAD is a blocking command: only on an idle connection (a new
     * one, which is when the script may be missing) */
    if (!rpipe_inflight(w->pipe) && (!rconn_get(w->rc) || !script_ready(w)))
        return;
    size_t first = w->sent;
    for (; w->sent < ready; w->sent++) {
        struct pub_slot *s = pub_ring_at(w->ring, w->sent);
        size_t room = pub_slot_bytes(s) + (s->topics ? s->topics->len : 0) + CMD_ROOM;
        if (!rpipe_room(w->pipe, 1 + (size_t)waiting_mode(w), room))
            break;
        int resent = s->written && w->channel_mode && !s->refused;
        if (append_one(w, s) != RPIPE_OK)
            break;
        if (resent)
            metric_add(M_PUB_RESENT, 1); /* its PUBLISH may have been delivered: no dedup on a channel */
        s->written = 1;
    }
    if (waiting_mode(w) && w->sent > first)
        append_wait(w, w->sent - first);
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

/* A stored (or already stored) slot: forgotten, or held for its WAIT. */
static void slot_done(struct pub_write *w)
{
    if (!w->wait_owed) {
        pop_head(w);
        w->sent--;
        return;
    }
    w->held++;
    w->batch--;
}

/* A reply for the oldest slot in flight (or the WAIT after it). A refusal
 * keeps it and every later slot buffered for a retry in a second; the
 * replies already on their way (later slots, WAITs) are read and ignored (a
 * stored one is found stored by the script at the retry). */
static void on_reply(void *arg, uint64_t tag, redisReply *r)
{
    struct pub_write *w = arg;
    (void)tag;
    if (!r) { /* lost with the connection: what was in flight or held stays buffered */
        forget_in_flight(w);
        w->skip = 0;
        return;
    }
    if (rconn_note_reply(w->rc, r)) { /* demoted by a failover: to the new primary */
        rpipe_fail(w->pipe, "the server is no longer the primary (READONLY)");
        return;
    }
    int verdict = w->skip || wait_due(w) ? 0 : judge_reply(w, r);
    if (w->skip) {
        w->skip--;
    } else if (wait_due(w)) {
        handle_wait(w, r);
    } else if (verdict < 0) {
        pub_ring_at(w->ring, w->held)->refused = 1;
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
            w->loaded = 0; /* SCRIPT FLUSH: load it again */
        if (!w->refusing)
            log_error("redis refuses publications (%s); keeping them buffered and retrying",
                      r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        w->refusing = 1;
        w->retry_at = clock_mono_ms() + 1000;
        w->skip = w->sent - w->held - 1 + (size_t)w->wait_owed;
        forget_in_flight(w);
    } else {
        metric_add(verdict ? stored_metric(w, r) : M_PUB_DUP_SKIPPED, 1);
        slot_done(w);
        if (w->refusing)
            log_info("redis accepts publications again");
        w->refusing = 0;
    }
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
}
