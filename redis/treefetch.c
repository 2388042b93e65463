/* treefetch.c -- fetch and verify tree sync's chunks, manifests and version
 * records (see treefetch.h). Chunks come FETCH_BATCH at a time so one reply
 * holds at most FETCH_BATCH * TREE_CHUNK bytes. */
#include "treefetch.h"

#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "metrics.h"

#define FETCH_BATCH 16

/* Check one MGET element against chunk I of the list; NULL if it is good. */
static const char *check_chunk(const redisReply *e, const tree_id id, size_t want_len,
                               enum tree_fetch_result *res)
{
    if (e->type == REDIS_REPLY_NIL) {
        *res = TREE_FETCH_MISSING;
        return "a chunk is missing in Redis";
    }
    tree_id got;
    if (e->type == REDIS_REPLY_STRING && (size_t)e->len == want_len)
        tree_chunk_id(e->str, (size_t)e->len, got);
    if (e->type != REDIS_REPLY_STRING || (size_t)e->len != want_len || memcmp(got, id, TREE_ID_LEN)) {
        metric_add(M_TREE_BAD_CHUNKS, 1);
        *res = TREE_FETCH_BAD;
        return "a chunk's length or SHA-1 does not match its id";
    }
    return NULL;
}

/* One MGET of chunks [FROM, FROM + N). */
static enum tree_fetch_result fetch_batch(struct rconn *rc, const char *cluster, const tree_id *ids, size_t from,
                                          size_t n, uint64_t total_len, tree_chunk_fn fn, void *arg,
                                          const char **why)
{
    char keys[FETCH_BATCH][KEY_MAX], hex[TREE_HEX_LEN];
    const char *argv[1 + FETCH_BATCH];
    size_t argvlen[1 + FETCH_BATCH];
    argv[0] = "MGET";
    argvlen[0] = 4;
    for (size_t i = 0; i < n; i++) {
        key_tree_chunk(keys[i], cluster, tree_id_hex(ids[from + i], hex));
        argv[1 + i] = keys[i];
        argvlen[1 + i] = strlen(keys[i]);
    }
    redisContext *c = rconn_get(rc);
    if (!c || redisAppendCommandArgv(c, (int)n + 1, argv, argvlen) != REDIS_OK)
        return TREE_FETCH_REDIS;
    redisReply *r = rconn_reply(rc);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        if (r)
            rconn_fail(rc, "unexpected MGET reply");
        freeReplyObject(r);
        return TREE_FETCH_REDIS;
    }
    enum tree_fetch_result res = TREE_FETCH_OK;
    for (size_t i = 0; i < n && res == TREE_FETCH_OK; i++) {
        size_t want = tree_chunk_len(total_len, from + i);
        if ((*why = check_chunk(r->element[i], ids[from + i], want, &res)) == NULL &&
            fn(arg, from + i, r->element[i]->str, want)) {
            *why = "a chunk could not be stored locally";
            res = TREE_FETCH_LOCAL;
        }
    }
    freeReplyObject(r);
    return res;
}

enum tree_fetch_result tree_fetch_chunks(struct rconn *rc, const char *cluster, const tree_id *ids, size_t from,
                                         size_t to, uint64_t total_len, tree_chunk_fn fn, void *arg,
                                         const char **why)
{
    *why = NULL;
    for (size_t at = from; at < to; at += FETCH_BATCH) {
        size_t k = to - at < FETCH_BATCH ? to - at : FETCH_BATCH;
        enum tree_fetch_result res = fetch_batch(rc, cluster, ids, at, k, total_len, fn, arg, why);
        if (res != TREE_FETCH_OK)
            return res;
    }
    return TREE_FETCH_OK;
}

struct gather {
    char *buf;
};

static int gather_chunk(void *arg, size_t i, const char *data, size_t len)
{
    struct gather *g = arg;
    memcpy(g->buf + (uint64_t)i * TREE_CHUNK, data, len);
    return 0;
}

enum tree_fetch_result tree_fetch_manifest(struct rconn *rc, const char *cluster, const struct tree_head *h,
                                           uint64_t max_bytes, struct tree_manifest *m, char **raw,
                                           const char **why)
{
    memset(m, 0, sizeof *m);
    if (raw)
        *raw = NULL;
    struct gather g = {malloc(h->manifest_len)};
    if (!g.buf)
        return TREE_FETCH_REDIS;
    enum tree_fetch_result res = tree_fetch_chunks(rc, cluster, h->chunk, 0, h->nchunks, h->manifest_len,
                                                   gather_chunk, &g, why);
    if (res == TREE_FETCH_OK && tree_manifest_decode(g.buf, h->manifest_len, max_bytes, m, why) < 0)
        res = TREE_FETCH_BAD;
    if (res == TREE_FETCH_OK && (m->nfiles != h->files || m->bytes != h->bytes)) {
        *why = "the manifest does not hold the files and bytes its record claims";
        res = TREE_FETCH_BAD;
    }
    if (res != TREE_FETCH_OK)
        tree_manifest_free(m);
    if (res == TREE_FETCH_OK && raw)
        *raw = g.buf;
    else
        free(g.buf);
    return res;
}

enum tree_fetch_result tree_fetch_head(struct rconn *rc, const char *key, struct tree_head *h, const char **why)
{
    memset(h, 0, sizeof *h);
    *why = NULL;
    redisReply *r = rconn_command(rc, "GET %s", key);
    if (!r)
        return TREE_FETCH_REDIS;
    enum tree_fetch_result res = TREE_FETCH_OK;
    if (r->type == REDIS_REPLY_NIL) {
        *why = "no such record";
        res = TREE_FETCH_MISSING;
    } else if (r->type != REDIS_REPLY_STRING) {
        *why = r->type == REDIS_REPLY_ERROR ? "Redis answered an error" : "the record is not a string";
        res = r->type == REDIS_REPLY_ERROR ? TREE_FETCH_REDIS : TREE_FETCH_BAD;
    } else if (tree_head_decode(r->str, (size_t)r->len, h, why) < 0) {
        tree_head_free(h);
        res = TREE_FETCH_BAD;
    }
    freeReplyObject(r);
    return res;
}
