/* treerec.c -- encode and decode tree sync's manifest and version record
 * (see treerec.h). The decoders copy what they keep, so the caller may free
 * the Redis reply at once. */
#include "treerec.h"

#include <czmq.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "mpwalk.h"

void tree_chunk_id(const void *data, size_t len, tree_id out)
{
    zdigest_t *d = zdigest_new();
    if (!d) { /* only on allocation failure: an id no content has, so it never matches */
        memset(out, 0, TREE_ID_LEN);
        return;
    }
    zdigest_update(d, (const byte *)data, len);
    memcpy(out, zdigest_data(d), TREE_ID_LEN);
    zdigest_destroy(&d);
}

char *tree_id_hex(const tree_id id, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < TREE_ID_LEN; i++) {
        hex[2 * i] = digits[id[i] >> 4];
        hex[2 * i + 1] = digits[id[i] & 15];
    }
    hex[2 * TREE_ID_LEN] = '\0';
    return hex;
}

size_t tree_nchunks(uint64_t size) { return (size_t)((size + TREE_CHUNK - 1) / TREE_CHUNK); }

size_t tree_chunk_len(uint64_t size, size_t i)
{
    uint64_t off = (uint64_t)i * TREE_CHUNK;
    return off >= size ? 0 : size - off > TREE_CHUNK ? TREE_CHUNK : (size_t)(size - off);
}

int tree_path_ok(const char *p, size_t len)
{
    if (len == 0 || len > TREE_PATH_MAX || memchr(p, '\0', len))
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '/')
            continue;
        size_t n = i - start; /* one component: not empty (leading /, //, trailing /), not . or .. */
        if (n == 0 || n > 255 || (n == 1 && p[start] == '.') || (n == 2 && p[start] == '.' && p[start + 1] == '.'))
            return 0;
        start = i + 1;
    }
    return 1;
}

static void pack_ids(msgpack_packer *pk, const tree_id *ids, size_t n)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_bin(pk, TREE_ID_LEN);
        msgpack_pack_bin_body(pk, ids[i], TREE_ID_LEN);
    }
}

/* The sbuffer's data, handed to the caller (NULL if an allocation failed). */
static char *sbuffer_take(msgpack_sbuffer *sb, size_t *len)
{
    *len = sb->size;
    return sb->data ? sb->data : malloc(1);
}

char *tree_manifest_encode(const struct tree_manifest *m, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, m->nfiles);
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct tree_file *f = &m->file[i];
        size_t pl = strlen(f->path);
        msgpack_pack_array(&pk, 4);
        msgpack_pack_str(&pk, pl);
        msgpack_pack_str_body(&pk, f->path, pl);
        msgpack_pack_uint8(&pk, f->exec ? 1 : 0);
        msgpack_pack_uint64(&pk, f->size);
        pack_ids(&pk, f->chunk, f->nchunks);
    }
    return sbuffer_take(&sb, len);
}

char *tree_head_encode(const struct tree_head *h, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_uint8(&pk, TREE_RECORD_VERSION);
    msgpack_pack_uint64(&pk, h->version);
    msgpack_pack_uint64(&pk, h->created_ms);
    msgpack_pack_uint64(&pk, h->files);
    msgpack_pack_uint64(&pk, h->bytes);
    msgpack_pack_uint64(&pk, h->manifest_len);
    pack_ids(&pk, h->chunk, h->nchunks);
    return sbuffer_take(&sb, len);
}

static int get_uint(const msgpack_object *o, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -1;
    *v = o->via.u64;
    return 0;
}

/* Copy an array of 20-byte bins into a malloc'd id list of exactly WANT. */
static int get_ids(const msgpack_object *o, size_t want, tree_id **out)
{
    *out = NULL;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != want)
        return -1;
    if (want == 0)
        return 0;
    if (!(*out = malloc(want * sizeof **out)))
        return -1;
    for (size_t i = 0; i < want; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_BIN || e->via.bin.size != TREE_ID_LEN)
            return -1;
        memcpy((*out)[i], e->via.bin.ptr, TREE_ID_LEN);
    }
    return 0;
}

