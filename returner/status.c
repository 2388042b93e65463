/* status.c -- saltrelay-status: how far each DC is behind, read from the DC
 * reports in Redis (proto/dcreport.h), as a table or JSON, with an exit status a
 * Nagios/Zabbix check can use. "job JID" accounts for one Salt job
 * (statusjob.c).
 *
 * It reads saltrelay-up's config file (cluster, redis, mode, stale_after and
 * the status_* thresholds) through the daemons' own loader. */
#include "status.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dcstate.h"
#include "log.h"
#include "outfmt.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: saltrelay-status -c FILE [--json] [job JID]\n"
               "  -c, --config FILE  saltrelay-up's configuration (cluster, redis, thresholds)\n"
               "      --json         machine-readable output\n"
               "  job JID            expected / returned / missing minions of one Salt job\n"
               "  -V, --version      print the version\n"
               "  -h, --help         this text\n"
               "Exit status: 0 ok, 1 warning, 2 critical (or an error).\n");
}

/* "12", or "?" when unknown (negative). */
static const char *num(long long v, char *buf)
{
    if (v < 0)
        return "?";
    snprintf(buf, 24, "%lld", v);
    return buf;
}

/* The REPL_S cell, the Redis the DC reads as replhealth.c saw it: the
 * replication delay in seconds, "down" (replica link down), "noanswer",
 * "-" (it reads the primary) or "?" (no heartbeat or an older report). */
static void repl_cell(struct table *t, const struct dc_state *dc)
{
    const long long *c = dc->counter;
    if (c[DCF_SOURCE_UP] == 0)
        table_cell(t, "noanswer");
    else if (c[DCF_REPL_LINK_UP] == 0)
        table_cell(t, "down");
    else if (c[DCF_SOURCE_REPLICA] == 0)
        table_cell(t, "-");
    else if (c[DCF_HEARTBEAT_SEEN_MS] > 0 && c[DCF_REPL_DELAY_MS] >= 0)
        table_cell(t, "%.1f", c[DCF_REPL_DELAY_MS] / 1000.0);
    else
        table_cell(t, "?");
}

static void text_row(struct table *t, const struct dc_state *dc)
{
    char b[24];
    table_row(t, dc->health);
    table_cell(t, "%s", dc->name);
    table_cell(t, "%s", dc->health == HEALTH_OK ? "ok" : dc->stale ? "stale" : dc->stopped ? "stopped"
                                                                                     : health_name(dc->health));
    table_cell(t, "%s", dc->lag_known ? num(dc->lag_entries, b) : "?");
    table_cell(t, dc->lag_known ? "%.1f" : "?", dc->lag_ms / 1000.0);
    repl_cell(t, dc);
    table_cell(t, "%s", num(dc->counter[DCF_SUBSCRIBERS], b));
    table_cell(t, "%s", num(dc->minions, b));
    table_cell(t, "%s", num(dc->counter[DCF_REQ_INFLIGHT], b));
    table_cell(t, "%s", num(dc->counter[DCF_REQ_TIMEOUT], b));
    table_cell(t, "%s", num(dc->counter[DCF_PUB_EXPIRED], b));
    table_cell(t, "%s", num(dc->counter[DCF_PUB_GAP], b));
    table_cell(t, dc->reported ? "%.1f s ago" : "never", dc->report_age_ms / 1000.0);
}

static void print_summary(const struct dc_state *dcs, int n, enum health worst, const struct stream_head *head,
                          int colour)
{
    printf("%sSALTRELAY %s%s - ", health_colour(worst, colour), worst == HEALTH_OK ? "OK" : worst == HEALTH_WARN ? "WARNING" : "CRITICAL",
           colour_reset(colour));
    if (n == 0)
        printf("no DC has reported yet");
    const char *sep = "";
    for (int i = 0; i < n; i++)
        if (dcs[i].health != HEALTH_OK) {
            printf("%s%s: %s", sep, dcs[i].name, dcs[i].problem);
            sep = "; ";
        }
    if (worst == HEALTH_OK && n > 0)
        printf("%d DC(s) up to date", n);
    if (head->known && !head->empty)
        printf(" | newest publication serial %llu", (unsigned long long)head->serial);
    putchar('\n');
}

static void print_text(const struct dc_state *dcs, int n, enum health worst, const struct stream_head *head,
                       int colour)
{
    static const char *const heads[] = {"DC",     "HEALTH",   "LAG",      "LAG_S",   "REPL_S", "SUBS", "MINIONS",
                                        "INFLIGHT", "TIMEOUTS", "EXPIRED", "GAPS", "REPORTED", NULL};
    print_summary(dcs, n, worst, head, colour);
    if (n == 0)
        return;
    struct table t;
    table_init(&t, heads);
    for (int i = 0; i < n; i++)
        text_row(&t, &dcs[i]);
    table_print(&t, stdout, colour);
    table_free(&t);
}

/* ', "KEY": V', or null when unknown (negative). */
static void json_num(const char *key, long long v)
{
    if (v < 0)
        printf(", \"%s\": null", key);
    else
        printf(", \"%s\": %lld", key, v);
}

