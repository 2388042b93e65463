/* tree_store.c -- store published tree versions in Redis (see tree_store.h).
 *
 * Order of writes, so that a reader never sees a record whose content is not
 * there (Redis replicates commands in order): content chunks, manifest
 * chunks, the version record, then the head. A crash anywhere leaves chunks
 * no version names; they are collected at the next start.
 *
 * The set of stored chunk ids is kept in memory (loaded from the chunks set
 * at start) so content already in Redis is never sent again, and so is the
 * set of ids each kept version needs, for collection. After any Redis
 * failure, and on a new connection (a failover's new primary may lack
 * chunks the old one had), both are loaded again: what was written is not
 * known.
 *
 * The lease fences the writes that could harm another publisher: the version
 * record and head, and every delete (collection), run in Lua scripts that do
 * nothing but answer NOTLEADER unless the lease holds this instance's token.
 * A token is drawn each time the lease is taken (not when it is extended), so
 * an instance that stalled past the lease's end and took it again later
 * holds a new token, and what it knew of Redis, learnt under the old one, is
 * dropped before it writes. Chunk stores are not fenced: content-addressed,
 * a late one only leaves a chunk no version names (collected at a load). */
#include "tree_store.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "rconn.h"
#include "upreport.h"
#include "instance.h"
#include "lease.h"
#include "treefetch.h"

#define REDIS_TIMEOUT_MS 3000 /* well under TREE_LEASE_MS: a stalled call ends long before the lease would */
#define GC_BATCH 64           /* chunks deleted per fenced script call */
#define NOT_LEADER "NOTLEADER"
#define FLUSH_COMMANDS 32              /* chunks appended before their replies are read */
#define FLUSH_BYTES (16 * 1024 * 1024) /* ... or this many bytes */
#define PRESENT ((void *)1)

struct kept {
    uint64_t version;
    zhashx_t *ids; /* hex id -> PRESENT: every chunk of the version, manifest too */
    tree_id *mchunk; /* the manifest's chunks (an unchanged tree has the same) */
    size_t nmchunks;
};

/* The version being published. */
struct job {
    int active;
    char *root;
    struct tree_manifest m;
    char *mbuf; /* the encoded manifest */
    size_t mlen, nm;
    tree_id *mids; /* its chunk ids */
    size_t next;   /* the next file to upload */
    size_t chunk;  /* its next chunk (a large file takes several turns) */
};

struct tree_store {
    const struct config *cfg;
    struct rconn *rc;
    int loaded;
    unsigned loaded_gen; /* the connection (rconn_generation) it was loaded on */
    zhashx_t *stored; /* hex id -> PRESENT: chunks in Redis */
    uint64_t head_version;
    struct kept kept[TREE_KEPT_IN_REDIS + 1]; /* newest first */
    size_t nkept;
    size_t pending, pending_bytes; /* appended, replies not read */
    unsigned char *buf;
    char chunks_key[KEY_MAX];
    char lease_key[KEY_MAX];
    char name[UP_NAME_MAX];           /* this instance (instance.h) */
    char token[UP_NAME_MAX + 24];     /* the lease's value while ours: "<name>#<random>", "" if not */
    int lost;                         /* a fenced write found the lease not ours */
    struct job job;
};

static void job_end(struct tree_store *st);

static void kept_free(struct kept *k)
{
    zhashx_destroy(&k->ids);
    free(k->mchunk);
    memset(k, 0, sizeof *k);
}

/* A new connection since the load (perhaps to a new primary after a
 * failover, which may lack what the old one held): what was learnt of
 * Redis no longer holds. */
static int connection_changed(const struct tree_store *st)
{
    return st->loaded && rconn_generation(st->rc) != st->loaded_gen;
}

static void forget(struct tree_store *st)
{
    for (size_t i = 0; i < st->nkept; i++)
        kept_free(&st->kept[i]);
    st->nkept = 0;
    zhashx_purge(st->stored);
    st->loaded = 0;
}

