/* pub_ring.h -- publication intake's ring (pub_ring.c): the publications
 * received from the MoM's PUB socket and held until Redis stored them,
 * bounded by pub_buffer messages and pub_buffer_bytes of frames, copies of
 * one payload merged into one record. Publication intake (pub_intake.c)
 * fills it; its writer (pub_write.h) reads it from the head and pops what
 * Redis stored. */
#ifndef SALTRELAY_PUB_RING_H
#define SALTRELAY_PUB_RING_H

#include <czmq.h>
#include <stdint.h>

#include "config.h"
#include "pubrec.h"
#include "strset.h"
#include "topiclist.h"

#define PUB_INLINE_FRAMES 2 /* Salt sends [payload] or [topic, payload] */

/* One buffered message. Frames past PUB_INLINE_FRAMES (rare) live in MORE,
 * so a slot of the pub_buffer-long ring stays small. */
struct pub_slot {
    zmq_msg_t frame[PUB_INLINE_FRAMES];
    zmq_msg_t *more; /* PUBREC_MAX_FRAMES - PUB_INLINE_FRAMES, or NULL */
    struct topiclist *topics; /* merged copies: every topic, frame[1] the payload */
    long long recv_ms;
    unsigned char hash[PUBREC_HASH_LEN]; /* stream mode: its record's, from its first write */
    uint64_t serial; /* channel mode: given at its first PUBLISH, kept for a retry */
    unsigned char nframes;
    unsigned char written; /* sent to Redis once (maybe stored): it takes no more copies */
    unsigned char refused; /* Redis refused it once (channel mode: its retry is no repeat) */
};

struct pub_ring {
    const struct config *cfg;
    struct pub_slot *slot; /* calloc'd at full size: untouched pages cost no memory */
    size_t cap, head, count;
    size_t bytes; /* frame bytes in the ring, against pub_buffer_bytes */
    size_t peak;  /* most buffered since the ring was last empty */
    int dropping; /* ring full (log once per episode) */
    struct pub_slot overflow; /* receives what a full ring cannot take */
    /* the run of copies that may still grow: the newest slot, not yet written */
    struct strset run_topics; /* its topics, so a repeat starts a new record */
    int run_open;             /* it ends with a per-minion topic: hold it back */
    long long run_first_ms, run_last_ms; /* monotonic: its first and latest copy */
    int stopping;             /* flush everything, hold nothing */
};

/* 0, or -1 without memory; pub_ring_fini either way. */
int pub_ring_init(struct pub_ring *r, const struct config *cfg);
void pub_ring_fini(struct pub_ring *r);
/* Take what the SUB socket SOCK holds (at most a bounded number per call). */
void pub_ring_take(struct pub_ring *r, void *sock);
/* The oldest buffered message is done with: freed, counted out of the ring. */
void pub_ring_pop(struct pub_ring *r);
/* Milliseconds the newest record is still held for more copies; 0: not held. */
long long pub_ring_hold_ms(const struct pub_ring *r);
/* Frame bytes held by slot S. */
size_t pub_slot_bytes(struct pub_slot *s);

static inline struct pub_slot *pub_ring_at(struct pub_ring *r, size_t i)
{
    return &r->slot[(r->head + i) % r->cap];
}

static inline zmq_msg_t *pub_slot_frame(struct pub_slot *s, size_t i)
{
    return i < PUB_INLINE_FRAMES ? &s->frame[i] : &s->more[i - PUB_INLINE_FRAMES];
}

#endif
