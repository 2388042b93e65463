/* status_forget.c -- saltrelay-status forget DC: retire a datacenter whose
 * saltrelay-down is gone for good (decommissioned, renamed, or a name that
 * never served), so that it stops counting in the overview and in per-job
 * accounting. Removed: its report, its request and reply streams (what a
 * saltrelay-up reads there: one gone is joined no more, stream_group.c),
 * its stored request numbers, the registry entries of its minion set (its
 * own, reg:<dc>:<id>, and those of the layout before that still name it:
 * one that moved to another DC keeps its entry), its minion set, then its
 * name in the DC set, in that order, so that a forget cut short is simply
 * run again. It writes: run as a user that may (security.md: saltrelay-up's).
 *
 * Refused while its lease is held (redis/dclease.h): the DC is running, and
 * its next report would bring it back. */
#include "status.h"

#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "lease.h"

/* KEYS[1]: a minion's entry of the layout before (one for all DCs); ARGV[1]:
 * the DC. Delete it only if it names the DC. */
static const char FORGET_MINION_LUA[] =
    "if redis.call('HGET', KEYS[1], 'dc') == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/* R's integer, or -1 (named on stderr with WHAT). */
static long long integer(struct rconn *rc, const char *what, redisReply *r)
{
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (n < 0)
        fprintf(stderr, "saltrelay-status: %s: %s\n", what,
                r && r->type == REDIS_REPLY_ERROR ? r->str : rconn_get(rc) ? "unexpected reply" : "Redis failed");
    freeReplyObject(r);
    return n;
}

/* Delete the registry entries of SET's members in DC (both layouts),
 * pipelined; how many, or -1. */
static long long forget_minions(struct rconn *rc, const struct config *cfg, const char *dc, const redisReply *set)
{
    redisContext *c = rconn_get(rc);
    char key[KEY_MAX], shared[KEY_MAX];
    size_t sent = 0;
    for (size_t i = 0; c && i < set->elements; i++) {
        const redisReply *e = set->element[i];
        if (e->type != REDIS_REPLY_STRING || memchr(e->str, 0, e->len) || key_minion(key, cfg->cluster, dc, e->str) >= KEY_MAX ||
            key_minion_shared(shared, cfg->cluster, e->str) >= KEY_MAX)
            continue;
        redisAppendCommand(c, "DEL %s", key);
        redisAppendCommand(c, "EVAL %s 1 %s %s", FORGET_MINION_LUA, shared, dc);
        sent += 2;
    }
    long long n = 0;
    for (size_t i = 0; c && i < sent; i++) {
        long long d = integer(rc, "deleting a minion's registry entry", rconn_reply(rc));
        n = n < 0 || d < 0 ? -1 : n + d;
    }
    return c ? n : -1;
}

/* The running saltrelay-down's holder name in WHO, if DC's lease is held:
 * 1 held, 0 free, -1 Redis failed. */
static int lease_held(struct rconn *rc, const struct config *cfg, const char *dc, char *who, size_t len)
{
    char key[KEY_MAX];
    key_dc_owner(key, cfg->cluster, dc);
    redisReply *r = rconn_command(rc, "GET %s", key);
    int held = !r ? -1 : r->type == REDIS_REPLY_STRING;
    if (held == 1)
        lease_holder(r->str, r->len, who, len);
    freeReplyObject(r);
    return held;
}

/* 1 if DC is in the DC set or has a report, 0 if not, -1 if Redis failed
 * (SMEMBERS and EXISTS: commands of the user security.md names). */
static int known(struct rconn *rc, const struct config *cfg, const char *dc)
{
    char set[KEY_MAX], report[KEY_MAX];
    key_dc_set(set, cfg->cluster);
    key_dc_status(report, cfg->cluster, dc);
    redisReply *r = rconn_command(rc, "SMEMBERS %s", set);
    int in = r && r->type == REDIS_REPLY_ARRAY ? 0 : -1;
    for (size_t i = 0; in == 0 && i < r->elements; i++)
        in = r->element[i]->type == REDIS_REPLY_STRING && !strcmp(r->element[i]->str, dc);
    freeReplyObject(r);
    long long has = in < 0 ? -1 : integer(rc, "EXISTS", rconn_command(rc, "EXISTS %s", report));
    return in < 0 || has < 0 ? -1 : in > 0 || has > 0;
}

/* DEL KEY: 1 if it was there, 0 if not, -1 if Redis failed. */
static long long del(struct rconn *rc, const char *key)
{
    return integer(rc, "DEL", rconn_command(rc, "DEL %s", key));
}

/* Remove what DC left in Redis and print it; 0, or -1 if Redis failed. */
static int forget(struct rconn *rc, const struct config *cfg, const char *dc)
{
    char key[KEY_MAX];
    key_rep_stream(key, cfg->cluster, dc);
    long long replies = del(rc, key);
    key_req_stream(key, cfg->cluster, dc);
    long long requests = replies < 0 ? -1 : del(rc, key);
    key_req_high(key, cfg->cluster, dc);
    long long high = requests < 0 ? -1 : del(rc, key);
    key_dc_status(key, cfg->cluster, dc);
    long long report = high < 0 ? -1 : del(rc, key);
    key_dc_minions(key, cfg->cluster, dc);
    redisReply *set = report < 0 ? NULL : rconn_command(rc, "SMEMBERS %s", key);
    long long ids = set && set->type == REDIS_REPLY_ARRAY ? (long long)set->elements : -1;
    long long entries = ids >= 0 ? forget_minions(rc, cfg, dc, set) : -1;
    freeReplyObject(set);
    if (entries < 0 || del(rc, key) < 0)
        return -1;
    key_dc_set(key, cfg->cluster);
    if (integer(rc, "SREM", rconn_command(rc, "SREM %s %s", key, dc)) < 0)
        return -1;
    printf("forgot DC %s: %s, %s, %s, %lld registry entries of the %lld minions of its set (the others expired, "
           "or name another DC), its minion set and its name in the DC set\n", dc,
           report ? "its report" : "no report", requests ? "its request stream" : "no request stream",
           replies ? "its reply stream" : "no reply stream", entries, ids);
    return 0;
}

int status_forget(const struct status_opts *o, const char *dc)
{
    char who[LEASE_TOKEN_MAX];
    if (!key_name_ok(dc, strlen(dc))) {
        fprintf(stderr, "saltrelay-status: '%s' is no DC name\n", dc);
        return 2;
    }
    int held = lease_held(o->rc, o->cfg, dc, who, sizeof who), is = held < 0 ? -1 : known(o->rc, o->cfg, dc);
    if (held > 0)
        fprintf(stderr, "saltrelay-status: DC %s is running (saltrelay-down %s holds its lease): stop it first; "
                "a killed one's lease runs out within seconds\n", dc, who);
    else if (is == 0)
        fprintf(stderr, "saltrelay-status: no DC named %s in cluster %s\n", dc, o->cfg->cluster);
    if (held != 0 || is != 1)
        return 2;
    return forget(o->rc, o->cfg, dc) < 0 ? 2 : 0;
}
