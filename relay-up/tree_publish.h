/* tree_publish.h -- saltrelay-up's tree sync part: publishes sync_source
 * (the MoM's file_roots and pillar_roots) through Redis (docs/filesync.md). */
#ifndef SALTRELAY_TREE_PUBLISH_H
#define SALTRELAY_TREE_PUBLISH_H

#include "part.h"

/* Started only when sync_source is set. */
extern const struct part_def tree_publish_part;

#endif
