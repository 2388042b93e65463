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

redisReply *sentinel_command(redisContext *c, const struct redis_url *u, const char *fmt, const char *arg)
{
    redisReply *r = redisCommand(c, fmt, arg);
    if (!r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOAUTH", 6) != 0 || !u->password[0])
        return r;
    freeReplyObject(r);
    r = u->user[0] ? redisCommand(c, "AUTH %s %s", u->user, u->password) : redisCommand(c, "AUTH %s", u->password);
    if (!r || r->type == REDIS_REPLY_ERROR)
        return r;
    freeReplyObject(r);
    return redisCommand(c, fmt, arg);
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

/* Ask one Sentinel. 1: found, 0: unknown name, -1: unreachable or nonsense,
 * SENTINEL_REFUSED: it refused the login. */
static int ask_one(const struct redis_url *u, const struct redis_addr *s, int timeout_ms, struct redis_addr *out,
                   char *why, size_t len)
{
    redisContext *c = connect_sentinel(s, timeout_ms, why, len);
    if (!c)
        return -1;
    redisReply *r = sentinel_command(c, u, "SENTINEL get-master-addr-by-name %s", u->master);
    int got = -1;
    if (!r) {
        snprintf(why, len, "sentinel %s:%d: %s", s->host, s->port, c->errstr);
    } else if (r->type == REDIS_REPLY_ERROR && auth_refusal(r->str)) {
        snprintf(why, len, "sentinel %s:%d: %s", s->host, s->port, r->str);
        got = SENTINEL_REFUSED;
    } else if ((got = parse_addr_reply(r, out)) < 0)
        snprintf(why, len, "sentinel %s:%d: unexpected reply%s%s", s->host, s->port,
                 r->type == REDIS_REPLY_ERROR ? ": " : "", r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
    redisFree(c);
    return got;
}

int sentinel_resolve(struct redis_url *u, int timeout_ms, struct redis_addr *out, char *why, size_t len)
{
    int unknown = 0, refused = 0;
    char last[300] = "no sentinel configured";
    for (int i = 0; i < u->nsentinels; i++) {
        int got = ask_one(u, &u->sentinel[i], timeout_ms, out, last, sizeof last);
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
