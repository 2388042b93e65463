/* req_intake.h -- saltrelay-down's request intake: the ROUTER minions and syndics
 * send requests to -> the cluster's request stream; this DC's reply stream ->
 * back to the very socket that asked. */
#ifndef SALTRELAY_REQ_INTAKE_H
#define SALTRELAY_REQ_INTAKE_H

#include "part.h"

extern const struct part_def req_intake_part;

#endif
