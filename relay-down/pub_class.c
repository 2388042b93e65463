/* pub_class.c -- see pub_class.h. */
#include "pub_class.h"

#include <stdlib.h>
#include <string.h>

void pub_class_init(struct pub_class *c, int hwm, size_t engine_batch, pub_class_left_fn left, void *arg)
{
    memset(c, 0, sizeof *c);
    c->hwm = hwm;
    c->engine_batch = engine_batch;
    c->left = left;
    c->arg = arg;
}

static void free_classes(struct pub_class_q *tab, size_t cap)
{
    for (size_t i = 0; i < cap; i++) {
        free(tab[i].key);
        free(tab[i].q);
    }
    free(tab);
}

void pub_class_free(struct pub_class *c)
{
    free_classes(c->tab, c->cap);
    c->tab = NULL;
    c->cap = c->used = c->entries = 0;
}

void pub_class_clear(struct pub_class *c) { pub_class_free(c); }

size_t pub_class_waiting(const struct pub_class *c) { return c->entries; }

static size_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (size_t)h;
}

/* The slot of KEY in TAB, or the free slot where it belongs. */
static struct pub_class_q *slot(struct pub_class_q *tab, size_t cap, const char *key, size_t klen)
{
    size_t i = hash(key, klen) & (cap - 1);
    while (tab[i].key && (tab[i].klen != klen || memcmp(tab[i].key, key, klen) != 0))
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

/* Rehash into CAP slots; classes with nothing waiting are dropped when DROP
 * (a class's history matters only while a message of it waits). */
static int rehash(struct pub_class *c, size_t cap, int drop)
{
    struct pub_class_q *tab = calloc(cap, sizeof *tab);
    if (!tab)
        return -1;
    size_t used = 0;
    for (size_t i = 0; i < c->cap; i++) {
        struct pub_class_q *q = &c->tab[i];
        if (!q->key)
            continue;
        if (drop && q->qn == 0) {
            free(q->key);
            free(q->q);
            continue;
        }
        *slot(tab, cap, q->key, q->klen) = *q;
        used++;
    }
    free(c->tab);
    c->tab = tab;
    c->cap = cap;
    c->used = used;
    return 0;
}

/* The class KEY, added if new; NULL past PUB_CLASS_MAX or out of memory. */
static struct pub_class_q *class_of(struct pub_class *c, const char *key, size_t klen)
{
    if (c->cap) {
        struct pub_class_q *q = slot(c->tab, c->cap, key, klen);
        if (q->key)
            return q;
    }
    if (c->used >= PUB_CLASS_MAX && rehash(c, c->cap, 1) < 0)
        return NULL;
    if (c->used >= PUB_CLASS_MAX)
        return NULL;
    if ((c->used + 1) * 2 > c->cap && rehash(c, c->cap ? c->cap * 2 : 64, 0) < 0)
        return NULL;
    struct pub_class_q *q = slot(c->tab, c->cap, key, klen);
    q->key = malloc(klen ? klen : 1);
    if (!q->key)
        return NULL;
    memcpy(q->key, key, klen);
    q->klen = klen;
    c->used++;
    return q;
}

static int push(struct pub_class_q *q, struct pub_class_entry e)
{
    if (q->qn == q->qcap) {
        size_t cap = q->qcap ? q->qcap * 2 : 4; /* most classes (one minion's topic) hold a few */
        struct pub_class_entry *n = malloc(cap * sizeof *n);
        if (!n)
            return -1;
        for (size_t i = 0; i < q->qn; i++) /* unwrap, oldest first */
            n[i] = q->q[(q->qhead + i) % q->qcap];
        free(q->q);
        q->q = n;
        q->qcap = cap;
        q->qhead = 0;
    }
    q->q[(q->qhead + q->qn) % q->qcap] = e;
    q->qn++;
    return 0;
}

/* Report what has left: the oldest waiting message, while more than hwm of
 * its class followed it and, before the newest hwm + 1, at least one engine
 * batch of bytes. The queue holds consecutive messages of the class up to
 * the newest, so the one hwm + 1 back is at index qn - hwm - 2. */
static void advance(struct pub_class *c, struct pub_class_q *q)
{
    size_t keep = (size_t)c->hwm + 2;
    while (q->qn >= keep) {
        const struct pub_class_entry *old = &q->q[q->qhead];
        uint64_t before_pipe = q->q[(q->qhead + q->qn - keep) % q->qcap].bytes;
        if (before_pipe - old->bytes < c->engine_batch)
            return;
        uint64_t rec = old->rec;
        q->qhead = (q->qhead + 1) % q->qcap;
        q->qn--;
        c->entries--;
        c->left(c->arg, rec);
    }
}

int pub_class_sent(struct pub_class *c, const char *key, size_t klen, uint64_t bytes, uint64_t rec)
{
    if (c->entries >= PUB_CLASS_ENTRIES_MAX)
        return -1;
    struct pub_class_q *q = class_of(c, key, klen);
    if (!q)
        return -1;
    q->bytes += bytes;
    if (push(q, (struct pub_class_entry){.rec = rec, .bytes = q->bytes}) < 0)
        return -1;
    c->entries++;
    advance(c, q);
    return 0;
}

void pub_class_forget(struct pub_class *c, uint64_t rec)
{
    for (size_t i = 0; i < c->cap; i++) {
        struct pub_class_q *q = &c->tab[i];
        while (q->key && q->qn > 0 && q->q[q->qhead].rec < rec) {
            q->qhead = (q->qhead + 1) % q->qcap;
            q->qn--;
            c->entries--;
        }
    }
}
