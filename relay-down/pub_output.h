/* pub_output.h -- saltrelay-down's publication output: Redis into the DC's PUB socket. */
#ifndef SALTRELAY_PUB_OUTPUT_H
#define SALTRELAY_PUB_OUTPUT_H

#include "part.h"

/* The delivered cursor
 * is exported through the CURSOR_* metrics and state_dir/pub.state. */
extern const struct part_def pub_output_part;

#endif
