/* report.c -- saltrelay-down's DC report (see report.h).
 *
 * The report is one HSET of the whole hash plus SADD of the DC name, sent
 * pipelined on this part's own connection to redis_primary, so a slow or
 * absent Redis only delays reports, never the data paths. Values are read
 * from the process-wide metrics that pub_output.c and req_intake.c keep. A report
 * that fails is not retried: the next turn sends a newer one anyway. */
#include "report.h"
#include "dcreport.h"

#include <string.h>

#include "clock.h"
#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "rconn.h"
#include "streamid.h"

#define REDIS_TIMEOUT_MS 2000
#define TURN_MAX_MS 500 /* part_alive at least this often */

#define COUNT_FIELD(name, id) +1
enum { NMETRIC_FIELDS = 0 REPORT_FIELDS(COUNT_FIELD) };
#undef COUNT_FIELD
#define NFIXED_FIELDS 10 /* cursor ... version, filled in by fixed_fields() */
#define NFIELDS (NFIXED_FIELDS + NMETRIC_FIELDS)

struct report {
    const struct config *cfg;
    struct rconn *rc;
    char key[KEY_MAX];
    char set_key[KEY_MAX];
    long long started_at_ms;
    int failing; /* the last report failed (log once per state change) */
};

/* One HSET argument list: field names and their formatted values. */
struct report_args {
    const char *argv[2 + 2 * NFIELDS];
    size_t argvlen[2 + 2 * NFIELDS];
    char values[NFIELDS][STREAMID_STRLEN]; /* slot i holds the value of field i */
    char cursor[STREAMID_STRLEN];
    size_t argc;
};

static void add_field(struct report_args *a, const char *name, const char *fmt, long long v)
{
    char *buf = a->values[(a->argc - 2) / 2];
    snprintf(buf, STREAMID_STRLEN, fmt, v);
    a->argv[a->argc] = name;
    a->argvlen[a->argc++] = strlen(name);
    a->argv[a->argc] = buf;
    a->argvlen[a->argc++] = strlen(buf);
}

static void add_text(struct report_args *a, const char *name, const char *text)
{
    a->argv[a->argc] = name;
    a->argvlen[a->argc++] = strlen(name);
    a->argv[a->argc] = text;
    a->argvlen[a->argc++] = strlen(text);
}

static void fixed_fields(const struct report *r, struct report_args *a, const char *state)
{
    struct streamid cursor = {(uint64_t)metric_get(M_CURSOR_MS), (uint64_t)metric_get(M_CURSOR_SEQ)};
    add_text(a, "cursor", streamid_format(cursor, a->cursor));
    add_field(a, "cursor_ms", "%lld", (long long)cursor.ms);
    add_field(a, "cursor_serial", "%lld", metric_get(M_CURSOR_SERIAL));
    add_field(a, "delivered_at_ms", "%lld", metric_get(M_DELIVERED_AT_MS));
    add_field(a, "reported_at_ms", "%lld", clock_wall_ms());
    add_field(a, "started_at_ms", "%lld", r->started_at_ms);
    add_field(a, "report_interval_ms", "%lld", r->cfg->report_interval_ms);
    add_field(a, "stale_after_ms", "%lld", r->cfg->stale_after_ms);
    add_text(a, "state", state);
    add_text(a, "version", SALTRELAY_VERSION);
}

static void build_args(const struct report *r, struct report_args *a, const char *state)
{
    a->argv[0] = "HSET";
    a->argvlen[0] = 4;
    a->argv[1] = r->key;
    a->argvlen[1] = strlen(r->key);
    a->argc = 2;
    fixed_fields(r, a, state);
#define ADD_METRIC(name, id) add_field(a, name, "%lld", (long long)metric_get(M_##id));
    REPORT_FIELDS(ADD_METRIC)
#undef ADD_METRIC
}

/* Read the two pipelined replies; returns NULL or why the report failed.
 * An error reply (NOREPLICAS, READONLY, OOM) leaves the connection usable:
 * failing it would log a reconnect at every report. */
static const char *read_replies(struct report *r)
{
    static char why[160];
    const char *failed = NULL;
    for (int i = 0; i < 2; i++) {
        redisReply *rep = rconn_reply(r->rc);
        if (!rep)
            return "connection lost";
        if (rep->type != REDIS_REPLY_INTEGER && !failed) {
            snprintf(why, sizeof why, "%s", rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
            failed = why;
        }
        freeReplyObject(rep);
    }
    return failed;
}

static void send_report(struct report *r, const char *state)
{
    redisContext *c = rconn_get(r->rc);
    const char *why = "redis unreachable";
    if (c) {
        struct report_args a;
        build_args(r, &a, state);
        redisAppendCommandArgv(c, (int)a.argc, a.argv, a.argvlen);
        redisAppendCommand(c, "SADD %s %s", r->set_key, r->cfg->datacenter);
        why = read_replies(r);
    }
    if ((why != NULL) != r->failing)
        log_msg(why ? LOG_LVL_WARN : LOG_LVL_INFO, "DC report to redis_primary %s%s",
                why ? "fails: " : "works again", why ? why : "");
    r->failing = why != NULL;
}

/* Report every report_interval until $TERM. */
static void run_reports(struct report *r, struct part_ctx *ctx, zsock_t *pipe)
{
    long long interval = r->cfg->report_interval_ms > 0 ? r->cfg->report_interval_ms : 1000;
    long long due = clock_mono_ms();
    zpoller_t *poller = zpoller_new(pipe, NULL);
    zpoller_set_nonstop(poller, true);
    for (;;) {
        long long now = clock_mono_ms();
        part_alive(ctx, now);
        if (now >= due) {
            send_report(r, "running");
            due = now + interval;
        }
        long long wait = due - clock_mono_ms();
        if (zpoller_wait(poller, wait > TURN_MAX_MS ? TURN_MAX_MS : wait < 0 ? 0 : (int)wait) &&
            part_stop_requested(pipe))
            break;
    }
    zpoller_destroy(&poller);
}

void report_actor(zsock_t *pipe, void *args)
{
    struct part_ctx *ctx = args;
    struct report r = {.cfg = ctx->cfg, .started_at_ms = clock_wall_ms()};
    key_dc_status(r.key, r.cfg->cluster, r.cfg->datacenter);
    key_dc_set(r.set_key, r.cfg->cluster);
    r.rc = rconn_new(&r.cfg->redis_primary_url, "reports", REDIS_TIMEOUT_MS);
    part_started(pipe, ctx, r.rc != NULL);
    if (!r.rc)
        return;
    run_reports(&r, ctx, pipe);
    send_report(&r, "stopped");
    rconn_destroy(&r.rc);
}
