/* regentry.c -- read back one minion registry entry; see regentry.h. The
 * entry was written by saltrelay-down (registry.c), but Redis is shared:
 * every field is checked before use. */
#include "regentry.h"

#include <stdio.h>
#include <string.h>

#include "outfmt.h"
#include "streamid.h"

/* A time field: wall ms, or -1 when absent or not a plain decimal. */
static long long time_field(const redisReply *v, const char *id, const char *field)
{
    uint64_t ms;
    if (v->type != REDIS_REPLY_STRING)
        return -1;
    if (decimal_parse(v->str, v->len, &ms) < 0 || ms > INT64_MAX) {
        char esc[TABLE_CELL];
        fprintf(stderr, "saltrelay-status: registry entry of minion %s: field %s has a bad value; ignored\n",
                printable(id, strlen(id), esc, sizeof esc), field);
        return -1;
    }
    return (long long)ms;
}

void regentry_parse(const redisReply *r, const char *id, const char *dc, struct regentry *out)
{
    char esc[TABLE_CELL];
    const char *shown = printable(id, strlen(id), esc, sizeof esc);
    size_t t = dc ? 0 : 1; /* the first time field */
    memset(out, 0, sizeof *out);
    out->first_auth_ms = out->last_auth_ms = out->last_request_ms = -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != t + 3) {
        fprintf(stderr, "saltrelay-status: registry entry of minion %s: %s\n", shown,
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return;
    }
    out->first_auth_ms = time_field(r->element[t], id, "first_auth");
    out->last_auth_ms = time_field(r->element[t + 1], id, "last_auth");
    out->last_request_ms = time_field(r->element[t + 2], id, "last_request");
    int seen = 0;
    for (size_t k = t; k < t + 3; k++)
        seen |= r->element[k]->type == REDIS_REPLY_STRING;
    const char *name = dc;
    size_t len = dc ? strlen(dc) : r->element[0]->len;
    if (!dc && r->element[0]->type == REDIS_REPLY_STRING)
        name = r->element[0]->str;
    if (!name || !seen)
        return;
    if (!key_name_ok(name, len)) {
        fprintf(stderr, "saltrelay-status: registry entry of minion %s: invalid DC name; ignored\n", shown);
        return;
    }
    memcpy(out->dc, name, len);
    out->dc[len] = '\0';
}

long long regentry_newest(const struct regentry *e)
{
    long long n = e->first_auth_ms;
    n = e->last_auth_ms > n ? e->last_auth_ms : n;
    return e->last_request_ms > n ? e->last_request_ms : n;
}
