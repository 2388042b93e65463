/* req_ack.h -- request forwarding's writes to Redis (req_ack.c): each held
 * job's XACK and the XDEL of the entries, and the reply records for the
 * DCs, through the Redis pipeline, so the thread that serves the MoM's
 * sockets never waits for Redis. With pub_wait_replicas, WAIT makes the
 * acknowledgements and reply records durable first. What an
 * acknowledgement's answer means for its job is handed to the part
 * (req_ack_fn); reply records are kept here until written (or confirmed). */
#ifndef SALTRELAY_REQ_ACK_H
#define SALTRELAY_REQ_ACK_H

#include <czmq.h>
#include <stdint.h>

#include "config.h"
#include "keys.h"
#include "rconn.h"
#include "req_held.h"
#include "reqrec.h"
#include "rpipe.h"
#include "warnrate.h"

#define REQ_GROUP "saltrelay-up" /* the request streams' consumer group */
#define REQ_DC_MAX 65

/* What the answer to job J's acknowledgement means: */
enum req_ack_verdict {
    REQ_ACK_RETRY, /* none (an error, or lost with the connection): acknowledged again, its socket freed */
    REQ_ACK_COPY,  /* taken before (a copy read again): discarded, its socket freed */
    REQ_ACK_SEND,  /* taken (and confirmed): sent on its socket */
    REQ_ACK_DROP,  /* taken, to be dropped (or past its deadline once confirmed): its socket freed */
};
typedef void (*req_ack_fn)(void *arg, struct held_req *j, enum req_ack_verdict v);

struct req_out {           /* a reply record waiting for Redis */
    int used;
    int written;           /* pub_wait_replicas: its XADD is in the pipeline or done, */
    int stored;            /*   done (kept, to be written again, until a WAIT confirms it) */
    uint32_t wait_serial;  /*   the WAIT appended after it */
    enum reprec_status st;
    long long dl_wall;
    zmq_msg_t payload;
    char dc[REQ_DC_MAX], rid[REQREC_RID_MAX + 1];
};

struct req_ack {
    const struct config *cfg;
    struct req_held *held;
    req_ack_fn fn;
    void *arg;
    struct rconn *rc;
    struct rpipe *pipe;
    struct req_out *out;
    size_t nout;
    uint32_t wait_next;    /* serial of the next WAIT appended (wraps) */
    int wait_inflight;     /* a WAIT is in the pipeline */
    int unconfirmed;       /* acknowledgements not confirmed by the replicas (logged once) */
    struct warnrate *warn;
};

/* Acknowledge HELD's jobs in CFG's request stream and keep up to NOUT reply
 * records; FN(ARG, ...) is told what each acknowledgement's answer means.
 * 0, or -1 (no memory); req_ack_fini either way, before the jobs and
 * sockets FN looks at. */
int req_ack_init(struct req_ack *a, const struct config *cfg, struct req_held *held, size_t nout,
                 req_ack_fn fn, void *arg, struct warnrate *warn);
void req_ack_fini(struct req_ack *a);
/* Queue reply record ST for the request RID of DC (PAYLOAD moved in if ok). */
void req_ack_reply(struct req_ack *a, const char *dc, const char *rid, long long dl, enum reprec_status st,
                   zmq_msg_t *payload);
/* 1 if Redis has something to do: an entry to acknowledge, a WAIT or a
 * reply record. */
int req_ack_work(const struct req_ack *a);
/* Append the reply records and the acknowledgements, and write what the
 * socket takes. */
void req_ack_write(struct req_ack *a);
/* Wait for the answers to what is in flight (bounded: the stop). */
void req_ack_drain(struct req_ack *a);
/* Reply records that could not be written before their deadline are dropped. */
void req_ack_drop_stale(struct req_ack *a, long long now_wall);
/* Reply records waiting. */
size_t req_ack_records(const struct req_ack *a);

#endif
