/* envelope.c -- read the clear parts of a Salt request; see envelope.h. */
#include "envelope.h"

#include <msgpack.h>
#include <string.h>

static int key_is(const msgpack_object *k, const char *s)
{
    size_t l = strlen(s);
    return (k->type == MSGPACK_OBJECT_STR && k->via.str.size == l && memcmp(k->via.str.ptr, s, l) == 0) ||
           (k->type == MSGPACK_OBJECT_BIN && k->via.bin.size == l && memcmp(k->via.bin.ptr, s, l) == 0);
}

/* Str or bin bytes of O, or NULL. */
static const char *bytes_of(const msgpack_object *o, size_t *len)
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

/* Minion ids name files on the master: refuse what could never be one. */
static void copy_id(const msgpack_object *o, char *out)
{
    size_t len;
    const char *p = bytes_of(o, &len);
    out[0] = '\0';
    if (!p || len == 0 || len >= ENVELOPE_ID_MAX)
        return;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '/')
            return;
    memcpy(out, p, len);
    out[len] = '\0';
}

static void read_clear_load(const msgpack_object *load, struct salt_envelope *env)
{
    if (load->type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t i = 0; i < load->via.map.size; i++) {
        const msgpack_object_kv *kv = &load->via.map.ptr[i];
        if (key_is(&kv->key, "cmd"))
            env->is_auth = key_is(&kv->val, "_auth");
        else if (key_is(&kv->key, "id"))
            copy_id(&kv->val, env->id);
        else if (key_is(&kv->key, "token"))
            env->has_token = 1;
    }
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

int msgpack_plausible(const char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t off = 0;
    uint64_t pending = 1; /* objects still to read; each needs at least one byte */
    while (pending) {
        size_t lenb, fixed;
        uint64_t items, count;
        if (off >= len || pending > len - off || msgpack_shape(p[off], &lenb, &fixed, &items, &count) < 0)
            return 0;
        off++;
        pending--;
        if (lenb) {
            if (lenb > len - off)
                return 0;
            count = be(p + off, lenb);
            off += lenb;
        }
        if (items) {
            pending += items * count;
        } else {
            if (fixed + count > len - off)
                return 0;
            off += fixed + count;
        }
    }
    return 1;
}

int envelope_peek(const char *buf, size_t len, struct salt_envelope *env, const char **why)
{
    memset(env, 0, sizeof *env);
    env->version = -1;
    if (!msgpack_plausible(buf, len)) {
        *why = "not a msgpack document";
        return -1;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = -1;
    size_t off = 0;
    if (msgpack_unpack_next(&up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        *why = "not a msgpack document";
        goto out;
    }
    const msgpack_object *o = &up.data;
    if (o->type != MSGPACK_OBJECT_MAP) {
        *why = "not a msgpack map";
        goto out;
    }
    const msgpack_object *load = NULL, *top_id = NULL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (key_is(&kv->key, "enc"))
            env->enc = key_is(&kv->val, "clear") ? ENC_CLEAR : key_is(&kv->val, "aes") ? ENC_AES : ENC_OTHER;
        else if (key_is(&kv->key, "load"))
            load = &kv->val;
        else if (key_is(&kv->key, "id"))
            top_id = &kv->val;
        else if (key_is(&kv->key, "version") && kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                 kv->val.via.u64 < 1000)
            env->version = (int)kv->val.via.u64;
    }
    if (!load) {
        *why = "no 'load' key";
        goto out;
    }
    if (env->enc == ENC_CLEAR)
        read_clear_load(load, env);
    if (!env->id[0] && top_id)
        copy_id(top_id, env->id);
    rc = 0;
out:
    msgpack_unpacked_destroy(&up);
    return rc;
}
