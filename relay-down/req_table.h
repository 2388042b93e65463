/* req_intake_int.h -- what the two halves of saltrelay-down's request
 * intake share: the ROUTER side (req_intake.c: the part, the table of
 * pending requests, the reply reader) and the Redis side
 * (req_intake_redis.c: requests, registry updates and the reply stream's
 * trim through the Redis pipeline). Not for other parts. */
#ifndef SALTRELAY_REQ_INTAKE_INT_H
#define SALTRELAY_REQ_INTAKE_INT_H

#include <czmq.h>
#include <stdint.h>

#include "config.h"
#include "envelope.h"
#include "keys.h"
#include "registry.h"
#include "rpipe.h"
#include "streamid.h"
#include "warnrate.h"

#define PIPE_BYTES (8 << 20) /* formatted commands in flight at once: the pipeline's byte cap */
#define PIPE_CMDS 2048       /* commands in flight at once */
#define XADD_ROOM 512        /* an XADD's formatted size beyond its payload, at most */
#define DRAIN_MAX 1024       /* messages taken from a socket per loop turn */
#define GRACE_MS 1000
#define DEPARTED_QUIET_MS 10000 /* drops for closed connections this far apart are separate episodes (log) */
#define CLOCK_SKEW_MS 10000  /* reply IDs are the primary's clock: start reading this much before boot */
#define REDIS_TIMEOUT_MS 1000 /* a connect; and no reply for this long while some are awaited fails the connection */
#define READER_CREDIT 512
#define STOP_WAIT_MS 5000    /* how long a stop waits for replies in flight */
#define REP_FRAMES_MAX 9     /* entry id + v 1 rid R st S p P */
#define WAIT_MAX_MS 500      /* expire runs at least this often */
#define TRIM_EVERY_MS 1000   /* the reply stream's XTRIM, at most this often */
#define PENDING_MAX 10000000 /* max_pending: slot indices are ints */
#define ACCEPTED_MAX 256     /* accepted _auth waiting to be registered */
#define TAG_SEQ_BITS 40      /* a command's tag: slot << 40 | the request's seq (low bits) */
#define TAG_OTHER UINT64_MAX /* registry and trim commands */
/* frames over max_frame_size are refused and counted up to this much over; a
 * larger one is never taken whole into memory: ZeroMQ drops its connection */
#define FRAME_MARGIN (64 * 1024)

struct pend {
    uint64_t seq;   /* 0: free */
    zmq_msg_t ident;
    zmq_msg_t payload; /* until Redis confirmed it stored the request */
    long long give_up; /* monotonic */
    long long arrived; /* monotonic, for request_latency_seconds */
    long long dl_wall;
    int stored; /* 0 waiting, 1 sent (Redis's answer awaited), 2 stored */
    char sid[STREAMID_STRLEN]; /* its request stream entry once stored, "" if not known */
    int auth;
    char id[ENVELOPE_ID_MAX];
    int prev, next; /* arrival order, which is deadline order */
    int cfd, cprev, cnext; /* its connection's fd (-1: untracked) and that fd's list (req_conns.h) */
};

struct req_intake {
    const struct config *cfg;
    int opened;
    int ev_router, ev_reader; /* indices in the part's wait */
    zsock_t *router;
    struct req_conns *conns; /* the router's connections: requests of a closed one are dropped */
    int ev_conns;
    zactor_t *reader;
    struct rconn *rc;
    struct rpipe *pipe;
    char req_key[KEY_MAX], rep_key[KEY_MAX], hi_key[KEY_MAX];
    uint64_t boot, seq;
    struct pend *slot;
    int *free_list;
    size_t cap, nfree;
    int head, tail, unstored; /* -1: none */
    struct { int slot; uint64_t seq; } *auth_fifo; /* pending _auth in arrival order (cap entries) */
    size_t af_head, af_count;
    long long unstored_bytes;
    char trim_to[STREAMID_STRLEN]; /* last reply entry handled: the reply stream is trimmed up to it */
    long long trimmed_at; /* monotonic ms of the last XTRIM */
    struct warnrate warn;
    int refusing, redis_refusing;
    struct registry_ctx reg;
    char (*accepted)[ENVELOPE_ID_MAX]; /* ids whose _auth the MoM accepted, to register */
    int naccepted;
    struct warnrate reg_warn;
    long long departed_at; /* monotonic ms of the last drop for a closed connection, 0: none */
};

/* ROUTER side (req_intake.c). */
/* Free slot I (its identity, and its payload if not yet in Redis). */
void intake_pend_release(struct req_intake *q, int i);

/* Redis side (req_intake_redis.c). */
/* Slot I's request id, "<boot>-<seq>-<slot>", into BUF; its length. */
int intake_rid_format(const struct req_intake *q, int i, char *buf, size_t len);
/* Append the waiting requests, registry updates and the reply stream's
 * trim, and write what the socket takes. */
void intake_flush(struct req_intake *q);
/* The pipeline's replies (rpipe_reply_fn). */
void intake_on_reply(void *arg, uint64_t tag, redisReply *r);
/* Slot I's requester left: delete its entry from the request stream if it
 * is stored (saltrelay-up does not send what it has not read yet). */
void intake_unsend(struct req_intake *q, int i);

#endif
