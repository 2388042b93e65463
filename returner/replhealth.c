/* replhealth.c -- the health of the Redis this DC reads (see replhealth.h).
 *
 * Replication delay: saltrelay-up writes a heartbeat every second (its wall
 * clock, as the score of saltrelay:{C}:ups). R is the newest heartbeat the
 * replica holds, P the newest the primary holds, read right after. R >= P:
 * the replica lacks nothing, delay 0 (a dead saltrelay-up therefore does not
 * look like replication delay). R < P: the replica lacks the heartbeat that
 * followed R, written at about R + 1 s (and not after P), so it is behind by
 * now - min(P, R + 1 s). Wall clocks of the two hosts must agree (NTP).
 *
 * It uses its own connection to `redis` (the part's other one goes to the
 * primary): a check that hangs delays only the next report. */
#include "replhealth.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hreport.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "replinfo.h"
#include "streamid.h"
#include "upreport.h"

#define REDIS_TIMEOUT_MS 2000

struct replhealth {
    const struct config *cfg;
    struct rconn *rc;
    char set_key[KEY_MAX];
    long long down_seen_ms; /* wall ms this check first saw the link down (0: up) */
    int failing;            /* last check failed (log once per state change) */
    int link_down;          /* last check saw the link down (log once per change) */
};

struct replhealth *replhealth_new(const struct config *cfg)
{
    struct replhealth *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->cfg = cfg;
    key_up_set(h->set_key, cfg->cluster);
    h->rc = rconn_new(&cfg->redis_url, "health check", REDIS_TIMEOUT_MS);
    if (!h->rc) {
        free(h);
        return NULL;
    }
    return h;
}

void replhealth_destroy(struct replhealth **h)
{
    if (!*h)
        return;
    rconn_destroy(&(*h)->rc);
    free(*h);
    *h = NULL;
}

/* The score of "ZREVRANGE ups 0 0 WITHSCORES": 1 found, 0 none, -1 bad. */
static int newest_heartbeat(redisReply *r, long long *ms)
{
    uint64_t v;
    if (!r || r->type != REDIS_REPLY_ARRAY || (r->elements != 0 && r->elements != 2))
        return -1;
    if (r->elements == 0)
        return 0;
    const redisReply *s = r->element[1];
    /* a score is printed as a double; ours are whole milliseconds */
    if (s->type != REDIS_REPLY_STRING || decimal_parse(s->str, s->len, &v) < 0 || v > INT64_MAX)
        return -1;
    *ms = (long long)v;
    return 1;
}

static long long primary_heartbeat(struct replhealth *h, struct rconn *primary)
{
    long long p = -1;
    redisReply *r = primary && rconn_get(primary) ? rconn_command(primary, "ZREVRANGE %s 0 0 WITHSCORES", h->set_key) : NULL;
    if (newest_heartbeat(r, &p) != 1)
        p = -1;
    freeReplyObject(r);
    return p;
}

static void set_delay(long long r, long long p, long long now)
{
    long long lacks_from = r + UP_HEARTBEAT_MS;
    if (p >= 0 && p < lacks_from)
        lacks_from = p;
    long long delay = p >= 0 && r >= p ? 0 : now - lacks_from;
    metric_set(M_HEARTBEAT_SEEN_MS, r);
    metric_set(M_REPL_DELAY_MS, delay > 0 ? delay : 0);
}

static void set_link(struct replhealth *h, const struct replinfo *ri, long long now)
{
    int down = ri->replica && !ri->link_up;
    if (down && !h->down_seen_ms)
        h->down_seen_ms = now;
    if (!down)
        h->down_seen_ms = 0;
    long long down_ms = !down ? 0 : ri->down_s >= 0 ? ri->down_s * 1000 : now - h->down_seen_ms;
    metric_set(M_SOURCE_REPLICA, ri->replica);
    metric_set(M_REPL_LINK_UP, !down);
    metric_set(M_REPL_LINK_DOWN_MS, down_ms);
    metric_set(M_REPL_LAST_IO_MS, ri->replica && ri->last_io_s >= 0 ? ri->last_io_s * 1000 : 0);
    if (down != h->link_down)
        log_msg(down ? LOG_LVL_WARN : LOG_LVL_INFO, "the Redis it reads publications from: replica link %s",
                down ? "down" : "up again");
    h->link_down = down;
}

/* INFO replication and the newest heartbeat, pipelined; NULL or why not. */
static const char *check_source(struct replhealth *h, struct rconn *primary)
{
    redisContext *c = rconn_get(h->rc);
    if (!c)
        return "unreachable";
    redisAppendCommand(c, "INFO replication");
    redisAppendCommand(c, "ZREVRANGE %s 0 0 WITHSCORES", h->set_key);
    redisReply *info = rconn_reply(h->rc), *hb = info ? rconn_reply(h->rc) : NULL;
    const char *why = !hb ? "connection lost" : info->type != REDIS_REPLY_STRING ? "INFO: unexpected reply" : NULL;
    struct replinfo ri;
    long long r = 0;
    if (!why)
        replinfo_parse(info->str, info->len, &ri, &why);
    int found = why ? -1 : newest_heartbeat(hb, &r);
    if (found < 0 && !why)
        why = "heartbeat set: unexpected reply";
    if (!why) {
        long long now = clock_wall_ms();
        set_link(h, &ri, now);
        if (found)
            set_delay(r, primary_heartbeat(h, primary), now);
        else
            set_delay(0, 0, now); /* no heartbeat yet: nothing to measure */
    }
    freeReplyObject(info);
    freeReplyObject(hb);
    return why;
}

void replhealth_check(struct replhealth *h, struct rconn *primary)
{
    const char *why = check_source(h, primary);
    metric_set(M_SOURCE_UP, why == NULL);
    hreport_note(&h->failing, "health check of the Redis it reads publications from", why);
}
