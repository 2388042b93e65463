/* metrics.h -- process-wide counters and gauges. Any thread may bump them
 * (relaxed atomics); the status reporter and the Prometheus endpoint read them.
 * Each has a role mask so a daemon only exports what applies to it. */
#ifndef SALTRELAY_METRICS_H
#define SALTRELAY_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

/* X(id, name, kind, roles, help); roles: 1 = up, 2 = down */
#define METRICS_LIST(X)                                                                            \
    X(PUB_IN_MSGS, "pub_in_messages_total", "counter", 1, "Publications received from the MoM")    \
    X(PUB_IN_BYTES, "pub_in_bytes_total", "counter", 1, "Publication bytes received from the MoM") \
    X(PUB_STORED, "pub_stored_total", "counter", 1, "Publications appended to Redis")              \
    X(PUB_DUP_SKIPPED, "pub_retry_duplicates_total", "counter", 1,                                  \
      "Publications already in Redis (stored by another instance, or before a lost connection)")  \
    X(PUB_DROPPED, "pub_dropped_total", "counter", 1,                                             \
      "Publications dropped because the Redis buffer was full")                                    \
    X(PUB_BAD, "pub_bad_frames_total", "counter", 1, "Publications refused (too many or too large frames)") \
    X(PUB_BUFFERED, "pub_buffered", "gauge", 1, "Publications waiting for Redis")                   \
    X(PUB_UNRECEIVED, "pub_unreceived_total", "counter", 1,                                       \
      "Channel mode: publications no saltrelay-down was subscribed to (lost)")                   \
    X(PUB_UNCONFIRMED, "pub_unconfirmed_total", "counter", 1,                                     \
      "Publications stored but not confirmed by pub_wait_replicas replicas within pub_wait_timeout") \
    X(PUB_ORDER_WAITED, "pub_order_waits_total", "counter", 1,                                   \
      "Stores that waited for another instance to store first the publications before them (this " \
      "instance's copies lost in a failover)")                                                   \
    X(PUB_ORDER_GIVEN_UP, "pub_order_given_up_total", "counter", 1,                               \
      "Such waits that ran out (2 s): no instance stored the publication before; stored on")      \
    X(PUB_RESENT, "pub_resent_total", "counter", 1,                                               \
      "Channel mode: publications published again after a lost connection (a DC may get them twice)") \
    X(PUB_MERGED, "pub_merged_copies_total", "counter", 1,                                        \
      "Copies of a payload under another topic folded into the previous record (zmq_filtering)")  \
    X(MASTER_CONNECTS, "master_connects_total", "counter", 1, "Connections made to the MoM publish port") \
    X(MASTER_DISCONNECTS, "master_disconnects_total", "counter", 1,                                \
      "Connections lost to the MoM publish port (publications in that window are lost at the MoM)") \
    X(HEARTBEAT_AT_MS, "heartbeat_written_at_milliseconds", "gauge", 1,                           \
      "Wall time of the last heartbeat Redis accepted (0: none yet)")                             \
    X(PUB_OUT_MSGS, "pub_out_messages_total", "counter", 2, "Publications sent to local subscribers") \
    X(PUB_OUT_BYTES, "pub_out_bytes_total", "counter", 2, "Publication bytes sent to local subscribers") \
    X(PUB_EXPIRED, "pub_expired_total", "counter", 2, "Publications older than replay_max_age, not sent") \
    X(PUB_GAP, "pub_gap_entries_total", "counter", 2, "Publications trimmed from Redis before delivery") \
    X(PUB_DECODE_ERR, "pub_decode_errors_total", "counter", 2, "Malformed stream entries skipped")  \
    X(PUB_TOPICS_SKIPPED, "pub_topics_skipped_total", "counter", 2,                               \
      "Topics of merged records not sent because no local subscriber asked for them")             \
    X(PUB_DC_DUP, "pub_duplicates_skipped_total", "counter", 2,                                    \
      "Publications delivered already, stored again under a new ID after a Redis failover")       \
    X(PUB_SLOW_DROPPED, "pub_slow_dropped_total", "counter", 2,                                   \
      "Publications a subscriber whose queue stayed full for pub_slow_wait may have missed (upper bound)")          \
    X(PUB_UNTRACKED, "pub_untracked_total", "counter", 2,                                         \
      "Publications not tracked per subscription class (caps, subscriptions changed during the send)") \
    X(SUBSCRIBERS, "subscribers", "gauge", 2, "Connected subscribers on the PUB socket")           \
    X(CURSOR_LAG_MS, "cursor_lag_milliseconds", "gauge", 2, "Age of the last delivered publication when it was sent") \
    X(CURSOR_MS, "cursor_id_milliseconds", "gauge", 2, "Time part of the delivered cursor (stream ID)") \
    X(CURSOR_SEQ, "cursor_id_sequence", "gauge", 2, "Sequence part of the delivered cursor (stream ID)") \
    X(CURSOR_SERIAL, "cursor_serial", "gauge", 2, "Serial number of the last delivered publication") \
    X(DELIVERED_AT_MS, "delivered_at_milliseconds", "gauge", 2, "Wall time the cursor last moved") \
    X(SOURCE_UP, "source_redis_up", "gauge", 2,                                                    \
      "1 if the Redis it reads publications from answered the last health check")                \
    X(SOURCE_REPLICA, "source_redis_replica", "gauge", 2, "1 if that Redis is a replica, 0 if a primary") \
    X(REPL_LINK_UP, "replica_link_up", "gauge", 2,                                                 \
      "1 while that replica's link to its primary is up (always 1 on a primary)")                 \
    X(REPL_LINK_DOWN_MS, "replica_link_down_milliseconds", "gauge", 2,                            \
      "How long that replica's link to its primary has been down (0 while up)")                   \
    X(REPL_LAST_IO_MS, "replica_last_io_milliseconds", "gauge", 2,                                \
      "Time since that replica last heard from its primary (0 on a primary)")                     \
    X(REPL_DELAY_MS, "replication_delay_milliseconds", "gauge", 2,                                \
      "Replication delay of that Redis, measured with saltrelay-up's heartbeat")                  \
    X(HEARTBEAT_SEEN_MS, "heartbeat_seen_milliseconds", "gauge", 2,                               \
      "Wall time of the newest saltrelay-up heartbeat in that Redis (0: none)")                   \
    X(BACKLOG_ENTRIES, "delivery_lag_entries", "gauge", 2,                                        \
      "Publications in the Redis it reads that are not delivered yet")                            \
    X(BACKLOG_MS, "delivery_lag_milliseconds", "gauge", 2,                                        \
      "Age of the oldest publication in the Redis it reads that is not delivered yet (0: none)")  \
    X(REPORT_AT_MS, "report_written_at_milliseconds", "gauge", 2,                                 \
      "Wall time of the last DC report Redis accepted (0: none yet)")                             \
    X(REDIS_RECONNECTS, "redis_reconnects_total", "counter", 3, "Redis connections re-established") \
    X(REDIS_AUTH_REFUSED, "redis_auth_refused_total", "counter", 3,                               \
      "Redis logins refused (wrong user or password, or a user that may not PING or SELECT)")      \
    X(REDIS_SWITCHES, "redis_primary_switches_total", "counter", 3,                               \
      "Failovers seen: the newest primary known moved (+switch-master, found on subscribing, or newer config)") \
    X(SENTINEL_BAD, "sentinel_bad_messages_total", "counter", 3, "Malformed +switch-master messages ignored") \
    X(CONSUMERS_REMOVED, "group_consumers_removed_total", "counter", 1,                            \
      "Consumers of dead instances removed from a consumer group (nothing pending, long idle)")   \
    X(REQ_IN, "requests_in_total", "counter", 3, "Requests received")                               \
    X(REQ_ANSWERED, "requests_answered_total", "counter", 3, "Requests answered")                   \
    X(REQ_TIMEOUT, "requests_timeout_total", "counter", 3, "Requests given up at their deadline")   \
    X(REQ_EXPIRED, "requests_expired_total", "counter", 3, "Requests dropped unsent, already past deadline") \
    X(REQ_REFUSED, "requests_refused_total", "counter", 3, "Requests refused (queue full)")        \
    X(REQ_OVERSIZE, "requests_oversize_total", "counter", 3, "Requests or replies over max_frame_size") \
    X(REQ_BAD, "requests_bad_total", "counter", 3, "Malformed requests or reply records")            \
    X(REQ_REDIS_ERR, "requests_redis_errors_total", "counter", 3, "Requests failed because Redis was unreachable") \
    X(REQ_UNCONFIRMED, "requests_unconfirmed_total", "counter", 1,                               \
      "Times a WAIT left a request's acknowledgement unconfirmed (the request waits; sent once confirmed)")   \
    X(REQ_LATE, "replies_late_total", "counter", 3, "Replies that arrived after their request was given up") \
    X(REQ_MOM_UNREACHABLE, "requests_mom_unreachable_total", "counter", 3,                         \
      "Requests not sent before their deadline because the MoM request port was not connected")  \
    X(REQ_GONE, "replies_undeliverable_total", "counter", 2,                                      \
      "Replies whose requesting socket had disconnected")                                          \
    X(REQ_DEPARTED, "requests_requester_gone_total", "counter", 2,                                \
      "Pending requests dropped because the connection that sent them closed")                    \
    X(REQ_INFLIGHT, "requests_inflight", "gauge", 3, "Requests waiting for a reply")                \
    X(AUTH_IN, "auth_requests_total", "counter", 3, "Clear _auth requests")                         \
    X(AUTH_SHED, "auth_shed_total", "counter", 1,                                                 \
      "_auth requests not sent to the MoM: stale, superseded by a newer one of the minion, or overload") \
    X(TREE_SYNC, "tree_sync_enabled", "gauge", 3, "1 if tree sync is on (sync_source / sync_target set)") \
    X(TREE_VERSION, "tree_version", "gauge", 3, "Tree sync: newest version published (up) or applied to current (down)") \
    X(TREE_FILES, "tree_files", "gauge", 3, "Files in that tree version")                          \
    X(TREE_BYTES, "tree_bytes", "gauge", 3, "Bytes of content in that tree version")               \
    X(TREE_REFUSED, "tree_refused_total", "counter", 3,                                            \
      "Tree versions refused (up: larger than sync_max_bytes; down: bad record, manifest or content)") \
    X(TREE_PUBLISHED, "tree_versions_published_total", "counter", 1, "Tree versions published")    \
    X(TREE_CHUNKS_STORED, "tree_chunks_stored_total", "counter", 1, "Content chunks written to Redis") \
    X(TREE_BYTES_STORED, "tree_chunk_bytes_stored_total", "counter", 1, "Bytes of content chunks written to Redis") \
    X(TREE_CHUNKS_COLLECTED, "tree_chunks_collected_total", "counter", 1,                          \
      "Content chunks deleted from Redis once no kept version needed them")                        \
    X(TREE_SKIPPED, "tree_skipped_entries_total", "counter", 1,                                    \
      "Source entries not carried: symlinks, special files, unreadable or bad names")              \
    X(TREE_APPLIED, "tree_versions_applied_total", "counter", 2, "Tree versions switched to current") \
    X(TREE_OLDER_HEADS, "tree_older_heads_total", "counter", 2,                                    \
      "Tree heads not applied: older than current in number and time (a failover lost a newer head)") \
    X(TREE_APPLIED_AT_MS, "tree_applied_at_milliseconds", "gauge", 2, "Wall time current last switched") \
    X(TREE_BAD_CHUNKS, "tree_bad_chunks_total", "counter", 3, "Content chunks whose SHA-1 or length did not match") \
    X(TREE_FETCHED_BYTES, "tree_fetched_bytes_total", "counter", 2, "Content bytes read from Redis to build versions") \
    X(TREE_LINKED_FILES, "tree_linked_files_total", "counter", 2, "Files taken from an earlier version (hard link)")