struct tree_store *tree_store_new(const struct config *cfg)
{
    struct tree_store *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->cfg = cfg;
    key_tree_chunks(st->chunks_key, cfg->cluster);
    key_tree_lease(st->lease_key, cfg->cluster);
    instance_name(cfg, st->name, sizeof st->name);
    st->rc = rconn_new(&cfg->redis_url, "tree sync", REDIS_TIMEOUT_MS);
    st->stored = zhashx_new();
    st->buf = malloc(TREE_CHUNK);
    if (!st->rc || !st->stored || !st->buf)
        tree_store_destroy(&st);
    return st;
}

void tree_store_destroy(struct tree_store **stp)
{
    struct tree_store *st = *stp;
    if (!st)
        return;
    job_end(st);
    forget(st);
    zhashx_destroy(&st->stored);
    rconn_destroy(&st->rc);
    free(st->buf);
    free(st);
    *stp = NULL;
}

int tree_store_retry_in_ms(const struct tree_store *st) { return rconn_retry_in_ms(st->rc); }

static int add_id(zhashx_t *set, const tree_id id)
{
    char hex[TREE_HEX_LEN];
    return zhashx_insert(set, tree_id_hex(id, hex), PRESENT) < 0 && !zhashx_lookup(set, hex) ? -1 : 0;
}

/* A kept version's id set: its files' chunks and its manifest's. */
static int kept_fill(struct kept *k, const struct tree_manifest *m, const tree_id *mchunk, size_t nm)
{
    if (!(k->ids = zhashx_new()) || (nm && !(k->mchunk = malloc(nm * sizeof *mchunk))))
        return -1;
    memcpy(k->mchunk, mchunk, nm * sizeof *mchunk);
    k->nmchunks = nm;
    for (size_t i = 0; i < nm; i++)
        if (add_id(k->ids, mchunk[i]) < 0)
            return -1;
    for (size_t f = 0; f < m->nfiles; f++)
        for (size_t i = 0; i < m->file[f].nchunks; i++)
            if (add_id(k->ids, m->file[f].chunk[i]) < 0)
                return -1;
    return 0;
}

static int needed(const struct tree_store *st, const char *hex)
{
    for (size_t i = 0; i < st->nkept; i++)
        if (zhashx_lookup(st->kept[i].ids, hex))
            return 1;
    return 0;
}

/* Read the replies of everything appended; -1 if any failed. */
static int flush(struct tree_store *st)
{
    int rc = 0;
    for (; st->pending > 0; st->pending--) {
        redisReply *r = rconn_reply(st->rc);
        if (!r)
            return -1;
        if (r->type == REDIS_REPLY_ERROR && !strncmp(r->str, NOT_LEADER, strlen(NOT_LEADER))) {
            st->lost = 1; /* the publisher logs it and checks the lease (tree_store_lost) */
            rc = -1;
        } else if (r->type == REDIS_REPLY_ERROR && rc == 0) {
            log_warn("tree sync: Redis refused a write: %s", r->str);
            rc = -1;
        }
        freeReplyObject(r);
    }
    st->pending_bytes = 0;
    return rc;
}

/* Append one command; flush when enough is queued. */
static int append(struct tree_store *st, size_t bytes, const char *fmt, ...)
{
    redisContext *c = rconn_get(st->rc);
    if (!c || connection_changed(st))
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAppendCommand(c, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK)
        return -1;
    st->pending++;
    st->pending_bytes += bytes;
    if (st->pending >= 2 * FLUSH_COMMANDS || st->pending_bytes >= FLUSH_BYTES)
        return flush(st);
    return 0;
}

/* Only while the lease holds our token (ARGV[1]; KEYS[1] the lease, KEYS[2]
 * the chunk set): delete KEYS[3..], remove the ids ARGV[2..] from the set. */
