/* config.h -- the daemons' YAML configuration: flat keys, each with a type,
 * a default and the programs it applies to (one table in config.c).
 *
 * Errors name file, line and key; the caller prints them and exits 2. */
#ifndef SALTRELAY_CONFIG_H
#define SALTRELAY_CONFIG_H

#include <stddef.h>

enum config_role { CONFIG_UP = 1, CONFIG_DOWN = 2 };

#define REDIS_SENTINELS_MAX 8
#define CONFIG_KEYS_MAX 96

struct redis_addr {
    char host[256];
    int port;
};

/* redis://: HOST and PORT. sentinel://: MASTER names the primary to ask the
 * SENTINEL[0..NSENTINELS) for; HOST is "" (rconn resolves it). The user and
 * password log in to the data node (and to a Sentinel that asks for them). */
struct redis_url {
    char host[256];
    int port;
    char user[128]; /* "" = the default user */
    char password[256];
    int db;
    char master[128]; /* "" for redis:// */
    int nsentinels;
    struct redis_addr sentinel[REDIS_SENTINELS_MAX];
};

struct config {
    int role;
    char *path;
    /* both */
    char *cluster;
    char *redis;
    char *mode;          /* "stream" (default) or "channel" */
    char *log_level;
    char *log_file;
    char *metrics_bind;  /* "" = off */
    long long request_timeout_ms;
    long long max_frame_size;
    long long stale_after_ms;
    long long sync_max_bytes; /* tree sync: largest tree published / accepted */
    long long stop_timeout_ms; /* SIGTERM to exit at most (stopguard.h) */
    /* saltrelay-up */
    char *master_publish;
    char *master_ret;
    long long stream_maxlen;
    long long pub_buffer;
    long long pub_buffer_bytes;
    long long pub_merge_window_ms;
    long long pub_dedup_window_ms;
    long long pub_wait_replicas;
    long long pub_wait_timeout_ms;
    long long req_pool;
    double auth_rate;
    char *instance;      /* "" = the pid names this instance (upreport.h) */
    char *sync_source;   /* "" = tree sync off */
    long long sync_interval_ms;
    /* saltrelay-status (reads saltrelay-up's file) */
    char *job_cache_dir;
    long long status_warn_lag_ms;
    long long status_crit_lag_ms;
    long long status_warn_entries;
    long long status_crit_entries;
    long long status_warn_repl_ms; /* replication delay / replica link down */
    long long status_crit_repl_ms;
    long long status_warn_tree_lag_ms;
    long long status_crit_tree_lag_ms;
    /* saltrelay-down */
    char *datacenter;
    char *redis_primary; /* defaults to redis */
    char *publish_bind;
    char *ret_bind;
    char *state_dir;
    long long replay_max_age_ms;
    long long subscriber_grace_ms;
    long long read_batch;
    long long zmq_backlog;           /* DC-facing sockets (relay-down/dcsock.c) */
    long long pub_hwm;
    long long pub_slow_wait_ms, pub_drain_timeout_ms;
    long long zmq_heartbeat_ivl;     /* milliseconds, as Salt's key */
    long long zmq_heartbeat_timeout; /* milliseconds, as Salt's key */
    long long tcp_keepalive_idle_ms;
    long long max_pending;
    long long auth_timeout_ms;       /* an _auth's deadline (Salt's minion auth_timeout) */
    long long max_pending_bytes;
    long long registry_ttl_ms; /* a minion registry entry lives this long after its last update */
    long long report_interval_ms;
    char *sync_target;   /* "" = tree sync off */
    long long sync_keep;
    /* derived */
    struct redis_url redis_url;
    struct redis_url redis_primary_url;
    unsigned line[CONFIG_KEYS_MAX]; /* of each key given, by key table order; 0: not given */
};

/* Load PATH for ROLE: every key's type and range, and what holds across
 * keys (binds given twice, placeholders of the examples). On error returns
 * -1 and writes "FILE:LINE: key 'K': why" to err. */
int config_load(struct config *cfg, int role, const char *path, char *err, size_t errlen);
/* saltrelay-down: whether this process could keep its state in state_dir
 * (a directory it can write in, or one it can create, and no file there it
 * cannot rewrite); the same message form. Beside config_load, as it looks
 * at the file system (--check-config and the start both call it). */
int config_check_state_dir(const struct config *cfg, char *err, size_t errlen);
/* Create state_dir and its missing parents (0750); -1 with errno. */
int config_make_state_dir(const struct config *cfg);
void config_free(struct config *cfg);
/* Print the effective configuration (passwords masked) as YAML. */
void config_print(const struct config *cfg, void *file);

/* The key table, for the conf/-vs-loader consistency test and --help. */
size_t config_key_count(void);
const char *config_key_name(size_t i);
int config_key_roles(size_t i);

/* "redis://[[user]:password@]host[:port][/db]" or
 * "sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db]"
 * (Sentinel port 26379 by default, at most REDIS_SENTINELS_MAX of them). */
int redis_url_parse(const char *s, struct redis_url *u, char *err, size_t errlen);

#endif
