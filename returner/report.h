/* report.h -- saltrelay-down's DC report part: every report_interval and at
 * shutdown it writes this DC's acknowledgement (delivered cursor, subscribers,
 * requests in flight, counters; schema in proto/dcreport.h) to redis_primary. */
#ifndef SALTRELAY_REPORT_H
#define SALTRELAY_REPORT_H

#include <czmq.h>

/* zactor body; ARGS is a struct part_ctx * (daemon.h). */
void report_actor(zsock_t *pipe, void *args);

#endif
