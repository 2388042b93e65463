/* upstate.c -- the saltrelay-up instances alive; see upstate.h. */
#include "upstate.h"

#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "outfmt.h"
#include "rconn.h"

/* ZREVRANGEBYSCORE ups +inf <oldest> WITHSCORES: [name, score, ...]. */
static int parse(const redisReply *r, struct up_list *out)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2)
        return -1;
    for (size_t i = 0; i < r->elements; i += 2) {
        const redisReply *name = r->element[i], *score = r->element[i + 1];
        if (name->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING)
            return -1;
        out->alive++;
        if (out->n == UPS_SHOWN || name->len >= UP_NAME_MAX)
            continue;
        struct up_state *u = &out->up[out->n++];
        memcpy(u->name, name->str, name->len);
        u->name[name->len] = '\0';
        u->heartbeat_ms = atoll(score->str);
    }
    return 0;
}

int ups_load(struct rconn *rc, const struct config *cfg, long long now_ms, struct up_list *out)
{
    char key[KEY_MAX];
    memset(out, 0, sizeof *out);
    key_up_set(key, cfg->cluster);
    redisReply *r = rconn_command(rc, "ZREVRANGEBYSCORE %s +inf %lld WITHSCORES", key, now_ms - cfg->stale_after_ms);
    if (!r)
        return -1;
    int rc2 = parse(r, out);
    freeReplyObject(r);
    return rc2;
}

void ups_print_text(const struct up_list *l, long long now_ms, FILE *f)
{
    fprintf(f, "saltrelay-up instances alive: %d", l->alive);
    for (int i = 0; i < l->n; i++)
        fprintf(f, "%s%s %.1f s ago", i ? ", " : " (", l->up[i].name, (now_ms - l->up[i].heartbeat_ms) / 1000.0);
    fprintf(f, "%s\n", l->n ? (l->n < l->alive ? ", ...)" : ")") : "");
}

void ups_print_json(const struct up_list *l, long long now_ms, FILE *f)
{
    fprintf(f, " \"ups_alive\": %d, \"ups\": [", l->alive);
    for (int i = 0; i < l->n; i++) {
        fprintf(f, "%s{\"instance\": ", i ? ", " : "");
        json_string(f, l->up[i].name, strlen(l->up[i].name));
        fprintf(f, ", \"heartbeat_ms\": %lld, \"age_ms\": %lld}", l->up[i].heartbeat_ms,
                now_ms - l->up[i].heartbeat_ms);
    }
    fprintf(f, "],\n");
}