enum metric_id {
#define METRIC_ENUM(id, name, kind, roles, help) M_##id,
    METRICS_LIST(METRIC_ENUM)
#undef METRIC_ENUM
    M__COUNT
};

extern _Atomic int64_t metrics[M__COUNT];

static inline void metric_add(enum metric_id m, int64_t n)
{
    atomic_fetch_add_explicit(&metrics[m], n, memory_order_relaxed);
}
static inline void metric_set(enum metric_id m, int64_t v)
{
    atomic_store_explicit(&metrics[m], v, memory_order_relaxed);
}
static inline int64_t metric_get(enum metric_id m)
{
    return atomic_load_explicit(&metrics[m], memory_order_relaxed);
}

/* saltrelay-down's delivery cursor as one unit: the DC report must never
 * combine the ms of one cursor with the seq or serial of another (a cursor
 * that was never delivered). The gauges M_CURSOR_* are set too. */
struct metric_cursor {
    int64_t ms, seq, serial, delivered_at_ms;
};
/* Set all four at once; DELIVERED_AT_MS 0 leaves the previous one. */
void metric_cursor_set(int64_t ms, int64_t seq, int64_t serial, int64_t delivered_at_ms);
void metric_cursor_get(struct metric_cursor *c);

/* Histograms: X(id, name, roles, help). Every histogram has the same bucket
 * bounds (HIST_BOUNDS_US, microseconds; exported in seconds); each bucket
 * counts only its own range, the exporter makes them cumulative. */
