/* pub_intake.h -- saltrelay-up's publication intake: the MoM's PUB socket into Redis. */
#ifndef SALTRELAY_PUB_INTAKE_H
#define SALTRELAY_PUB_INTAKE_H

#include "part.h"

/* Stopped, it spends up to a few seconds storing what it holds. */
extern const struct part_def pub_intake_part;

#endif
