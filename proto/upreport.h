/* upreport.h -- the saltrelay-up heartbeat schema, written every second by
 * each saltrelay-up instance (relay-up/heartbeat.c) to its Redis primary, from
 * where it replicates to every DC like the publications do. saltrelay-down
 * reads the set (returner/replhealth.c: replication delay of the Redis it
 * reads); saltrelay-status lists the members whose heartbeat is at most
 * stale_after old (returner/upstate.c); the instance hashes are for operators.
 *
 * saltrelay:{C}:ups (keys.h key_up_set): sorted set, member = instance name,
 *   score = wall ms of its last heartbeat. Members silent for UP_FORGET_MS are
 *   removed by the next heartbeat of any instance.
 * saltrelay:{C}:up:<instance> (key_up_status): hash, expires UP_FORGET_MS after
 *   its last heartbeat. Fields (decimal integers unless noted): instance (text),
 *   host (text), pid, version (text), state ("running" or "stopped"), wall_ms,
 *   started_at_ms, interval_ms, and the counters of UP_REPORT_FIELDS.
 *
 * The instance name is "<host name>/<instance>" with the config key instance,
 * or "<host name>/<slot>" without it (runtime/instance.h: the same after a
 * restart, different for two instances running on one host). */
#ifndef SALTRELAY_UPREPORT_H
#define SALTRELAY_UPREPORT_H

#define UP_HEARTBEAT_MS 1000
#define UP_FORGET_MS 86400000LL /* a day */
#define UP_NAME_MAX 160

/* X(field, metric id): as in dcreport.h, the id without its M_ */
#define UP_REPORT_FIELDS(X)                                                                        \
    X("pub_in", PUB_IN_MSGS)                                                                       \
    X("pub_stored", PUB_STORED)                                                                    \
    X("pub_dropped", PUB_DROPPED)                                                                  \
    X("pub_buffered", PUB_BUFFERED)                                                                \
    X("master_connects", MASTER_CONNECTS)                                                          \
    X("master_disconnects", MASTER_DISCONNECTS)                                                    \
    X("requests_in", REQ_IN)                                                                       \
    X("requests_answered", REQ_ANSWERED)                                                           \
    X("requests_inflight", REQ_INFLIGHT)                                                           \
    X("timeouts", REQ_TIMEOUT)                                                                     \
    X("requests_expired", REQ_EXPIRED)                                                             \
    X("mom_unreachable", REQ_MOM_UNREACHABLE)                                                      \
    X("auths", AUTH_IN)                                                                            \
    X("redis_reconnects", REDIS_RECONNECTS)

#endif
