/* req_forward.h -- saltrelay-up's request forwarding: the DCs' request streams
 * in Redis -> a pool of REQ sockets on the MoM's request port -> each DC's
 * reply stream. */
#ifndef SALTRELAY_REQ_FORWARD_H
#define SALTRELAY_REQ_FORWARD_H

#include "part.h"

extern const struct part_def req_forward_part;

#endif
