/* dcreport.h -- the DC report schema, written by saltrelay-down (returner/report.c)
 * and read by saltrelay-status (returner/dcstate.c): every report_interval and at
 * shutdown, this DC's delivered cursor, subscribers, requests in flight and
 * counters go to a hash on redis_primary (keys.h key_dc_status), so that
 * saltrelay-status can tell which DCs delivered which publication, and when.
 *
 * Fields of saltrelay:{C}:dc:<dc> (all decimal integers unless noted):
 *   cursor (stream ID "ms-seq"), cursor_ms, cursor_serial, delivered_at_ms,
 *   reported_at_ms, started_at_ms, report_interval_ms, state ("running" or
 *   "stopped"), version (text), subscribers, requests_inflight, and the
 *   counters delivered, expired, gaps, decode_errors, requests_in,
 *   requests_answered, timeouts, requests_expired, refused, oversize,
 *   redis_errors, redis_reconnects; and the health of the Redis it reads
 *   publications from (returner/replhealth.c): source_up (it answered),
 *   source_replica (it is a replica), link_up, link_down_ms (how long the
 *   replica's link has been down), last_io_ms, repl_delay_ms (measured with
 *   saltrelay-up's heartbeat, proto/upreport.h) and heartbeat_ms (the newest
 *   heartbeat it holds, 0 = none). */
#ifndef SALTRELAY_DCREPORT_H
#define SALTRELAY_DCREPORT_H

/* The counters and gauges a report carries: X(field, metric id). The status
 * tool reads the same field names. A metric id is a name of metrics.h
 * without its M_ (the writer's X pastes it on), so this file needs none. */
#define REPORT_FIELDS(X)                                                                           \
    X("subscribers", SUBSCRIBERS)                                                                  \
    X("requests_inflight", REQ_INFLIGHT)                                                           \
    X("delivered", PUB_OUT_MSGS)                                                                   \
    X("expired", PUB_EXPIRED)                                                                      \
    X("gaps", PUB_GAP)                                                                             \
    X("decode_errors", PUB_DECODE_ERR)                                                             \
    X("requests_in", REQ_IN)                                                                       \
    X("requests_answered", REQ_ANSWERED)                                                           \
    X("timeouts", REQ_TIMEOUT)                                                                     \
    X("requests_expired", REQ_EXPIRED)                                                             \
    X("refused", REQ_REFUSED)                                                                      \
    X("oversize", REQ_OVERSIZE)                                                                    \
    X("redis_errors", REQ_REDIS_ERR)                                                               \
    X("redis_reconnects", REDIS_RECONNECTS)                                                        \
    X("source_up", SOURCE_UP)                                                                      \
    X("source_replica", SOURCE_REPLICA)                                                            \
    X("link_up", REPL_LINK_UP)                                                                     \
    X("link_down_ms", REPL_LINK_DOWN_MS)                                                           \
    X("last_io_ms", REPL_LAST_IO_MS)                                                               \
    X("repl_delay_ms", REPL_DELAY_MS)                                                              \
    X("heartbeat_ms", HEARTBEAT_SEEN_MS)                                                            \
    X("tree_sync", TREE_SYNC)                                                                      \
    X("tree_version", TREE_VERSION)                                                                \
    X("tree_applied_at_ms", TREE_APPLIED_AT_MS)                                                    \
    X("tree_refused", TREE_REFUSED)

#endif
