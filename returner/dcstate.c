/* dcstate.c -- read the DC reports and the stream head back from Redis and
 * judge each DC (see dcstate.h).
 *
 * Everything read here was written by another program and may be damaged or
 * from another version: each reply's type is checked, each number parsed
 * strictly; what is wrong is named on stderr and treated as unknown. */
#include "dcstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "pubrec.h"
#include "treefetch.h"

static const char *const field_names[DCF__COUNT] = {
#define REPORT_FIELD_NAME(name, id) name,
    REPORT_FIELDS(REPORT_FIELD_NAME)
#undef REPORT_FIELD_NAME
};

const char *dc_field_name(enum dc_field f) { return field_names[f]; }

const char *health_name(enum health h)
{
    return h == HEALTH_OK ? "ok" : h == HEALTH_WARN ? "warning" : "critical";
}


static int cmp_names(const void *a, const void *b) { return strcmp(a, b); }

int dc_list(struct rconn *rc, const struct config *cfg, char names[][DC_NAME_MAX], int max)
{
    char key[KEY_MAX];
    key_dc_set(key, cfg->cluster);
    redisReply *r = rconn_command(rc, "SMEMBERS %s", key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "saltrelay-status: SMEMBERS %s: %s\n", key,
                r && r->type == REDIS_REPLY_ERROR ? r->str : "no usable reply");
        freeReplyObject(r);
        return -1;
    }
    int n = 0;
    for (size_t i = 0; i < r->elements && n < max; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || !key_name_ok(e->str, e->len)) {
            fprintf(stderr, "saltrelay-status: %s holds an invalid DC name; ignored\n", key);
            continue;
        }
        memcpy(names[n], e->str, e->len);
        names[n++][e->len] = '\0';
    }
    if (r->elements > (size_t)max)
        fprintf(stderr, "saltrelay-status: more than %d DCs; only the first are shown\n", max);
    freeReplyObject(r);
    qsort(names, (size_t)n, DC_NAME_MAX, cmp_names);
    return n;
}

/* A non-negative decimal that fits a long long, or -1. */
static long long parse_count(const redisReply *v)
{
    uint64_t x;
    if (v->type != REDIS_REPLY_STRING || decimal_parse(v->str, v->len, &x) < 0 || x > INT64_MAX)
        return -1;
    return (long long)x;
}

/* Store one hash field; returns 0, or -1 if the field is known but its value bad. */
static int set_field(struct dc_state *dc, const char *f, const redisReply *v)
{
    if (!strcmp(f, "cursor"))
        return v->type == REDIS_REPLY_STRING && streamid_parse(v->str, v->len, &dc->cursor) == 0 ? 0 : -1;
    if (!strcmp(f, "state")) {
        dc->stopped = v->type == REDIS_REPLY_STRING && v->len == 7 && !memcmp(v->str, "stopped", 7);
        return 0;
    }
    long long *slot = !strcmp(f, "cursor_serial")     ? &dc->cursor_serial
                      : !strcmp(f, "delivered_at_ms") ? &dc->delivered_at_ms
                      : !strcmp(f, "reported_at_ms")  ? &dc->reported_at_ms
                                                      : NULL;
    for (int i = 0; !slot && i < DCF__COUNT; i++)
        if (!strcmp(f, field_names[i]))
            slot = &dc->counter[i];
    if (!slot)
        return 0; /* fields of another version are not ours to judge */
    *slot = parse_count(v);
    return *slot < 0 ? -1 : 0;
}

static void parse_report(struct dc_state *dc, const redisReply *r)
{
    int cursor_ok = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i];
        char f[32];
        if (k->type != REDIS_REPLY_STRING || k->len >= sizeof f)
            continue;
        memcpy(f, k->str, k->len);
        f[k->len] = '\0';
        if (set_field(dc, f, r->element[i + 1]) < 0)
            fprintf(stderr, "saltrelay-status: DC %s: report field %s has a bad value; shown as unknown\n",
                    dc->name, f);
        else if (!strcmp(f, "cursor"))
            cursor_ok = 1;
    }
    dc->reported = cursor_ok && dc->reported_at_ms > 0;
}

