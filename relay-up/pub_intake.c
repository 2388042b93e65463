/* pub_intake.c -- saltrelay-up's publication intake.
 *
 * A SUB socket subscribed to everything on the MoM's publish port receives
 * each Salt publication (1 frame, or [topic, payload] with zmq_filtering).
 * Messages go into a bounded ring (pub_ring.c), then to Redis through the
 * Redis pipeline (rpipe.h; pub_write.c): up to INFLIGHT_MAX commands and
 * PIPE_BYTES of them are written, without blocking, before their replies
 * come back, and the replies are read when the Redis socket is readable,
 * from the same poll loop that drains the SUB socket, so receiving, sending
 * and Redis's work overlap. This file is the part: the SUB socket, its
 * monitor and the loop.
 * Replies come in order, each for the oldest slot in flight:
 *   stream mode:  EVALSHA of the store script (pubstore.h): Redis stores the
 *                 publication unless it is already stored (by another
 *                 saltrelay-up, or before a lost connection), and gives the
 *                 ID and serial, so any number of instances may run at once
 *                 and a batch re-sent after a lost connection or a failover
 *                 is never stored twice;
 *   channel mode: PUBLISH of the packed record (no replay, no dedup: one
 *                 instance only).
 * While Redis is unreachable the ring holds up to pub_buffer messages and
 * pub_buffer_bytes of frames (plus the one message that crosses it); past
 * that new publications are dropped and counted. The frames stay in their
 * zmq_msg_t from receipt to XADD, except small ones: ZeroMQ hands a frame
 * that fits its 8 KiB receive buffer as a reference into that buffer, so one
 * held 200-byte frame would pin 8 KiB (20,000 of them: 160 MiB for 4 MiB
 * counted); those are copied into a buffer of their own size, and what is
 * counted against pub_buffer_bytes is what is held.
 *
 * Copies merged: with zmq_filtering the MoM sends a targeted job as one
 * [sha1hex(id), payload] message per minion, same payload each time, then a
 * [syndic, payload] copy. A message whose payload equals the newest buffered
 * one (not yet written to Redis) and whose topic that record does not hold
 * yet is folded into it: one version-2 record (pubrec.h) with the payload once
 * and the list of topics. A repeated topic starts a new record, so two
 * publications are never merged; order is kept. While the newest record ends
 * with a per-minion topic it is held back up to pub_merge_window after its
 * last copy arrived (PUB copies come in a burst), so that the whole run
 * becomes one entry; "syndic" and "broadcast" topics end a run at once.
 *
 * Memory bound: pub_buffer x sizeof(struct pub_slot) (184 bytes on 64-bit) +
 * pub_buffer_bytes (frames and topic lists, + allocator overhead), plus up to
 * PIPE_BYTES of formatted commands in hiredis's output buffer and the topic
 * set of the run being merged (about 100 bytes per topic). */
#include "pub_intake.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "part.h"
#include "pub_ring.h"
#include "pub_write.h"
#include "rconn.h"
#include "rpipe.h"
#include "sockmon.h"

#define STOP_FLUSH_MS 5000  /* how long a stop may spend storing the ring */
/* After its SUB socket connects to the MoM, at the start and after every
 * reconnect, an instance (stream mode) stores nothing it receives for this
 * long: it missed what came before (while it was not connected), and
 * another instance that is running may still hold some of that unstored;
 * storing a later publication first would put it ahead of them in the
 * stream. What it received before the reconnect is stored meanwhile. */
#define JOIN_HOLD_MS 1000

struct pub_intake {
    const struct config *cfg;
    int opened, draining;
    int ev_sub, ev_monitor; /* indices in the part's wait */
    zsock_t *sub;
    zsock_t *monitor;  /* the SUB socket's connects and disconnects (sockmon.h) */
    struct pub_ring ring;   /* what was received and is not stored yet */
    struct pub_write write; /* what goes to Redis */
};

/* The SUB socket's connects and disconnects, counted and logged. After a
 * connect the slots from FROM on (what this turn took from the SUB socket,
 * and anything later) are held JOIN_HOLD_MS. Read after the SUB socket in
 * each turn: ZeroMQ's I/O thread queues a connection's CONNECTED event
 * before any message of it, so a publication taken is never ahead of the
 * event of the connection it came on (the event is read without a thread
 * between, sockmon.h). */
