/* treefetch.h -- read tree sync's chunks and manifests back from Redis and
 * verify them: every chunk must have its expected length and SHA-1 before
 * anyone uses it. saltrelay-down builds versions with this (from its
 * replica); saltrelay-up reloads its kept versions with it at start. */
#ifndef SALTRELAY_TREEFETCH_H
#define SALTRELAY_TREEFETCH_H

#include "rconn.h"
#include "treerec.h"

enum tree_fetch_result {
    TREE_FETCH_OK = 0,
    TREE_FETCH_REDIS = -1,   /* Redis unreachable or answered nonsense: try again later */
    TREE_FETCH_MISSING = -2, /* a chunk is not (or no longer) there: the version moved on */
    TREE_FETCH_BAD = -3,     /* content does not match its id or length: refuse the version */
    TREE_FETCH_LOCAL = -4,   /* the callback failed (disk): try again later */
};

/* Called with each verified chunk, in order; non-zero stops the fetch with
 * TREE_FETCH_LOCAL. */
typedef int (*tree_chunk_fn)(void *arg, size_t i, const char *data, size_t len);

/* Fetch chunks [FROM, TO) of IDS, the chunk list of content TOTAL_LEN bytes
 * long (treerec.h: chunk I has tree_chunk_len(TOTAL_LEN, I) bytes), of
 * cluster CLUSTER, a few per MGET. On TREE_FETCH_BAD or MISSING, *WHY says
 * what. */
enum tree_fetch_result tree_fetch_chunks(struct rconn *rc, const char *cluster, const tree_id *ids, size_t from,
                                         size_t to, uint64_t total_len, tree_chunk_fn fn, void *arg,
                                         const char **why);

/* Fetch and decode the manifest of version record H (files up to MAX_BYTES);
 * the manifest must hold H's file count and bytes. With RAW, *RAW gets its
 * bytes (malloc'd, H->manifest_len of them). */
enum tree_fetch_result tree_fetch_manifest(struct rconn *rc, const char *cluster, const struct tree_head *h,
                                           uint64_t max_bytes, struct tree_manifest *m, char **raw,
                                           const char **why);

/* Read and decode the record at KEY into H. TREE_FETCH_MISSING if there is
 * none, TREE_FETCH_BAD if it does not decode. */
enum tree_fetch_result tree_fetch_head(struct rconn *rc, const char *key, struct tree_head *h, const char **why);

#endif
