/* sentinel.c -- primary discovery through Redis Sentinel; see sentinel.h. */
#include "sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authrefusal.h"

static struct timeval ms_tv(int ms)
{
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

static redisContext *connect_sentinel(const struct redis_addr *a, int timeout_ms, char *why, size_t len)
{
    redisContext *c = redisConnectWithTimeout(a->host, a->port, ms_tv(timeout_ms));
    if (c && !c->err && redisSetTimeout(c, ms_tv(timeout_ms)) == REDIS_OK)
        return c;
    snprintf(why, len, "sentinel %s:%d: %s", a->host, a->port, c ? c->errstr : "out of memory");
    redisFree(c);
    return NULL;
}

/* Send the N commands FMT[i] with ARG pipelined and read their N replies
 * into R (each NULL if not read). */
static void exchange(redisContext *c, int n, const char *const *fmt, const char *arg, redisReply **r)
{
    int appended = 0;
    while (appended < n && redisAppendCommand(c, fmt[appended], arg) == REDIS_OK)
        appended++;
    for (int i = 0; i < n; i++) {
        void *reply = NULL;
        if (i >= appended || redisGetReply(c, &reply) != REDIS_OK)
            reply = NULL;
        r[i] = reply;
    }
}

static void free_replies(int n, redisReply **r)
{
    for (int i = 0; i < n; i++) {
        freeReplyObject(r[i]);
        r[i] = NULL;
    }
}

int sentinel_commands(redisContext *c, const struct redis_url *u, int n, const char *const *fmt, const char *arg,
                      redisReply **r)
{
    exchange(c, n, fmt, arg, r);
    if (r[0] && r[0]->type == REDIS_REPLY_ERROR && strncmp(r[0]->str, "NOAUTH", 6) == 0 && u->password[0]) {
        free_replies(n, r);
        redisReply *a = u->user[0] ? redisCommand(c, "AUTH %s %s", u->user, u->password)
                                   : redisCommand(c, "AUTH %s", u->password);
        if (a && a->type == REDIS_REPLY_ERROR) {
            r[0] = a; /* the refusal, for the caller to say */
            return SENTINEL_REFUSED;
        }
        freeReplyObject(a);
        if (a)
            exchange(c, n, fmt, arg, r);
    }
    for (int i = 0; i < n; i++)
        if (!r[i]) {
            free_replies(n, r);
            return -1;
        }
    return 0;
}

redisReply *sentinel_command(redisContext *c, const struct redis_url *u, const char *fmt, const char *arg)
{
    redisReply *r;
    return sentinel_commands(c, u, 1, &fmt, arg, &r) == -1 ? NULL : r;
}

/* Parse ["host", "port"]. 1: *OUT set; 0: the Sentinel does not know the
 * name (nil); -1: anything else. */
static int parse_addr_reply(const redisReply *r, struct redis_addr *out)
{
    if (r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING || r->element[0]->len == 0 ||
        r->element[0]->len >= sizeof out->host)
        return -1;
    char *end;
    long port = strtol(r->element[1]->str, &end, 10);
    if (*end || end == r->element[1]->str || port < 1 || port > 65535)
        return -1;
    memcpy(out->host, r->element[0]->str, r->element[0]->len);
    out->host[r->element[0]->len] = '\0';
    out->port = (int)port;
    return 1;
}

/* SENTINEL MASTER's "config-epoch" (a flat list of names and values), or -1. */
static long long config_epoch(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2)
        return -1;
    for (size_t i = 0; i < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || strcmp(k->str, "config-epoch") != 0)
            continue;
        if (v->type != REDIS_REPLY_STRING)
            return -1;
        char *end;
        long long e = strtoll(v->str, &end, 10);
        return *end || end == v->str || e < 0 ? -1 : e;
    }
    return -1;
}

int sentinel_ask(const struct redis_url *u, const struct redis_addr *s, int timeout_ms, struct sentinel_answer *out,
                 char *why, size_t len)
{
    redisContext *c = connect_sentinel(s, timeout_ms, why, len);
    if (!c)
        return -1;
    /* the epoch first: the address read after it is at least as new */
    static const char *const fmt[2] = {"SENTINEL MASTER %s", "SENTINEL get-master-addr-by-name %s"};
    redisReply *r[2];
    int got = -1;
    int rc = sentinel_commands(c, u, 2, fmt, u->master, r);
    if (rc == -1) {
        snprintf(why, len, "sentinel %s:%d: %s", s->host, s->port, c->errstr[0] ? c->errstr : "no reply");
        redisFree(c);
        return -1;
    }
    const redisReply *refusal = rc == SENTINEL_REFUSED ? r[0]
                                : r[1]->type == REDIS_REPLY_ERROR && auth_refusal(r[1]->str) ? r[1]
                                                                                             : NULL;
    if (refusal) {
        snprintf(why, len, "sentinel %s:%d: %s", s->host, s->port, refusal->str);
        free_replies(2, r);
        redisFree(c);
        return SENTINEL_REFUSED;
    }
    if ((got = parse_addr_reply(r[1], &out->addr)) < 0)
        snprintf(why, len, "sentinel %s:%d: unexpected reply%s%s", s->host, s->port,
                 r[1]->type == REDIS_REPLY_ERROR ? ": " : "", r[1]->type == REDIS_REPLY_ERROR ? r[1]->str : "");
    out->epoch = config_epoch(r[0]);
    free_replies(2, r);
    redisFree(c);
    return got;
}

int sentinel_resolve(struct redis_url *u, int timeout_ms, struct sentinel_answer *out, char *why, size_t len)
{
    int unknown = 0, refused = 0;
    char last[300] = "no sentinel configured";
    for (int i = 0; i < u->nsentinels; i++) {
        int got = sentinel_ask(u, &u->sentinel[i], timeout_ms, out, last, sizeof last);
        if (got == SENTINEL_REFUSED && !refused++)
            snprintf(why, len, "%s", last);
        if (got > 0) {
            /* the client rules: the Sentinel that answered is asked first next time */
            struct redis_addr first = u->sentinel[i];
            memmove(&u->sentinel[1], &u->sentinel[0], (size_t)i * sizeof first);
            u->sentinel[0] = first;
            return 0;
        }
        unknown += got == 0;
    }
    if (refused && !unknown)
        return SENTINEL_REFUSED; /* WHY: the first refusal */
    if (unknown)
        snprintf(why, len, "%d of %d sentinels do not know master '%s'", unknown, u->nsentinels, u->master);
    else
        snprintf(why, len, "no sentinel answered (%d tried; last: %s)", u->nsentinels, last);
    return -1;
}

int sentinel_verify_primary(redisContext *c, char *why, size_t len)
{
    redisReply *r = redisCommand(c, "ROLE");
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING &&
             strcmp(r->element[0]->str, "master") == 0;
    if (!ok)
        snprintf(why, len, "the address the sentinels gave is not a primary (ROLE: %s)",
                 !r                                       ? c->errstr
                 : r->type == REDIS_REPLY_ERROR           ? r->str
                 : r->type == REDIS_REPLY_ARRAY && r->elements && r->element[0]->type == REDIS_REPLY_STRING
                     ? r->element[0]->str
                     : "unexpected reply");
    freeReplyObject(r);
    return ok ? 0 : -1;
}
