/* rconn.c -- Redis connection with backoff; see rconn.h. */
#include "rconn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authrefusal.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "sentinel.h"
#include "sentinel_watch.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define SENTINEL_TIMEOUT_MS 500 /* per Sentinel: a dead one must not hold up the next */

struct rconn {
    struct redis_url url;   /* sentinel://: its Sentinel list is reordered as they answer */
    struct redis_addr addr; /* where the data node is (from a Sentinel for sentinel://) */
    char where[700];        /* for logs: "h:p" or "master 'm' (h:p) via sentinel" */
    char label[64];
    int timeout_ms;
    redisContext *ctx;
    int backoff_ms;
    long long next_try_ms;  /* monotonic */
    long long down_since;   /* monotonic, 0 when up */
    int ever_connected;
    int refused;            /* the last attempt: Redis refused the login (authrefusal.h) */
    unsigned failures;      /* attempts since the connection went down */
    int stale;              /* the server said it is no longer the primary */
    unsigned generation;    /* connections made so far */
    unsigned seen;          /* sentinel_watch_offer's when this connection was made */
    int behind;             /* the last Sentinel asked had not learned the newest switch (logged) */
};

static void set_where(struct rconn *rc)
{
    if (rc->url.master[0] && !rc->addr.host[0])
        snprintf(rc->where, sizeof rc->where, "master '%s' via sentinel", rc->url.master);
    else if (rc->url.master[0])
        snprintf(rc->where, sizeof rc->where, "master '%s' (%s:%d) via sentinel", rc->url.master,
                 rc->addr.host, rc->addr.port);
    else
        snprintf(rc->where, sizeof rc->where, "%s:%d", rc->addr.host, rc->addr.port);
}

struct rconn *rconn_new(const struct redis_url *url, const char *label, int timeout_ms)
{
    struct rconn *rc = calloc(1, sizeof *rc);
    if (!rc)
        return NULL;
    rc->url = *url;
    memcpy(rc->addr.host, url->host, sizeof rc->addr.host);
    rc->addr.port = url->port;
    set_where(rc);
    snprintf(rc->label, sizeof rc->label, "%s", label);
    rc->timeout_ms = timeout_ms;
    rc->backoff_ms = BACKOFF_MIN_MS;
    return rc;
}

void rconn_destroy(struct rconn **rcp)
{
    struct rconn *rc = *rcp;
    if (!rc)
        return;
    if (rc->ctx)
        redisFree(rc->ctx);
    free(rc);
    *rcp = NULL;
}

