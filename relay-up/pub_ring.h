/* pub_intake_int.h -- what the two halves of saltrelay-up's publication
 * intake share: the SUB side (pub_intake.c: the part, the ring, merging
 * copies) and the Redis side (pub_intake_redis.c: storing through the Redis
 * pipeline, WAIT for the replicas). Not for other parts. */
#ifndef SALTRELAY_PUB_INTAKE_INT_H
#define SALTRELAY_PUB_INTAKE_INT_H

#include <czmq.h>
#include <stdint.h>

#include "config.h"
#include "keys.h"
#include "pubstore.h"
#include "rconn.h"
#include "rpipe.h"
#include "strset.h"
#include "topiclist.h"

#define INFLIGHT_MAX 2048   /* commands written whose replies are awaited */
#define DRAIN_MAX 1024      /* messages taken from the SUB socket per wakeup */
#define STOP_FLUSH_MS 5000  /* how long a stop may spend storing the ring */
#define REPLY_TIMEOUT_MS 2000 /* no reply for that long (+ pub_wait_timeout): the connection is dead */
#define PIPE_BYTES (16 << 20) /* formatted commands in flight at once (one larger goes alone) */
#define CMD_ROOM 1024       /* a command's formatted size beyond its frames and topics, at most */
#define TRIM_AFTER 1000     /* buffered messages after which memory is given back */
#define INLINE_FRAMES 2     /* Salt sends [payload] or [topic, payload] */
#define MERGE_HOLD_MAX_MS 2000 /* a run still growing after that is cut into several entries */
/* After its SUB socket first connects to the MoM an instance (stream mode)
 * stores nothing for this long: it missed what came before, and another
 * instance that is running may still hold some of that unstored; storing a
 * later publication first would put it ahead of them in the stream. */
#define JOIN_HOLD_MS 1000

/* One buffered message. Frames past INLINE_FRAMES (rare) live in MORE, so a
 * slot of the pub_buffer-long ring stays small. */
struct slot {
    zmq_msg_t frame[INLINE_FRAMES];
    zmq_msg_t *more; /* PUBREC_MAX_FRAMES - INLINE_FRAMES, or NULL */
    struct topiclist *topics; /* merged copies: every topic, frame[1] the payload */
    long long recv_ms;
    uint64_t serial; /* channel mode: given at its first PUBLISH, kept for a retry */
    unsigned char nframes;
    unsigned char written; /* sent to Redis once (maybe stored): it takes no more copies */
    unsigned char refused; /* Redis refused it once (channel mode: its retry is no repeat) */
};

struct pub_intake {
    const struct config *cfg;
    int opened, draining;
    int ev_sub, ev_monitor; /* indices in the part's wait */
    int channel_mode;
    zsock_t *sub;
    zactor_t *monitor;
    struct rconn *rc;
    struct rpipe *pipe;
    char key[KEY_MAX]; /* channel mode: the channel */
    struct slot *ring; /* calloc'd at full size: untouched pages cost no memory */
    size_t cap, head, count;
    size_t bytes; /* frame bytes in the ring, against pub_buffer_bytes */
    size_t peak;       /* most buffered since the ring was last empty */
    struct pubstore store; /* stream mode */
    unsigned loaded;   /* rconn generation the store script was loaded on */
    uint64_t serial;   /* channel mode: the last serial given */
    size_t sent;       /* slots from the head written to Redis (replies awaited, or held) */
    size_t skip;       /* replies to read and ignore (sent after a refused one) */
    /* pub_wait_replicas: a write of slots is followed by WAIT, and the next
     * write waits for its answer; slots Redis stored stay HELD at the head
     * until then, so that a failover before the replicas had them finds them
     * still here, re-sent to the new primary (whose store script skips what
     * it has). */
    size_t held;
    size_t batch;   /* script replies still to come before the WAIT reply */
    int wait_owed;  /* a WAIT reply is to come */
    int refusing;      /* Redis answers XADD with an error (log once) */
    int unreceived;    /* channel mode: the last PUBLISH reached no saltrelay-down (log once) */
    int unconfirmed;   /* the last WAIT had too few replicas (log once) */
    long long retry_at;
    int joined;        /* its SUB socket connected to the MoM once (JOIN_HOLD_MS) */
    int dropping;      /* ring full (log once per episode) */
    struct slot overflow; /* receives what a full ring cannot take */
    /* the run of copies that may still grow: the newest slot, not yet sent */
    struct strset run_topics; /* its topics, so a repeat starts a new record */
    int run_open;             /* it ends with a per-minion topic: hold it back */
    long long run_first_ms, run_last_ms; /* monotonic: its first and latest copy */
    int stopping;             /* flush everything, hold nothing */
};

static inline struct slot *slot_at(struct pub_intake *p, size_t i) { return &p->ring[(p->head + i) % p->cap]; }

static inline zmq_msg_t *slot_frame(struct slot *s, size_t i)
{
    return i < INLINE_FRAMES ? &s->frame[i] : &s->more[i - INLINE_FRAMES];
}


/* SUB side (pub_intake.c). */
/* The oldest buffered message is done with: freed, counted out of the ring. */
void pub_ring_pop(struct pub_intake *p);
/* Frame bytes held by slot S. */
size_t pub_slot_bytes(struct slot *s);
/* Milliseconds the newest record is still held for more copies; 0: not held. */
long long pub_run_hold_ms(const struct pub_intake *p);

/* Redis side (pub_intake_redis.c). */
/* Append the buffered messages not yet in flight while the pipeline takes
 * them, and write what the socket takes. */
void pub_send_more(struct pub_intake *p);
/* Move publications towards Redis: replies first (they free ring slots). */
void pub_pump(struct pub_intake *p);
/* The pipeline's replies (rpipe_reply_fn), each for the oldest slot in flight. */
void pub_on_reply(void *arg, uint64_t tag, redisReply *r);

#endif
