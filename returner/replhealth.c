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
 * Backlog: publications in that Redis after the DC's cursor (stream mode),
 * so a DC that falls behind shows in its own metrics, not only in
 * saltrelay-status.
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
#include "pubrec.h"
#include "replinfo.h"
#include "streamid.h"
#include "upreport.h"

#define REDIS_TIMEOUT_MS 2000

struct replhealth {
    const struct config *cfg;
    struct rconn *rc;
    char set_key[KEY_MAX];
    char pub_key[KEY_MAX];
    int stream; /* stream mode: measure the backlog too */
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
    key_pub_stream(h->pub_key, cfg->cluster);
    h->stream = strcmp(cfg->mode, "stream") == 0;
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

/* Publications in that Redis after the delivered cursor: how many (by
 * serial: the newest one's minus the first undelivered one's, plus one) and
 * the age of the oldest. Replies it cannot use (a damaged entry, which
 * pub_output counts; WRONGTYPE) count as no backlog. */
static void set_backlog(const redisReply *top, const redisReply *first, long long now)
{
    struct pubrec t, f;
    const char *why;
    int behind = pubrec_range_one(top, &t, &why) == 1 && pubrec_range_one(first, &f, &why) == 1 &&
                 t.serial >= f.serial;
    metric_set(M_BACKLOG_ENTRIES, behind ? (int64_t)(t.serial - f.serial) + 1 : 0);
    metric_set(M_BACKLOG_MS, behind && now > (long long)f.id.ms ? now - (long long)f.id.ms : 0);
}

/* Queue the commands of one check on C; returns how many. */
static int ask(const struct replhealth *h, redisContext *c)
{
    redisAppendCommand(c, "INFO replication");
    redisAppendCommand(c, "ZREVRANGE %s 0 0 WITHSCORES", h->set_key);
    if (!h->stream)
        return 2;
    struct metric_cursor mc;
    metric_cursor_get(&mc);
    struct streamid cursor = {(uint64_t)mc.ms, (uint64_t)mc.seq};
    char from[STREAMID_STRLEN + 1] = "(";
    streamid_format(cursor, from + 1);
    redisAppendCommand(c, "XREVRANGE %s + - COUNT 1", h->pub_key);
    redisAppendCommand(c, "XRANGE %s %s + COUNT 1", h->pub_key, from);
    return 4;
}

/* Use the replies: INFO, newest heartbeat, [stream top, first undelivered]. */
static const char *use_replies(struct replhealth *h, redisReply **rep, int n, struct rconn *primary)
{
    const char *why = NULL;
    struct replinfo ri;
    long long r = 0, now = clock_wall_ms();
    if (rep[0]->type != REDIS_REPLY_STRING)
        return "INFO: unexpected reply";
    if (replinfo_parse(rep[0]->str, rep[0]->len, &ri, &why) < 0)
        return why;
    int found = newest_heartbeat(rep[1], &r);
    if (found < 0)
        return "heartbeat set: unexpected reply";
    if (n == 4)
        set_backlog(rep[2], rep[3], now);
    set_link(h, &ri, now);
    if (found)
        set_delay(r, primary_heartbeat(h, primary), now);
    else
        set_delay(0, 0, now); /* no heartbeat yet: nothing to measure */
    return NULL;
}

static const char *check_source(struct replhealth *h, struct rconn *primary)
{
    redisContext *c = rconn_get(h->rc);
    if (!c)
        return rconn_problem(h->rc);
    redisReply *rep[4] = {0};
    int n = ask(h, c), got = 0;
    while (got < n && (rep[got] = rconn_reply(h->rc)) != NULL)
        got++;
    const char *why = got < n ? "connection lost" : use_replies(h, rep, n, primary);
    for (int i = 0; i < got; i++)
        freeReplyObject(rep[i]);
    return why;
}

void replhealth_check(struct replhealth *h, struct rconn *primary)
{
    const char *why = check_source(h, primary);
    metric_set(M_SOURCE_UP, why == NULL);
    hreport_note(&h->failing, "health check of the Redis it reads publications from", why);
}
