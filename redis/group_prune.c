/* group_prune.c -- dead consumers out of a consumer group; see group_prune.h. */
#include "group_prune.h"

#include <stdio.h>

#include "log.h"
#include "metrics.h"

/* KEYS[1] the stream; ARGV: group, the caller's own consumer, idle bound in
 * ms. XINFO CONSUMERS answers (RESP2) one flat field/value list per consumer. */
static const char PRUNE_LUA[] =
    "local n = 0\n"
    "for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do\n"
    "  local f = {}\n"
    "  for i = 1, #c - 1, 2 do f[c[i]] = c[i + 1] end\n"
    "  if f['name'] ~= ARGV[2] and f['pending'] == 0 and (f['idle'] or 0) > tonumber(ARGV[3]) then\n"
    "    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n";

long long group_prune(struct rconn *rc, const char *key, const char *group, const char *self, long long idle_ms,
                      char *why, size_t len)
{
    redisReply *r = rconn_command(rc, "EVAL %s 1 %s %s %s %lld", PRUNE_LUA, key, group, self, idle_ms);
    if (!r) {
        snprintf(why, len, "no connection");
        return -1;
    }
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (n < 0)
        snprintf(why, len, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    if (n > 0) {
        metric_add(M_CONSUMERS_REMOVED, n);
        log_info("removed %lld consumer%s of dead instances (nothing pending, idle > %lld s) from group %s of %s", n,
                 n == 1 ? "" : "s", idle_ms / 1000, group, key);
    }
    freeReplyObject(r);
    return n;
}
