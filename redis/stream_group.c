/* stream_group.c -- the streams a consumer group reads together; see
 * stream_group.h (and stream_reader.c, whose thread runs it). */
#include "stream_group.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "group_prune.h"
#include "log.h"
#include "warnrate.h"

#define DISCOVER_EVERY_MS 1000
#define CLAIM_EVERY_MS 1000
#define PRUNE_EVERY_MS 5000
/* a consumer idle this many claim_idle_ms with nothing pending is of a dead
 * instance (a live one reads every block_ms): removed (group_prune.h) */
#define PRUNE_IDLE_CLAIMS 2
#define READ_COUNT_MAX 256 /* entries per stream and read */

struct gstream {
    char key[KEY_MAX];
    int pending;                        /* still reading this consumer's own pending entries */
    char cursor[STREAMID_STRLEN];       /* there */
    char claim_cursor[STREAMID_STRLEN]; /* XAUTOCLAIM's, "0-0" = from the start */
    int prune_refused;                  /* Redis refuses the prune (logged once) */
};

struct stream_group {
    struct stream_reader_cfg cfg;
    struct gstream s[GROUP_STREAMS_MAX];
    int n;
    unsigned generation;    /* of the connection the groups were joined on */
    long long discover_at;  /* monotonic ms of the next look at the set */
    long long claim_at, prune_at;
    int rejoining;          /* a failed read made every stream join again (logged once per episode) */
    int quiet;              /* joining again what was read before: not logged */
    struct warnrate warn;
};

int stream_entry_ok(const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[0]->len >= STREAMID_STRLEN)
        return 0;
    const redisReply *f = e->element[1];
    if (f->type == REDIS_REPLY_NIL)
        return 1;
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2)
        return 0;
    for (size_t i = 0; i < f->elements; i++)
        if (f->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return 1;
}

struct stream_group *stream_group_new(const struct stream_reader_cfg *cfg)
{
    struct stream_group *g = calloc(1, sizeof *g);
    if (g)
        g->cfg = *cfg;
    return g;
}

void stream_group_destroy(struct stream_group **g)
{
    free(*g);
    *g = NULL;
}

static int find(const struct stream_group *g, const char *key)
{
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->s[i].key, key))
            return i;
    return -1;
}

static void leave(struct stream_group *g, int i, const char *why)
{
    warn_throttled(&g->warn, "stopped reading %s (%s); read again once it is a stream", g->s[i].key, why);
    g->s[i] = g->s[--g->n];
}

/* The keys to try: the fixed stream and every usable name of the set that is
 * not read yet. Returns how many (in KEYS), or -1 on a lost connection. */
static int candidates(struct stream_group *g, struct rconn *rc, char (*keys)[KEY_MAX], int max)
{
    int n = 0;
    if (g->cfg.key[0] && find(g, g->cfg.key) < 0)
        memcpy(keys[n++], g->cfg.key, KEY_MAX);
    redisReply *r = rconn_command(rc, "SMEMBERS %s", g->cfg.set_key);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY)
        warn_throttled(&g->warn, "reading %s: %s", g->cfg.set_key, r->type == REDIS_REPLY_ERROR ? r->str : "no set");
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && n < max; i++) {
        const redisReply *e = r->element[i];
        char key[KEY_MAX];
        if (e->type != REDIS_REPLY_STRING || !key_name_ok(e->str, e->len) ||
            snprintf(key, sizeof key, "%s%.*s", g->cfg.prefix, (int)e->len, e->str) >= (int)sizeof key)
            continue;
        if (find(g, key) < 0)
            memcpy(keys[n++], key, KEY_MAX);
    }
    freeReplyObject(r);
    return n;
}

/* Join KEY's group if the stream exists (pipelined by the caller): the
 * reply R to its XGROUP CREATE. */
static void joined(struct stream_group *g, const char *key, const redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
        return; /* no such key (nothing stored yet, or a name nobody writes), or no stream */
    if (g->n == GROUP_STREAMS_MAX) {
        warn_throttled(&g->warn, "more than %d streams to read: %s waits", GROUP_STREAMS_MAX, key);
        return;
    }
    struct gstream *s = &g->s[g->n++];
    memset(s, 0, sizeof *s);
    memcpy(s->key, key, KEY_MAX);
    s->pending = 1;
    strcpy(s->cursor, "0");
    if (!g->quiet)
        log_info("reading %s (consumer group %s)", key, g->cfg.group);
}

/* After a (re)connect every stream is joined again (a new primary may lack
 * the group); new names every DISCOVER_EVERY_MS. -1 on a lost connection. */
