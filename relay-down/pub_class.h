/* pub_class.h -- saltrelay-down's messages handed to its XPUB socket, per
 * subscription class, until each is known to have left ZeroMQ (pub_flow.h).
 *
 * A message goes to every subscriber with a subscription that is a prefix of
 * its topic (its first frame). Its class is the LONGEST such subscription K:
 * the subscriptions matching it are exactly those that are prefixes of K, so
 * every later message whose longest match is K again goes to every
 * subscriber that got it. What ZeroMQ may hold for one subscriber is at most
 * pub_hwm messages in its pipe and one 8 KiB engine batch; so a message has
 * left ZeroMQ, for every subscriber that got it, once more than pub_hwm
 * messages of its class, and beyond the newest pub_hwm of them at least
 * 8 KiB, followed it. Messages on other topics say nothing: with
 * zmq_filtering they never enter its subscribers' queues. When every
 * subscriber subscribes to everything (Salt's default) there is one class,
 * "", and this is the count over all messages.
 *
 * Memory: a class is a topic some subscriber asked for (pub_subs.h), at most
 * PUB_CLASS_MAX of them, and at most PUB_CLASS_ENTRIES_MAX messages are
 * waiting in all classes together (the table 7 MB, keys, 64 bytes of queue
 * per class, queues at most twice what waits: about 20 MB with Salt's
 * 40-character topics, 36 MB with 255-byte ones); beyond either a message
 * is not tracked (the caller then waits for a sweep or the quiet rule,
 * pub_flow.h), and so is one sent while subscriptions changed (ZeroMQ
 * applies them during a send: it may have reached a subscriber of a longer
 * one). */
#ifndef SALTRELAY_PUB_CLASS_H
#define SALTRELAY_PUB_CLASS_H

#include <stddef.h>
#include <stdint.h>

#define PUB_CLASS_MAX 65536
#define PUB_CLASS_ENTRIES_MAX (1u << 18) /* 4 MiB of entries at most */

struct pub_class_entry {
    uint64_t rec;   /* the record (pub_flow's sequence number) the message belongs to */
    uint64_t bytes; /* encoded bytes of the class handed up to and with this message */
};

struct pub_class_q {
    char *key; /* NULL: free slot */
    size_t klen;
    uint64_t bytes;               /* encoded bytes handed on this class */
    struct pub_class_entry *q;    /* messages not yet known to have left, oldest first */
    size_t qcap, qhead, qn;
};

/* Called for each message found to have left, with its record. */
typedef void (*pub_class_left_fn)(void *arg, uint64_t rec);

struct pub_class {
    int hwm;
    size_t engine_batch;
    struct pub_class_q *tab; /* open addressing, linear probing, no removal (see pub_class_clear) */
    size_t cap, used, entries;
    pub_class_left_fn left;
    void *arg;
};

void pub_class_init(struct pub_class *c, int hwm, size_t engine_batch, pub_class_left_fn left, void *arg);
void pub_class_free(struct pub_class *c);
/* A message of record REC, BYTES encoded, handed on class KEY. 0 tracked
 * (LEFT is called once it has left), -1 not tracked (caps, out of memory). */
int pub_class_sent(struct pub_class *c, const char *key, size_t klen, uint64_t bytes, uint64_t rec);
/* Everything handed has left (the quiet rule): forget every message, and
 * every class. LEFT is not called. */
void pub_class_clear(struct pub_class *c);
/* Forget the messages of records before REC (they left by other means). */
void pub_class_forget(struct pub_class *c, uint64_t rec);
/* Messages waiting in all classes. */
size_t pub_class_waiting(const struct pub_class *c);

#endif
