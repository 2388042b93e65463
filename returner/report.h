/* report.h -- saltrelay-down's DC report part: every report_interval and at
 * shutdown it writes this DC's acknowledgement (delivered cursor, subscribers,
 * requests in flight, counters; schema in proto/dcreport.h) to redis_primary. */
#ifndef SALTRELAY_REPORT_H
#define SALTRELAY_REPORT_H

#include "part.h"

extern const struct part_def report_part;

#endif
