/* stream_group.h -- the consumer group side of the stream reader
 * (stream_reader.h): the streams one consumer group reads together, each
 * DC's own, found in a set of names, and one more fixed stream if it exists.
 *
 * A stream joins when its name is in the set (key = prefix + name, the name
 * 1-64 of [A-Za-z0-9._-]) and the stream exists: its group is created from
 * the stream's start (XGROUP CREATE without MKSTREAM: a name nobody writes
 * creates no key). The set is read every DISCOVER_EVERY_MS, so a new DC is
 * read within a second or so, with nothing lost. A stream that vanishes or
 * is no stream any more (deleted, or replaced by another type: the writer
 * of a stream may do that to its own key) leaves after the read that
 * failed on it, and the others are read on: one stream cannot stop the
 * rest.
 *
 * Each read takes at most credit / streams entries from every stream (one
 * XREADGROUP over all of them), so a stream with a flood behind it takes no
 * more of the read-ahead than a quiet one that has something; with less
 * credit than streams, the read waits for more. After every (re)connect or
 * join, this consumer's own pending entries of each stream come first. */
#ifndef SALTRELAY_STREAM_GROUP_H
#define SALTRELAY_STREAM_GROUP_H

#include <hiredis/hiredis.h>

#include "keys.h"
#include "rconn.h"
#include "stream_reader.h"
#include "streamid.h"

#define GROUP_STREAMS_MAX 257 /* 256 DCs and the fixed stream */

/* Hand ENTRY (validated: [id, fields or nil]) of stream KEY to the parent. */
typedef void stream_group_fwd(void *arg, const char *key, redisReply *entry);

struct stream_group;

struct stream_group *stream_group_new(const struct stream_reader_cfg *cfg);
void stream_group_destroy(struct stream_group **g);
/* One turn on RC with CREDIT entries granted: join what is new, this
 * consumer's pending entries, claims, the prune, then one read of new
 * entries (blocking up to BLOCK_MS), each entry handed to FWD(ARG, ...).
 * 0, 1 if there was nothing to do (no stream yet, or less credit than
 * streams: the caller waits a little), -1 if the connection is unusable
 * (the caller fails it). */
int stream_group_turn(struct stream_group *g, struct rconn *rc, long long credit, int block_ms,
                      stream_group_fwd *fwd, void *arg);
/* Whether the reply ENTRY is a stream entry the reader can forward. */
int stream_entry_ok(const redisReply *e);

#endif
