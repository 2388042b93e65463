/* stream_reader.h -- a child actor that reads Redis streams with blocking reads
 * on its own connection, so that the thread owning the ZeroMQ sockets never
 * waits on Redis for new entries: one stream with XREAD, or, through a
 * consumer group, every stream named in a set (stream_group.h).
 *
 * Each entry goes to the parent as one message on the actor's pipe:
 *     [entry id, field, value, field, value, ...]
 * in group mode preceded by the stream's key. The strings are handed over
 * without a copy (the hiredis buffers become the ZeroMQ frames). An entry
 * that was deleted or trimmed while pending in the consumer group arrives
 * as [key, entry id] alone.
 *
 * Flow control: the reader forwards at most as many entries as the parent
 * granted ("CREDIT", "<n>"), so the pipe never fills and the parent's memory
 * stays bounded; what it has not taken stays in Redis. */
#ifndef SALTRELAY_STREAM_READER_H
#define SALTRELAY_STREAM_READER_H

#include <czmq.h>

#include "config.h"
#include "keys.h"
#include "streamid.h"

struct stream_reader_cfg {
    struct redis_url url;
    char label[64];
    /* Without a group: the stream, read with XREAD after START (or, with
     * START "", from the stream's end at first connect), then from the last
     * entry read. In group mode: one more stream read with the others if
     * it exists ("" none). */
    char key[KEY_MAX];
    /* Consumer group mode (stream_group.h): the streams PREFIX + NAME for
     * every NAME of the set SET_KEY (and KEY), each joined from its start;
     * this consumer's pending entries are read first after every
     * (re)connect, then new ones. */
    char group[64];    /* "" = no group */
    char set_key[KEY_MAX];
    char prefix[KEY_MAX];
    char start[STREAMID_STRLEN];
    char consumer[160];
    /* Group mode: entries pending for longer than this with any consumer
     * (one that died: consumer names are per process) are claimed
     * (XAUTOCLAIM, once a second) and forwarded like new ones; consumers
     * that own nothing and were idle twice as long are removed from the
     * group every 5 s (group_prune.h). 0 = never (neither). */
    long long claim_idle_ms;
    long long credit;  /* initial grant */
};

/* Starts the reader; CFG is copied. NULL on failure. */
zactor_t *stream_reader_new(const struct stream_reader_cfg *cfg);
/* Grant N more entries. */
void stream_reader_credit(zactor_t *reader, long long n);

#endif