static void note_monitor_events(struct pub_intake *p, size_t from)
{
    unsigned ev;
    int fd;
    while (sockmon_next(p->monitor, &ev, &fd)) {
        if (ev == ZMQ_EVENT_CONNECTED) {
            metric_add(M_MASTER_CONNECTS, 1);
            log_info("MoM publish port %s: connected", p->cfg->master_publish);
            if (!p->write.channel_mode)
                pub_write_join_hold(&p->write, from, clock_mono_ms() + JOIN_HOLD_MS);
        } else if (ev == ZMQ_EVENT_DISCONNECTED) {
            metric_add(M_MASTER_DISCONNECTS, 1);
            log_warn("MoM publish port %s: disconnected; what the MoM publishes until the reconnect is "
                     "lost at the MoM", p->cfg->master_publish);
        }
    }
}

static int pub_intake_open(void *self, const struct config *cfg)
{
    struct pub_intake *p = self;
    p->cfg = cfg;
    int ring = pub_ring_init(&p->ring, cfg);
    int write = pub_write_init(&p->write, cfg, &p->ring);
    p->sub = zsock_new(ZMQ_SUB);
    if (ring < 0 || write < 0 || !p->sub)
        return -1;
    zsock_set_rcvhwm(p->sub, 10000);
    zsock_set_heartbeat_ivl(p->sub, 5000); /* notice a dead MoM link without TCP's hours */
    zsock_set_heartbeat_timeout(p->sub, 15000);
    /* a MoM back from a restart is subscribed to again within about a second:
     * what it publishes before that is lost at the MoM */
    zsock_set_reconnect_ivl_max(p->sub, 1000);
    zsock_set_subscribe(p->sub, "");
    p->monitor = sockmon_new(p->sub, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED, 0);
    if (!p->monitor) {
        log_error("cannot monitor the MoM publish socket: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    if (zsock_connect(p->sub, "%s", cfg->master_publish) < 0) {
        log_error("cannot connect to master_publish %s: %s", cfg->master_publish, zmq_strerror(zmq_errno()));
        return -1;
    }
    p->opened = 1;
    return 0;
}

static void pub_intake_close(void *self)
{
    struct pub_intake *p = self;
    if (p->opened && p->ring.count)
        log_error("stopping with %zu publications not stored in Redis (lost)", p->ring.count);
    pub_write_fini(&p->write); /* before the ring: what it hands back as lost refers to it */
    pub_ring_fini(&p->ring);
    zsock_destroy(&p->sub); /* before its monitor (sockmon.h) */
    zsock_destroy(&p->monitor);
}

static int loop_timeout(const struct pub_intake *p)
{
    long long hold = pub_ring_hold_ms(&p->ring);
    if (hold > 0 && p->write.sent + 1 >= p->ring.count)
        return (int)(hold < 100 ? hold : 100); /* wake to send the run once its window is over */
    if (rpipe_inflight(p->write.pipe))
        return 100; /* replies awaited: the Redis socket wakes us */
    if (!p->ring.count)
        return 1000;
    int retry = rconn_retry_in_ms(p->write.rc);
    return retry > 0 ? retry : 10;
}

/* The SUB socket and the monitor (not while stopping) and, while replies are
 * awaited, the Redis socket. */
static void pub_intake_wait(void *self, struct part_poll *w, int stopping)
{
    struct pub_intake *p = self;
    p->ev_sub = stopping ? -1 : part_poll_socket(w, p->sub, ZMQ_POLLIN);
    p->ev_monitor = stopping ? -1 : part_poll_socket(w, p->monitor, ZMQ_POLLIN);
    rpipe_wait(p->write.pipe, w);
    part_poll_timeout(w, stopping ? 50 : loop_timeout(p));
}

static void pub_intake_turn(void *self, const struct part_poll *w)
{
    struct pub_intake *p = self;
    size_t before = p->ring.count;
    if (part_poll_revents(w, p->ev_sub) & ZMQ_POLLIN)
        pub_ring_take(&p->ring, zsock_resolve(p->sub));
    note_monitor_events(p, before); /* after the take, every turn (see there) */
    pub_write_pump(&p->write);
}

/* After the stop request: take what the SUB socket holds, then store the
 * buffer (bounded by drain_ms). */
static int pub_intake_drain(void *self, const struct part_poll *w)
{
    struct pub_intake *p = self;
    (void)w;
    if (!p->draining) {
        p->draining = 1;
        pub_ring_take(&p->ring, zsock_resolve(p->sub));
        p->ring.stopping = 1;
        pub_write_more(&p->write);
    } else {
        pub_write_pump(&p->write);
    }
    return p->ring.count > 0;
}

const struct part_def pub_intake_part = {
    .name = "publication intake",
    .size = sizeof(struct pub_intake),
    .drain_ms = STOP_FLUSH_MS,
    .open = pub_intake_open,
    .wait = pub_intake_wait,
    .turn = pub_intake_turn,
    .drain = pub_intake_drain,
    .close = pub_intake_close,
};
