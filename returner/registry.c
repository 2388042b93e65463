/* registry.c -- minion registry writes; see registry.h. Keys are in keys.h:
 * key_minion(id) is a hash {dc, first_auth, last_auth, last_request} (wall
 * milliseconds), key_dc_minions(dc) the set of ids seen through a DC. */
#include "registry.h"

#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "warnrate.h"

static struct warnrate too_long; /* only saltrelay-down's request thread writes the registry */

int registry_append(redisContext *c, const char *cluster, const char *dc, const char *id, int auth,
                    long long now_ms)
{
    if (!id[0])
        return 0;
    char mkey[KEY_MAX], skey[KEY_MAX], now[24];
    if (key_minion(mkey, cluster, id) >= KEY_MAX || key_dc_minions(skey, cluster, dc) >= KEY_MAX) {
        /* a truncated key would be another minion's: no registry entry (the request goes on) */
        warn_throttled(&too_long, "minion id of %zu bytes too long for a registry key: not registered", strlen(id));
        return 0;
    }
    snprintf(now, sizeof now, "%lld", now_ms);
    if (!auth) {
        redisAppendCommand(c, "HSET %s dc %s last_request %s", mkey, dc, now);
        redisAppendCommand(c, "SADD %s %s", skey, id);
        return 2;
    }
    redisAppendCommand(c, "HSET %s dc %s last_auth %s last_request %s", mkey, dc, now, now);
    redisAppendCommand(c, "HSETNX %s first_auth %s", mkey, now);
    redisAppendCommand(c, "SADD %s %s", skey, id);
    return 3;
}
