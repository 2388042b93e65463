/* pubrec.h -- the publication record: one Salt PUB message (1..8 ZeroMQ
 * frames, kept byte for byte) as stored in Redis, or (version 2) a run of
 * copies of one payload that differed only in their topic.
 *
 * Stream mode, one entry per record, stored by saltrelay-up's store script
 * (pubstore.h: ID and serial chosen by Redis, stored once whichever
 * saltrelay-up instance sends it first). Version 3, what it writes: ONE
 * field, as few bytes as a stream entry can be, since every byte of it
 * crosses every DC's WAN link:
 *     <serial> <record>
 * the name the serial in decimal, the value
 *     byte 0   0x30 | 0x08 with a topic list | (frames - 1)
 *     then     LEB128 lengths: the topic list's (if any), then every frame's
 *              but the last
 *     then     the topic list, then the frames
 *     last     the hash (pubhash.h), PUBREC_HASH_LEN bytes; at the end, where
 *              Lua's string hash (it samples every 33rd byte of a long
 *              string, the last one included) sees it: payloads that differ
 *              only in their first bytes would otherwise all collide in the
 *              store script's string table.
 * Versions 1 and 2 (older saltrelay-ups; pubrec_xadd_argv for tests):
 *     v 1 s <serial> [h <hash>] f0 <frame> [f1 <frame> ...]
 *     v 2 s <serial> [h <hash>] t <topics> f0 <payload>
 * with a SHA-1 as 40 hex digits. The serial grows by one per record; a jump
 * tells saltrelay-down how many entries were trimmed before it read them. A
 * record with a topic list (version 2, or 3 with the flag) stands for the
 * messages [topic, payload], one per topic of the list (topiclist.h), in
 * order.
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
#define PUBREC_HASH_LEN 12 /* version 3: bytes of the hash (pubhash.h) */

struct pubrec {
    struct streamid id; /* stream mode; in channel mode {wall_ms, 0} */
    uint64_t serial;
    size_t nframes;
    const char *frame[PUBREC_MAX_FRAMES]; /* point into the reply or buffer */
    size_t len[PUBREC_MAX_FRAMES];
    /* version 2: the topic list (topiclist.h); then nframes is 1 (the payload) */
    const char *topics;
    size_t topics_len;
    const char *hash; /* stream mode: the hash (hex in versions 1 and 2, raw in 3), NULL if absent */
    size_t hashlen;
    int version;      /* as decoded: 1, 2 or 3 */
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

/* Version 3: the record's value (the serial is its field's name, given by
 * the store script). Its size, or 0 if REC cannot be one (no frame, too many,
 * a topic list with more than one frame); write it to OUT (that many bytes)
 * with HASH (PUBREC_HASH_LEN bytes). */
size_t pubrec_v3_size(const struct pubrec *rec);
void pubrec_v3_write(const struct pubrec *rec, const unsigned char *hash, char *out);

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
