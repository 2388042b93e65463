/* req_layout.c -- which request stream saltrelay-down writes; see
 * req_layout.h. */
#include "req_layout.h"

#include "clock.h"
#include "log.h"

#define LAYOUT_EVERY_MS 2000

void req_layout_init(struct req_layout *l, const struct config *cfg)
{
    key_req_layout(l->mark_key, cfg->cluster);
    key_up_set(l->ups_key, cfg->cluster);
}

void req_layout_ask(struct req_layout *l, struct rpipe *p, uint64_t tag)
{
    long long now = clock_mono_ms();
    if (l->asked || now < l->due || !rpipe_room(p, 2, 2 * KEY_MAX + 64))
        return;
    if (rpipe_append(p, tag, "EXISTS %s", l->mark_key) != RPIPE_OK)
        return; /* no connection: asked once there is one */
    rpipe_append(p, tag + 1, "ZREVRANGE %s 0 0", l->ups_key);
    l->asked = 1;
    l->due = now + LAYOUT_EVERY_MS;
}

void req_layout_answer(struct req_layout *l, int which, const redisReply *r)
{
    int yes = r && (r->type == REDIS_REPLY_INTEGER ? r->integer > 0
                    : r->type == REDIS_REPLY_ARRAY ? r->elements > 0 : 0);
    if (which == 0) {
        l->mark = yes || (r && r->type == REDIS_REPLY_ERROR); /* refused: a confined user */
        return;
    }
    l->asked = 0;
    if (!r) {
        l->due = 0; /* asked again once connected */
        return;
    }
    enum req_stream now = !l->mark && yes ? REQ_STREAM_SHARED : REQ_STREAM_OWN;
    if (now != l->now && (l->now != REQ_STREAM_NONE || now == REQ_STREAM_SHARED))
        log_info("requests: writing %s", now == REQ_STREAM_SHARED
                 ? "the request stream all DCs share (only saltrelay-ups older than per-DC streams run)"
                 : "this DC's own request stream (a saltrelay-up reads per-DC streams)");
    l->now = now;
}