static void json_dc(const struct dc_state *dc)
{
    char id[STREAMID_STRLEN];
    printf("    {\"name\": \"%s\", \"health\": \"%s\", \"problem\": ", dc->name, health_name(dc->health));
    json_string(stdout, dc->problem, strlen(dc->problem));
    printf(", \"stale\": %s, \"stopped\": %s, \"cursor\": \"%s\"", dc->stale ? "true" : "false",
           dc->stopped ? "true" : "false", streamid_format(dc->cursor, id));
    json_num("cursor_serial", dc->cursor_serial);
    json_num("delivered_at_ms", dc->delivered_at_ms);
    json_num("reported_at_ms", dc->reported_at_ms);
    json_num("report_age_ms", dc->report_age_ms);
    json_num("lag_entries", dc->lag_known ? dc->lag_entries : -1);
    json_num("lag_ms", dc->lag_known ? dc->lag_ms : -1);
    json_num("minions", dc->minions);
    for (int f = 0; f < DCF__COUNT; f++)
        json_num(dc_field_name((enum dc_field)f), dc->counter[f]);
    printf("}");
}

static void print_json(const struct dc_state *dcs, int n, enum health worst, const struct stream_head *head,
                       const struct config *cfg)
{
    char id[STREAMID_STRLEN];
    printf("{\"cluster\": \"%s\", \"health\": \"%s\", \"exit\": %d,\n", cfg->cluster, health_name(worst),
           (int)worst);
    if (head->known && !head->empty)
        printf(" \"newest\": {\"id\": \"%s\", \"serial\": %llu},\n", streamid_format(head->id, id),
               (unsigned long long)head->serial);
    printf(" \"thresholds\": {\"stale_after_ms\": %lld, \"warn_lag_ms\": %lld, \"crit_lag_ms\": %lld, "
           "\"warn_entries\": %lld, \"crit_entries\": %lld, \"warn_replication_ms\": %lld, "
           "\"crit_replication_ms\": %lld},\n \"dcs\": [\n",
           cfg->stale_after_ms, cfg->status_warn_lag_ms, cfg->status_crit_lag_ms, cfg->status_warn_entries,
           cfg->status_crit_entries, cfg->status_warn_repl_ms, cfg->status_crit_repl_ms);
    for (int i = 0; i < n; i++) {
        json_dc(&dcs[i]);
        printf(i + 1 < n ? ",\n" : "\n");
    }
    printf(" ]}\n");
}

int status_overview(const struct status_opts *o)
{
    static char names[STATUS_MAX_DCS][DC_NAME_MAX];
    int n = dc_list(o->rc, o->cfg, names, STATUS_MAX_DCS);
    struct stream_head head;
    if (n < 0 || stream_head_load(o->rc, o->cfg, &head) < 0) {
        printf("SALTRELAY CRITICAL - cannot read the cluster's state from Redis\n");
        return 2;
    }
    struct dc_state *dcs = calloc((size_t)n + 1, sizeof *dcs);
    enum health worst = n ? HEALTH_OK : HEALTH_WARN;
    long long now = clock_wall_ms();
    for (int i = 0; dcs && i < n; i++) {
        if (dc_load(o->rc, o->cfg, names[i], now, &dcs[i]) < 0 || dc_assess(o->rc, o->cfg, &head, &dcs[i], now) < 0) {
            printf("SALTRELAY CRITICAL - Redis failed while reading DC %s\n", names[i]);
            free(dcs);
            return 2;
        }
        if (dcs[i].health > worst)
            worst = dcs[i].health;
    }
    if (!dcs)
        return 2;
    if (o->json)
        print_json(dcs, n, worst, &head, o->cfg);
    else
        print_text(dcs, n, worst, &head, o->colour);
    free(dcs);
    return (int)worst;
}

static int parse_args(int argc, char **argv, const char **path, int *json)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"json", no_argument, 0, 'j'},
                                         {"version", no_argument, 0, 'V'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "+c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': *path = optarg; break;
        case 'j': *json = 1; break;
        case 'V': printf("saltrelay-status %s\n", SALTRELAY_VERSION); exit(0);
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    int rest = argc - optind;
    if (!*path || !(rest == 0 || (rest == 2 && !strcmp(argv[optind], "job"))))
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    if (parse_args(argc, argv, &path, &json) < 0) {
        usage(stderr);
        return 2;
    }
    struct config cfg;
    char err[600];
    if (config_load(&cfg, CONFIG_UP, path, err, sizeof err) < 0) {
        fprintf(stderr, "saltrelay-status: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    log_init("saltrelay-status", LOG_LVL_WARN);
    struct status_opts o = {.cfg = &cfg, .json = json, .colour = !json && want_colour()};
    o.rc = rconn_new(&cfg.redis_url, "status", 3000);
    int rc = 2;
    if (!o.rc || !rconn_get(o.rc))
        printf(cfg.redis_url.master[0] ? "SALTRELAY CRITICAL - Redis master '%s' unreachable (sentinels)\n"
                                       : "SALTRELAY CRITICAL - Redis at %s:%d unreachable\n",
               cfg.redis_url.master[0] ? cfg.redis_url.master : cfg.redis_url.host, cfg.redis_url.port);
    else
        rc = optind < argc ? status_job(&o, argv[optind + 1]) : status_overview(&o);
    rconn_destroy(&o.rc);
    config_free(&cfg);
    return rc;
}
