/* treerec.h -- the file tree records of tree sync (docs/filesync.md): the MoM's
 * sync_source tree as carried through Redis to every DC's sync_target.
 *
 * Content is cut into chunks of TREE_CHUNK bytes (the last one of a file
 * shorter); each chunk is stored once under its SHA-1 (keys.h key_tree_chunk),
 * so content already in Redis is never sent again.
 *
 * Manifest (the list of files; its bytes are chunked and stored like content):
 *     msgpack array of files, sorted by path (bytewise, strictly ascending):
 *     [path (str or bin), exec (0 or 1), size, [chunk id (bin 20), ...]]
 * Version record (keys.h key_tree_head and key_tree_version), small:
 *     [1, version, created_ms, files, bytes, manifest_len, [manifest chunk id, ...]]
 *
 * Everything here is read by saltrelay-down from Redis and is untrusted: the
 * decoders check every bound (paths relative, no "." or ".." component, no
 * empty component, sizes consistent with chunk counts, totals within the
 * caller's limit) and return why they refuse. */
#ifndef SALTRELAY_TREEREC_H
#define SALTRELAY_TREEREC_H

#include <stddef.h>
#include <stdint.h>

#define TREE_CHUNK (256 * 1024)         /* bytes per chunk, every chunk but a file's last */
#define TREE_ID_LEN 20                  /* SHA-1 */
#define TREE_HEX_LEN (2 * TREE_ID_LEN + 1)
#define TREE_PATH_MAX 1024              /* bytes of a relative path */
#define TREE_FILES_MAX 1000000
#define TREE_MANIFEST_MAX (256ULL * 1024 * 1024) /* bytes of an encoded manifest */
#define TREE_RECORD_VERSION 1

typedef unsigned char tree_id[TREE_ID_LEN];

struct tree_file {
    char *path;    /* NUL-terminated; validated: relative, no "."/".."/"" component */
    int exec;      /* executable bit (owner, group and other get x) */
    uint64_t size;
    size_t nchunks; /* (size + TREE_CHUNK - 1) / TREE_CHUNK */
    tree_id *chunk;
};

struct tree_manifest {
    size_t nfiles;
    struct tree_file *file;
    uint64_t bytes; /* sum of the files' sizes */
};

struct tree_head {
    uint64_t version, created_ms, files, bytes, manifest_len;
    size_t nchunks;
    tree_id *chunk; /* the manifest's chunks */
};

/* SHA-1 of LEN bytes (czmq's zdigest; see docs/filesync.md for why SHA-1). */
void tree_chunk_id(const void *data, size_t len, tree_id out);
/* Lower-case hex of ID, NUL-terminated (TREE_HEX_LEN bytes). */
char *tree_id_hex(const tree_id id, char *hex);
/* Chunks of a file of SIZE bytes; bytes of its chunk I. */
size_t tree_nchunks(uint64_t size);
size_t tree_chunk_len(uint64_t size, size_t i);
/* 1 if P (LEN bytes) is a path saltrelay-down may create under its target. */
int tree_path_ok(const char *p, size_t len);

/* Encode M (files sorted by path) as a manifest; returns a malloc'd buffer
 * and its length in *LEN, NULL on allocation failure. */
char *tree_manifest_encode(const struct tree_manifest *m, size_t *len);
/* Decode LEN bytes; refuses (returns -1, *WHY says why) anything malformed
 * or over MAX_BYTES of content. M is freed with tree_manifest_free either way. */
int tree_manifest_decode(const char *buf, size_t len, uint64_t max_bytes, struct tree_manifest *m,
                         const char **why);
void tree_manifest_free(struct tree_manifest *m);

/* 1 if the LEN bytes at RAW are the manifest record H names (same chunk ids). */
int tree_head_names(const struct tree_head *h, const char *raw, size_t len);

char *tree_head_encode(const struct tree_head *h, size_t *len);
int tree_head_decode(const char *buf, size_t len, struct tree_head *h, const char **why);
void tree_head_free(struct tree_head *h);

#endif
