/* dcstate.h -- saltrelay-status's view of the DCs: each DC's last report
 * (proto/dcreport.h), read back from Redis and validated, plus how far its cursor is
 * behind the newest publication. Shared by the overview and per-job
 * accounting. */
#ifndef SALTRELAY_DCSTATE_H
#define SALTRELAY_DCSTATE_H

#include <stdint.h>

#include "config.h"
#include "rconn.h"
#include "dcreport.h"
#include "keys.h"
#include "streamid.h"

#define DC_NAME_MAX (KEY_NAME_MAX + 1)
#define DC_LIST_MAX 256 /* DCs saltrelay-status reads at most */

#define REPORT_METRIC_ENUM(name, id) DCF_##id,
enum dc_field { REPORT_FIELDS(REPORT_METRIC_ENUM) DCF__COUNT };
#undef REPORT_METRIC_ENUM

enum health { HEALTH_OK, HEALTH_WARN, HEALTH_CRIT };

struct dc_state {
    char name[DC_NAME_MAX];
    int reported;              /* the hash exists and has a valid cursor and report time */
    int never;                 /* no hash at all: named in the DC set, never reported */
    struct streamid cursor;
    long long cursor_serial;
    long long delivered_at_ms; /* 0: nothing delivered since its start */
    long long reported_at_ms;
    int stopped;               /* its last report said "stopped" */
    long long counter[DCF__COUNT]; /* -1 when absent or invalid */
    long long minions;         /* SCARD of its minion set, -1 unknown */
    int stale;
    long long report_age_ms;
    int lag_known;
    long long lag_entries, lag_ms;
    int tree_behind;           /* its tree version is not the newest published */
    long long tree_lag_ms;     /* then: how long ago the newest was published */
    enum health health;
    char problem[300];         /* why it is not ok, "" if ok */
};

/* The newest publication of the cluster's stream, if any. */
struct stream_head {
    int known; /* 0 in channel mode or when unreadable */
    int empty;
    struct streamid id;
    uint64_t serial;
    /* tree sync (docs/filesync.md): the newest version, 0 if none or unreadable */
    uint64_t tree_version;
    long long tree_created_ms;
};

/* Report fields by name, in REPORT_FIELDS order. */
const char *dc_field_name(enum dc_field f);

/* The DC names of the cluster, sorted; invalid names are skipped with a
 * warning. Returns the count (at most MAX), or -1 if Redis failed. */
int dc_list(struct rconn *rc, const struct config *cfg, char names[][DC_NAME_MAX], int max);
/* Read one DC's report and minion count. -1 if Redis failed. */
int dc_load(struct rconn *rc, const struct config *cfg, const char *name, long long now_ms,
            struct dc_state *dc);
int stream_head_load(struct rconn *rc, const struct config *cfg, struct stream_head *head);
/* Lag of DC behind HEAD and its health against the config's thresholds. */
int dc_assess(struct rconn *rc, const struct config *cfg, const struct stream_head *head,
              struct dc_state *dc, long long now_ms);
const char *health_name(enum health h);

#endif