static long long scard(struct rconn *rc, const char *key)
{
    redisReply *r = rconn_command(rc, "SCARD %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

int dc_load(struct rconn *rc, const struct config *cfg, const char *name, long long now_ms,
            struct dc_state *dc)
{
    memset(dc, 0, sizeof *dc);
    snprintf(dc->name, sizeof dc->name, "%s", name);
    dc->cursor_serial = dc->delivered_at_ms = dc->reported_at_ms = -1;
    for (int i = 0; i < DCF__COUNT; i++)
        dc->counter[i] = -1;
    char key[KEY_MAX];
    key_dc_status(key, cfg->cluster, name);
    redisReply *r = rconn_command(rc, "HGETALL %s", key);
    if (!r)
        return -1;
    dc->never = r->type == REDIS_REPLY_ARRAY && r->elements == 0;
    if (r->type == REDIS_REPLY_ARRAY)
        parse_report(dc, r);
    else
        fprintf(stderr, "saltrelay-status: HGETALL %s: unexpected reply\n", key);
    freeReplyObject(r);
    key_dc_minions(key, cfg->cluster, name);
    dc->minions = scard(rc, key);
    dc->report_age_ms = dc->reported ? now_ms - dc->reported_at_ms : -1;
    dc->stale = !dc->reported || dc->report_age_ms > cfg->stale_after_ms;
    return 0;
}

/* The single entry of "CMD KEY FROM TO COUNT 1": 1 found, 0 none, -1 bad. */
static int one_entry(struct rconn *rc, const char *cmd, const char *key, const char *from, const char *to,
                     struct pubrec *rec)
{
    redisReply *r = rconn_command(rc, "%s %s %s %s COUNT 1", cmd, key, from, to);
    if (!r)
        return -1;
    const char *why;
    int rv = pubrec_range_one(r, rec, &why);
    if (rv < 0)
        fprintf(stderr, "saltrelay-status: %s %s %s %s: %s\n", cmd, key, from, to, why);
    freeReplyObject(r);
    return rv;
}

/* The newest tree version record, if tree sync publishes one. */
static int tree_head_load(struct rconn *rc, const struct config *cfg, struct stream_head *head)
{
    char key[KEY_MAX];
    const char *why;
    struct tree_head h;
    key_tree_head(key, cfg->cluster);
    enum tree_fetch_result res = tree_fetch_head(rc, key, &h, &why);
    if (res == TREE_FETCH_OK) {
        head->tree_version = h.version;
        head->tree_created_ms = (long long)h.created_ms;
    } else if (res == TREE_FETCH_BAD)
        fprintf(stderr, "saltrelay-status: GET %s: %s\n", key, why);
    tree_head_free(&h);
    return res == TREE_FETCH_REDIS ? -1 : 0;
}

int stream_head_load(struct rconn *rc, const struct config *cfg, struct stream_head *head)
{
    memset(head, 0, sizeof *head);
    if (tree_head_load(rc, cfg, head) < 0)
        return -1;
    if (strcmp(cfg->mode, "stream") != 0)
        return 0; /* channel mode keeps no stream: no lag to measure */
    char key[KEY_MAX];
    key_pub_stream(key, cfg->cluster);
    struct pubrec rec;
    int rv = one_entry(rc, "XREVRANGE", key, "+", "-", &rec);
    if (rv < 0)
        return rconn_get(rc) ? 0 : -1;
    head->known = 1;
    head->empty = rv == 0;
    head->id = rec.id;
    head->serial = rec.serial;
    return 0;
}

/* Entries after the DC's cursor: the first one tells their age and, by its
 * serial, their number (serials grow by one per publication). */
static int measure_lag(struct rconn *rc, const struct config *cfg, const struct stream_head *head,
                       struct dc_state *dc, long long now_ms)
{
    if (!head->known || !dc->reported)
        return 0;
    dc->lag_known = 1;
    if (head->empty || streamid_cmp(dc->cursor, head->id) >= 0)
        return 0;
    char key[KEY_MAX], from[STREAMID_STRLEN + 1] = "(";
    key_pub_stream(key, cfg->cluster);
    streamid_format(dc->cursor, from + 1);
    struct pubrec first;
    int rv = one_entry(rc, "XRANGE", key, from, "+", &first);
    dc->lag_known = rv > 0 && first.serial <= head->serial;
    if (rv < 0)
        return rconn_get(rc) ? 0 : -1;
    if (dc->lag_known) {
        dc->lag_entries = (long long)(head->serial - first.serial) + 1;
        dc->lag_ms = now_ms > (long long)first.id.ms ? now_ms - (long long)first.id.ms : 0;
    }
    return 0;
}

/* Health of the report itself: missing, stale or stopped. A DC named in the
 * set without any report is a warning, not critical: a saltrelay-down joins
 * the set only once it served, so this one never served (or its keys were
 * removed by hand); it shows until it reports or is forgotten. */
static enum health judge_report(const struct dc_state *dc, char *why, size_t len)
{
    if (dc->never)
        return snprintf(why, len, "never reported (saltrelay-status forget %s removes it)", dc->name), HEALTH_WARN;
    if (!dc->reported)
        return snprintf(why, len, "no valid report"), HEALTH_CRIT;
    if (dc->stale)
        return snprintf(why, len, "stale: last report %.1f s ago", dc->report_age_ms / 1000.0), HEALTH_CRIT;
    if (dc->stopped)
        return snprintf(why, len, "stopped %.1f s ago", dc->report_age_ms / 1000.0), HEALTH_CRIT;
    return HEALTH_OK;
}

static enum health judge_lag(const struct config *cfg, const struct dc_state *dc, char *why, size_t len)
{
    enum health h = HEALTH_OK;
    if (dc->lag_known && (dc->lag_entries >= cfg->status_crit_entries || dc->lag_ms >= cfg->status_crit_lag_ms))
        h = HEALTH_CRIT;
    else if (dc->lag_known && (dc->lag_entries >= cfg->status_warn_entries || dc->lag_ms >= cfg->status_warn_lag_ms))
        h = HEALTH_WARN;
    if (h != HEALTH_OK)
        snprintf(why, len, "behind by %lld publication(s), %.1f s", dc->lag_entries, dc->lag_ms / 1000.0);
    return h;
}

/* A DC with tree sync on an older version than the newest published. */
static enum health judge_tree(const struct config *cfg, const struct stream_head *head, struct dc_state *dc,
                              long long now_ms, char *why, size_t len)
{
    const long long *c = dc->counter;
    if (c[DCF_TREE_SYNC] != 1 || head->tree_version == 0 || c[DCF_TREE_VERSION] == (long long)head->tree_version)
        return HEALTH_OK;
    dc->tree_behind = 1;
    dc->tree_lag_ms = now_ms > head->tree_created_ms ? now_ms - head->tree_created_ms : 0;
    enum health h = dc->tree_lag_ms >= cfg->status_crit_tree_lag_ms   ? HEALTH_CRIT
                    : dc->tree_lag_ms >= cfg->status_warn_tree_lag_ms ? HEALTH_WARN
                                                                      : HEALTH_OK;
    if (h != HEALTH_OK)
        snprintf(why, len, "tree version %lld, newest %llu published %.0f s ago", c[DCF_TREE_VERSION],
                 (unsigned long long)head->tree_version, dc->tree_lag_ms / 1000.0);
    return h;
}

static enum health past(const struct config *cfg, long long ms)
{
    return ms >= cfg->status_crit_repl_ms ? HEALTH_CRIT : ms >= cfg->status_warn_repl_ms ? HEALTH_WARN : HEALTH_OK;
}

/* The Redis the DC reads publications from (replhealth.c): a replica whose
 * link is down warns at once, since nothing new reaches the DC. Fields a
 * report of an older version lacks (-1) are not judged. */
static enum health judge_source(const struct config *cfg, const struct dc_state *dc, char *why, size_t len)
{
    const long long *c = dc->counter;
    if (c[DCF_SOURCE_UP] == 0)
        return snprintf(why, len, "the Redis it reads does not answer"), HEALTH_WARN;
    if (c[DCF_REPL_LINK_UP] == 0 && c[DCF_REPL_LINK_DOWN_MS] >= 0) {
        enum health h = past(cfg, c[DCF_REPL_LINK_DOWN_MS]);
        snprintf(why, len, "replica link down for %.0f s", c[DCF_REPL_LINK_DOWN_MS] / 1000.0);
        return h > HEALTH_WARN ? h : HEALTH_WARN;
    }
    if (c[DCF_HEARTBEAT_SEEN_MS] > 0 && c[DCF_REPL_DELAY_MS] >= 0 && past(cfg, c[DCF_REPL_DELAY_MS])) {
        snprintf(why, len, "replication delay %.1f s", c[DCF_REPL_DELAY_MS] / 1000.0);
        return past(cfg, c[DCF_REPL_DELAY_MS]);
    }
    return HEALTH_OK;
}

static void judge(const struct config *cfg, const struct stream_head *head, struct dc_state *dc, long long now_ms)
{
    char lag[80] = "", source[80] = "", tree[100] = "";
    dc->health = judge_report(dc, dc->problem, sizeof dc->problem);
    if (dc->health != HEALTH_OK)
        return; /* what the report says is not current */
    enum health hl = judge_lag(cfg, dc, lag, sizeof lag), hs = judge_source(cfg, dc, source, sizeof source);
    enum health ht = judge_tree(cfg, head, dc, now_ms, tree, sizeof tree);
    dc->health = hl > hs ? hl : hs;
    dc->health = ht > dc->health ? ht : dc->health;
    snprintf(dc->problem, sizeof dc->problem, "%s%s%s%s%s", lag, *lag && *source ? "; " : "", source,
             (*lag || *source) && *tree ? "; " : "", tree);
}

int dc_assess(struct rconn *rc, const struct config *cfg, const struct stream_head *head,
              struct dc_state *dc, long long now_ms)
{
    if (measure_lag(rc, cfg, head, dc, now_ms) < 0)
        return -1;
    judge(cfg, head, dc, now_ms);
    return 0;
}
