/* req_forward_int.h -- what the two halves of saltrelay-up's request
 * forwarding share: the MoM side (req_forward.c: the part, the stream reader,
 * the REQ sockets) and the Redis side (req_forward_redis.c: acknowledgements
 * and reply records through the Redis pipeline). Not for other parts. */
#ifndef SALTRELAY_REQ_FORWARD_INT_H
#define SALTRELAY_REQ_FORWARD_INT_H

#include <czmq.h>
#include <stdint.h>

#include "config.h"
#include "envelope.h"
#include "keys.h"
#include "metrics.h"
#include "rconn.h"
#include "reqrec.h"
#include "rpipe.h"
#include "warnrate.h"

#define GROUP "saltrelay-up"
#define JOB_FRAMES 13       /* entry id + v 1 dc D rid R dl L c C p P */
#define HOLD_MAX 2048       /* entries read from Redis and not yet sent or dropped */
#define AUTH_WAIT_MAX (HOLD_MAX - 128) /* waiting _auth beyond: the oldest are shed (room for requests) */
#define AUTH_POOL_SHARE 0.75 /* of req_pool, may carry _auth at once (at least 1) */
#define REDIS_TIMEOUT_MS 2000
#define CLAIM_IDLE_MS 5000  /* a request read by an instance that died is taken over after this */
#define STOP_WAIT_MS 5000   /* how long a stop waits for the MoM's replies in flight */
#define TRIM_MARGIN_MS 60000 /* reply records older than deadline + this are of no use */
#define DC_MAX 65
#define MOM_DOWN_AFTER_MS 1000 /* new sockets take a moment to connect: not an outage */
/* REQ sockets to the MoM retry a refused connect at most this far apart: a
 * MoM that comes up (or back) is served within a second (at 5 s, requests
 * queued meanwhile waited up to 5 s more; req_pool sockets on a LAN make
 * at most req_pool attempts a second) */
#define MOM_RECONNECT_MAX_MS 1000
#define PIPE_BYTES (8 << 20)  /* formatted commands in flight at once: the pipeline's byte cap */
#define PIPE_CMDS (2 * HOLD_MAX + 64)
#define ACK_ROOM 128          /* an XACK's formatted size beyond the entry id, at most */
#define WAIT_ROOM 96          /* ROLE and WAIT n ms formatted, at most */
#define REQ_WAIT_MS 200       /* a WAIT for request acknowledgements waits at most this (then asked again) */

struct held_req {               /* an entry read and not yet sent or dropped */
    int used;
    uint64_t order;
    zmq_msg_t m[JOB_FRAMES];
    size_t n;
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

struct conn {              /* one REQ socket to the MoM */
    zsock_t *sock;
    zsock_t *mon;          /* its DISCONNECTED events (zmq_socket_monitor) */
    int busy;
    int reserved;          /* chosen by a job whose XACK has not answered yet */
    int auth;              /* carries (or is reserved for) an _auth */
    long long sent_at;     /* monotonic, for request_latency_seconds */
    long long dl_wall;
    char dc[DC_MAX], rid[REQREC_RID_MAX + 1];
};

struct out {               /* a reply record waiting for Redis */
    int used;
    int written;           /* pub_wait_replicas: its XADD is in the pipeline or done, */
    int stored;            /*   done (kept, to be written again, until a WAIT confirms it) */
    uint32_t wait_serial;  /*   the WAIT appended after it */
    enum reprec_status st;
    long long dl_wall;
    zmq_msg_t payload;
    char dc[DC_MAX], rid[REQREC_RID_MAX + 1];
};

struct req_forward {
    const struct config *cfg;
    int opened;
    zactor_t *reader;
    struct rconn *rc;
    struct rpipe *pipe;
    char req_key[KEY_MAX];
    struct held_req held[HOLD_MAX];
    uint64_t order;
    struct conn *conn;
    size_t nconn;
    struct out *out;
    size_t nout;
    long long credit_due;
    double tokens;
    long long tokens_at;
    int mom_down, stop;
    long long unwritable_since; /* monotonic; 0 while a socket can send */
    int auth_busy, auth_busy_max; /* connections carrying _auth, and their bound */
    int shedding;          /* an _auth shedding episode is on (logged once) */
    long long shed_at;     /* monotonic: last _auth shed */
    int64_t shed_count;    /* shed in this episode */
    uint32_t wait_next;    /* serial of the next WAIT appended (wraps) */
    int wait_inflight;     /* a WAIT is in the pipeline */
    long long replicas;    /* replicas the primary's ROLE listed last (-1: not known) */
    int unconfirmed;       /* acknowledgements not confirmed by the replicas (logged once) */
    struct warnrate warn;
};

/* Redis side (req_forward_redis.c). */
/* Queue reply record ST for the request RID of DC (PAYLOAD moved in if ok). */
void fwd_reply(struct req_forward *o, const char *dc, const char *rid, long long dl, enum reprec_status st,
               zmq_msg_t *payload);
/* 1 if Redis has something to do: an entry to acknowledge or a reply record. */
int fwd_redis_work(const struct req_forward *o);
/* Append the reply records and the acknowledgements, and write what the
 * socket takes. */
void fwd_flush_redis(struct req_forward *o);
/* The pipeline's replies (rpipe_reply_fn): an XACK's settles its job. */
void fwd_on_reply(void *arg, uint64_t tag, redisReply *r);
/* Reply records that could not be written before their deadline are dropped. */
void fwd_drop_stale_replies(struct req_forward *o, long long now_wall);
size_t fwd_records_waiting(const struct req_forward *o);
/* The timeout of a WAIT for request acknowledgements. */
long long fwd_wait_ms(const struct config *cfg);

/* _auth storms (req_forward_auth.c). */
/* Shed _auth job J (REASON for the episode's log line). */
void fwd_shed_auth(struct req_forward *o, struct held_req *j, const char *reason);
/* Log the end of a shedding episode once nothing was shed for a while. */
void fwd_end_shedding(struct req_forward *o);
/* Keep waiting _auth within AUTH_WAIT_MAX: the oldest go. */
void fwd_shed_overload(struct req_forward *o);
/* An _auth: read its minion id in clear, shed an older attempt of that id. */
void fwd_note_auth_id(struct req_forward *o, struct held_req *j);

/* MoM side (req_forward.c). */
/* Drop job J unsent, once its entry is acknowledged: reply record ST (if it
 * has one), counted in METRIC. */
void fwd_held_drop(struct held_req *j, enum reprec_status st, enum metric_id metric);
/* Job J is done with: its frames freed, one more entry granted to the reader. */
void fwd_held_free(struct req_forward *o, struct held_req *j);
/* Job J's entry was taken by its XACK: the drop's record and counter. */
void fwd_held_dropped(struct req_forward *o, struct held_req *j);
/* Job J's entry was taken by its XACK: sent on its chosen socket. */
void fwd_send_held(struct req_forward *o, struct held_req *j);

#endif