/* Unpack one whole msgpack document of LEN bytes, after the bounds walk. */
static int unpack_whole(const char *buf, size_t len, msgpack_unpacked *up)
{
    size_t off = 0;
    if (!mpwalk_plausible(buf, len) || msgpack_unpack_next(up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
        return -1;
    return off == len ? 0 : -1;
}

/* One manifest entry into F; PREV is the path before it (strict order). */
static const char *decode_file(const msgpack_object *o, const char *prev, struct tree_file *f)
{
    uint64_t exec;
    size_t pl;
    const char *p;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4)
        return "a file entry is not a 4-item array";
    const msgpack_object *it = o->via.array.ptr;
    if (!(p = mpwalk_bytes(&it[0], &pl)) || !tree_path_ok(p, pl))
        return "a path is absolute, empty, has a '.', '..' or empty component, a NUL, or is too long";
    if (!(f->path = malloc(pl + 1)))
        return "out of memory";
    memcpy(f->path, p, pl);
    f->path[pl] = '\0';
    if (prev && strcmp(prev, f->path) >= 0)
        return "paths are not strictly ascending (duplicate or unsorted)";
    if (get_uint(&it[1], &exec) < 0 || exec > 1 || get_uint(&it[2], &f->size) < 0)
        return "bad exec flag or size";
    f->exec = (int)exec;
    if (f->size > TREE_MANIFEST_MAX * (uint64_t)TREE_CHUNK / TREE_ID_LEN)
        return "a file size is beyond any manifest's reach";
    f->nchunks = tree_nchunks(f->size);
    if (get_ids(&it[3], f->nchunks, &f->chunk) < 0)
        return "chunk list does not match the size";
    return NULL;
}

static const char *decode_files(const msgpack_object *o, uint64_t max_bytes, struct tree_manifest *m)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return "not an array of files";
    if (o->via.array.size > TREE_FILES_MAX)
        return "too many files";
    if (o->via.array.size && !(m->file = calloc(o->via.array.size, sizeof *m->file)))
        return "out of memory";
    for (size_t i = 0; i < o->via.array.size; i++) {
        m->nfiles = i + 1;
        const char *why = decode_file(&o->via.array.ptr[i], i ? m->file[i - 1].path : NULL, &m->file[i]);
        if (why)
            return why;
        m->bytes += m->file[i].size;
        if (m->bytes > max_bytes)
            return "the tree is larger than sync_max_bytes";
    }
    return NULL;
}

int tree_manifest_decode(const char *buf, size_t len, uint64_t max_bytes, struct tree_manifest *m,
                         const char **why)
{
    memset(m, 0, sizeof *m);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    *why = unpack_whole(buf, len, &up) < 0 ? "not one whole msgpack document" : decode_files(&up.data, max_bytes, m);
    msgpack_unpacked_destroy(&up);
    return *why ? -1 : 0;
}

void tree_manifest_free(struct tree_manifest *m)
{
    for (size_t i = 0; i < m->nfiles; i++) {
        free(m->file[i].path);
        free(m->file[i].chunk);
    }
    free(m->file);
    memset(m, 0, sizeof *m);
}

static const char *decode_head(const msgpack_object *o, struct tree_head *h)
{
    uint64_t v;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 7)
        return "not a 7-item array";
    const msgpack_object *it = o->via.array.ptr;
    if (get_uint(&it[0], &v) < 0 || v != TREE_RECORD_VERSION)
        return "unknown record version";
    if (get_uint(&it[1], &h->version) < 0 || h->version == 0 || get_uint(&it[2], &h->created_ms) < 0 ||
        get_uint(&it[3], &h->files) < 0 || get_uint(&it[4], &h->bytes) < 0 ||
        get_uint(&it[5], &h->manifest_len) < 0)
        return "a number is missing or negative";
    if (h->files > TREE_FILES_MAX || h->manifest_len > TREE_MANIFEST_MAX || h->manifest_len == 0)
        return "file count or manifest length out of bounds";
    h->nchunks = tree_nchunks(h->manifest_len);
    if (get_ids(&it[6], h->nchunks, &h->chunk) < 0)
        return "manifest chunk list does not match its length";
    return NULL;
}

int tree_head_decode(const char *buf, size_t len, struct tree_head *h, const char **why)
{
    memset(h, 0, sizeof *h);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    *why = unpack_whole(buf, len, &up) < 0 ? "not one whole msgpack document" : decode_head(&up.data, h);
    msgpack_unpacked_destroy(&up);
    return *why ? -1 : 0;
}

void tree_head_free(struct tree_head *h)
{
    free(h->chunk);
    memset(h, 0, sizeof *h);
}

int tree_head_names(const struct tree_head *h, const char *raw, size_t len)
{
    if (len != h->manifest_len)
        return 0;
    for (size_t i = 0; i < h->nchunks; i++) {
        tree_id id;
        tree_chunk_id(raw + (uint64_t)i * TREE_CHUNK, tree_chunk_len(len, i), id);
        if (memcmp(id, h->chunk[i], TREE_ID_LEN))
            return 0;
    }
    return 1;
}
