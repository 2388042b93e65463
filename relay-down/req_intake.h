/* req_intake.h -- saltrelay-down's request intake: the ROUTER minions and syndics
 * send requests to -> the cluster's request stream; this DC's reply stream ->
 * back to the very socket that asked. */
#ifndef SALTRELAY_REQ_INTAKE_H
#define SALTRELAY_REQ_INTAKE_H

#include <czmq.h>

/* zactor body; ARGS is a struct part_ctx * (daemon.h). */
void req_intake_actor(zsock_t *pipe, void *args);

#endif
