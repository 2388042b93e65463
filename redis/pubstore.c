/* pubstore.c -- the publication dedup-and-store script; see pubstore.h. */
#include "pubstore.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "rconn.h"

/* ARGV: maxlen (0 = none), window ms, hash, record version, then the fields
 * after the serial (f0 <frame> ..., or t <topics> f0 <payload>). A stream written by an older saltrelay-up has no serial key yet:
 * the serials continue after its newest entry's. string.format('%d'): Lua 5.1
 * would print a number above 1e14 as "1e+14". */
static const char script[] =
    "local seen = redis.call('GET', KEYS[3])\n"
    "if seen then return {0, seen} end\n"
    "if redis.call('EXISTS', KEYS[2]) == 0 then\n"
    "  local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)\n"
    "  local s = 0\n"
    "  if top[1] and top[1][2][3] == 's' then s = tonumber(top[1][2][4]) or 0 end\n"
    "  redis.call('SET', KEYS[2], string.format('%d', s))\n"
    "end\n"
    "local serial = string.format('%d', redis.call('INCR', KEYS[2]))\n"
    "local a = {KEYS[1]}\n"
    "if ARGV[1] ~= '0' then a[#a+1] = 'MAXLEN'; a[#a+1] = '~'; a[#a+1] = ARGV[1] end\n"
    "for _, v in ipairs({'*', 'v', ARGV[4], 's', serial, 'h', ARGV[3]}) do a[#a+1] = v end\n"
    "for i = 5, #ARGV do a[#a+1] = ARGV[i] end\n"
    "local id = redis.call('XADD', unpack(a))\n"
    "redis.call('SET', KEYS[3], id, 'PX', ARGV[2])\n"
    "return {1, id, serial}\n";

void pubstore_init(struct pubstore *ps, const char *cluster, long long maxlen, long long window_ms)
{
    memset(ps, 0, sizeof *ps);
    snprintf(ps->cluster, sizeof ps->cluster, "%s", cluster);
    key_pub_stream(ps->stream, cluster);
    key_pub_serial(ps->serial, cluster);
    ps->maxlen = maxlen;
    ps->window_ms = window_ms > 0 ? window_ms : 1;
}

int pubstore_load(struct pubstore *ps, struct rconn *rc)
{
    redisReply *r = rconn_command(rc, "SCRIPT LOAD %s", script);
    if (!r)
        return -1;
    int ok = r->type == REDIS_REPLY_STRING && r->len == sizeof ps->sha - 1;
    if (ok)
        memcpy(ps->sha, r->str, sizeof ps->sha);
    else
        log_error("redis refuses the publication script (%s); retrying",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return ok ? 0 : -1;
}

void pubstore_hash(const struct pubrec *rec, char out[PUBSTORE_HASH_LEN + 1])
{
    zdigest_t *d = zdigest_new();
    /* the topic list (merged copies) first, then the frames, each after its
     * length: the lengths keep [ab][c] and [a][bc] apart */
    size_t n = rec->nframes + 1;
    for (size_t i = rec->topics ? 0 : 1; i < n; i++) {
        const char *data = i ? rec->frame[i - 1] : rec->topics;
        size_t size = i ? rec->len[i - 1] : rec->topics_len;
        unsigned char len[8];
        for (int b = 0; b < 8; b++)
            len[b] = (unsigned char)(size >> (8 * b));
        zdigest_update(d, len, sizeof len);
        zdigest_update(d, (const byte *)data, size);
    }
    const byte *h = zdigest_data(d);
    for (size_t i = 0; i < PUBSTORE_HASH_LEN / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
    zdigest_destroy(&d);
}

int pubstore_append(const struct pubstore *ps, struct rpipe *p, uint64_t tag, const struct pubrec *rec)
{
    /* the version and the fields after the serial exactly as pubrec_xadd_argv
     * writes them: XADD key id v <version> s <serial> <fields...> */
    const char *x[PUBREC_ARGC_MAX];
    size_t xl[PUBREC_ARGC_MAX];
    struct pubrec_scratch scratch;
    int xn = pubrec_xadd_argv(rec, ps->stream, 0, &scratch, x, xl);
    char hash[PUBSTORE_HASH_LEN + 1], seen[KEY_MAX], maxlen[24], window[24];
    pubstore_hash(rec, hash);
    key_pub_seen(seen, ps->cluster, hash);
    snprintf(maxlen, sizeof maxlen, "%lld", ps->maxlen);
    snprintf(window, sizeof window, "%lld", ps->window_ms);
    const char *argv[PUBREC_ARGC_MAX + 8] = {"EVALSHA", ps->sha, "3", ps->stream, ps->serial, seen, maxlen,
                                             window, hash, x[4]};
    size_t argvlen[PUBREC_ARGC_MAX + 8];
    int n = 10;
    for (int i = 0; i < n; i++)
        argvlen[i] = strlen(argv[i]);
    for (int i = 7; i < xn; i++, n++) {
        argv[n] = x[i];
        argvlen[n] = xl[i];
    }
    return rpipe_append_argv(p, tag, n, argv, argvlen);
}

int pubstore_judge(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_INTEGER)
        return -1;
    return r->element[0]->integer == 1 ? 1 : r->element[0]->integer == 0 ? 0 : -1;
}
