/* pubrec.c -- encode and decode publication records; see pubrec.h.
 * Decoding trusts nothing: every field of a Redis reply or channel message
 * is checked for type, order and count before a frame pointer is handed out. */
#include "pubrec.h"

#include "mpwalk.h"
#include "topiclist.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

static const char *const frame_field[PUBREC_MAX_FRAMES] = {"f0", "f1", "f2", "f3",
                                                           "f4", "f5", "f6", "f7"};

int pubrec_xadd_argv(const struct pubrec *rec, const char *key, long long maxlen,
                     struct pubrec_scratch *scratch, const char **argv, size_t *argvlen)
{
    if (rec->nframes < 1 || rec->nframes > PUBREC_MAX_FRAMES || (rec->topics && rec->nframes != 1))
        return -1;
    size_t n = 0;
#define ARG(s, l) (argv[n] = (s), argvlen[n] = (l), n++)
#define ARGS(s) ARG(s, strlen(s))
    ARGS("XADD");
    ARGS(key);
    if (maxlen > 0) {
        snprintf(scratch->maxlen, sizeof scratch->maxlen, "%lld", maxlen);
        ARGS("MAXLEN");
        ARGS("~");
        ARGS(scratch->maxlen);
    }
    ARGS(streamid_format(rec->id, scratch->id));
    ARGS("v");
    ARGS(rec->topics ? "2" : "1");
    snprintf(scratch->serial, sizeof scratch->serial, "%" PRIu64, rec->serial);
    ARGS("s");
    ARGS(scratch->serial);
    if (rec->topics) {
        ARGS("t");
        ARG(rec->topics, rec->topics_len);
    }
    for (size_t i = 0; i < rec->nframes; i++) {
        ARGS(frame_field[i]);
        ARG(rec->frame[i], rec->len[i]);
    }
#undef ARG
#undef ARGS
    return (int)n;
}

static int is_str(const redisReply *r, const char *s)
{
    size_t l = strlen(s);
    return r->type == REDIS_REPLY_STRING && (size_t)r->len == l && memcmp(r->str, s, l) == 0;
}

int pubrec_range_one(const redisReply *r, struct pubrec *rec, const char **why)
{
    *why = "unexpected reply";
    if (r->type == REDIS_REPLY_ERROR)
        *why = r->str;
    else if (r->type == REDIS_REPLY_ARRAY && r->elements == 0)
        return 0;
    else if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && pubrec_from_entry(r->element[0], rec, why) == 0)
        return 1;
    return -1;
}

/* LEB128: 7 bits a byte, low first. */
static size_t leb128_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static char *leb128_put(char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (char)(0x80 | (v & 0x7f));
        v >>= 7;
    }
    *p++ = (char)v;
    return p;
}

/* A length at *P (before END), at most LIMIT. -1 if malformed. */
static int leb128_get(const unsigned char **p, const unsigned char *end, size_t limit, size_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; *p < end && shift < 63; shift += 7) {
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (v > limit)
                return -1;
            *out = (size_t)v;
            return 0;
        }
    }
    return -1;
}

#define V3_TAG 0x30
#define V3_TOPICS 0x08

size_t pubrec_v3_size(const struct pubrec *rec)
{
    if (rec->nframes < 1 || rec->nframes > PUBREC_MAX_FRAMES || (rec->topics && rec->nframes != 1))
        return 0;
    size_t n = 1 + PUBREC_HASH_LEN;
    if (rec->topics)
        n += leb128_size(rec->topics_len) + rec->topics_len;
    for (size_t i = 0; i < rec->nframes; i++)
        n += (i + 1 < rec->nframes ? leb128_size(rec->len[i]) : 0) + rec->len[i];
    return n;
}

