/* registry.c -- minion registry writes; see registry.h. Keys are in keys.h:
 * key_minion(dc, id) is a hash {first_auth, last_auth, last_request} (wall
 * milliseconds), key_dc_minions(dc) the set of ids seen through a DC: both
 * the DC's own keys, which its ACL user may write (docs/security.md). */
#include "registry.h"

#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "warnrate.h"

/* KEYS: the minion hash, the DC's set; ARGV: now, ttl ms, id. Both keys
 * carry the cluster's hash tag, so this also runs on a Redis Cluster. */
static const char refresh_script[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "redis.call('HSET', KEYS[1], 'last_request', ARGV[1]) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
    "redis.call('SADD', KEYS[2], ARGV[3]) "
    "redis.call('PEXPIRE', KEYS[2], ARGV[2]) "
    "return 1";

static struct warnrate too_long; /* only saltrelay-down's request thread writes the registry */

/* The arguments of ID's commands. */
struct reg_args {
    char mkey[KEY_MAX], skey[KEY_MAX], now[24], ttl[24];
};

/* Fill A for ID at NOW_MS; -1 if ID is empty, or if a key would be
 * truncated (it would be another minion's). */
static int prepare(const struct registry_ctx *r, const char *id, long long now_ms, struct reg_args *a)
{
    if (!id[0])
        return -1;
    if (key_minion(a->mkey, r->cluster, r->dc, id) >= KEY_MAX || key_dc_minions(a->skey, r->cluster, r->dc) >= KEY_MAX) {
        warn_throttled(&too_long, "minion id of %zu bytes too long for a registry key: not registered", strlen(id));
        return -1;
    }
    snprintf(a->now, sizeof a->now, "%lld", now_ms);
    snprintf(a->ttl, sizeof a->ttl, "%lld", r->ttl_ms);
    return 0;
}

int registry_append_auth(struct rpipe *p, uint64_t tag, const struct registry_ctx *r, const char *id,
                         long long now_ms)
{
    struct reg_args a;
    if (prepare(r, id, now_ms, &a) < 0)
        return RPIPE_OK;
    int rc = rpipe_append(p, tag, "HSET %s last_auth %s last_request %s", a.mkey, a.now, a.now);
    if (rc != RPIPE_OK)
        return rc;
    rpipe_append(p, tag, "HSETNX %s first_auth %s", a.mkey, a.now);
    rpipe_append(p, tag, "PEXPIRE %s %s", a.mkey, a.ttl);
    rpipe_append(p, tag, "SADD %s %s", a.skey, id);
    rpipe_append(p, tag, "PEXPIRE %s %s", a.skey, a.ttl);
    return RPIPE_OK;
}

int registry_append_request(struct rpipe *p, uint64_t tag, const struct registry_ctx *r, const char *id,
                            long long now_ms)
{
    struct reg_args a;
    if (prepare(r, id, now_ms, &a) < 0)
        return RPIPE_OK;
    return rpipe_append(p, tag, "EVAL %s 2 %s %s %s %s %s", refresh_script, a.mkey, a.skey, a.now, a.ttl, id);
}
