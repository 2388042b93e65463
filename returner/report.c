/* report.c -- saltrelay-down's DC report (see report.h).
 *
 * The report is one script (the HSET of the whole hash, fenced by the DC's
 * lease) and, once the DC served, SADD of the DC name, sent through the Redis
 * pipeline (rpipe.h) on this part's own connection to redis_primary, so a slow or absent Redis only delays reports, never the
 * data paths; while a report is unanswered the next one is skipped. Before each
 * report the Redis it reads publications from is checked (replhealth.c). Values are read
 * from the process-wide metrics that pub_output.c and req_intake.c keep. A report
 * that fails is not retried: the next turn sends a newer one anyway. */
#include "report.h"
#include "dcreport.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "dclease.h"
#include "hreport.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "rconn.h"
#include "replhealth.h"
#include "rpipe.h"
#include "streamid.h"

#define REDIS_TIMEOUT_MS 2000
#define PIPE_BYTES (64 * 1024) /* one report is some 2 KiB */
#define PIPE_CMDS 4
#define TAG_LAST 1 /* a report's last command */

/* The report, written only while the DC's lease holds this process's token
 * (dclease.h), so that a saltrelay-down that lost its place never
 * overwrites its successor's report, not even with its last "stopped". KEYS:
 * the lease, the report; ARGV: the token, the lease's ms, then the report's
 * fields. A lease that ran out while Redis was away and nobody took is taken
 * back. The DC set is no key of the script: a DC's ACL user may only SADD
 * to it (docs/security.md), and a script's keys need full access. */
static const char FENCED_REPORT_LUA[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "elseif v ~= ARGV[1] then return redis.error_reply('NOTOWNER another saltrelay-down holds this datacenter') end "
    "redis.call('HSET', KEYS[2], unpack(ARGV, 3)) "
    "return 1";

struct report {
    const struct config *cfg;
    struct rconn *rc;
    struct rpipe *pipe;
    struct replhealth *health;
    char key[KEY_MAX];
    char set_key[KEY_MAX];
    char lease_key[KEY_MAX];
    char lease_ms[24];
    long long started_at_ms;
    struct part_every every;
    struct hreport_replies replies;
};

static const struct hreport_metric report_metrics[] = {REPORT_FIELDS(HREPORT_METRIC)};

static void build_args(const struct report *r, struct hreport *a, char *cursor_text, const char *state)
{
    struct metric_cursor mc;
    metric_cursor_get(&mc); /* one read: never parts of two cursors */
    struct streamid cursor = {(uint64_t)mc.ms, (uint64_t)mc.seq};
    const char *head[] = {"EVAL", FENCED_REPORT_LUA, "2", r->lease_key, r->key, dclease_token(), r->lease_ms};
    hreport_init_head(a, head, sizeof head / sizeof head[0]);
    hreport_text(a, "cursor", streamid_format(cursor, cursor_text));
    hreport_int(a, "cursor_ms", (long long)cursor.ms);
    hreport_int(a, "cursor_serial", mc.serial);
    hreport_int(a, "delivered_at_ms", mc.delivered_at_ms);
    hreport_int(a, "reported_at_ms", clock_wall_ms());
    hreport_int(a, "started_at_ms", r->started_at_ms);
    hreport_int(a, "report_interval_ms", r->cfg->report_interval_ms);
    hreport_int(a, "stale_after_ms", r->cfg->stale_after_ms);
    hreport_text(a, "state", state);
    hreport_text(a, "version", SALTRELAY_VERSION);
    hreport_metrics(a, report_metrics, sizeof report_metrics / sizeof report_metrics[0]);
}

static void send_report(struct report *r, const char *state)
{
    struct hreport a;
    char cursor[STREAMID_STRLEN];
    build_args(r, &a, cursor, state);
    /* a DC that never served (e.g. failed its first start) is not listed */
    int listed = health_served();
    if (hreport_append(&a, r->pipe, listed ? 0 : TAG_LAST) != RPIPE_OK ||
        (listed && rpipe_append(r->pipe, TAG_LAST, "SADD %s %s", r->set_key, r->cfg->datacenter) != RPIPE_OK)) {
        hreport_unsent(&r->replies, r->rc);
        return;
    }
    rpipe_io(r->pipe);
}

static void on_reply(void *arg, uint64_t tag, redisReply *reply)
{
    struct report *r = arg;
    if (hreport_take(&r->replies, reply, tag == TAG_LAST))
        metric_set(M_REPORT_AT_MS, clock_wall_ms());
}

static int report_open(void *self, const struct config *cfg)
{
    struct report *r = self;
    r->cfg = cfg;
    r->started_at_ms = clock_wall_ms();
    part_every_start(&r->every, cfg->report_interval_ms);
    key_dc_status(r->key, cfg->cluster, cfg->datacenter);
    key_dc_set(r->set_key, cfg->cluster);
    key_dc_owner(r->lease_key, cfg->cluster, cfg->datacenter);
    snprintf(r->lease_ms, sizeof r->lease_ms, "%d", DCLEASE_MS);
    r->replies.what = "DC report to redis_primary";
    r->rc = rconn_new(&cfg->redis_primary_url, "reports", REDIS_TIMEOUT_MS);
    r->pipe = r->rc ? rpipe_new(r->rc, PIPE_BYTES, PIPE_CMDS, REDIS_TIMEOUT_MS, on_reply, r) : NULL;
    r->health = replhealth_new(cfg);
    return r->pipe && r->health ? 0 : -1;
}

static void report_wait(void *self, struct part_poll *w, int stopping)
{
    struct report *r = self;
    (void)stopping;
    part_every_wait(&r->every, w);
    rpipe_wait(r->pipe, w);
}

static void report_turn(void *self, const struct part_poll *w)
{
    struct report *r = self;
    (void)w;
    rpipe_io(r->pipe);
    /* the health check's commands are blocking ones: only on an idle connection */
    if (!part_every_due(&r->every) || rpipe_inflight(r->pipe))
        return;
    replhealth_check(r->health, r->rc);
    send_report(r, "running");
}

/* The last report says "stopped" (the other parts have drained by now). */
static void report_close(void *self)
{
    struct report *r = self;
    if (r->pipe && r->health) {
        rpipe_flush(r->pipe, REDIS_TIMEOUT_MS);
        send_report(r, "stopped");
        rpipe_flush(r->pipe, REDIS_TIMEOUT_MS);
    }
    rpipe_destroy(&r->pipe);
    replhealth_destroy(&r->health);
    rconn_destroy(&r->rc);
}

const struct part_def report_part = {
    .name = "DC report",
    .size = sizeof(struct report),
    .open = report_open,
    .wait = report_wait,
    .turn = report_turn,
    .close = report_close,
};