static const char FENCED_DEL_LUA[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('" NOT_LEADER "') end "
    "for i = 3, #KEYS do redis.call('DEL', KEYS[i]) end "
    "if #ARGV > 1 then redis.call('SREM', KEYS[2], unpack(ARGV, 2)) end "
    "return 1";

/* Deletes waiting for one fenced call: the keys, and the chunk ids to take
 * out of the chunk set (NIDS of them, the last NIDS keys' chunks). */
struct gc {
    int nkeys, nids;
    char key[GC_BATCH][KEY_MAX];
    char id[GC_BATCH][TREE_HEX_LEN];
};

static int gc_flush(struct tree_store *st, struct gc *g)
{
    if (!g->nkeys)
        return 0;
    const char *argv[2 * GC_BATCH + 8];
    size_t len[2 * GC_BATCH + 8], n = 0;
    char nk[16];
    snprintf(nk, sizeof nk, "%d", 2 + g->nkeys);
    const char *head[] = {"EVAL", FENCED_DEL_LUA, nk, st->lease_key, st->chunks_key};
    for (size_t i = 0; i < sizeof head / sizeof *head; i++)
        argv[n++] = head[i];
    for (int i = 0; i < g->nkeys; i++)
        argv[n++] = g->key[i];
    argv[n++] = st->token;
    for (int i = 0; i < g->nids; i++)
        argv[n++] = g->id[i];
    for (size_t i = 0; i < n; i++)
        len[i] = strlen(argv[i]);
    g->nkeys = g->nids = 0;
    redisContext *c = rconn_get(st->rc);
    if (!c || connection_changed(st) || redisAppendCommandArgv(c, (int)n, argv, len) != REDIS_OK)
        return -1;
    st->pending++;
    return st->pending >= 2 * FLUSH_COMMANDS ? flush(st) : 0;
}

/* Queue the delete of KEY (and of chunk id HEX from the set, unless NULL). */
static int gc_add(struct tree_store *st, struct gc *g, const char *key, const char *hex)
{
    snprintf(g->key[g->nkeys++], KEY_MAX, "%s", key);
    if (hex)
        snprintf(g->id[g->nids++], TREE_HEX_LEN, "%s", hex);
    return g->nkeys == GC_BATCH ? gc_flush(st, g) : 0;
}

/* Delete the chunks in CANDIDATES that no kept version needs. */
static int collect(struct tree_store *st, zhashx_t *candidates, struct gc *g)
{
    char key[KEY_MAX];
    zlistx_t *keys = zhashx_keys(candidates);
    int rc = keys ? 0 : -1;
    for (const char *hex = keys ? zlistx_first(keys) : NULL; hex && rc == 0; hex = zlistx_next(keys)) {
        if (needed(st, hex) || !zhashx_lookup(st->stored, hex))
            continue;
        key_tree_chunk(key, st->cfg->cluster, hex);
        rc = gc_add(st, g, key, hex);
        zhashx_delete(st->stored, hex);
        metric_add(M_TREE_CHUNKS_COLLECTED, 1);
    }
    zlistx_destroy(&keys);
    return rc < 0 || gc_flush(st, g) < 0 || flush(st) < 0 ? -1 : 0;
}

/* Load one kept version V; 1 if it is there and whole, 0 if not, -1 Redis. */
static int load_version(struct tree_store *st, uint64_t v)
{
    char key[KEY_MAX];
    const char *why;
    struct tree_head h;
    struct tree_manifest m;
    key_tree_version(key, st->cfg->cluster, v);
    enum tree_fetch_result res = tree_fetch_head(st->rc, key, &h, &why);
    if (res == TREE_FETCH_OK)
        res = tree_fetch_manifest(st->rc, st->cfg->cluster, &h, UINT64_MAX, &m, NULL, &why);
    if (res == TREE_FETCH_REDIS || res == TREE_FETCH_LOCAL) {
        tree_head_free(&h);
        return -1;
    }
    int ok = res == TREE_FETCH_OK;
    if (ok) {
        struct kept *k = &st->kept[st->nkept++];
        k->version = v;
        if (kept_fill(k, &m, h.chunk, h.nchunks) < 0)
            ok = -1;
        tree_manifest_free(&m);
    } else
        log_warn("tree sync: version %llu in Redis is not usable (%s); not kept", (unsigned long long)v, why);
    tree_head_free(&h);
    return ok;
}

static int load_stored(struct tree_store *st)
{
    redisReply *r = rconn_command(st->rc, "SMEMBERS %s", st->chunks_key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return -1;
    }
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING && r->element[i]->len == TREE_HEX_LEN - 1)
            zhashx_insert(st->stored, r->element[i]->str, PRESENT);
    freeReplyObject(r);
    return 0;
}

