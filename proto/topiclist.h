/* topiclist.h -- the compact topic list of a merged publication record.
 *
 * With zmq_filtering the MoM publishes one targeted job as N messages
 * [sha1hex(minion id), payload] with the same payload (then a "syndic" copy).
 * saltrelay stores such a run once: the payload and this list of topics.
 * Each topic is encoded as
 *     0x00 + 20 bytes      a topic of exactly 40 lowercase hex digits (Salt's
 *                          sha1 hexdigest), stored as the 20 bytes it spells
 *     n (1..255) + n bytes any other topic of 1 to 255 bytes, as is
 * so a minion's topic costs 21 bytes and decoding gives back the exact bytes
 * the MoM sent. The list holds 1 to TOPICLIST_MAX_COUNT topics. */
#ifndef SALTRELAY_TOPICLIST_H
#define SALTRELAY_TOPICLIST_H

#include <stddef.h>

#define TOPICLIST_MAX_TOPIC 255
#define TOPICLIST_MAX_COUNT (1u << 20)

/* A list being built (saltrelay-up). */
struct topiclist {
    char *buf;
    size_t len, cap;
    size_t count;
};

/* 1 if TOPIC (LEN bytes) can go into a list (1..255 bytes). */
int topiclist_encodable(size_t len);
/* 1 if TOPIC is 40 lowercase hex digits: Salt's per-minion topic. */
int topiclist_is_sha1hex(const char *topic, size_t len);
/* Append a topic; -1 if it cannot be encoded, the list is full or memory ran out. */
int topiclist_append(struct topiclist *tl, const char *topic, size_t len);
void topiclist_free(struct topiclist *tl);

/* Reading an encoded list (saltrelay-down); nothing in it is trusted. */
struct topiclist_iter {
    const unsigned char *p, *end;
};
void topiclist_iter_init(struct topiclist_iter *it, const char *buf, size_t len);
/* The next topic into OUT (room for TOPICLIST_MAX_TOPIC bytes): 1 and *LEN,
 * 0 at the end, -1 if the list is malformed. */
int topiclist_next(struct topiclist_iter *it, char *out, size_t *len);
/* Check a whole list: its number of topics, or -1 if it is empty, malformed
 * or longer than TOPICLIST_MAX_COUNT. */
long topiclist_count(const char *buf, size_t len);

#endif
