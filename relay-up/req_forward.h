/* req_forward.h -- saltrelay-up's request forwarding: the cluster's request stream
 * in Redis -> a pool of REQ sockets on the MoM's request port -> each DC's
 * reply stream. */
#ifndef SALTRELAY_REQ_FORWARD_H
#define SALTRELAY_REQ_FORWARD_H

#include <czmq.h>

/* zactor body; ARGS is a struct part_ctx * (daemon.h). */
void req_forward_actor(zsock_t *pipe, void *args);

#endif
