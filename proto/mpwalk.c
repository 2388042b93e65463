/* mpwalk.c -- msgpack-c helpers for untrusted input: a bounds walk to run
 * before unpacking, and byte access to str/bin objects (Salt packs bytes as
 * str that is often not UTF-8, so nothing here checks UTF-8). */
#include "mpwalk.h"

#include <string.h>

int mpwalk_key_is(const msgpack_object *k, const char *s)
{
    size_t l = strlen(s);
    return (k->type == MSGPACK_OBJECT_STR && k->via.str.size == l && memcmp(k->via.str.ptr, s, l) == 0) ||
           (k->type == MSGPACK_OBJECT_BIN && k->via.bin.size == l && memcmp(k->via.bin.ptr, s, l) == 0);
}

const char *mpwalk_bytes(const msgpack_object *o, size_t *len)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        *len = o->via.str.size;
        return o->via.str.ptr;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        *len = o->via.bin.size;
        return o->via.bin.ptr;
    }
    return NULL;
}

/* Big-endian unsigned of N (1, 2 or 4) bytes at P. */
static uint64_t be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* For the type byte B: bytes of its length field (*lenb), fixed payload
 * bytes (*fixed), and items it contains per counted unit (*items: 1 array,
 * 2 map, 0 bytes). Returns -1 for the unused byte 0xc1. */
static int msgpack_shape(unsigned char b, size_t *lenb, size_t *fixed, uint64_t *items, uint64_t *count)
{
    static const unsigned char fixed_of[0x20] = {
        [0x00] = 0, [0x02] = 0, [0x03] = 0, [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 4, [0x0b] = 8,
        [0x0c] = 1, [0x0d] = 2, [0x0e] = 4, [0x0f] = 8, [0x10] = 1, [0x11] = 2, [0x12] = 4, [0x13] = 8,
        [0x14] = 2, [0x15] = 3, [0x16] = 5, [0x17] = 9, [0x18] = 17};
    static const unsigned char lenb_of[0x20] = {
        [0x04] = 1, [0x05] = 2, [0x06] = 4, [0x07] = 1, [0x08] = 2, [0x09] = 4, [0x19] = 1, [0x1a] = 2,
        [0x1b] = 4, [0x1c] = 2, [0x1d] = 4, [0x1e] = 2, [0x1f] = 4};
    *lenb = *fixed = 0;
    *items = *count = 0;
    if (b <= 0x7f || b >= 0xe0)
        return 0;
    if (b <= 0x9f) {
        *items = b <= 0x8f ? 2 : 1;
        *count = b & 0x0f;
        return 0;
    }
    if (b <= 0xbf) {
        *count = b & 0x1f;
        return 0;
    }
    if (b == 0xc1)
        return -1;
    *lenb = lenb_of[b - 0xc0];
    *fixed = fixed_of[b - 0xc0];
    *items = b >= 0xdc ? (b >= 0xde ? 2 : 1) : 0;
    return 0;
}

/* Read the header of the object at *OFF: its shape, and its length or count
 * (from the length field, or the type byte). Advances *OFF past the header. */
static int read_header(const unsigned char *p, size_t len, size_t *off, size_t *fixed, uint64_t *items,
                       uint64_t *count)
{
    size_t lenb;
    if (*off >= len || msgpack_shape(p[*off], &lenb, fixed, items, count) < 0)
        return -1;
    (*off)++;
    if (lenb) {
        if (lenb > len - *off)
            return -1;
        *count = be(p + *off, lenb);
        *off += lenb;
    }
    return 0;
}

int mpwalk_skip(const char *buf, size_t len, size_t *off)
{
    const unsigned char *p = (const unsigned char *)buf;
    uint64_t pending = 1; /* objects still to read; each needs at least one byte */
    while (pending) {
        size_t fixed;
        uint64_t items, count;
        if (pending > len - *off || read_header(p, len, off, &fixed, &items, &count) < 0)
            return -1;
        pending--;
        if (items) {
            pending += items * count;
        } else {
            if (fixed + count > len - *off)
                return -1;
            *off += fixed + count;
        }
    }
    return 0;
}

int mpwalk_plausible(const char *buf, size_t len)
{
    size_t off = 0;
    return mpwalk_skip(buf, len, &off) == 0;
}

/* A non-negative integer's value, for the types that can hold one: msgpack-c
 * also calls a signed one >= 0 positive, and so does this. */
static int read_uint(const unsigned char *p, unsigned char b, size_t fixed, uint64_t *u)
{
    if (b <= 0x7f) {
        *u = b;
        return 0;
    }
    if (b < 0xcc || b > 0xd3)
        return -1;
    *u = be(p, fixed);
    if (b >= 0xd0 && (p[0] & 0x80))
        return -1; /* negative */
    return 0;
}

int mpwalk_next(const char *buf, size_t len, size_t *off, struct mpwalk_item *it)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t fixed;
    uint64_t items, count;
    unsigned char b = *off < len ? p[*off] : 0;
    memset(it, 0, sizeof *it);
    if (read_header(p, len, off, &fixed, &items, &count) < 0)
        return -1;
    if (items) {
        it->kind = items == 2 ? MPWALK_MAP : MPWALK_ARRAY;
        it->count = count;
        return 0;
    }
    if (fixed + count > len - *off)
        return -1;
    if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb) || (b >= 0xc4 && b <= 0xc6)) {
        it->kind = MPWALK_BYTES;
        it->bytes = buf + *off;
        it->count = count;
    } else {
        it->kind = read_uint(p + *off, b, fixed, &it->u) == 0 ? MPWALK_UINT : MPWALK_OTHER;
    }
    *off += fixed + count;
    return 0;
}

int mpwalk_item_is(const struct mpwalk_item *it, const char *s)
{
    size_t l = strlen(s);
    return it->kind == MPWALK_BYTES && it->count == l && memcmp(it->bytes, s, l) == 0;
}
