/* req_pool.h -- request forwarding's sockets to the MoM (req_pool.c): a pool
 * of req_pool REQ sockets on master_ret, one request in flight on each, the
 * payload sent byte for byte (to the MoM it is a minion's own REQ
 * exchange). Every request sent ends in one reply record (req_ack.h): the
 * MoM's reply, or a timeout (no reply by the deadline: the socket is
 * replaced, never reused), oversize, or mom_unreachable (not sent, or the
 * connection lost while in flight). */
#ifndef SALTRELAY_REQ_POOL_H
#define SALTRELAY_REQ_POOL_H

#include <czmq.h>

#include "config.h"
#include "part.h"
#include "req_ack.h"
#include "req_held.h"
#include "warnrate.h"

struct req_conn {          /* one REQ socket to the MoM */
    zsock_t *sock;
    zsock_t *mon;          /* its DISCONNECTED events (zmq_socket_monitor) */
    int busy;
    int reserved;          /* chosen by a job whose XACK has not answered yet */
    int auth;              /* carries (or is reserved for) an _auth */
    long long sent_at;     /* monotonic, for request_latency_seconds */
    long long dl_wall;
    char dc[REQ_DC_MAX], rid[REQREC_RID_MAX + 1];
};

struct req_pool {
    const struct config *cfg;
    struct req_conn *conn;
    size_t nconn;
    int mom_down;
    long long unwritable_since; /* monotonic; 0 while a socket can send */
    struct warnrate *warn;
};

/* req_pool sockets connected to CFG's master_ret; 0, or -1 (logged if a
 * connect failed); req_pool_fini either way. */
int req_pool_init(struct req_pool *p, const struct config *cfg, struct warnrate *warn);
void req_pool_fini(struct req_pool *p);
/* Send job J on the socket it reserved; if the MoM is unreachable, its
 * reply record goes to ACK. */
void req_pool_send(struct req_pool *p, struct held_req *j, struct req_ack *ack);
/* The MoM's replies and the connections lost with a request in flight,
 * their reply records to ACK. */
void req_pool_take_replies(struct req_pool *p, struct req_ack *ack);
/* Sockets whose reply did not come by their deadline at NOW_WALL:
 * timeout records to ACK, the sockets replaced. */
void req_pool_expire(struct req_pool *p, struct req_ack *ack, long long now_wall);
/* Whether no idle socket can send (DOWN): logged once it lasts. */
void req_pool_note_down(struct req_pool *p, int down);
/* Sockets with a request in flight. */
int req_pool_busy(const struct req_pool *p);
/* Wait for the sockets with a request in flight. */
void req_pool_wait(struct req_pool *p, struct part_poll *w);

#endif
