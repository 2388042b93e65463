/* dcsock.h -- the options of saltrelay-down's DC-facing sockets (the PUB at
 * publish_bind, the ROUTER at ret_bind), set like a Salt master sets its own:
 * listen backlog, ZMTP heartbeats, TCP keepalive; see conf/down.yaml. */
#ifndef SALTRELAY_DCSOCK_H
#define SALTRELAY_DCSOCK_H

#include <czmq.h>

#include "config.h"

/* Before bind. */
void dcsock_setup(zsock_t *sock, const struct config *cfg);

#endif
