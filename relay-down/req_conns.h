/* req_conns.h -- which connection of saltrelay-down's request ROUTER a
 * request came from, and when that connection closes (libzmq 4.3 without the
 * draft API has no ROUTER_NOTIFY: a socket monitor's ACCEPTED / DISCONNECTED
 * events carry the connection's fd, and ZMQ_SRCFD names a message's fd).
 * Each tracked fd keeps the list of pending requests of its current
 * connection; the list's links live in the intake's table (req_intake.c). */
#ifndef SALTRELAY_REQ_CONNS_H
#define SALTRELAY_REQ_CONNS_H

#include <czmq.h>

#define REQ_CONN_UNTRACKED (-1) /* fd unknown or out of range: the request waits for its deadline */
#define REQ_CONN_GONE (-2)      /* the connection that sent it already closed */

struct req_conns;

/* Called for fd FD whose connection closed (GONE: drop its requests) or was
 * replaced without a close event (!GONE: its requests stop being tracked). */
typedef void (*req_conns_fn)(void *arg, int fd, int gone);

/* Start monitoring ROUTER (before it binds, so no connection is missed). */
struct req_conns *req_conns_new(zsock_t *router, req_conns_fn fn, void *arg);
/* Stop monitoring (before ROUTER is destroyed). */
void req_conns_destroy(struct req_conns **cp, zsock_t *router);
/* The monitor socket, to wait on. */
zsock_t *req_conns_sock(struct req_conns *c);
/* Read every waiting event, calling fn for each connection that ended. */
void req_conns_drain(struct req_conns *c);
/* The fd of the live connection MSG (a frame just received) came from,
 * REQ_CONN_UNTRACKED or REQ_CONN_GONE. */
int req_conns_of(struct req_conns *c, zmq_msg_t *msg);
/* The head of FD's list of pending requests (-1: empty); FD from req_conns_of. */
int *req_conns_head(struct req_conns *c, int fd);

#endif