void pubrec_v3_write(const struct pubrec *rec, const unsigned char *hash, char *out)
{
    char *p = out;
    *p++ = (char)(V3_TAG | (rec->topics ? V3_TOPICS : 0) | (rec->nframes - 1));
    if (rec->topics)
        p = leb128_put(p, rec->topics_len);
    for (size_t i = 0; i + 1 < rec->nframes; i++)
        p = leb128_put(p, rec->len[i]);
    if (rec->topics) {
        memcpy(p, rec->topics, rec->topics_len);
        p += rec->topics_len;
    }
    for (size_t i = 0; i < rec->nframes; i++) {
        memcpy(p, rec->frame[i], rec->len[i]);
        p += rec->len[i];
    }
    memcpy(p, hash, PUBREC_HASH_LEN);
}

/* Version 3: the one field NAME (the serial), VALUE (the record). */
static int from_v3(const redisReply *name, const redisReply *value, struct pubrec *rec, const char **why)
{
    const unsigned char *p = (const unsigned char *)value->str, *end;
    if (decimal_parse(name->str, name->len, &rec->serial) < 0) {
        *why = "missing or bad serial";
        return -1;
    }
    if (value->len < 1 + PUBREC_HASH_LEN || (p[0] & 0xf0) != V3_TAG) {
        *why = "unknown record version";
        return -1;
    }
    end = p + value->len - PUBREC_HASH_LEN; /* the hash is last */
    int topics = p[0] & V3_TOPICS;
    size_t nframes = (size_t)(p[0] & 7) + 1, lens = nframes - 1 + (topics ? 1 : 0), len[PUBREC_MAX_FRAMES + 1];
    if (topics && nframes != 1) {
        *why = "version 2 needs exactly a topic list and a payload";
        return -1;
    }
    rec->version = 3;
    rec->hash = (const char *)end;
    rec->hashlen = PUBREC_HASH_LEN;
    p++;
    size_t sum = 0;
    for (size_t i = 0; i < lens; i++) {
        if (leb128_get(&p, end, (size_t)(end - p), &len[i]) < 0) {
            *why = "field list is missing or truncated";
            return -1;
        }
        sum += len[i]; /* each at most the value's length: no overflow */
    }
    if (sum > (size_t)(end - p)) {
        *why = "field list is missing or truncated";
        return -1;
    }
    len[lens] = (size_t)(end - p) - sum;
    size_t k = 0;
    if (topics) {
        if (topiclist_count((const char *)p, len[0]) < 0) {
            *why = "bad topic list";
            return -1;
        }
        rec->topics = (const char *)p;
        rec->topics_len = len[0];
        p += len[k++];
    }
    for (size_t i = 0; i < nframes; i++, k++) {
        rec->frame[i] = (const char *)p;
        rec->len[i] = len[k];
        p += len[k];
    }
    rec->nframes = nframes;
    return 0;
}

int pubrec_from_entry(const redisReply *entry, struct pubrec *rec, const char **why)
{
    memset(rec, 0, sizeof *rec);
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING) {
        *why = "entry is not [id, fields]";
        return -1;
    }
    /* times beyond INT64_MAX would overflow the age computed from them */
    if (streamid_parse(entry->element[0]->str, (size_t)entry->element[0]->len, &rec->id) < 0 ||
        rec->id.ms > INT64_MAX) {
        *why = "bad entry id";
        return -1;
    }
    const redisReply *f = entry->element[1];
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2 || (f->elements < 6 && f->elements != 2)) {
        *why = "field list is missing or truncated";
        return -1;
    }
    for (size_t i = 0; i < f->elements; i++)
        if (f->element[i]->type != REDIS_REPLY_STRING) {
            *why = "field is not a string";
            return -1;
        }
    if (f->elements == 2)
        return from_v3(f->element[0], f->element[1], rec, why);
    int v2 = is_str(f->element[0], "v") && is_str(f->element[1], "2");
    if (!v2 && (!is_str(f->element[0], "v") || !is_str(f->element[1], "1"))) {
        *why = "unknown record version";
        return -1;
    }
    rec->version = v2 ? 2 : 1;
    if (!is_str(f->element[2], "s") || decimal_parse(f->element[3]->str, f->element[3]->len, &rec->serial) < 0) {
        *why = "missing or bad serial";
        return -1;
    }
    size_t first = 4; /* the field after the serial */
    if (is_str(f->element[4], "h")) { /* written by the store script (pubstore.h) */
        rec->hash = f->element[5]->str;
        rec->hashlen = (size_t)f->element[5]->len;
        first = 6;
    }
    if (v2) {
        if (f->elements != first + 4 || !is_str(f->element[first], "t")) {
            *why = "version 2 needs exactly a topic list and a payload";
            return -1;
        }
        if (topiclist_count(f->element[first + 1]->str, (size_t)f->element[first + 1]->len) < 0) {
            *why = "bad topic list";
            return -1;
        }
        rec->topics = f->element[first + 1]->str;
        rec->topics_len = (size_t)f->element[first + 1]->len;
        first += 2;
    }
    size_t nframes = (f->elements - first) / 2;
    if (nframes < 1) {
        *why = "field list is missing or truncated";
        return -1;
    }
    if (nframes > PUBREC_MAX_FRAMES) {
        *why = "too many frames";
        return -1;
    }
    for (size_t i = 0; i < nframes; i++) {
        if (!is_str(f->element[first + 2 * i], frame_field[i])) {
            *why = "frames out of order";
            return -1;
        }
        rec->frame[i] = f->element[first + 1 + 2 * i]->str;
        rec->len[i] = (size_t)f->element[first + 1 + 2 * i]->len;
    }
    rec->nframes = nframes;
    return 0;
}

