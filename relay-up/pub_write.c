/* pub_intake_redis.c -- publication intake's Redis side (see pub_intake.c
 * for the whole): the buffered messages go to Redis through the Redis
 * pipeline (rpipe.h), each reply taken for the oldest slot in flight, and
 * with pub_wait_replicas a WAIT after each write. */
#include "pub_ring.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "pubrec.h"

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

/* Append the buffered messages not yet in flight while the pipeline takes
 * them (keeping room for the WAIT after them), and write what the socket
 * takes. */
void pub_send_more(struct pub_intake *p)
{
    size_t ready = p->count - (pub_run_hold_ms(p) > 0);
    if (p->wait_owed || p->sent >= ready || clock_mono_ms() < p->retry_at)
        return;
    /* SCRIPT LOAD is a blocking command: only on an idle connection (a new
     * one, which is when the script may be missing) */
    if (!rpipe_inflight(p->pipe) && (!rconn_get(p->rc) || !script_ready(p)))
        return;
    size_t first = p->sent;
    for (; p->sent < ready; p->sent++) {
        struct slot *s = slot_at(p, p->sent);
        size_t room = pub_slot_bytes(s) + (s->topics ? s->topics->len : 0) + CMD_ROOM;
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
        pub_ring_pop(p);
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
        pub_ring_pop(p);
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
void pub_on_reply(void *arg, uint64_t tag, redisReply *r)
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
void pub_pump(struct pub_intake *p)
{
    rpipe_io(p->pipe);
    pub_send_more(p);
}

