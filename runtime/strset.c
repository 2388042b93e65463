/* strset.c -- see strset.h. Each entry is one malloc'd block: hash, length
 * and bytes, so a 40-byte topic costs about 64 bytes plus its slot. */
#include "strset.h"

#include <stdlib.h>
#include <string.h>

#define MIN_CAP 16

struct strset_slot {
    uint64_t hash;
    unsigned char *str; /* [0] = length, then the bytes; NULL = empty slot */
    size_t refs;        /* strset_ref's count; 1 for strset_add */
};

static uint64_t hash_of(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h ? h : 1;
}

void strset_init(struct strset *s, size_t max)
{
    memset(s, 0, sizeof *s);
    s->max = max;
}

static int same(const struct strset_slot *e, uint64_t h, const char *str, size_t len)
{
    return e->hash == h && e->str[0] == len && memcmp(e->str + 1, str, len) == 0;
}

/* The slot holding STR, or the empty slot where it would go. */
static size_t find(const struct strset *s, uint64_t h, const char *str, size_t len)
{
    size_t i = h & (s->cap - 1);
    while (s->slot[i].str && !same(&s->slot[i], h, str, len))
        i = (i + 1) & (s->cap - 1);
    return i;
}

static int grow(struct strset *s)
{
    size_t cap = s->cap ? s->cap * 2 : MIN_CAP;
    struct strset_slot *old = s->slot, *n = calloc(cap, sizeof *n);
    if (!n)
        return -1;
    size_t oldcap = s->cap;
    s->slot = n;
    s->cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].str)
            s->slot[find(s, old[i].hash, (const char *)old[i].str + 1, old[i].str[0])] = old[i];
    free(old);
    return 0;
}

int strset_add(struct strset *s, const char *str, size_t len)
{
    if (len > STRSET_MAX_LEN)
        return -1;
    uint64_t h = hash_of(str, len);
    if (s->cap && s->slot[find(s, h, str, len)].str)
        return 0;
    if (s->count >= s->max || ((s->count + 1) * 4 > s->cap * 3 && grow(s) < 0))
        return -1;
    unsigned char *e = malloc(1 + len);
    if (!e)
        return -1;
    e[0] = (unsigned char)len;
    memcpy(e + 1, str, len);
    s->slot[find(s, h, str, len)] = (struct strset_slot){h, e, 1};
    s->count++;
    return 1;
}

int strset_ref(struct strset *s, const char *str, size_t len)
{
    if (s->cap && len <= STRSET_MAX_LEN) {
        struct strset_slot *e = &s->slot[find(s, hash_of(str, len), str, len)];
        if (e->str) {
            e->refs++;
            return 0;
        }
    }
    return strset_add(s, str, len);
}

int strset_unref(struct strset *s, const char *str, size_t len)
{
    if (!s->count || len > STRSET_MAX_LEN)
        return -1;
    struct strset_slot *e = &s->slot[find(s, hash_of(str, len), str, len)];
    if (!e->str)
        return -1;
    if (--e->refs > 0)
        return 0;
    return strset_remove(s, str, len);
}

int strset_has(const struct strset *s, const char *str, size_t len)
{
    if (!s->count || len > STRSET_MAX_LEN)
        return 0;
    uint64_t h = hash_of(str, len);
    return s->slot[find(s, h, str, len)].str != NULL;
}

int strset_remove(struct strset *s, const char *str, size_t len)
{
    if (!s->count || len > STRSET_MAX_LEN)
        return 0;
    size_t i = find(s, hash_of(str, len), str, len), mask = s->cap - 1;
    if (!s->slot[i].str)
        return 0;
    free(s->slot[i].str);
    s->slot[i].str = NULL;
    s->count--;
    /* shift back the entries of the probe run after the hole */
    for (size_t j = (i + 1) & mask; s->slot[j].str; j = (j + 1) & mask) {
        size_t home = s->slot[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            s->slot[i] = s->slot[j];
            s->slot[j].str = NULL;
            i = j;
        }
    }
    return 1;
}

void strset_clear(struct strset *s)
{
    for (size_t i = 0; i < s->cap && s->count; i++)
        if (s->slot[i].str) {
            free(s->slot[i].str);
            s->slot[i].str = NULL;
            s->count--;
        }
    if (s->cap > 1024) { /* a big run's table is not kept for the small ones after it */
        free(s->slot);
        s->slot = NULL;
        s->cap = 0;
    }
}

void strset_free(struct strset *s)
{
    strset_clear(s);
    free(s->slot);
    s->slot = NULL;
    s->cap = 0;
}