static int discover(struct stream_group *g, struct rconn *rc)
{
    long long now = clock_mono_ms();
    if (g->generation != rconn_generation(rc)) {
        g->quiet = g->generation != 0;
        g->generation = rconn_generation(rc);
        g->n = 0;
        g->discover_at = 0;
    }
    if (now < g->discover_at)
        return 0;
    g->discover_at = now + DISCOVER_EVERY_MS;
    static char keys[GROUP_STREAMS_MAX][KEY_MAX]; /* only the reader's thread runs this */
    int n = candidates(g, rc, keys, GROUP_STREAMS_MAX);
    redisContext *c = rconn_get(rc);
    if (n < 0 || !c)
        return -1;
    for (int i = 0; i < n; i++)
        redisAppendCommand(c, "XGROUP CREATE %s %s 0", keys[i], g->cfg.group);
    for (int i = 0; i < n; i++) {
        redisReply *r = rconn_reply(rc);
        if (!r)
            return -1;
        joined(g, keys[i], r);
        freeReplyObject(r);
    }
    g->quiet = 0;
    return 0;
}

static void forward_all(const redisReply *entries, const char *key, stream_group_fwd *fwd, void *arg)
{
    for (size_t i = 0; i < entries->elements; i++)
        fwd(arg, key, entries->element[i]);
}

/* Entries of a stream's reply that the reader can forward: all or none. */
static int entries_ok(const redisReply *entries)
{
    if (entries->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i < entries->elements; i++)
        if (!stream_entry_ok(entries->element[i]))
            return 0;
    return 1;
}

/* This consumer's own pending entries of one stream still in that phase
 * (from ID 0: what it read and did not acknowledge before a reconnect). */
static int read_pending(struct stream_group *g, struct rconn *rc, long long count, stream_group_fwd *fwd, void *arg)
{
    for (int i = 0; i < g->n; i++) {
        struct gstream *s = &g->s[i];
        if (!s->pending)
            continue;
        redisReply *r = rconn_command(rc, "XREADGROUP GROUP %s %s COUNT %lld STREAMS %s %s", g->cfg.group,
                                      g->cfg.consumer, count, s->key, s->cursor);
        if (!r)
            return -1;
        const redisReply *e = r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type ==
                              REDIS_REPLY_ARRAY && r->element[0]->elements == 2 ? r->element[0]->element[1] : NULL;
        if (!e || !entries_ok(e)) {
            leave(g, i, r->type == REDIS_REPLY_ERROR ? r->str : "unusable reply");
            freeReplyObject(r);
            return 0;
        }
        if (e->elements == 0)
            s->pending = 0;
        else
            memcpy(s->cursor, e->element[e->elements - 1]->element[0]->str,
                   (size_t)e->element[e->elements - 1]->element[0]->len + 1);
        forward_all(e, s->key, fwd, arg);
        freeReplyObject(r);
        return 0; /* one stream per turn: the credit was counted for it */
    }
    return 0;
}

static int in_pending_phase(const struct stream_group *g)
{
    for (int i = 0; i < g->n; i++)
        if (g->s[i].pending)
            return 1;
    return 0;
}

/* Take over what a dead consumer read and never acknowledged, every
 * CLAIM_EVERY_MS, up to COUNT per stream (pipelined). Reply per stream:
 * [next cursor, [entries], [deleted ids]]. Returns how many were taken, or
 * -1 on a lost connection. */
static int claim_abandoned(struct stream_group *g, struct rconn *rc, long long count, stream_group_fwd *fwd,
                           void *arg)
{
    long long now = clock_mono_ms();
    redisContext *c = rconn_get(rc);
    if (!g->cfg.claim_idle_ms || now < g->claim_at || !c || !g->n)
        return 0;
    g->claim_at = now + CLAIM_EVERY_MS;
    for (int i = 0; i < g->n; i++) {
        struct gstream *s = &g->s[i];
        if (!s->claim_cursor[0])
            strcpy(s->claim_cursor, "0-0");
        redisAppendCommand(c, "XAUTOCLAIM %s %s %s %lld %s COUNT %lld", s->key, g->cfg.group, g->cfg.consumer,
                           g->cfg.claim_idle_ms, s->claim_cursor, count);
    }
    int n = g->n, gone = -1, taken = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = rconn_reply(rc);
        if (!r)
            return -1;
        struct gstream *s = &g->s[i];
        int ok = r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[0]->type == REDIS_REPLY_STRING &&
                 r->element[0]->len < STREAMID_STRLEN && entries_ok(r->element[1]);
        if (ok) {
            memcpy(s->claim_cursor, r->element[0]->str, (size_t)r->element[0]->len + 1);
            forward_all(r->element[1], s->key, fwd, arg);
            taken += (int)r->element[1]->elements;
        } else if (gone < 0) {
            gone = i; /* leaves once every reply is read */
            warn_throttled(&g->warn, "claiming abandoned entries of %s: %s", s->key,
                           r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        }
        freeReplyObject(r);
    }
    if (gone >= 0)
        leave(g, gone, "claims refused");
    return taken;
}

