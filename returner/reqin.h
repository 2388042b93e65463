/* reqin.h -- saltrelay-down's request intake: the ROUTER minions and syndics
 * send requests to -> the cluster's request stream; this DC's reply stream ->
 * back to the very socket that asked. */
#ifndef SALTRELAY_REQIN_H
#define SALTRELAY_REQIN_H

#include <czmq.h>

/* zactor body; ARGS is a struct part_ctx * (daemon.h). */
void reqin_actor(zsock_t *pipe, void *args);

#endif
