/* req_held.h -- request forwarding's read-ahead (req_held.c): the entries
 * the request streams' reader handed over, held until they are sent to the
 * MoM or dropped, and which goes next: the DCs in turn (the one served
 * longest ago first, so a DC with a flood of requests does not make another
 * wait behind it); within a DC ordinary requests first, oldest first, then
 * _auth newest first, shed unsent when the MoM cannot keep up (one log line
 * per shedding episode; the DC with the most waiting loses its oldest). At
 * most HOLD_MAX are held: each one done with gives the reader one more. */
#ifndef SALTRELAY_REQ_HELD_H
#define SALTRELAY_REQ_HELD_H

#include <czmq.h>
#include <stdint.h>

#include "envelope.h"
#include "keys.h"
#include "metrics.h"
#include "reqrec.h"
#include "warnrate.h"

#define JOB_FRAMES 14       /* stream key, entry id + v 1 dc D rid R dl L c C p P */
#define HOLD_MAX 2048       /* entries read from Redis and not yet sent or dropped */
#define HELD_SOURCES 257    /* streams told apart (stream_group.h's GROUP_STREAMS_MAX) */

struct held_req {               /* an entry read and not yet sent or dropped */
    int used;
    uint64_t order;
    zmq_msg_t m[JOB_FRAMES]; /* m[0] its stream, m[1] its entry id */
    size_t n;
    int src;               /* its stream: index into req_held.src */
    struct reqrec rec;     /* points into m */
    int has_rec;           /* rec decoded (not a malformed or trimmed entry) */
    int conn;              /* chosen for its send (held until its XACK answers), -1 */
    int acking;            /* its XACK is in the pipeline */
    int acked;             /* its XACK took it; sent once a WAIT confirms (pub_wait_replicas) */
    int counted;           /* counted as read (an XACK took it: once, even if again after a failover) */
    uint32_t wait_serial;  /* the WAIT appended after its XACK */
    int drop;              /* to be dropped unsent once acknowledged: */
    enum reprec_status st; /*   its reply record (if has_rec) */
    enum metric_id metric; /*   and its counter */
    char id[ENVELOPE_ID_MAX]; /* _auth: the minion id ("" if not readable) */
};

struct held_src {          /* a stream jobs come from */
    char key[KEY_MAX];
    uint64_t served;       /* the turn its last job was picked in */
};

struct req_held {
    struct held_req job[HOLD_MAX];
    struct held_src src[HELD_SOURCES];
    int nsrc;
    uint64_t order, turn;
    long long credit_due;  /* jobs done with since the reader was last told */
    const char *prefix;    /* a DC's stream is PREFIX + its name */
    const char *shared;    /* the stream every DC wrote before (its records name their DC) */
    struct warnrate *warn;
    int shedding;          /* an _auth shedding episode is on (logged once) */
    long long shed_at;     /* monotonic: last _auth shed */
    int64_t shed_count;    /* shed in this episode */
};

/* Entries of the streams PREFIX + DC and SHARED; warnings about them
 * through WARN. */
void req_held_init(struct req_held *h, const char *prefix, const char *shared, struct warnrate *warn);
void req_held_fini(struct req_held *h);
/* Take what the reader SOCK hands over, into free jobs. */
void req_held_take(struct req_held *h, void *sock);
/* The job that may go now, or NULL: of the DC served longest ago, the
 * oldest ordinary request, else (if AUTH_OK: the MoM has room for one more)
 * the newest _auth. */
struct held_req *req_held_next(struct req_held *h, int auth_ok);
/* Job J goes now: its DC was served this turn. */
void req_held_picked(struct req_held *h, const struct held_req *j);
/* Drop job J unsent, once its entry is acknowledged: reply record ST (if it
 * has one), counted in METRIC. */
void req_held_drop(struct held_req *j, enum reprec_status st, enum metric_id metric);
/* Job J is done with: its frames freed, one more entry granted to the reader. */
void req_held_free(struct req_held *h, struct held_req *j);
/* Drop what waits past its deadline at NOW_WALL (MOM_DOWN: as mom_unreachable). */
void req_held_drop_expired(struct req_held *h, long long now_wall, int mom_down);
/* Keep waiting _auth within what the read-ahead keeps: the oldest go; and
 * log the end of a shedding episode once nothing was shed for a while. */
void req_held_shed_overload(struct req_held *h);

#endif
