/* tree_build.h -- saltrelay-down's tree sync on disk: build a version beside
 * the current one, then switch to it atomically.
 *
 * Layout under sync_target (DIR):
 *     DIR/current            symlink to v/<name>, replaced by rename(2), so it
 *                            always resolves to a complete version
 *     DIR/v/<name>/          a version, complete and never changed again
 *     DIR/v/<name>.manifest  its manifest as received (treerec.h)
 *     DIR/v/.tmp-<name>/     a version being built (kept across restarts: resumed;
 *                            any other .tmp- is removed when a build begins)
 *     DIR/v/.part            the file being written (removed when the build
 *                            object is freed, and when a build begins)
 * A version's name is "<n>-<8 hex digits of its manifest's first chunk id>",
 * so a version number published again after Redis lost its keys does not
 * reuse an old directory of other content.
 * Files equal to one of the current version (same chunks and exec bit), or
 * to one already written in the new version, are hard links, not fetched. */
#ifndef SALTRELAY_TREE_BUILD_H
#define SALTRELAY_TREE_BUILD_H

#include <stdint.h>

#include "treerec.h"

struct tree_build;

#define TREE_NAME_MAX 32

/* The name of version H ("<n>-<hex8>"), in NAME (TREE_NAME_MAX bytes). */
char *tree_version_name(const struct tree_head *h, char *name);

/* The version DIR/current points to: its name (NAME, "" if none), its
 * manifest M and the manifest's bytes (*RAW, malloc'd). -1 if there is none
 * or its manifest is unreadable (M empty, *RAW NULL). */
int tree_dir_current(const char *dir, uint64_t max_bytes, char *name, struct tree_manifest *m, char **raw,
                     size_t *rawlen);

/* Start building version NAME of manifest NEW_M (bytes MRAW, MLEN) in DIR,
 * reusing files of PREV (named PREV_NAME, the current one, "" if none);
 * what other unfinished builds left is removed first. NULL on error, *WHY
 * says why (errno tells the system's reason of a disk error). */
struct tree_build *tree_build_begin(const char *dir, const char *name, const struct tree_manifest *new_m,
                                    const char *mraw, size_t mlen, const struct tree_manifest *prev,
                                    const char *prev_name, const char **why);
/* 1 if the version is already complete on disk (left by a stop between its
 * build and the switch): only tree_build_commit remains. */
int tree_build_complete(const struct tree_build *b);
void tree_build_free(struct tree_build **b);

/* File I of the new manifest: 1 if it is already in place (resumed, or
 * linked), 0 if its content must be written, -1 on a bad path (the
 * manifest is refused) or a disk error (*BAD tells which). */
int tree_build_have(struct tree_build *b, size_t i, int *bad);
/* Write file I: open, append its chunks in order, finish. */
int tree_build_open(struct tree_build *b, size_t i);
int tree_build_write(struct tree_build *b, const char *data, size_t len);
int tree_build_finish(struct tree_build *b, size_t i);

/* Make the version durable, move it to v/<n> and point current at it. */
int tree_build_commit(struct tree_build *b);

/* Remove versions beyond the KEEP newest (never CURRENT, a name) and stale work. */
void tree_dir_prune(const char *dir, long long keep, const char *current);

#endif