/* What Redis holds: stored chunks, the head, the kept versions; then collect
 * what a crash left behind. */
static int load(struct tree_store *st)
{
    char key[KEY_MAX];
    const char *why;
    struct tree_head h;
    forget(st);
    if (load_stored(st) < 0)
        return -1;
    key_tree_head(key, st->cfg->cluster);
    enum tree_fetch_result res = tree_fetch_head(st->rc, key, &h, &why);
    if (res == TREE_FETCH_REDIS)
        return -1;
    st->head_version = res == TREE_FETCH_OK ? h.version : 0;
    tree_head_free(&h);
    if (res == TREE_FETCH_BAD)
        log_warn("tree sync: the head record in Redis is not usable (%s); publishing a new one", why);
    for (uint64_t v = st->head_version; v > 0 && st->nkept < TREE_KEPT_IN_REDIS; v--) {
        int rc = load_version(st, v);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
    }
    struct gc *g = malloc(sizeof *g);
    int rc = g ? (g->nkeys = g->nids = 0, collect(st, st->stored, g)) : -1;
    free(g);
    if (rc < 0)
        return -1;
    st->loaded = 1;
    st->loaded_gen = rconn_generation(st->rc);
    log_info("tree sync: Redis holds version %llu (%zu kept, %zu chunks)", (unsigned long long)st->head_version,
             st->nkept, zhashx_size(st->stored));
    return 0;
}

/* Store chunk ID (LEN bytes at DATA) unless Redis has it. */
static int store_chunk(struct tree_store *st, const tree_id id, const void *data, size_t len)
{
    char hex[TREE_HEX_LEN], key[KEY_MAX];
    tree_id_hex(id, hex);
    if (zhashx_lookup(st->stored, hex))
        return 0;
    key_tree_chunk(key, st->cfg->cluster, hex);
    if (append(st, len, "SET %s %b", key, data, len) < 0 || append(st, 0, "SADD %s %s", st->chunks_key, hex) < 0)
        return -1;
    zhashx_insert(st->stored, hex, PRESENT);
    metric_add(M_TREE_CHUNKS_STORED, 1);
    metric_add(M_TREE_BYTES_STORED, (int64_t)len);
    return 0;
}

static int file_missing_chunks(const struct tree_store *st, const struct tree_file *f)
{
    char hex[TREE_HEX_LEN];
    for (size_t i = 0; i < f->nchunks; i++)
        if (!zhashx_lookup(st->stored, tree_id_hex(f->chunk[i], hex)))
            return 1;
    return 0;
}

/* Read each chunk of F from *NEXT on that Redis lacks and store it, until
 * UNTIL_MS: 0 when the file is done, 1 if more remains, -2 if the file
 * changed since the scan, -1 if Redis failed. */
static int store_file(struct tree_store *st, const char *root, const struct tree_file *f, size_t *next,
                      long long until_ms)
{
    char path[TREE_PATH_MAX + 4096], hex[TREE_HEX_LEN];
    snprintf(path, sizeof path, "%s/%s", root, f->path);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -2;
    int rc = 0;
    for (; *next < f->nchunks && rc == 0 && clock_mono_ms() < until_ms; (*next)++) {
        size_t i = *next, len = tree_chunk_len(f->size, i);
        if (zhashx_lookup(st->stored, tree_id_hex(f->chunk[i], hex)))
            continue;
        tree_id got;
        ssize_t n = pread(fd, st->buf, len, (off_t)i * TREE_CHUNK);
        if (n == (ssize_t)len)
            tree_chunk_id(st->buf, len, got);
        if (n != (ssize_t)len || memcmp(got, f->chunk[i], TREE_ID_LEN))
            rc = -2;
        else
            rc = store_chunk(st, f->chunk[i], st->buf, len);
    }
    close(fd);
    return rc < 0 ? rc : *next < f->nchunks;
}