#define HISTOGRAMS_LIST(X)                                                                         \
    X(REQ_LATENCY, "request_latency_seconds", 3,                                                   \
      "Time from a request's arrival to its reply (down: at the ROUTER; up: at the MoM)")
#define HIST_BOUNDS_US                                                                             \
    {1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,    \
     10000000, 30000000, 60000000}
#define HIST_NBOUNDS 15

enum hist_id {
#define HIST_ENUM(id, name, roles, help) H_##id,
    HISTOGRAMS_LIST(HIST_ENUM)
#undef HIST_ENUM
    H__COUNT
};

struct histogram {
    _Atomic int64_t bucket[HIST_NBOUNDS + 1]; /* the last one: above every bound (+Inf) */
    _Atomic int64_t sum_us;
};

extern struct histogram histograms[H__COUNT];
extern const int64_t hist_bounds_us[HIST_NBOUNDS];

/* Record one observation of US microseconds. */
static inline void hist_observe_us(enum hist_id h, int64_t us)
{
    int i = 0;
    while (i < HIST_NBOUNDS && us > hist_bounds_us[i])
        i++;
    atomic_fetch_add_explicit(&histograms[h].bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&histograms[h].sum_us, us > 0 ? us : 0, memory_order_relaxed);
}

const char *hist_name(enum hist_id h);
const char *hist_help(enum hist_id h);
int hist_roles(enum hist_id h);

const char *metric_name(enum metric_id m);
const char *metric_kind(enum metric_id m);
const char *metric_help(enum metric_id m);
int metric_roles(enum metric_id m);

#endif
