/* pub_flow.c -- see pub_flow.h. */
#include "pub_flow.h"

#include <errno.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define ENGINE_BATCH 8192 /* libzmq's out_batch_size (not settable without the draft API) */
#define QUIET_MS 200      /* send queues empty this long, nothing handed: all has left */
#define SWEEP_EVERY_MS 20 /* a sweep checks the send queues not yet seen empty this often */
#define FDS_MAX 1000000   /* subscriber connections watched; more cannot be open anyway */
/* Send queues looked at (one ioctl each) per sweep check and per quiet-rule
 * call, at most: a scan of 10,000 queues right after a broadcast took the
 * CPU the I/O thread needed to write it (both resume where they stopped). */
#define SCAN_FDS_MAX 1024
/* During a slow episode a full queue may be the slow subscriber's for good,
 * or another's for a moment: each message still waits this long, so the
 * others are not dropped for (delivery is paced to ~200 messages a second
 * until the slow one catches up or its heartbeat timeout drops it). */
#define EPISODE_WAIT_MS 5
#define YIELDS 200 /* sched_yield()s before the first nap, when a queue is full */

static void message_left(void *arg, uint64_t rec);

int pub_flow_init(struct pub_flow *f, int hwm, long long slow_wait_ms)
{
    memset(f, 0, sizeof *f);
    f->hwm = hwm;
    f->slow_wait_ms = slow_wait_ms;
    pub_class_init(&f->classes, hwm, ENGINE_BATCH, message_left, f);
    f->cap = 64; /* grows up to PUB_FLOW_RECS_MAX */
    f->ring = calloc(f->cap, sizeof *f->ring);
    return f->ring ? 0 : -1;
}

void pub_flow_free(struct pub_flow *f)
{
    pub_class_free(&f->classes);
    free(f->ring);
    free(f->fds);
    free(f->fd_seen);
    memset(f, 0, sizeof *f);
}

/* Nothing handed is waiting any more. */
static void forget_waiting(struct pub_flow *f)
{
    f->n = 0;
    f->head = 0;
    f->cur_pending = 0;
    f->cur_untracked = 0;
    f->cut = 0;
    pub_class_clear(&f->classes);
}

void pub_flow_socket(const struct pub_flow *f, void *xpub)
{
    int on = 1;
    zmq_setsockopt(xpub, ZMQ_SNDHWM, &f->hwm, sizeof f->hwm);
    zmq_setsockopt(xpub, ZMQ_XPUB_NODROP, &on, sizeof on);
}

void pub_flow_set_left(struct pub_flow *f, struct streamid id, uint64_t serial)
{
    f->left = (struct pub_flow_rec){.id = id, .serial = serial};
    f->have_left = 1;
    forget_waiting(f);
}

/* Wait a little; returns the next wait. A queue full for a moment (a flood:
 * ZeroMQ's I/O thread needs the CPU to empty it) costs a few yields; one
 * that stays full, naps doubling up to one wakeup a millisecond. */
static long nap(long ns)
{
    if (ns < 0) { /* the first tries: let the I/O thread run */
        sched_yield();
        return ns + 1 < 0 ? ns + 1 : 10000;
    }
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
    return ns < 500000 ? ns * 2 : 1000000;
}

/* A socket learns that its queues have room again from commands of the I/O
 * thread, which a non-blocking send takes at most once a millisecond; asking
 * for ZMQ_EVENTS takes them at once (with a small HWM, the difference
 * between ~9,000 and ~40,000 messages a second in bench/run.sh). */
static void take_commands(void *sock)
{
    int ev;
    size_t sz = sizeof ev;
    zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &sz);
}

static void set_nodrop(void *sock, int on) { zmq_setsockopt(sock, ZMQ_XPUB_NODROP, &on, sizeof on); }

/* The first frame decides: every subscriber queue it goes to has room, or
 * after WAIT_MS (0 during a slow episode) it is sent to those that have.
 * 0 sent, 1 sent lossy (NODROP left off for the rest of the message), 2 sent
 * after waiting, -1 failed. */
