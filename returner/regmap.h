/* regmap.h -- the minion registry (registry.h) read back for
 * saltrelay-status: for each minion, the DC it was seen in last.
 *
 * Each DC writes its own entries (key_minion(dc, id)) and lists their ids in
 * its set (key_dc_minions), so a minion that moved has an entry in each DC
 * until the old one expires (registry_ttl): the entry with the newest time
 * decides (ties: the first DC by name). A set keeps an id after its entry
 * expired: the entry is the truth. Entries of the layout before per-DC keys
 * (key_minion_shared, naming their DC) count for a set's member that has no
 * per-DC entry anywhere, if they name that set's DC, until they expire.
 *
 * Shared by per-job accounting (status_job.c) and the minion list
 * (status_minions.c), so both call the same minions seen, in the same DC. */
#ifndef SALTRELAY_REGMAP_H
#define SALTRELAY_REGMAP_H

#include <stddef.h>

#include "config.h"
#include "dcstate.h"
#include "rconn.h"
#include "regentry.h"

struct regmap_item {
    char *id;
    struct regentry e; /* e.dc "" if no entry counts */
};

struct regmap {
    struct regmap_item *v; /* sorted by id */
    size_t n;
};

/* The registry of the DCs NAMES[0..N): every id of their sets, or only
 * those of WANT (NWANT ids sorted by strcmp). 0, or -1 if Redis failed (a
 * damaged set or entry is named on stderr and taken as empty). */
int regmap_load(struct rconn *rc, const struct config *cfg, char names[][DC_NAME_MAX], int n,
                const char *const *want, size_t nwant, struct regmap *m);
/* ID's entry, or NULL if no set of those DCs holds it. */
const struct regentry *regmap_find(const struct regmap *m, const char *id);
void regmap_free(struct regmap *m);

#endif
