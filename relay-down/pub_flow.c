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
#define FDS_MAX 1000000   /* subscriber connections watched; more cannot be open anyway */
/* During a slow episode a full queue may be the slow subscriber's for good,
 * or another's for a moment: each message still waits this long, so the
 * others are not dropped for (delivery is paced to ~200 messages a second
 * until the slow one catches up or its heartbeat timeout drops it). */
#define EPISODE_WAIT_MS 5
#define YIELDS 200 /* sched_yield()s before the first nap, when a queue is full */

int pub_flow_init(struct pub_flow *f, int hwm, long long slow_wait_ms)
{
    memset(f, 0, sizeof *f);
    f->hwm = hwm;
    f->slow_wait_ms = slow_wait_ms;
    f->mcap = (size_t)hwm + 2;
    /* Records not yet left each end at a later message than the one before
     * (pub_flow_handed merges the others); at most hwm + 1 messages, and as
     * many more as fit in ENGINE_BATCH at 2 encoded bytes each, can be
     * unsettled: the ring never fills. */
    f->cap = (size_t)hwm + ENGINE_BATCH / 2 + 4;
    f->mbytes = calloc(f->mcap, sizeof *f->mbytes);
    f->ring = calloc(f->cap, sizeof *f->ring);
    return f->mbytes && f->ring ? 0 : -1;
}

void pub_flow_free(struct pub_flow *f)
{
    free(f->mbytes);
    free(f->ring);
    free(f->fds);
    memset(f, 0, sizeof *f);
}

void pub_flow_socket(const struct pub_flow *f, void *xpub)
{
    int on = 1;
    zmq_setsockopt(xpub, ZMQ_SNDHWM, &f->hwm, sizeof f->hwm);
    zmq_setsockopt(xpub, ZMQ_XPUB_NODROP, &on, sizeof on);
}

void pub_flow_set_left(struct pub_flow *f, struct streamid id, uint64_t serial)
{
    f->left = (struct pub_flow_rec){.id = id, .serial = serial, .msgs = f->msgs, .bytes = f->bytes};
    f->have_left = 1;
    f->n = 0;
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
static void note_sent(struct pub_flow *f, size_t bytes, int rc)
{
    f->msgs++;
    f->bytes += bytes;
    f->mbytes[f->msgs % f->mcap] = f->bytes;
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

int pub_flow_send(struct pub_flow *f, void *sock, const void *const *data, const size_t *len, size_t n,
                  zmq_msg_t *last)
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
    note_sent(f, bytes, rc);
    return rc == 1;
}

/* Move what is certainly out of ZeroMQ from the ring to LEFT. */
static void advance(struct pub_flow *f)
{
    while (f->n > 0) {
        const struct pub_flow_rec *r = &f->ring[f->head];
        if (f->msgs - r->msgs < (uint64_t)f->hwm + 1)
            return;
        uint64_t before_pipe = f->mbytes[(f->msgs - (uint64_t)f->hwm - 1) % f->mcap];
        if (before_pipe - r->bytes < ENGINE_BATCH)
            return;
        f->left = *r;
        f->have_left = 1;
        f->head = (f->head + 1) % f->cap;
        f->n--;
    }
}

void pub_flow_handed(struct pub_flow *f, struct streamid id, uint64_t serial)
{
    struct pub_flow_rec rec = {.id = id, .serial = serial, .msgs = f->msgs, .bytes = f->bytes};
    if (f->n > 0 && f->ring[(f->head + f->n - 1) % f->cap].msgs == f->msgs) {
        f->ring[(f->head + f->n - 1) % f->cap] = rec; /* sent nothing: settles with the one before */
    } else if (f->n == 0 && f->have_left && f->left.msgs == f->msgs) {
        f->left = rec; /* sent nothing since the last settled one */
    } else {
        if (f->n == f->cap) { /* cannot happen (see pub_flow_init); keeps memory bounded */
            f->left = f->ring[f->head];
            f->head = (f->head + 1) % f->cap;
            f->n--;
        }
        f->ring[(f->head + f->n) % f->cap] = rec;
        f->n++;
    }
    advance(f);
}

void pub_flow_watch(struct pub_flow *f, int fd, int up)
{
    for (size_t i = 0; i < f->nfds; i++)
        if (f->fds[i] == fd) {
            if (!up)
                f->fds[i] = f->fds[--f->nfds];
            return;
        }
    if (!up || fd < 0 || f->nfds >= FDS_MAX)
        return;
    if (f->nfds == f->fdcap) {
        size_t cap = f->fdcap ? f->fdcap * 2 : 64;
        int *fds = realloc(f->fds, cap * sizeof *fds);
        if (!fds)
            return; /* then it is not watched; the count rule still holds for it */
        f->fds = fds;
        f->fdcap = cap;
    }
    f->fds[f->nfds++] = fd;
}

/* 1 if no subscriber connection has bytes in its kernel send queue (sent
 * and not acknowledged, or not sent). A descriptor gone meanwhile: quiet. */
static int queues_empty(const struct pub_flow *f)
{
    for (size_t i = 0; i < f->nfds; i++) {
        int q = 0;
        if (ioctl(f->fds[i], SIOCOUTQ, &q) == 0 && q > 0)
            return 0;
    }
    return 1;
}

int pub_flow_settle(struct pub_flow *f, long long now)
{
    if (f->n == 0)
        return 1;
    int empty = queues_empty(f);
    if (!empty || f->quiet_since == 0 || f->quiet_msgs != f->msgs) { /* (re)start the quiet period */
        f->quiet_msgs = f->msgs;
        f->quiet_since = empty ? now : 0;
        return 0;
    }
    if (now - f->quiet_since < QUIET_MS)
        return 0;
    f->left = f->ring[(f->head + f->n - 1) % f->cap];
    f->have_left = 1;
    f->n = 0;
    return 1;
}