static int send_first(const struct pub_flow *f, void *sock, const void *data, size_t len, int flags,
                      long long wait_ms)
{
    int waited = 0;
    long ns = -YIELDS;
    long long deadline = 0;
    for (;;) { /* bounded by WAIT_MS */
        if (zmq_send(sock, data, len, flags | ZMQ_DONTWAIT) >= 0)
            return waited ? 2 : 0;
        if (zmq_errno() != EAGAIN)
            return -1;
        if (!deadline && f->before_wait)
            f->before_wait(f->before_wait_arg);
        if (!deadline)
            deadline = clock_mono_ms() + wait_ms;
        if (clock_mono_ms() >= deadline)
            break;
        waited = 1;
        take_commands(sock);
        if (zmq_send(sock, data, len, flags | ZMQ_DONTWAIT) >= 0)
            return 2;
        ns = nap(ns);
    }
    set_nodrop(sock, 0);
    if (zmq_send(sock, data, len, flags | ZMQ_DONTWAIT) >= 0)
        return 1;
    set_nodrop(sock, 1);
    return -1;
}

static size_t encoded(size_t len) { return len + (len < 256 ? 2 : 9); }

static int queues_empty(const struct pub_flow *f);

/* Account one message handed to ZeroMQ; RC as send_first gave it.
 * A lossy send takes the full subscriber queue out of ZeroMQ's distribution
 * until its reader frees room, and later sends skip it without a word: so
 * from the first drop on, every message sent counts as possibly lost, until
 * every subscriber connection's kernel send queue was seen empty twice
 * EPISODE_WAIT_MS apart (the slow one took all that was queued for it, so
 * its queue is back in the distribution). An upper bound, never less. */
static void note_sent(struct pub_flow *f, int rc)
{
    f->msgs++;
    if (rc == 1 && !f->slow)
        log_warn("a subscriber is too slow (its ZeroMQ queue stays full for pub_slow_wait): publications are "
                 "dropped for it (at most what pub_slow_dropped_total counts)");
    f->slow |= rc == 1;
    if (!f->slow)
        return;
    f->slow_lost++;
    metric_add(M_PUB_SLOW_DROPPED, 1);
    long long now = clock_mono_ms();
    if (now - f->slow_checked < EPISODE_WAIT_MS)
        return;
    f->slow_checked = now;
    f->strict_run = queues_empty(f) ? f->strict_run + 1 : 0;
    if (f->strict_run >= 2)
        pub_flow_end_slow(f);
}

void pub_flow_end_slow(struct pub_flow *f)
{
    if (f->slow)
        log_warn("a slow subscriber lost %llu publication(s) (pub_slow_dropped_total); none dropped now",
                 (unsigned long long)f->slow_lost);
    f->slow = 0;
    f->slow_lost = 0;
    f->strict_run = 0;
}

void pub_flow_untrack_last(struct pub_flow *f)
{
    if (!f->cur_untracked && !f->untracked_logged)
        log_warn("a publication is not tracked per subscription class (beyond the caps, or subscriptions "
                 "changed while it was sent; pub_untracked_total): the saved cursor waits for a sweep of the "
                 "send queues to pass it");
    f->untracked_logged = 1;
    f->cur_untracked = 1;
    metric_add(M_PUB_UNTRACKED, 1);
}

/* Track a message of the record being sent until it has left (pub_class.h). */
static void track(struct pub_flow *f, size_t bytes, const char *key, int klen)
{
    if (klen == PUB_FLOW_NOBODY)
        return; /* in no subscriber's queue */
    if (klen >= 0 && pub_class_sent(&f->classes, key, (size_t)klen, bytes, f->recs) == 0) {
        f->cur_pending++;
        return;
    }
    pub_flow_untrack_last(f);
}

