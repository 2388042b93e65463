/* topiclist.c -- encode and decode merged-record topic lists; see topiclist.h. */
#include "topiclist.h"

#include <stdlib.h>
#include <string.h>

#define SHA1_HEX 40
#define SHA1_RAW 20

static const char hexdigit[] = "0123456789abcdef";

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase is kept raw: decoding must give the same bytes back */
}

int topiclist_encodable(size_t len) { return len >= 1 && len <= TOPICLIST_MAX_TOPIC; }

int topiclist_is_sha1hex(const char *topic, size_t len)
{
    if (len != SHA1_HEX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (hexval(topic[i]) < 0)
            return 0;
    return 1;
}

static int reserve(struct topiclist *tl, size_t more)
{
    if (tl->len + more <= tl->cap)
        return 0;
    size_t cap = tl->cap ? tl->cap * 2 : 64;
    while (cap < tl->len + more)
        cap *= 2;
    char *b = realloc(tl->buf, cap);
    if (!b)
        return -1;
    tl->buf = b;
    tl->cap = cap;
    return 0;
}

int topiclist_append(struct topiclist *tl, const char *topic, size_t len)
{
    if (!topiclist_encodable(len) || tl->count >= TOPICLIST_MAX_COUNT || reserve(tl, 1 + len) < 0)
        return -1;
    unsigned char *o = (unsigned char *)tl->buf + tl->len;
    if (topiclist_is_sha1hex(topic, len)) {
        *o++ = 0;
        for (size_t i = 0; i < SHA1_RAW; i++)
            *o++ = (unsigned char)(hexval(topic[2 * i]) << 4 | hexval(topic[2 * i + 1]));
        tl->len += 1 + SHA1_RAW;
    } else {
        *o++ = (unsigned char)len;
        memcpy(o, topic, len);
        tl->len += 1 + len;
    }
    tl->count++;
    return 0;
}

void topiclist_free(struct topiclist *tl)
{
    free(tl->buf);
    memset(tl, 0, sizeof *tl);
}

void topiclist_iter_init(struct topiclist_iter *it, const char *buf, size_t len)
{
    it->p = (const unsigned char *)buf;
    it->end = it->p + len;
}

int topiclist_next(struct topiclist_iter *it, char *out, size_t *len)
{
    if (it->p == it->end)
        return 0;
    size_t n = *it->p++;
    size_t stored = n ? n : SHA1_RAW;
    if ((size_t)(it->end - it->p) < stored)
        return -1;
    if (n) {
        memcpy(out, it->p, n);
        *len = n;
    } else {
        for (size_t i = 0; i < SHA1_RAW; i++) {
            out[2 * i] = hexdigit[it->p[i] >> 4];
            out[2 * i + 1] = hexdigit[it->p[i] & 15];
        }
        *len = SHA1_HEX;
    }
    it->p += stored;
    return 1;
}

long topiclist_count(const char *buf, size_t len)
{
    struct topiclist_iter it;
    char t[TOPICLIST_MAX_TOPIC];
    size_t tl;
    long n = 0;
    int r;
    topiclist_iter_init(&it, buf, len);
    while ((r = topiclist_next(&it, t, &tl)) > 0)
        if (++n > (long)TOPICLIST_MAX_COUNT)
            return -1;
    return r < 0 || n == 0 ? -1 : n;
}
