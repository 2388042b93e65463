/* tree_store.h -- saltrelay-up's side of tree sync in Redis: store the chunks
 * Redis does not hold yet, then the manifest, then the version record, and
 * collect the chunks no kept version needs (docs/filesync.md). */
#ifndef SALTRELAY_TREE_STORE_H
#define SALTRELAY_TREE_STORE_H

#include "config.h"
#include "treerec.h"

#define TREE_KEPT_IN_REDIS 3 /* versions kept in Redis: DCs still building one finish it */

struct tree_store;

enum tree_store_result {
    TREE_STORED = 0,         /* a new version is the head */
    TREE_UNCHANGED = 1,      /* the head already holds this tree */
    TREE_STORE_MORE = 2,     /* under way: call tree_store_step again */
    TREE_STORE_RETRY = -1,   /* Redis failed: publish again later */
    TREE_STORE_CHANGED = -2, /* a file changed between scan and upload: scan again */
};

struct tree_store *tree_store_new(const struct config *cfg);
void tree_store_destroy(struct tree_store **st);

/* Start publishing M (a scan of ROOT; taken over, freed by the store) unless
 * the head already holds it: TREE_STORE_MORE, TREE_UNCHANGED or RETRY. */
enum tree_store_result tree_store_begin(struct tree_store *st, const char *root, struct tree_manifest *m);
/* Upload on until UNTIL_MS (monotonic) at the latest (a part's loop turn
 * stays short): MORE, then STORED, RETRY or CHANGED. */
enum tree_store_result tree_store_step(struct tree_store *st, long long until_ms);

/* Take or keep the publisher's lease (several saltrelay-ups may run, only
 * one may publish): 1 if this instance holds it for TREE_LEASE_MS from now,
 * 0 if another does (*HOLDER names it), -1 if Redis failed. Losing it, or
 * taking it anew (a new token), drops what the store knew of Redis and an
 * upload under way. The head write and every delete are fenced: done by
 * Redis only while the lease holds this instance's current token. */
#define TREE_LEASE_MS 10000
int tree_store_lease(struct tree_store *st, char *holder, size_t holder_len);
/* 1 if a fenced write found the lease not ours since the last lease check
 * (the store stopped; leadership is over until a check says otherwise). */
int tree_store_lost(const struct tree_store *st);

/* Milliseconds until Redis may be tried again (0 if connected). */
int tree_store_retry_in_ms(const struct tree_store *st);

#endif
