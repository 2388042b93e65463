/* strset.h -- a set of short byte strings (up to 255 bytes each), bounded in
 * count: saltrelay-up's topics of the run of copies being merged, and
 * saltrelay-down's subscriptions seen on its XPUB socket. Open addressing
 * with linear probing; removal shifts entries back (no tombstones). */
#ifndef SALTRELAY_STRSET_H
#define SALTRELAY_STRSET_H

#include <stddef.h>
#include <stdint.h>

#define STRSET_MAX_LEN 255

struct strset_slot;
struct strset {
    struct strset_slot *slot;
    size_t cap, count, max; /* max: refuse inserts beyond it */
};

void strset_init(struct strset *s, size_t max);
/* 1 added, 0 already there, -1 refused (too long, full, out of memory). */
int strset_add(struct strset *s, const char *str, size_t len);
/* Counted membership (saltrelay-down's subscriptions, one per subscriber
 * holding it): 1 added, 0 already there (one more reference), -1 refused. */
int strset_ref(struct strset *s, const char *str, size_t len);
/* One reference less: 1 removed (it was the last), 0 still there, -1 was not there. */
int strset_unref(struct strset *s, const char *str, size_t len);
/* 1 removed (whatever its references), 0 was not there. */
int strset_remove(struct strset *s, const char *str, size_t len);
int strset_has(const struct strset *s, const char *str, size_t len);
/* Empty the set; a large table is given back. */
void strset_clear(struct strset *s);
void strset_free(struct strset *s);

#endif
