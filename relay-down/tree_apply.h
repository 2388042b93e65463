/* tree_apply.h -- saltrelay-down's tree sync part: keeps sync_target/current
 * pointing at a complete copy of the newest tree version the MoM side
 * published (docs/filesync.md). */
#ifndef SALTRELAY_TREE_APPLY_H
#define SALTRELAY_TREE_APPLY_H

#include "part.h"

/* Started only when sync_target is set. */
extern const struct part_def tree_apply_part;

#endif
