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
    fprintf(f, "Usage: saltrelay-status -c FILE [--json | --watch] [job JID | minions [DC]]\n"
               "  -c, --config FILE  saltrelay-up's configuration (cluster, redis, thresholds)\n"
               "      --json         machine-readable output\n"
               "      --watch        live view of the DCs, redrawn every second (Ctrl-C quits)\n"
               "      --job-cache DIR  the MoM's job cache (instead of job_cache_dir)\n"
               "  job JID            expected / returned / missing minions of one Salt job\n"
               "  minions [DC]       the minions the relays have seen, per DC\n"
               "  -V, --version      print the version\n"
               "  -h, --help         this text\n"
               "Exit status: 0 ok, 1 warning, 2 critical (or an error).\n");
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
    printf(", \"tree_behind\": %s", dc->tree_behind ? "true" : "false");
    json_num("tree_lag_ms", dc->tree_behind ? dc->tree_lag_ms : -1);
    for (int f = 0; f < DCF__COUNT; f++)
        json_num(dc_field_name((enum dc_field)f), dc->counter[f]);
    printf("}");
}

static void print_json(const struct overview *ov, const struct config *cfg)
{
    const struct dc_state *dcs = ov->dcs;
    const struct stream_head *head = &ov->head;
    int n = ov->n;
    enum health worst = ov->worst;
    char id[STREAMID_STRLEN];
    printf("{\"cluster\": \"%s\", \"health\": \"%s\", \"exit\": %d,\n", cfg->cluster, health_name(worst),
           (int)worst);
    if (head->known && !head->empty)
        printf(" \"newest\": {\"id\": \"%s\", \"serial\": %llu},\n", streamid_format(head->id, id),
               (unsigned long long)head->serial);
    if (head->tree_version)
        printf(" \"tree\": {\"version\": %llu, \"created_ms\": %lld},\n", (unsigned long long)head->tree_version,
               head->tree_created_ms);
    printf(" \"thresholds\": {\"stale_after_ms\": %lld, \"warn_lag_ms\": %lld, \"crit_lag_ms\": %lld, "
           "\"warn_entries\": %lld, \"crit_entries\": %lld, \"warn_replication_ms\": %lld, "
           "\"crit_replication_ms\": %lld, \"warn_tree_lag_ms\": %lld, \"crit_tree_lag_ms\": %lld},\n",
           cfg->stale_after_ms, cfg->status_warn_lag_ms, cfg->status_crit_lag_ms, cfg->status_warn_entries,
           cfg->status_crit_entries, cfg->status_warn_repl_ms, cfg->status_crit_repl_ms,
           cfg->status_warn_tree_lag_ms, cfg->status_crit_tree_lag_ms);
    ups_print_json(&ov->ups, ov->at_ms, stdout);
    printf(" \"dcs\": [\n");
    for (int i = 0; i < n; i++) {
        json_dc(&dcs[i]);
        printf(i + 1 < n ? ",\n" : "\n");
    }
    printf(" ]}\n");
}

int overview_load(const struct status_opts *o, struct overview *ov)
{
    static char names[STATUS_MAX_DCS][DC_NAME_MAX];
    memset(ov, 0, sizeof *ov);
    ov->n = dc_list(o->rc, o->cfg, names, STATUS_MAX_DCS);
    if (ov->n < 0 || stream_head_load(o->rc, o->cfg, &ov->head) < 0 ||
        ups_load(o->rc, o->cfg, clock_wall_ms(), &ov->ups) < 0) {
        snprintf(ov->error, sizeof ov->error, "SALTRELAY CRITICAL - cannot read the cluster's state from Redis");
        return -1;
    }
    ov->dcs = calloc((size_t)ov->n + 1, sizeof *ov->dcs);
    if (!ov->dcs)
        return -1;
    ov->worst = ov->n ? HEALTH_OK : HEALTH_WARN;
    ov->at_ms = clock_wall_ms();
    for (int i = 0; i < ov->n; i++) {
        struct dc_state *dc = &ov->dcs[i];
        if (dc_load(o->rc, o->cfg, names[i], ov->at_ms, dc) < 0 || dc_assess(o->rc, o->cfg, &ov->head, dc, ov->at_ms) < 0) {
            snprintf(ov->error, sizeof ov->error, "SALTRELAY CRITICAL - Redis failed while reading DC %s", names[i]);
            overview_free(ov);
            return -1;
        }
        if (dc->health > ov->worst)
            ov->worst = dc->health;
    }
    return 0;
}

void overview_free(struct overview *ov)
{
    free(ov->dcs);
    ov->dcs = NULL;
    ov->n = 0;
}

int status_overview(const struct status_opts *o)
{
    struct overview ov;
    if (overview_load(o, &ov) < 0) {
        printf("%s\n", ov.error);
        return 2;
    }
    if (o->json)
        print_json(&ov, o->cfg);
    else
        overview_print_text(&ov, NULL, o->colour, stdout);
    overview_free(&ov);
    return (int)ov.worst;
}

static int parse_args(int argc, char **argv, const char **path, int *json, int *watch, const char **jobs)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"json", no_argument, 0, 'j'},
                                         {"watch", no_argument, 0, 'w'},
                                         {"job-cache", required_argument, 0, 'J'},
                                         {"version", no_argument, 0, 'V'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "+c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': *path = optarg; break;
        case 'j': *json = 1; break;
        case 'w': *watch = 1; break;
        case 'J': *jobs = optarg; break;
        case 'V': printf("saltrelay-status %s\n", SALTRELAY_VERSION); exit(0);
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    int rest = argc - optind;
    const char *cmd = rest ? argv[optind] : "";
    if (!*path || !(rest == 0 || (rest == 2 && !strcmp(cmd, "job")) || (rest <= 2 && !strcmp(cmd, "minions"))) ||
        (*watch && (rest || *json)))
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *jobs = NULL;
    int json = 0, watch = 0;
    if (parse_args(argc, argv, &path, &json, &watch, &jobs) < 0) {
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
    if (jobs && (free(cfg.job_cache_dir), !(cfg.job_cache_dir = strdup(jobs))))
        return 2;
    log_init("saltrelay-status", LOG_LVL_WARN);
    struct status_opts o = {.cfg = &cfg, .json = json, .colour = !json && want_colour(), .watch = watch};
    o.rc = rconn_new(&cfg.redis_url, "status", 3000);
    int rc = 2;
    if (!o.rc || !rconn_get(o.rc))
        printf(cfg.redis_url.master[0] ? "SALTRELAY CRITICAL - Redis master '%s' unreachable (sentinels)\n"
                                       : "SALTRELAY CRITICAL - Redis at %s:%d unreachable\n",
               cfg.redis_url.master[0] ? cfg.redis_url.master : cfg.redis_url.host, cfg.redis_url.port);
    else
        rc = optind == argc                    ? (watch ? status_watch(&o) : status_overview(&o))
             : !strcmp(argv[optind], "job") ? status_job(&o, argv[optind + 1])
                                            : status_minions(&o, argv[optind + 1]);
    rconn_destroy(&o.rc);
    config_free(&cfg);
    return rc;
}
