/* pub_flow.h -- saltrelay-down's publications on their way through ZeroMQ:
 * sent so that ZeroMQ never drops one silently, and tracked so that the
 * cursor saved in pub.state never covers what ZeroMQ may still hold.
 *
 * Deliver or count. The DC's XPUB socket has ZMQ_XPUB_NODROP set and a small
 * send HWM (pub_hwm messages per subscriber): a message a full subscriber
 * queue cannot take is refused (EAGAIN) instead of dropped. The send then
 * waits for room up to pub_slow_wait per message; past it, the message is
 * sent once with NODROP off (delivered to every other subscriber, dropped for
 * the full one), and from then on every message sent is counted in
 * pub_slow_dropped_total (an upper bound: libzmq then skips the full queue
 * silently until its reader frees room) until every subscriber's kernel send
 * queue was seen empty; one log line per episode. During an episode each message waits at most 5 ms (the others,
 * momentarily full, are not dropped for; delivery is paced meanwhile).
 *
 * What has left. ZeroMQ gives no queue lengths (POLLOUT on an XPUB is always
 * set; the pipe statistics are draft API). What it may still hold for one
 * subscriber is bounded: at most pub_hwm messages in its pipe, plus what its
 * connection's engine holds besides (one out_batch_size, 8 KiB, of encoded
 * frames and the message it is encoding). So a message has left ZeroMQ once
 * more than pub_hwm messages, and beyond the newest pub_hwm of them at least
 * 8 KiB, were handed after it to every subscriber that got it: messages of
 * its subscription class (pub_class.h), since with zmq_filtering a minion's
 * queue takes only its own topics. A record has left once each of its
 * messages has; the saved cursor is the newest record such that it and
 * every one before it has left, and a kill repeats at most the records
 * after it, never skips what ZeroMQ held for any subscriber. A record on a
 * topic that few later ones share (a job for one filtered minion) holds the
 * cursor until a sweep or the quiet rule passes it. The quiet rule: when
 * nothing more is sent, the kernel tells:
 * once every subscriber connection's send queue (SIOCOUTQ) stayed empty for
 * QUIET_MS with nothing handed meanwhile, everything handed has left (and
 * was acknowledged by the subscriber's host), so a quiet DC, and a clean
 * stop that drained, save the last record. And while records keep coming,
 * sweeps: once every connection's send queue was seen empty at least once
 * since a sweep began (checked every SWEEP_EVERY_MS), what was handed
 * QUIET_MS before it began had left each connection's pipe by its empty
 * moment (an engine writes what its pipe holds as soon as the kernel takes
 * it; an empty kernel queue with a full pipe lasts no longer than the I/O
 * thread takes to react, the quiet rule's assumption too) and, QUIET_MS
 * after the sweep, its engine: a stream of jobs for many filtered minions
 * moves the cursor too, a few hundred ms behind; a congested subscriber's
 * queue is never empty, so it stops the sweeps. A message not tracked per
 * class (pub_class.h; counted in pub_untracked_total) waits for a sweep or
 * the quiet rule. */
#ifndef SALTRELAY_PUB_FLOW_H
#define SALTRELAY_PUB_FLOW_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "pub_class.h"
#include "streamid.h"

#define PUB_FLOW_RECS_MAX 65536 /* records waiting; past it the newest ones share the last entry */
/* pub_flow_send's KLEN besides a class key's length */
#define PUB_FLOW_NOBODY (-1)    /* no subscriber asked for the topic: nothing is held */
#define PUB_FLOW_UNTRACKED (-2) /* the class is not known: the record waits for a sweep or the quiet rule */

struct pub_flow_rec {
    struct streamid id;
    uint64_t serial;
    uint64_t seq;     /* pub_flow's number of the oldest record this entry stands for */
    uint64_t pending; /* its messages not yet known to have left */
    int untracked;    /* a message not tracked: only the quiet rule lets it go */
    long long handed_at; /* monotonic: when the newest record it stands for was handed */
};

struct pub_flow {
    int hwm;
    long long slow_wait_ms;
    uint64_t msgs;                 /* handed to ZeroMQ so far */
    struct pub_class classes;      /* messages not yet known to have left, per class */
    uint64_t recs;                 /* records handed so far: the number of the one being sent */
    uint64_t cur_pending;          /* the record being sent: its messages waiting */
    int cur_untracked;
    struct pub_flow_rec *ring;     /* handed, not yet known to have left, oldest first */
    size_t cap, head, n;
    int have_left;
    struct pub_flow_rec left;      /* the newest record known to have left */
    int untracked_logged;          /* a message was not tracked (logged once) */
    int slow;                      /* a slow-subscriber episode is on */
    uint64_t slow_lost, strict_run; /* strict_run: checks in a row that found the queues empty */
    long long slow_checked;         /* monotonic */
    int *fds;                      /* subscriber connections (monitor events) */
    unsigned char *fd_seen;        /* fds[i]'s send queue was seen empty in this sweep */
    size_t nfds, fdcap, nseen;
    size_t sweep_pos;              /* where the sweep's next check begins */
    size_t quiet_pos, quiet_checked; /* the quiet rule's pass: where it goes on, queues seen empty in it */
    long long sweep_start, sweep_checked; /* monotonic */
    long long cut;                 /* > 0: records handed by then have left, once the clock reads CUT_AT */
    long long cut_at;
    uint64_t quiet_msgs;
    long long quiet_since;         /* monotonic; 0: not quiet */
    /* Called when a send is about to wait for room: the saved cursor is
     * brought up to LEFT first, since the thread may stay in that wait until
     * a kill or the stop_timeout ends the process (stopguard.h). */
    void (*before_wait)(void *arg);
    void *before_wait_arg;
};

/* HWM: pub_hwm (its range is the config key table's). -1 if out of memory. */
int pub_flow_init(struct pub_flow *f, int hwm, long long slow_wait_ms);
void pub_flow_free(struct pub_flow *f);
/* Set NODROP and the HWM on the XPUB socket. */
void pub_flow_socket(const struct pub_flow *f, void *xpub);
/* A point known to have left (a loaded or new cursor); forgets the rest. */
void pub_flow_set_left(struct pub_flow *f, struct streamid id, uint64_t serial);
/* Send one message: frames DATA[i]/LEN[i], then LAST if not NULL (taken on
 * success, as zmq_msg_send does), of class KEY/KLEN (the longest subscription
 * matching its topic, pub_subs_class), or KLEN PUB_FLOW_NOBODY or
 * PUB_FLOW_UNTRACKED. 0 sent, 1 sent but dropped for a slow subscriber
 * (counted), -1 not sent. */
int pub_flow_send(struct pub_flow *f, void *sock, const void *const *data, const size_t *len, size_t n,
                  zmq_msg_t *last, const char *key, int klen);
/* The message just sent may have reached a subscriber its class did not
 * account for (subscriptions changed during the send): its record waits for
 * a sweep or the quiet rule. */
void pub_flow_untrack_last(struct pub_flow *f);
/* Record ID (SERIAL) was handled: its messages, if any, were sent. */
void pub_flow_handed(struct pub_flow *f, struct streamid id, uint64_t serial);
/* A subscriber connection appeared (UP 1) or went away (monitor events). */
void pub_flow_watch(struct pub_flow *f, int fd, int up);
/* With nothing handed meanwhile: 1 once everything handed has left. */
int pub_flow_settle(struct pub_flow *f, long long now_mono);
/* The end of a slow episode, if one is on (logged). */
void pub_flow_end_slow(struct pub_flow *f);

#endif
