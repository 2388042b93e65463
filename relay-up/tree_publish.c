/* tree_publish.c -- saltrelay-up's tree sync part (see tree_publish.h).
 *
 * The tree is scanned (tree_scan.c) and, if it changed, stored as a new
 * version (tree_store.c): after an inotify event on a watched directory,
 * once SETTLE_MS passed (an editor's or git's burst of writes becomes one
 * version), and in any case every sync_interval, the safety net for what
 * inotify misses (watch limit reached, queue overflow, writes through mmap).
 * Both run in slices of at most SLICE_MS per loop turn, so a large tree
 * never holds up the watchdog or a stop request. A tree over sync_max_bytes
 * is refused with one log line until it shrinks. An upload cut short by a
 * stop is not drained: its chunks are collected at the next start.
 *
 * Several saltrelay-ups may run at once (active-active); only the holder of
 * the publisher's lease (tree_store_lease, renewed every LEASE_RENEW_MS)
 * scans and publishes, the others stand by and take over once it lapses. A
 * lease check that fails, or a write that Redis fenced off (tree_store.c),
 * ends this instance's leadership until a check answers that it holds it:
 * a publisher that stalled past its lease never writes after a successor. */
#include "tree_publish.h"

#include <errno.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "tree_scan.h"
#include "tree_store.h"
#include "upreport.h"

#define SETTLE_MS 200 /* after an inotify event, before a scan */
#define RETRY_MS 1000 /* after a failed or interrupted publish */
#define SLICE_MS 100  /* of scanning or uploading per loop turn */
#define EVENTS_MAX 64 /* inotify reads per turn (each up to 64 KiB) */
#define LEASE_RENEW_MS 2000 /* well within TREE_LEASE_MS */

enum phase { IDLE, SCANNING, UPLOADING };

struct tree_publish {
    const struct config *cfg;
    int inotify_fd, inotify_index;
    struct tree_scan *scan;
    struct tree_store *store;
    enum phase phase;
    long long due; /* monotonic ms of the next scan */
    int refused;   /* the last scan was refused (logged once per state change) */
    int leader;    /* 1 holding the lease, 0 another instance holds it, -1 unknown */
    long long lease_due;
};

static int tree_publish_open(void *self, const struct config *cfg)
{
    struct tree_publish *t = self;
    t->cfg = cfg;
    t->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (t->inotify_fd < 0)
        log_warn("tree sync: inotify unavailable (%s); scanning every sync_interval only", strerror(errno));
    t->scan = tree_scan_new(cfg->sync_source, t->inotify_fd);
    t->store = tree_store_new(cfg);
    t->due = clock_mono_ms();
    t->leader = -1;
    metric_set(M_TREE_SYNC, 1);
    log_info("tree sync: publishing %s (scan every %g s and on change)", cfg->sync_source,
             (double)cfg->sync_interval_ms / 1000.0);
    return t->scan && t->store ? 0 : -1;
}

static void tree_publish_close(void *self)
{
    struct tree_publish *t = self;
    tree_scan_destroy(&t->scan);
    tree_store_destroy(&t->store);
    if (t->inotify_fd >= 0)
        close(t->inotify_fd);
}

static void tree_publish_wait(void *self, struct part_poll *w, int stopping)
{
    struct tree_publish *t = self;
    (void)stopping;
    t->inotify_index = t->inotify_fd >= 0 ? part_poll_fd(w, t->inotify_fd, ZMQ_POLLIN) : -1;
    part_poll_timeout(w, t->phase != IDLE ? 0 : t->due - clock_mono_ms());
}

/* Read what inotify has (bounded); any event brings the next scan near. */
static void drain_events(struct tree_publish *t)
{
    char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
    int any = 0;
    for (int i = 0; i < EVENTS_MAX && read(t->inotify_fd, buf, sizeof buf) > 0; i++)
        any = 1;
    long long soon = clock_mono_ms() + SETTLE_MS;
    if (any && t->due > soon)
        t->due = soon;
}