static int same_manifest(const struct kept *k, const tree_id *ids, size_t n)
{
    return k->nmchunks == n && memcmp(k->mchunk, ids, n * sizeof *ids) == 0;
}

/* Only while the lease holds our token (ARGV[1]; KEYS[1] the lease): the
 * version record KEYS[2] and the head KEYS[3], both ARGV[2]. */
static const char FENCED_HEAD_LUA[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('" NOT_LEADER "') end "
    "redis.call('SET', KEYS[2], ARGV[2]) redis.call('SET', KEYS[3], ARGV[2]) return 1";

/* Write the version record and the head; keep the new version. */
static int store_head(struct tree_store *st, const struct tree_manifest *m, tree_id *mids, size_t nm,
                      size_t mlen)
{
    struct tree_head h = {.version = st->head_version + 1, .created_ms = (uint64_t)clock_wall_ms(),
                          .files = m->nfiles, .bytes = m->bytes, .manifest_len = mlen, .nchunks = nm,
                          .chunk = mids};
    size_t len;
    char *rec = tree_head_encode(&h, &len), key[KEY_MAX], head_key[KEY_MAX];
    key_tree_version(key, st->cfg->cluster, h.version);
    key_tree_head(head_key, st->cfg->cluster);
    int rc = rec &&
                     append(st, len, "EVAL %s 3 %s %s %s %s %b", FENCED_HEAD_LUA, st->lease_key, key, head_key,
                            st->token, rec, len) == 0 &&
                     flush(st) == 0
                 ? 0
                 : -1;
    free(rec);
    if (rc < 0)
        return -1;
    memmove(&st->kept[1], &st->kept[0], st->nkept * sizeof st->kept[0]);
    st->nkept++;
    st->kept[0] = (struct kept){.version = h.version};
    st->head_version = h.version;
    return kept_fill(&st->kept[0], m, mids, nm);
}

/* Drop the versions beyond TREE_KEPT_IN_REDIS and collect their chunks. */
static int drop_old(struct tree_store *st)
{
    char key[KEY_MAX];
    struct gc *g = st->nkept > TREE_KEPT_IN_REDIS ? malloc(sizeof *g) : NULL;
    int rc = 0;
    if (g)
        g->nkeys = g->nids = 0;
    while (rc == 0 && st->nkept > TREE_KEPT_IN_REDIS) {
        struct kept old = st->kept[--st->nkept];
        key_tree_version(key, st->cfg->cluster, old.version);
        rc = !g || gc_add(st, g, key, NULL) < 0 || collect(st, old.ids, g) < 0 ? -1 : 0;
        kept_free(&old);
    }
    free(g);
    return rc;
}

static void job_end(struct tree_store *st)
{
    struct job *j = &st->job;
    tree_manifest_free(&j->m);
    free(j->root);
    free(j->mbuf);
    free(j->mids);
    memset(j, 0, sizeof *j);
}

/* Encode the manifest and name its chunks. */
static int job_start(struct tree_store *st, const char *root, struct tree_manifest *m)
{
    struct job *j = &st->job;
    job_end(st);
    j->m = *m;
    memset(m, 0, sizeof *m);
    j->root = strdup(root);
    j->mbuf = tree_manifest_encode(&j->m, &j->mlen);
    if (!j->root || !j->mbuf || j->mlen > TREE_MANIFEST_MAX)
        return -1;
    j->nm = tree_nchunks(j->mlen);
    if (!(j->mids = malloc((j->nm + 1) * sizeof *j->mids)))
        return -1;
    for (size_t i = 0; i < j->nm; i++)
        tree_chunk_id(j->mbuf + (uint64_t)i * TREE_CHUNK, tree_chunk_len(j->mlen, i), j->mids[i]);
    j->active = 1;
    return 0;
}

/* Unknown what Redis got: read it again before the next version. */
static enum tree_store_result job_failed(struct tree_store *st, enum tree_store_result res)
{
    if (st->pending)
        rconn_fail(st->rc, "tree sync write interrupted");
    st->pending = 0;
    forget(st);
    job_end(st);
    return res;
}

enum tree_store_result tree_store_begin(struct tree_store *st, const char *root, struct tree_manifest *m)
{
    if (connection_changed(st))
        forget(st);
    if ((!st->loaded && load(st) < 0) || job_start(st, root, m) < 0) {
        tree_manifest_free(m);
        return job_failed(st, TREE_STORE_RETRY);
    }
    if (st->nkept && same_manifest(&st->kept[0], st->job.mids, st->job.nm)) {
        job_end(st);
        return TREE_UNCHANGED;
    }
    return TREE_STORE_MORE;
}

/* The manifest chunks, the version record and the head; then collection. */
static int finish(struct tree_store *st)
{
    struct job *j = &st->job;
    for (size_t i = 0; i < j->nm; i++)
        if (store_chunk(st, j->mids[i], j->mbuf + (uint64_t)i * TREE_CHUNK, tree_chunk_len(j->mlen, i)) < 0)
            return -1;
    return flush(st) == 0 && store_head(st, &j->m, j->mids, j->nm, j->mlen) == 0 && drop_old(st) == 0 ? 0 : -1;
}

enum tree_store_result tree_store_step(struct tree_store *st, long long until_ms)
{
    struct job *j = &st->job;
    if (!j->active)
        return TREE_STORE_RETRY;
    while (j->next < j->m.nfiles) {
        const struct tree_file *f = &j->m.file[j->next];
        int rc = j->chunk || file_missing_chunks(st, f) ? store_file(st, j->root, f, &j->chunk, until_ms) : 0;
        if (rc < 0)
            return job_failed(st, rc == -2 ? TREE_STORE_CHANGED : TREE_STORE_RETRY);
        if (rc == 0) {
            j->next++;
            j->chunk = 0;
        }
        if (clock_mono_ms() >= until_ms)
            return TREE_STORE_MORE;
    }
    if (finish(st) < 0)
        return job_failed(st, TREE_STORE_RETRY);
    metric_add(M_TREE_PUBLISHED, 1);
    metric_set(M_TREE_VERSION, (int64_t)st->head_version);
    metric_set(M_TREE_FILES, (int64_t)j->m.nfiles);
    metric_set(M_TREE_BYTES, (int64_t)j->m.bytes);
    log_info("tree sync: published version %llu: %zu files, %llu bytes", (unsigned long long)st->head_version,
             j->m.nfiles, (unsigned long long)j->m.bytes);
    job_end(st);
    return TREE_STORED;
}

static int is(const redisReply *r, const char *s)
{
    return r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

int tree_store_lease(struct tree_store *st, char *holder, size_t holder_len)
{
    char ms[24], fresh[sizeof st->token];
    if (st->pending && flush(st) < 0) { /* an upload's replies first: the lease's must not be taken for one */
        job_failed(st, TREE_STORE_RETRY);
        return -1;
    }
    snprintf(ms, sizeof ms, "%d", TREE_LEASE_MS);
    lease_token_new(st->name, fresh, sizeof fresh);
    redisReply *r = rconn_command(st->rc, "EVAL %s 1 %s %s %s %s %s", LEASE_TAKE_LUA, st->lease_key, st->token, fresh,
                                  ms, "");
    int rc = -1;
    if (r && r->type == REDIS_REPLY_STRING) {
        rc = *st->token && is(r, st->token) ? 1 : is(r, fresh) ? 2 : 0;
        lease_holder(r->str, r->len, holder, holder_len);
    }
    freeReplyObject(r);
    if (rc == 2 || rc == 0) {
        /* taken anew, or another's: what we knew of Redis may predate another publisher's writes */
        snprintf(st->token, sizeof st->token, "%s", rc == 2 ? fresh : "");
        job_end(st);
        forget(st);
    }
    st->lost = 0;
    return rc < 0 ? -1 : rc > 0;
}

int tree_store_lost(const struct tree_store *st) { return st->lost; }
