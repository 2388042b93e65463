/* rconn.c -- Redis connection with backoff; see rconn.h. */
#include "rconn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct rconn {
    struct redis_url url;
    char label[64];
    int timeout_ms;
    redisContext *ctx;
    int backoff_ms;
    long long next_try_ms;  /* monotonic */
    long long down_since;   /* monotonic, 0 when up */
    int ever_connected;
    unsigned failures;      /* attempts since the connection went down */
};

struct rconn *rconn_new(const struct redis_url *url, const char *label, int timeout_ms)
{
    struct rconn *rc = calloc(1, sizeof *rc);
    if (!rc)
        return NULL;
    rc->url = *url;
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

/* AUTH and SELECT on a fresh context; returns NULL or the reason it failed. */
static const char *handshake(struct rconn *rc, char *why, size_t len)
{
    redisReply *r;
    if (rc->url.password[0]) {
        r = rc->url.user[0] ? redisCommand(rc->ctx, "AUTH %s %s", rc->url.user, rc->url.password)
                            : redisCommand(rc->ctx, "AUTH %s", rc->url.password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(why, len, "AUTH failed: %s", r ? r->str : rc->ctx->errstr);
            freeReplyObject(r);
            return why;
        }
        freeReplyObject(r);
    }
    r = redisCommand(rc->ctx, rc->url.db ? "SELECT %d" : "PING", rc->url.db);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        snprintf(why, len, "%s", r ? r->str : rc->ctx->errstr);
        freeReplyObject(r);
        return why;
    }
    freeReplyObject(r);
    return NULL;
}

static void note_failure(struct rconn *rc, const char *why)
{
    long long now = clock_mono_ms();
    if (!rc->down_since) {
        rc->down_since = now;
        log_warn("redis %s at %s:%d: %s %s; retrying with backoff", rc->label, rc->url.host,
                 rc->url.port, rc->ever_connected ? "connection lost:" : "cannot connect:", why);
    }
    rc->failures++;
    rc->next_try_ms = now + rc->backoff_ms;
    rc->backoff_ms = rc->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rc->backoff_ms * 2;
}

redisContext *rconn_get(struct rconn *rc)
{
    if (rc->ctx)
        return rc->ctx;
    if (clock_mono_ms() < rc->next_try_ms)
        return NULL;
    rc->ctx = redisConnectWithTimeout(rc->url.host, rc->url.port, ms_tv(rc->timeout_ms));
    char why[256];
    const char *err = NULL;
    if (!rc->ctx)
        err = "out of memory";
    else if (rc->ctx->err)
        err = rc->ctx->errstr;
    else if (redisSetTimeout(rc->ctx, ms_tv(rc->timeout_ms)) != REDIS_OK)
        err = "cannot set socket timeout";
    else if (redisEnableKeepAlive(rc->ctx) != REDIS_OK) /* a half-open link (failover, NAT) must end */
        err = "cannot enable TCP keepalive";
    else
        err = handshake(rc, why, sizeof why);
    if (err) {
        note_failure(rc, err);
        if (rc->ctx)
            redisFree(rc->ctx);
        rc->ctx = NULL;
        return NULL;
    }
    if (rc->down_since) {
        log_info("redis %s at %s:%d: connected again after %.1f s (%u attempts)", rc->label,
                 rc->url.host, rc->url.port, (clock_mono_ms() - rc->down_since) / 1000.0,
                 rc->failures);
        metric_add(M_REDIS_RECONNECTS, 1);
    } else if (!rc->ever_connected) {
        log_info("redis %s at %s:%d: connected", rc->label, rc->url.host, rc->url.port);
    }
    rc->ever_connected = 1;
    rc->down_since = 0;
    rc->failures = 0;
    rc->backoff_ms = BACKOFF_MIN_MS;
    return rc->ctx;
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
    note_failure(rc, copy);
}

static redisReply *checked(struct rconn *rc, void *reply)
{
    if (!reply)
        rconn_fail(rc, rc->ctx && rc->ctx->errstr[0] ? rc->ctx->errstr : "I/O error");
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
