/* heartbeat.c -- saltrelay-up's heartbeat (see heartbeat.h).
 *
 * One pipeline (rpipe.h) per second on this part's own connection: the instance's hash
 * (HSET + PEXPIRE, so an instance gone for a day leaves nothing behind), its
 * score in the instance set (ZADD) and the removal of members silent for as
 * long, and the mark that saltrelay-up reads per-DC request streams
 * (key_req_layout). A heartbeat that fails is not retried: the next one is
 * newer. */
#include "heartbeat.h"

#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "hreport.h"
#include "keys.h"
#include "instance.h"
#include "log.h"
#include "metrics.h"
#include "rconn.h"
#include "rpipe.h"
#include "upreport.h"

#define REDIS_TIMEOUT_MS 2000
#define PIPE_BYTES (64 * 1024) /* one heartbeat is some 2 KiB */
#define PIPE_CMDS 8
#define TAG_LAST 1 /* a heartbeat's last command */

struct heartbeat {
    const struct config *cfg;
    struct rconn *rc;
    struct rpipe *pipe;
    long long sent_at; /* wall ms of the heartbeat in flight */
    char name[UP_NAME_MAX];
    char host[72];
    char key[KEY_MAX];
    char set_key[KEY_MAX];
    char layout_key[KEY_MAX];
    long long started_at_ms;
    struct part_every every;
    struct hreport_replies replies;
};

static void make_name(struct heartbeat *hb)
{
    if (gethostname(hb->host, sizeof hb->host) != 0 || !hb->host[0])
        snprintf(hb->host, sizeof hb->host, "unknown");
    hb->host[sizeof hb->host - 1] = '\0';
    instance_name(hb->cfg, hb->name, sizeof hb->name);
}

static rpipe_reply_fn on_reply;

static int heartbeat_open(void *self, const struct config *cfg)
{
    struct heartbeat *hb = self;
    hb->cfg = cfg;
    hb->started_at_ms = clock_wall_ms();
    part_every_start(&hb->every, UP_HEARTBEAT_MS);
    make_name(hb);
    key_up_status(hb->key, cfg->cluster, hb->name);
    key_up_set(hb->set_key, cfg->cluster);
    key_req_layout(hb->layout_key, cfg->cluster);
    hb->replies.what = "heartbeat to redis";
    hb->rc = rconn_new(&cfg->redis_url, "heartbeat", REDIS_TIMEOUT_MS);
    hb->pipe = hb->rc ? rpipe_new(hb->rc, PIPE_BYTES, PIPE_CMDS, REDIS_TIMEOUT_MS, on_reply, hb) : NULL;
    if (!hb->pipe)
        return -1;
    log_info("heartbeat: this instance is %s", hb->name);
    return 0;
}

static const struct hreport_metric up_metrics[] = {UP_REPORT_FIELDS(HREPORT_METRIC)};

static void build(const struct heartbeat *hb, struct hreport *a, const char *state, long long now)
{
    hreport_init(a, hb->key);
    hreport_text(a, "instance", hb->name);
    hreport_text(a, "host", hb->host);
    hreport_int(a, "pid", (long long)getpid());
    hreport_text(a, "version", SALTRELAY_VERSION);
    hreport_text(a, "state", state);
    hreport_int(a, "wall_ms", now);
    hreport_int(a, "started_at_ms", hb->started_at_ms);
    hreport_int(a, "interval_ms", UP_HEARTBEAT_MS);
    hreport_metrics(a, up_metrics, sizeof up_metrics / sizeof up_metrics[0]);
}

/* One heartbeat, unless the last one is still unanswered (the next is newer). */
static void send_heartbeat(struct heartbeat *hb, const char *state)
{
    if (rpipe_inflight(hb->pipe))
        return;
    struct hreport a;
    long long now = clock_wall_ms();
    build(hb, &a, state, now);
    if (hreport_append(&a, hb->pipe, 0) != RPIPE_OK) {
        hreport_unsent(&hb->replies, hb->rc);
        return;
    }
    hb->sent_at = now;
    rpipe_append(hb->pipe, 0, "PEXPIRE %s %lld", hb->key, UP_FORGET_MS);
    /* this instance reads the DCs' own request streams (relay-down/req_layout.h) */
    rpipe_append(hb->pipe, 0, "SETNX %s dc", hb->layout_key);
    rpipe_append(hb->pipe, 0, "ZADD %s %lld %s", hb->set_key, now, hb->name);
    rpipe_append(hb->pipe, TAG_LAST, "ZREMRANGEBYSCORE %s -inf (%lld", hb->set_key, now - UP_FORGET_MS);
    rpipe_io(hb->pipe);
}

static void on_reply(void *arg, uint64_t tag, redisReply *reply)
{
    struct heartbeat *hb = arg;
    if (hreport_take(&hb->replies, reply, tag == TAG_LAST))
        metric_set(M_HEARTBEAT_AT_MS, hb->sent_at);
}

static void heartbeat_wait(void *self, struct part_poll *w, int stopping)
{
    struct heartbeat *hb = self;
    (void)stopping;
    part_every_wait(&hb->every, w);
    rpipe_wait(hb->pipe, w);
}

static void heartbeat_turn(void *self, const struct part_poll *w)
{
    struct heartbeat *hb = self;
    (void)w;
    rpipe_io(hb->pipe);
    if (part_every_due(&hb->every))
        send_heartbeat(hb, "running");
}

/* The last heartbeat says "stopped" (the other parts have drained by now). */
static void heartbeat_close(void *self)
{
    struct heartbeat *hb = self;
    if (hb->pipe) {
        rpipe_flush(hb->pipe, REDIS_TIMEOUT_MS);
        send_heartbeat(hb, "stopped");
        rpipe_flush(hb->pipe, REDIS_TIMEOUT_MS);
    }
    rpipe_destroy(&hb->pipe);
    rconn_destroy(&hb->rc);
}

const struct part_def heartbeat_part = {
    .name = "heartbeat",
    .size = sizeof(struct heartbeat),
    .open = heartbeat_open,
    .wait = heartbeat_wait,
    .turn = heartbeat_turn,
    .close = heartbeat_close,
};
