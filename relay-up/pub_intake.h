/* pub_intake.h -- saltrelay-up's publication intake: the MoM's PUB socket into Redis. */
#ifndef SALTRELAY_PUB_INTAKE_H
#define SALTRELAY_PUB_INTAKE_H

#include <czmq.h>

/* zactor body; ARGS is a struct part_ctx * (daemon.h). zactor_destroy stops
 * it: it then spends up to a few seconds storing what it holds. */
void pub_intake_actor(zsock_t *pipe, void *args);

#endif
