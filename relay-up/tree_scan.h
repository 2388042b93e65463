/* tree_scan.h -- saltrelay-up's walk of sync_source: the manifest of the tree
 * as it is now (treerec.h), with every directory watched by inotify.
 *
 * A file whose size, mtime, ctime and inode are those of the last scan keeps
 * its chunk ids without being read again, so a periodic full scan of an
 * unchanged tree costs one fstatat per file. A walk runs in slices (one per
 * loop turn of the tree sync part) with its open directories on a stack. */
#ifndef SALTRELAY_TREE_SCAN_H
#define SALTRELAY_TREE_SCAN_H

#include <stdint.h>

#include "treerec.h"

struct tree_scan;

struct tree_scan *tree_scan_new(const char *root, int inotify_fd);
void tree_scan_destroy(struct tree_scan **s);

/* Start a walk of the root (a walk still under way is dropped). -1 with *WHY
 * if the root cannot be opened. */
int tree_scan_begin(struct tree_scan *s, uint64_t max_bytes, const char **why);
/* Walk on until UNTIL_MS (monotonic) at the latest, so that a part's loop
 * turn stays short: 0 while there is more, 1 when M holds the tree (sorted by
 * path; the caller frees it), -1 with *WHY if the tree holds more than
 * MAX_BYTES or memory ran out. Entries that are not regular files or
 * directories, or vanish or cannot be read during the walk, are skipped and
 * counted (tree_skipped_entries_total). */
int tree_scan_step(struct tree_scan *s, long long until_ms, struct tree_manifest *m, const char **why);
int tree_scan_busy(const struct tree_scan *s);

#endif