/* Every PRUNE_EVERY_MS, the consumers of dead instances out of each
 * stream's group (group_prune.h); a refusal is logged once, never fatal. */
static void prune_dead(struct stream_group *g, struct rconn *rc)
{
    long long now = clock_mono_ms();
    if (!g->cfg.claim_idle_ms || now < g->prune_at)
        return;
    g->prune_at = now + PRUNE_EVERY_MS;
    for (int i = 0; i < g->n && rconn_get(rc); i++) {
        struct gstream *s = &g->s[i];
        char why[200];
        long long n = group_prune(rc, s->key, g->cfg.group, g->cfg.consumer,
                                  (long long)PRUNE_IDLE_CLAIMS * g->cfg.claim_idle_ms, why, sizeof why);
        if (n < 0 && !s->prune_refused && rconn_get(rc))
            log_warn("removing dead consumers from group %s of %s: %s; going on without", g->cfg.group, s->key, why);
        else if (n >= 0 && s->prune_refused)
            log_info("removing dead consumers from group %s of %s works again", g->cfg.group, s->key);
        s->prune_refused = n < 0 && (s->prune_refused || rconn_get(rc));
    }
}

/* A read failed on a stream that is gone or no stream (Redis's NOGROUP and
 * WRONGTYPE errors quote no key reliably): every stream joins again (a
 * stream that lost its group gets a new one), those that cannot stay out. */
static void rejoin(struct stream_group *g, const char *err)
{
    if (!g->rejoining)
        log_warn("reading %d streams: %s; joining each again", g->n, err);
    g->rejoining = 1;
    g->n = 0;
    g->discover_at = 0;
    g->quiet = 1;
}

/* One XREADGROUP of new entries over every stream, COUNT from each. */
static int read_new(struct stream_group *g, struct rconn *rc, long long count, int block_ms, stream_group_fwd *fwd,
                    void *arg)
{
    const char *argv[8 + 2 * GROUP_STREAMS_MAX];
    char cnt[24], blk[24];
    snprintf(cnt, sizeof cnt, "%lld", count);
    snprintf(blk, sizeof blk, "%d", block_ms);
    int argc = 0;
    const char *head[] = {"XREADGROUP", "GROUP", g->cfg.group, g->cfg.consumer, "COUNT", cnt, "BLOCK", blk, "STREAMS"};
    for (size_t i = 0; i < sizeof head / sizeof *head; i++)
        argv[argc++] = head[i];
    for (int i = 0; i < g->n; i++)
        argv[argc++] = g->s[i].key;
    for (int i = 0; i < g->n; i++)
        argv[argc++] = ">";
    redisContext *c = rconn_get(rc);
    redisReply *r = c ? redisCommandArgv(c, argc, argv, NULL) : NULL;
    if (!r)
        return -1;
    int rv = 0;
    if (r->type == REDIS_REPLY_ERROR && (!strncmp(r->str, "NOGROUP", 7) || !strncmp(r->str, "WRONGTYPE", 9) ||
                                         !strncmp(r->str, "UNBLOCKED", 9))) {
        rejoin(g, r->str);
    } else if (r->type == REDIS_REPLY_ERROR) {
        log_error("reading %d streams: %s; reconnecting", g->n, r->str);
        rv = -1;
    } else if (r->type == REDIS_REPLY_ARRAY) {
        g->rejoining = 0;
        for (size_t i = 0; i < r->elements && rv == 0; i++) {
            const redisReply *st = r->element[i];
            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 || st->element[0]->type != REDIS_REPLY_STRING ||
                find(g, st->element[0]->str) < 0 || !entries_ok(st->element[1])) {
                log_error("reading %d streams: unexpected reply shape; reconnecting", g->n);
                rv = -1;
            } else {
                forward_all(st->element[1], st->element[0]->str, fwd, arg);
            }
        }
    } else if (r->type != REDIS_REPLY_NIL) {
        log_error("reading %d streams: unexpected reply; reconnecting", g->n);
        rv = -1;
    }
    freeReplyObject(r);
    return rv;
}

int stream_group_turn(struct stream_group *g, struct rconn *rc, long long credit, int block_ms,
                      stream_group_fwd *fwd, void *arg)
{
    if (discover(g, rc) < 0)
        return -1;
    if (!g->n)
        return 1; /* nothing to read yet */
    long long share = credit / g->n; /* from each stream, at most */
    if (share > READ_COUNT_MAX)
        share = READ_COUNT_MAX;
    if (share <= 0)
        return 1; /* waits for more credit */
    if (in_pending_phase(g))
        return read_pending(g, rc, share, fwd, arg);
    int claimed = claim_abandoned(g, rc, share, fwd, arg);
    if (claimed)
        return claimed < 0 ? -1 : 0; /* the credit left is counted again first */
    prune_dead(g, rc);
    return g->n ? read_new(g, rc, share, block_ms, fwd, arg) : 0;
}
