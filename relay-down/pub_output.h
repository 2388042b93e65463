/* pub_output.h -- saltrelay-down's publication output: Redis into the DC's PUB socket. */
#ifndef SALTRELAY_PUB_OUTPUT_H
#define SALTRELAY_PUB_OUTPUT_H

#include <czmq.h>

/* zactor body; ARGS is a struct part_ctx * (daemon.h). The delivered cursor
 * is exported through the CURSOR_* metrics and state_dir/pub.state. */
void pub_output_actor(zsock_t *pipe, void *args);

#endif
