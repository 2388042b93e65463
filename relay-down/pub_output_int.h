/* pub_output_int.h -- what the two halves of saltrelay-down's publication
 * output share: the delivery (pub_output.c: the part, the reads, the PUB
 * socket) and the delivered cursor (pub_cursor.c: state_dir/pub.state and
 * the cursor metrics). Not for other parts. */
#ifndef SALTRELAY_PUB_OUTPUT_INT_H
#define SALTRELAY_PUB_OUTPUT_INT_H

#include <czmq.h>
#include <stdint.h>

#include "config.h"
#include "keys.h"
#include "pub_subs.h"
#include "pub_flow.h"
#include "pubseen.h"
#include "rconn.h"
#include "statefile.h"
#include "streamid.h"

#define STATE_FILE "pub.state"
#define READ_BLOCK_MS 500
#define SETTLE_BLOCK_MS 50 /* XREAD block while sent records are not yet known sent */
#define READ_RETRY_MS 1000 /* after an error reply to XREAD */
#define SYNC_EVERY_MS 1000 /* fsync of the state file, for power loss */
#define SAVE_EVERY_MS 1      /* within a batch: a kill repeats what ZeroMQ held and at most 1 ms more */
#define TURN_BUDGET_MS 1000 /* a batch's sends (waiting for slow subscribers) stop after this; the rest is read again */

struct pub_output {
    const struct config *cfg;
    int channel_mode;
    zsock_t *pub;
    zactor_t *monitor;
    struct pub_subs subs; /* what the local subscribers asked for */
    struct rconn *rc;
    char key[KEY_MAX];
    struct pubseen *seen; /* stream mode: publications delivered lately */
    int have_cursor;
    struct streamid cursor;
    uint64_t serial; /* of the record at the cursor, 0 if unknown */
    struct pub_flow flow; /* sends, and what has left ZeroMQ */
    /* The cursor as saved: the newest record known to have left ZeroMQ
     * (pub_flow.h), so a kill repeats what ZeroMQ may hold, never skips it. */
    int have_saved;
    struct streamid saved;
    uint64_t saved_serial;
    int subscribers, expected;
    unsigned long expected_subs, saved_subs; /* subscriptions held before the restart; as last saved */
    int holding; /* before the hold ends, save at least EXPECTED subscribers and EXPECTED_SUBS */
    long long hold_until; /* monotonic */
    int loaded;  /* the state file was read: only then may it be overwritten */
    struct statefile sf;  /* state_dir/pub.state, open for the daemon's life */
    int unsynced;         /* saved since the last fdatasync */
    long long synced_at;
    int state_error;      /* saving the cursor fails (log once) */
    uint64_t expired_run; /* expired records in the current run (one log line per run) */
    uint64_t dup_run;     /* records delivered already, in the current run (the same) */
    int subscribed;       /* channel mode: SUBSCRIBE sent on this connection */
    int read_refused;     /* XREAD answered with an error (LOADING, MASTERDOWN): log once */
    long long read_retry_at; /* monotonic: no XREAD before (after an error reply) */
    int ev_monitor, ev_pub; /* indices in the part's wait */
    long long drain_until;  /* monotonic: the clean stop's wait for the subscribers ends */
};

/* The delivered cursor (pub_cursor.c). */
/* Open the state file; in stream mode take the cursor and subscriber count.
 * 0, or -1 (logged: the file is refused and never overwritten). */
int cursor_load(struct pub_output *p);
/* Overwrite the state file's older slot; with SYNC also make it durable. */
void cursor_save(struct pub_output *p, int sync);
/* The cursor is known to have left (loaded, or a new start): save it as is. */
void cursor_sent(struct pub_output *p);
/* Save the newest record known to have left ZeroMQ (pub_flow.h), if it moved. */
void cursor_save_left(struct pub_output *p);
/* Save the subscriptions held (for the hold after a restart), if they changed. */
void cursor_save_subs(struct pub_output *p);
/* Once a second: make the last save durable against power loss. */
void cursor_sync(struct pub_output *p);
/* Export the cursor for the DC report; NOW_WALL 0 when nothing was delivered. */
void cursor_publish(struct pub_output *p, long long now_wall);

#endif