int pub_flow_send(struct pub_flow *f, void *sock, const void *const *data, const size_t *len, size_t n,
                  zmq_msg_t *last, const char *key, int klen)
{
    size_t bytes = encoded(len[0]);
    int more = n > 1 || last;
    long long wait_ms = f->slow && f->slow_wait_ms > EPISODE_WAIT_MS ? EPISODE_WAIT_MS : f->slow_wait_ms;
    int rc = send_first(f, sock, data[0], len[0], more ? ZMQ_SNDMORE : 0, wait_ms);
    if (rc < 0)
        return -1;
    /* the rest of a message the first frame started always goes */
    for (size_t i = 1; i < n; i++) {
        zmq_send(sock, data[i], len[i], (i + 1 < n || last ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
        bytes += encoded(len[i]);
    }
    if (last) {
        bytes += encoded(zmq_msg_size(last));
        if (zmq_msg_send(last, sock, ZMQ_DONTWAIT) < 0)
            zmq_msg_close(last);
    }
    if (rc == 1)
        set_nodrop(sock, 1);
    note_sent(f, rc);
    track(f, bytes, key, klen);
    return rc == 1;
}

static struct pub_flow_rec *at(struct pub_flow *f, size_t i) { return &f->ring[(f->head + i) % f->cap]; }

/* A message of record REC has left (pub_class.h): one less to wait for. */
static void message_left(void *arg, uint64_t rec)
{
    struct pub_flow *f = arg;
    if (rec == f->recs) {
        f->cur_pending -= f->cur_pending > 0;
        return;
    }
    if (f->n == 0 || rec < at(f, 0)->seq)
        return; /* its record left by a sweep (pub_class_forget drops most of these) */
    size_t lo = 0, hi = f->n - 1; /* the entry standing for REC: the last with seq <= REC */
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        if (at(f, mid)->seq <= rec)
            lo = mid;
        else
            hi = mid - 1;
    }
    at(f, lo)->pending -= at(f, lo)->pending > 0;
}

/* Move the records whose messages all left, oldest first, from the ring to LEFT. */
static void advance(struct pub_flow *f)
{
    while (f->n > 0 && at(f, 0)->pending == 0 && !at(f, 0)->untracked) {
        f->left = *at(f, 0);
        f->have_left = 1;
        f->head = (f->head + 1) % f->cap;
        f->n--;
    }
}

/* Room for one more entry: the ring doubles up to PUB_FLOW_RECS_MAX. -1 if full. */
static int make_room(struct pub_flow *f)
{
    if (f->n < f->cap)
        return 0;
    if (f->cap >= PUB_FLOW_RECS_MAX)
        return -1;
    struct pub_flow_rec *ring = malloc(f->cap * 2 * sizeof *ring);
    if (!ring)
        return -1;
    for (size_t i = 0; i < f->n; i++)
        ring[i] = *at(f, i);
    free(f->ring);
    f->ring = ring;
    f->cap *= 2;
    f->head = 0;
    return 0;
}

void pub_flow_handed(struct pub_flow *f, struct streamid id, uint64_t serial)
{
    struct pub_flow_rec rec = {.id = id, .serial = serial, .seq = f->recs, .pending = f->cur_pending,
                               .untracked = f->cur_untracked, .handed_at = clock_mono_ms()};
    f->recs++;
    f->cur_pending = 0;
    f->cur_untracked = 0;
    int waits = rec.pending > 0 || rec.untracked;
    if (f->n == 0 && !waits) {
        f->left = rec; /* nothing of it, nor before it, is in ZeroMQ */
        f->have_left = 1;
    } else if (f->n > 0 && (!waits || make_room(f) < 0)) {
        /* leaves with the one before (when full: together, later, never early) */
        struct pub_flow_rec *l = at(f, f->n - 1);
        l->id = id;
        l->serial = serial;
        l->pending += rec.pending;
        l->untracked |= rec.untracked;
        l->handed_at = rec.handed_at;
    } else {
        *at(f, f->n) = rec; /* n == 0 here means a fresh ring, which has room */
        f->n++;
    }
    advance(f);
}

void pub_flow_watch(struct pub_flow *f, int fd, int up)
{
    for (size_t i = 0; i < f->nfds; i++)
        if (f->fds[i] == fd) {
            if (up)
                return;
            f->nseen -= f->fd_seen[i];
            f->nfds--;
            f->fds[i] = f->fds[f->nfds];
            f->fd_seen[i] = f->fd_seen[f->nfds];
            return;
        }
    if (!up || fd < 0 || f->nfds >= FDS_MAX)
        return;
    if (f->nfds == f->fdcap) {
        size_t cap = f->fdcap ? f->fdcap * 2 : 64;
        int *fds = realloc(f->fds, cap * sizeof *fds);
        if (fds)
            f->fds = fds;
        unsigned char *seen = fds ? realloc(f->fd_seen, cap) : NULL;
        if (!seen)
            return; /* then it is not watched; the count rule still holds for it */
        f->fd_seen = seen;
        f->fdcap = cap;
    }
    /* a new connection holds nothing handed before it: seen for this sweep */
    f->fd_seen[f->nfds++] = 1;
    f->fds[f->nfds - 1] = fd;
    f->nseen++;
}

/* 1 if no subscriber connection has bytes in its kernel send queue (sent
 * and not acknowledged, or not sent). A descriptor gone meanwhile: quiet. */
static int queue_empty(int fd)
{
    int q = 0;
    return !(ioctl(fd, SIOCOUTQ, &q) == 0 && q > 0);
}

static int queues_empty(const struct pub_flow *f)
{
    for (size_t i = 0; i < f->nfds; i++)
        if (!queue_empty(f->fds[i]))
            return 0;
    return 1;
}

/* The records handed by CUT have left: move them to LEFT, and forget their
 * messages still counted per class. */
static void release(struct pub_flow *f, long long cut)
{
    while (f->n > 0 && at(f, 0)->handed_at <= cut) {
        f->left = *at(f, 0);
        f->have_left = 1;
        f->head = (f->head + 1) % f->cap;
        f->n--;
    }
    if (pub_class_waiting(&f->classes))
        pub_class_forget(&f->classes, f->n ? at(f, 0)->seq : f->recs);
}

/* One step of the sweeps (pub_flow.h); only while records wait (each
 * check costs an ioctl per connection not yet seen empty, at most
 * SCAN_FDS_MAX of them, the next check going on from there). */
static void sweep(struct pub_flow *f, long long now)
{
    if (f->cut && now >= f->cut_at) {
        release(f, f->cut);
        f->cut = 0;
    }
    if (now - f->sweep_checked < SWEEP_EVERY_MS)
        return;
    f->sweep_checked = now;
    size_t budget = SCAN_FDS_MAX;
    for (size_t k = 0; k < f->nfds && budget && f->nseen < f->nfds; k++) {
        size_t i = (f->sweep_pos + k) % f->nfds;
        if (f->fd_seen[i])
            continue;
        budget--;
        f->sweep_pos = i;
        if (queue_empty(f->fds[i])) {
            f->fd_seen[i] = 1;
            f->nseen++;
        }
    }
    if (f->nseen < f->nfds || f->cut)
        return;
    if (f->sweep_start) { /* every queue was empty at some check since the sweep began */
        f->cut = f->sweep_start - QUIET_MS;
        f->cut_at = now + QUIET_MS;
    }
    f->sweep_start = now;
    if (f->nfds)
        memset(f->fd_seen, 0, f->nfds);
    f->nseen = 0;
}

/* The quiet rule's scan, resumable: 1 once a pass found every send queue
 * empty (up to SCAN_FDS_MAX a call, from where the last call stopped), 0
 * while the pass goes on, -1 at a queue that is not empty (the next pass
 * starts with it: while the DC is busy, one ioctl). */
static int quiet_pass(struct pub_flow *f)
{
    for (size_t budget = SCAN_FDS_MAX; f->quiet_checked < f->nfds && budget; budget--) {
        f->quiet_pos %= f->nfds;
        if (!queue_empty(f->fds[f->quiet_pos])) {
            f->quiet_checked = 0;
            return -1;
        }
        f->quiet_pos++;
        f->quiet_checked++;
    }
    return f->quiet_checked >= f->nfds;
}

int pub_flow_settle(struct pub_flow *f, long long now)
{
    if (f->n == 0)
        return 1;
    sweep(f, now);
    if (f->n == 0)
        return 1;
    if (f->quiet_msgs != f->msgs) { /* something was handed: start over */
        f->quiet_msgs = f->msgs;
        f->quiet_since = 0;
        f->quiet_checked = 0;
    }
    int pass = quiet_pass(f);
    if (pass <= 0) {
        f->quiet_since = pass < 0 ? 0 : f->quiet_since;
        return 0;
    }
    f->quiet_checked = 0; /* the next pass */
    if (f->quiet_since == 0) { /* every queue empty: the quiet period begins */
        f->quiet_since = now;
        return 0;
    }
    if (now - f->quiet_since < QUIET_MS)
        return 0;
    f->left = *at(f, f->n - 1);
    f->have_left = 1;
    forget_waiting(f);
    return 1;
}