static struct timeval ms_tv(int ms)
{
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

/* The reply R to a login command (NULL: the connection broke): NULL if
 * it is no error, else WHY, and *REFUSED if Redis refused the login. */
static const char *login_reply(struct rconn *rc, redisReply *r, char *why, size_t len, int *refused)
{
    if (r && r->type != REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        return NULL;
    }
    *refused = r && auth_refusal(r->str);
    snprintf(why, len, "%s", r ? r->str : rc->ctx->errstr);
    freeReplyObject(r);
    return why;
}

/* AUTH and SELECT on a fresh context; returns NULL or the reason it failed. */
static const char *handshake(struct rconn *rc, char *why, size_t len, int *refused)
{
    if (rc->url.password[0]) {
        redisReply *r = rc->url.user[0] ? redisCommand(rc->ctx, "AUTH %s %s", rc->url.user, rc->url.password)
                                        : redisCommand(rc->ctx, "AUTH %s", rc->url.password);
        if (login_reply(rc, r, why, len, refused))
            return why;
    }
    return login_reply(rc, redisCommand(rc->ctx, rc->url.db ? "SELECT %d" : "PING", rc->url.db), why, len, refused);
}

/* A failed attempt: logged when the state changes (up -> down, and between
 * unreachable and refused); a refused login is counted and tried again at
 * the longest backoff (the password may be fixed in Redis meanwhile). */
static void note_failure(struct rconn *rc, const char *why, int refused)
{
    long long now = clock_mono_ms();
    metric_add(M_REDIS_AUTH_REFUSED, refused);
    if (refused && (!rc->down_since || !rc->refused))
        log_error("redis %s at %s: authentication refused (%s); check the redis user and password (and the "
                  "user's rights) in %s; retrying every %d s", rc->label, rc->where, why,
                  rc->url.master[0] ? "the URL (the data nodes' and the Sentinels')" : "the URL",
                  BACKOFF_MAX_MS / 1000);
    else if (!refused && (!rc->down_since || rc->refused))
        log_warn("redis %s at %s: %s %s; retrying with backoff", rc->label, rc->where,
                 rc->ever_connected && !rc->refused ? "connection lost:" : "cannot connect:", why);
    if (!rc->down_since)
        rc->down_since = now;
    rc->refused = refused;
    rc->failures++;
    if (refused)
        rc->backoff_ms = BACKOFF_MAX_MS;
    rc->next_try_ms = now + rc->backoff_ms;
    rc->backoff_ms = rc->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rc->backoff_ms * 2;
}

/* The Sentinel asked named A, older than the newest primary known (USE):
 * one line per episode. */
static void note_behind(struct rconn *rc, const struct sentinel_answer *a, const struct redis_addr *use)
{
    int behind = a->addr.port != use->port || strcmp(a->addr.host, use->host) != 0;
    if (behind && !rc->behind)
        log_info("redis %s: sentinel %s:%d still names %s:%d as primary of '%s', before the latest switch "
                 "(to %s:%d): connecting there", rc->label, rc->url.sentinel[0].host, rc->url.sentinel[0].port,
                 a->addr.host, a->addr.port, rc->url.master, use->host, use->port);
    rc->behind = behind;
}

/* sentinel://: where the primary is now: what a Sentinel says, or the
 * newest primary the process knows if that Sentinel has not learned it yet
 * (sentinel_watch.h). NULL or why not. */
static const char *resolve(struct rconn *rc, char *why, size_t len, int *refused)
{
    if (!rc->url.master[0])
        return NULL;
    int timeout = rc->timeout_ms < SENTINEL_TIMEOUT_MS ? rc->timeout_ms : SENTINEL_TIMEOUT_MS;
    struct redis_addr was = rc->addr;
    struct sentinel_answer a;
    int got = sentinel_resolve(&rc->url, timeout, &a, why, len);
    *refused = got == SENTINEL_REFUSED;
    if (got < 0)
        return why;
    sentinel_watch_offer(&rc->url, &a, &rc->addr, &rc->seen);
    note_behind(rc, &a, &rc->addr);
    set_where(rc);
    if (was.host[0] && (was.port != rc->addr.port || strcmp(was.host, rc->addr.host) != 0))
        log_info("redis %s: sentinels name %s:%d as primary of '%s' (was %s:%d)", rc->label, rc->addr.host,
                 rc->addr.port, rc->url.master, was.host, was.port);
    return NULL;
}

/* Connect to rc->addr and log in; NULL or why not. */
static const char *open_ctx(struct rconn *rc, char *why, size_t len, int *refused)
{
    rc->ctx = redisConnectWithTimeout(rc->addr.host, rc->addr.port, ms_tv(rc->timeout_ms));
    if (!rc->ctx)
        return "out of memory";
    if (rc->ctx->err)
        return rc->ctx->errstr;
    if (redisSetTimeout(rc->ctx, ms_tv(rc->timeout_ms)) != REDIS_OK)
        return "cannot set socket timeout";
    if (redisEnableKeepAlive(rc->ctx) != REDIS_OK) /* a half-open link (failover, NAT) must end */
        return "cannot enable TCP keepalive";
    const char *err = handshake(rc, why, len, refused);
    if (!err && rc->url.master[0] && sentinel_verify_primary(rc->ctx, why, len) < 0)
        err = why;
    return err;
}

static void note_connected(struct rconn *rc)
{
    if (rc->down_since) {
        log_info("redis %s at %s: connected again after %.1f s (%u attempts)", rc->label, rc->where,
                 (clock_mono_ms() - rc->down_since) / 1000.0, rc->failures);
        metric_add(M_REDIS_RECONNECTS, 1);
    } else if (!rc->ever_connected) {
        log_info("redis %s at %s: connected", rc->label, rc->where);
    }
    rc->ever_connected = 1;
    rc->refused = 0;
    rc->generation++;
    rc->down_since = 0;
    rc->failures = 0;
    rc->backoff_ms = BACKOFF_MIN_MS;
}

int rconn_switched(struct rconn *rc)
{
    return rc->ctx && rc->url.master[0] && sentinel_watch_moved(&rc->url, &rc->seen, &rc->addr);
}

redisContext *rconn_get(struct rconn *rc)
{
    if (rc->ctx && rc->stale)
        rconn_fail(rc, "the server is no longer the primary (READONLY)");
    if (rconn_switched(rc))
        rconn_fail(rc, "the sentinels switched the primary");
    if (rc->ctx)
        return rc->ctx;
    if (clock_mono_ms() < rc->next_try_ms)
        return NULL;
    char why[400];
    int refused = 0;
    const char *err = resolve(rc, why, sizeof why, &refused);
    if (!err)
        err = open_ctx(rc, why, sizeof why, &refused);
    if (err) {
        note_failure(rc, err, refused);
        if (rc->ctx)
            redisFree(rc->ctx);
        rc->ctx = NULL;
        return NULL;
    }
    rc->stale = 0;
    note_connected(rc);
    return rc->ctx;
}

const char *rconn_problem(const struct rconn *rc)
{
    return rc->ctx ? NULL : rc->refused ? "refused the login (user, password)" : "unreachable";
}

unsigned rconn_generation(const struct rconn *rc)
{
    return rc->generation;
}

int rconn_retry_in_ms(const struct rconn *rc)
{
    if (rc->ctx)
        return 0;
    long long d = rc->next_try_ms - clock_mono_ms();
    return d > 0 ? (int)d : 0;
}

void rconn_fail(struct rconn *rc, const char *why)
{
    char copy[128]; /* WHY may be the errstr of the context freed here */
    snprintf(copy, sizeof copy, "%s", why);
    if (rc->ctx)
        redisFree(rc->ctx);
    rc->ctx = NULL;
    note_failure(rc, copy, 0);
}

int rconn_note_reply(struct rconn *rc, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "READONLY", 8) != 0)
        return 0;
    rc->stale = 1;
    return 1;
}

static redisReply *checked(struct rconn *rc, void *reply)
{
    if (!reply)
        rconn_fail(rc, rc->ctx && rc->ctx->errstr[0] ? rc->ctx->errstr : "I/O error");
    else
        rconn_note_reply(rc, reply);
    return reply;
}

redisReply *rconn_command(struct rconn *rc, const char *fmt, ...)
{
    if (!rconn_get(rc))
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    void *r = redisvCommand(rc->ctx, fmt, ap);
    va_end(ap);
    return checked(rc, r);
}

redisReply *rconn_reply(struct rconn *rc)
{
    if (!rc->ctx)
        return NULL;
    void *r = NULL;
    if (redisGetReply(rc->ctx, &r) != REDIS_OK)
        r = NULL;
    return checked(rc, r);
}
