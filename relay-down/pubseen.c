/* pubseen.c -- the recently delivered publications; see pubseen.h. */
#include "pubseen.h"

#include <stdlib.h>

#define SLOTS (2 * PUBSEEN_MAX) /* power of two, at most half full */

struct pubseen {
    uint64_t ring[PUBSEEN_MAX]; /* the remembered keys, oldest at HEAD once full */
    size_t head, count;
    uint64_t slot[SLOTS];       /* index: key, 0 = empty (keys are never 0) */
};

struct pubseen *pubseen_new(void)
{
    return calloc(1, sizeof(struct pubseen));
}

void pubseen_free(struct pubseen *ps)
{
    free(ps);
}

/* The first 8 raw bytes as a key. */
static uint64_t key_of_raw(const char *raw, size_t len)
{
    if (len < 8)
        return 0;
    uint64_t k = 0;
    for (size_t i = 0; i < 8; i++)
        k = k << 8 | (unsigned char)raw[i];
    return k ? k : 1;
}

/* The first 16 hex digits as a key (the same as the raw bytes they spell);
 * 0 if they are not hex. */
static uint64_t key_of_hex(const char *hex, size_t len)
{
    if (len < 16)
        return 0;
    uint64_t k = 0;
    for (size_t i = 0; i < 16; i++) {
        char c = hex[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return 0;
        k = k << 4 | (uint64_t)v;
    }
    return k ? k : 1;
}

static size_t find(const struct pubseen *ps, uint64_t k)
{
    size_t i = (size_t)(k ^ k >> 29) & (SLOTS - 1);
    while (ps->slot[i] && ps->slot[i] != k)
        i = (i + 1) & (SLOTS - 1);
    return i;
}

/* Remove K from the index, moving later keys of its probe run back so that
 * find() still reaches them (no tombstones). */
static void unindex(struct pubseen *ps, uint64_t k)
{
    size_t i = find(ps, k);
    if (!ps->slot[i])
        return;
    ps->slot[i] = 0;
    for (size_t j = (i + 1) & (SLOTS - 1); ps->slot[j]; j = (j + 1) & (SLOTS - 1)) {
        uint64_t m = ps->slot[j];
        ps->slot[j] = 0;
        ps->slot[find(ps, m)] = m;
    }
}

int pubseen_check(struct pubseen *ps, const char *hash, size_t len, int raw)
{
    uint64_t k = raw ? key_of_raw(hash, len) : key_of_hex(hash, len);
    if (!k)
        return -1;
    if (ps->slot[find(ps, k)])
        return 1;
    if (ps->count == PUBSEEN_MAX) { /* forget the oldest */
        unindex(ps, ps->ring[ps->head]);
        ps->head = (ps->head + 1) % PUBSEEN_MAX;
        ps->count--;
    }
    ps->ring[(ps->head + ps->count++) % PUBSEEN_MAX] = k;
    ps->slot[find(ps, k)] = k;
    return 0;
}
