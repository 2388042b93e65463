/* regmap.c -- the minion registry read back; see regmap.h. Three pipelined
 * rounds: the DCs' sets, the per-DC entries of their members, and the
 * entries of the layout before per-DC keys for the members none has. */
#include "regmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobcache.h"
#include "keys.h"

struct pair {           /* a member of a DC's set */
    const char *id;     /* in its SMEMBERS reply */
    int dc;             /* index into the names */
    int skip;           /* round 3: its id has a per-DC entry that counts */
    struct regentry e;
};

struct load {
    struct rconn *rc;
    const struct config *cfg;
    char (*names)[DC_NAME_MAX];
    int n;
    redisReply **sets; /* one SMEMBERS reply per DC */
    struct pair *p;
    size_t np;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : x->dc - y->dc;
}

/* A set member that can be a registered minion id: what registry.c can
 * have written (no NUL, fits a key). */
static int usable_id(const redisReply *e, const char *dc)
{
    char key[KEY_MAX];
    return e->type == REDIS_REPLY_STRING && e->len > 0 && e->len < MINION_ID_MAX && !memchr(e->str, 0, e->len) &&
           key_minion(key, "", dc, e->str) < KEY_MAX;
}

/* Round 1: every DC's set; the members wanted become pairs. */
static int read_sets(struct load *l, const char *const *want, size_t nwant)
{
    redisContext *c = rconn_get(l->rc);
    if (!c)
        return -1;
    char key[KEY_MAX];
    for (int i = 0; i < l->n; i++) {
        key_dc_minions(key, l->cfg->cluster, l->names[i]);
        redisAppendCommand(c, "SMEMBERS %s", key);
    }
    size_t total = 0;
    for (int i = 0; i < l->n; i++) {
        if (!(l->sets[i] = rconn_reply(l->rc)))
            return -1;
        const redisReply *set = l->sets[i];
        if (set->type != REDIS_REPLY_ARRAY) {
            key_dc_minions(key, l->cfg->cluster, l->names[i]);
            fprintf(stderr, "saltrelay-status: SMEMBERS %s: %s; no minions shown for DC %s\n", key,
                    set->type == REDIS_REPLY_ERROR ? set->str : "not a set", l->names[i]);
            continue;
        }
        total += set->elements;
    }
    if (!(l->p = calloc(total + 1, sizeof *l->p)))
        return -1;
    for (int i = 0; i < l->n; i++) {
        const redisReply *set = l->sets[i];
        size_t bad = 0;
        for (size_t k = 0; set->type == REDIS_REPLY_ARRAY && k < set->elements; k++) {
            const redisReply *e = set->element[k];
            if (!usable_id(e, l->names[i]))
                bad++;
            else if (!want || bsearch(&e->str, want, nwant, sizeof *want, cmp_str))
                l->p[l->np++] = (struct pair){.id = e->str, .dc = i};
        }
        if (bad)
            fprintf(stderr, "saltrelay-status: %zu members of the minion set of DC %s are no usable minion ids; "
                    "ignored\n", bad, l->names[i]);
    }
    qsort(l->p, l->np, sizeof *l->p, cmp_pair);
    return 0;
}

/* Round 2 (SHARED 0: each pair's own entry) or 3 (SHARED 1: the entry of
 * the layout before, for the pairs of an id that no DC's entry counts for). */
static int read_entries(struct load *l, int shared)
{
    redisContext *c = rconn_get(l->rc);
    if (!c)
        return -1;
    char key[KEY_MAX];
    size_t asked = 0;
    for (size_t i = 0; i < l->np; i++) {
        struct pair *p = &l->p[i];
        if (shared && p->skip)
            continue;
        if (shared)
            key_minion_shared(key, l->cfg->cluster, p->id);
        else
            key_minion(key, l->cfg->cluster, l->names[p->dc], p->id);
        redisAppendCommand(c, shared ? REGENTRY_HMGET_SHARED : REGENTRY_HMGET, key);
        asked++;
    }
    for (size_t i = 0; i < l->np && asked; i++) {
        struct pair *p = &l->p[i];
        if (shared && p->skip)
            continue;
        redisReply *r = rconn_reply(l->rc);
        if (!r)
            return -1;
        asked--;
        regentry_parse(r, p->id, shared ? NULL : l->names[p->dc], &p->e);
        freeReplyObject(r);
        if (shared && strcmp(p->e.dc, l->names[p->dc]))
            p->e.dc[0] = '\0'; /* names another DC: that DC's set decides there */
    }
    return 0;
}

/* Of the pairs [FROM, TO) of one id, the one that decides its DC. */
static const struct pair *newest(const struct load *l, size_t from, size_t to)
{
    const struct pair *best = NULL;
    for (size_t i = from; i < to; i++)
        if (l->p[i].e.dc[0] && (!best || regentry_newest(&l->p[i].e) > regentry_newest(&best->e)))
            best = &l->p[i];
    return best;
}

/* One item per id: its newest entry (pairs are sorted by id, then DC). */
static int fold(struct load *l, struct regmap *m)
{
    if (!(m->v = calloc(l->np + 1, sizeof *m->v)))
        return -1;
    for (size_t i = 0, k; i < l->np; i = k) {
        for (k = i; k < l->np && !strcmp(l->p[k].id, l->p[i].id); k++)
            ;
        struct regmap_item *it = &m->v[m->n];
        const struct pair *best = newest(l, i, k);
        it->e = best ? best->e : l->p[i].e;
        if (!(it->id = strdup(l->p[i].id)))
            return -1;
        m->n++;
    }
    return 0;
}

/* Before round 3: the ids with a per-DC entry that counts are done. */
static void mark_found(struct load *l)
{
    for (size_t i = 0, k; i < l->np; i = k) {
        int found = 0;
        for (k = i; k < l->np && !strcmp(l->p[k].id, l->p[i].id); k++)
            found |= l->p[k].e.dc[0] != '\0';
        for (size_t j = i; j < k; j++)
            l->p[j].skip = found;
    }
}

int regmap_load(struct rconn *rc, const struct config *cfg, char names[][DC_NAME_MAX], int n,
                const char *const *want, size_t nwant, struct regmap *m)
{
    struct load l = {.rc = rc, .cfg = cfg, .names = names, .n = n};
    memset(m, 0, sizeof *m);
    int rv = -1;
    if ((l.sets = calloc((size_t)n + 1, sizeof *l.sets)) && read_sets(&l, want, nwant) == 0 &&
        read_entries(&l, 0) == 0) {
        mark_found(&l);
        rv = read_entries(&l, 1) == 0 && fold(&l, m) == 0 ? 0 : -1;
    }
    for (int i = 0; l.sets && i < n; i++)
        freeReplyObject(l.sets[i]);
    free(l.sets);
    free(l.p);
    if (rv < 0)
        regmap_free(m);
    return rv;
}

static int cmp_item(const void *key, const void *item)
{
    return strcmp(key, ((const struct regmap_item *)item)->id);
}

const struct regentry *regmap_find(const struct regmap *m, const char *id)
{
    const struct regmap_item *it = m->n ? bsearch(id, m->v, m->n, sizeof *m->v, cmp_item) : NULL;
    return it ? &it->e : NULL;
}

void regmap_free(struct regmap *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].id);
    free(m->v);
    m->v = NULL;
    m->n = 0;
}
