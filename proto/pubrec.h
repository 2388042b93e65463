/* pubrec.h -- the publication record: one Salt PUB message (1..8 ZeroMQ
 * frames, kept byte for byte) as stored in Redis, or (version 2) a run of
 * copies of one payload that differed only in their topic.
 *
 * Stream mode, one entry per record, stored by saltrelay-up's store script
 * (pubstore.h: ID and serial chosen by Redis, stored once whichever
 * saltrelay-up instance sends it first):
 *     v 1 s <serial> h <hash> f0 <frame> [f1 <frame> ...]
 *     v 2 s <serial> h <hash> t <topics> f0 <payload>
 * "s" is a serial number that grows by one per record; a jump tells
 * saltrelay-down how many entries were trimmed before it read them. "h"
 * (the SHA-1 of the record's fields after it) is optional: entries written
 * by older saltrelay-ups, and pubrec_xadd_argv (tests, and the store
 * script's field list), have none. A
 * version-2 record stands for the messages [topic, payload], one per topic of
 * the topic list (topiclist.h), in order.
 *
 * Channel mode, one PUBLISH per record: a msgpack array
 *     [1, serial, wall_ms, bin frame0, bin frame1, ...]
 *     [2, serial, wall_ms, bin topics, bin payload]
 */
#ifndef SALTRELAY_PUBREC_H
#define SALTRELAY_PUBREC_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "streamid.h"

#define PUBREC_MAX_FRAMES 8

struct pubrec {
    struct streamid id; /* stream mode; in channel mode {wall_ms, 0} */
    uint64_t serial;
    size_t nframes;
    const char *frame[PUBREC_MAX_FRAMES]; /* point into the reply or buffer */
    size_t len[PUBREC_MAX_FRAMES];
    /* version 2: the topic list (topiclist.h); then nframes is 1 (the payload) */
    const char *topics;
    size_t topics_len;
    const char *hash; /* "h" (stream mode), NULL if absent */
    size_t hashlen;
};

/* Fill ARGV/ARGVLEN (room for PUBREC_ARGC_MAX) for XADD of REC to KEY.
 * MAXLEN 0 means no trimming. Scratch holds the formatted numbers. */
/* XADD key MAXLEN ~ n id v 1 s serial: 10, [t topics], then a name and a value per frame */
#define PUBREC_ARGC_MAX (12 + 2 * PUBREC_MAX_FRAMES)
struct pubrec_scratch {
    char id[STREAMID_STRLEN];
    char maxlen[24];
    char serial[24];
};
int pubrec_xadd_argv(const struct pubrec *rec, const char *key, long long maxlen,
                     struct pubrec_scratch *scratch, const char **argv, size_t *argvlen);

/* Decode one stream entry (a 2-element array: ID, field list) from an XREAD
 * reply. Returns 0, or -1 with a reason that names what was wrong. */
int pubrec_from_entry(const redisReply *entry, struct pubrec *rec, const char **why);

/* The single entry of a reply to "X[REV]RANGE KEY FROM TO COUNT 1": 1 (REC
 * filled; its frames point into R), 0 (no entry), or -1 with WHY (an error
 * reply, another type, a damaged entry). */
int pubrec_range_one(const redisReply *r, struct pubrec *rec, const char **why);

/* Channel mode. pack: returns a malloc'd buffer (caller frees) or NULL.
 * unpack: frames point into BUF, which must outlive REC. */
char *pubrec_pack(const struct pubrec *rec, size_t *outlen);
int pubrec_unpack(const char *buf, size_t len, struct pubrec *rec, const char **why);

#endif
