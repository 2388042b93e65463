/* req_table.h -- request intake's table of pending requests (req_table.c):
 * each request taken from the ROUTER, with the identity to answer it on,
 * until its reply, its deadline (plus a grace) or its connection's close.
 * Bounded by max_pending, and by max_pending_bytes for the payloads not yet
 * in Redis. Kept in arrival order (which is deadline order), the _auth also
 * in a FIFO of their own (a shorter deadline), and per connection
 * (req_conns.h). A request is named by its rid, "<boot>-<seq>-<slot>": a
 * random 64-bit id drawn at start, so no incarnation can take another's
 * reply, plus the slot, so a lookup is one index and one comparison. */
#ifndef SALTRELAY_REQ_TABLE_H
#define SALTRELAY_REQ_TABLE_H

#include <czmq.h>
#include <stdint.h>

#include "config.h"
#include "envelope.h"
#include "req_conns.h"
#include "streamid.h"

struct req_pend {
    uint64_t seq;   /* 0: free */
    zmq_msg_t ident;
    zmq_msg_t payload; /* until Redis confirmed it stored the request */
    long long give_up; /* monotonic */
    long long arrived; /* monotonic, for request_latency_seconds */
    long long dl_wall;
    int stored; /* 0 waiting, 1 sent (Redis's answer awaited), 2 stored */
    char sid[STREAMID_STRLEN]; /* its request stream entry once stored, "" if not known */
    int stream;     /* the stream it goes to (enum req_stream), chosen at its first send, 0 before */
    int auth;
    char id[ENVELOPE_ID_MAX];
    int prev, next; /* arrival order, which is deadline order */
    int cfd, cprev, cnext; /* its connection's fd (-1: untracked) and that fd's list (req_conns.h) */
};

struct req_table {
    const struct config *cfg;
    struct req_conns *conns; /* the ROUTER's connections (set once they are watched) */
    uint64_t boot, seq;
    struct req_pend *slot;
    int *free_list;
    size_t cap, nfree;
    int head, tail, unstored; /* -1: none */
    struct { int slot; uint64_t seq; } *auth_fifo; /* pending _auth in arrival order (cap entries) */
    size_t af_head, af_count;
    long long unstored_bytes;
};

/* 0, or -1 (logged if max_pending is too large); req_table_fini either way. */
int req_table_init(struct req_table *t, const struct config *cfg);
/* Every request still pending is dropped unanswered. */
void req_table_fini(struct req_table *t);

/* Take request FRAMES ([identity, "", payload], moved in) with envelope ENV
 * from connection FD (or REQ_CONN_UNTRACKED); 0, or -1 if the table is full. */
int req_table_add(struct req_table *t, zmq_msg_t *frames, const struct salt_envelope *env, int fd);
/* Free slot I (its identity, and its payload if not yet in Redis). */
void req_table_release(struct req_table *t, int i);
/* The slot of a pending request of this incarnation named by RID, or -1. */
int req_table_lookup(const struct req_table *t, const char *rid, size_t len);
/* Slot I's rid into BUF; its length. */
int req_table_rid(const struct req_table *t, int i, char *buf, size_t len);

/* The first pending request of connection FD, or -1. */
int req_table_conn_first(struct req_table *t, int fd);
/* Take slot I off its connection's list; it waits for its reply or deadline. */
void req_table_conn_unlink(struct req_table *t, int i);

/* Slot I, the oldest waiting for Redis, was sent to it (its payload is kept
 * until Redis answers); the next one waits. */
void req_table_sent(struct req_table *t, int i);
/* Slot I's store was lost with the connection: it waits again, in arrival
 * order. */
void req_table_resend(struct req_table *t, int i);
/* Redis stored slot I as entry SID (NULL or too long: not known). */
void req_table_stored(struct req_table *t, int i, const char *sid, size_t len);

/* Give up the requests whose deadline (plus grace) has passed at NOW. */
void req_table_expire(struct req_table *t, long long now);
/* Milliseconds until the next deadline, DEFAULT_MS if none is pending. */
long long req_table_wait_ms(const struct req_table *t, long long default_ms);

#endif