char *pubrec_pack(const struct pubrec *rec, size_t *outlen)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3 + (rec->topics ? 1 : 0) + rec->nframes);
    msgpack_pack_uint8(&pk, rec->topics ? 2 : 1);
    msgpack_pack_uint64(&pk, rec->serial);
    msgpack_pack_uint64(&pk, rec->id.ms);
    if (rec->topics) {
        msgpack_pack_bin(&pk, rec->topics_len);
        msgpack_pack_bin_body(&pk, rec->topics, rec->topics_len);
    }
    for (size_t i = 0; i < rec->nframes; i++) {
        msgpack_pack_bin(&pk, rec->len[i]);
        msgpack_pack_bin_body(&pk, rec->frame[i], rec->len[i]);
    }
    *outlen = sbuf.size;
    return sbuf.data; /* ownership passes to the caller */
}

int pubrec_unpack(const char *buf, size_t len, struct pubrec *rec, const char **why)
{
    memset(rec, 0, sizeof *rec);
    *why = "not a msgpack document";
    if (!mpwalk_plausible(buf, len))
        return -1;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = -1;
    if (msgpack_unpack_next(&up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
        goto out;
    msgpack_object o = up.data;
    *why = "trailing bytes after the record";
    if (off != len)
        goto out;
    *why = "not an array of 4 to 11 items";
    if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size < 4 ||
        o.via.array.size > 3 + PUBREC_MAX_FRAMES)
        goto out;
    msgpack_object *a = o.via.array.ptr;
    *why = "bad version, serial or time";
    if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || (a[0].via.u64 != 1 && a[0].via.u64 != 2) ||
        a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        a[2].via.u64 > INT64_MAX)
        goto out;
    rec->serial = a[1].via.u64;
    rec->id.ms = a[2].via.u64;
    rec->version = (int)a[0].via.u64;
    size_t first = 3;
    if (a[0].via.u64 == 2) {
        *why = "version 2 needs exactly a topic list and a payload";
        if (o.via.array.size != 5 || a[3].type != MSGPACK_OBJECT_BIN ||
            topiclist_count(a[3].via.bin.ptr, a[3].via.bin.size) < 0)
            goto out;
        rec->topics = a[3].via.bin.ptr;
        rec->topics_len = a[3].via.bin.size;
        first = 4;
    }
    rec->nframes = o.via.array.size - first;
    *why = "frame is not bin";
    for (size_t i = 0; i < rec->nframes; i++) {
        if (a[first + i].type != MSGPACK_OBJECT_BIN)
            goto out;
        rec->frame[i] = a[first + i].via.bin.ptr; /* msgpack-c references BUF, not the zone */
        rec->len[i] = a[first + i].via.bin.size;
    }
    rc = 0;
out:
    msgpack_unpacked_destroy(&up);
    return rc;
}