static void note_refused(struct tree_publish *t, const char *why)
{
    if (!t->refused) {
        metric_add(M_TREE_REFUSED, 1);
        log_error("tree sync: %s not published: %s (sync_max_bytes %lld); the last version stays",
                  t->cfg->sync_source, why, t->cfg->sync_max_bytes);
    }
    t->refused = 1;
}

/* The phase is over: back to idle until the next scan is due. */
static void idle(struct tree_publish *t, long long in_ms)
{
    t->phase = IDLE;
    t->due = clock_mono_ms() + in_ms;
}

static void scan_slice(struct tree_publish *t, long long until)
{
    struct tree_manifest m;
    const char *why;
    int rc = tree_scan_step(t->scan, until, &m, &why);
    if (rc < 0) {
        note_refused(t, why);
        idle(t, t->cfg->sync_interval_ms);
    } else if (rc > 0) {
        if (t->refused)
            log_info("tree sync: %s is publishable again", t->cfg->sync_source);
        t->refused = 0;
        enum tree_store_result res = tree_store_begin(t->store, t->cfg->sync_source, &m);
        if (res == TREE_STORE_MORE)
            t->phase = UPLOADING;
        else
            idle(t, res == TREE_UNCHANGED ? t->cfg->sync_interval_ms : RETRY_MS);
    }
}

static void upload_slice(struct tree_publish *t, long long until)
{
    enum tree_store_result res = tree_store_step(t->store, until);
    if (res != TREE_STORE_MORE)
        idle(t, res == TREE_STORED ? t->cfg->sync_interval_ms : RETRY_MS);
}

/* Renew or take the lease; 1 while this instance may publish. */
static int lead(struct tree_publish *t, long long now)
{
    if (tree_store_lost(t->store)) {
        log_warn("tree sync: Redis refused a write: the publisher's lease is no longer this instance's");
        t->lease_due = 0;
    }
    if (now < t->lease_due)
        return t->leader == 1;
    char holder[UP_NAME_MAX];
    int was = t->leader, rc = tree_store_lease(t->store, holder, sizeof holder);
    t->lease_due = now + LEASE_RENEW_MS;
    if (rc < 0) { /* unknown: this instance may have lost it; publish nothing until a check answers */
        if (was == 1)
            log_warn("tree sync: the publisher's lease cannot be checked; not publishing until it can");
        if (t->phase != IDLE)
            idle(t, 0);
        t->leader = -1;
        return 0;
    }
    if (rc != was && rc)
        log_info("tree sync: this instance publishes the tree");
    else if (rc != was)
        log_info("tree sync: saltrelay-up %s publishes the tree; standing by", holder);
    if (!rc && t->phase != IDLE)
        idle(t, 0);
    t->leader = rc;
    return rc;
}

static void tree_publish_turn(void *self, const struct part_poll *w)
{
    struct tree_publish *t = self;
    if (part_poll_revents(w, t->inotify_index) & ZMQ_POLLIN)
        drain_events(t);
    long long now = clock_mono_ms();
    if (!lead(t, now))
        return;
    if (t->phase == IDLE && now >= t->due) {
        const char *why;
        if (tree_scan_begin(t->scan, (uint64_t)t->cfg->sync_max_bytes, &why) < 0) {
            note_refused(t, why);
            idle(t, t->cfg->sync_interval_ms);
            return;
        }
        t->phase = SCANNING;
    }
    if (t->phase == SCANNING)
        scan_slice(t, now + SLICE_MS);
    else if (t->phase == UPLOADING)
        upload_slice(t, now + SLICE_MS);
}

const struct part_def tree_publish_part = {
    .name = "tree sync",
    .size = sizeof(struct tree_publish),
    .open = tree_publish_open,
    .wait = tree_publish_wait,
    .turn = tree_publish_turn,
    .close = tree_publish_close,
};
