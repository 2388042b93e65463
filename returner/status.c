/* status.c -- saltrelay-status: how far each DC is behind, read from the DC
 * reports in Redis (proto/dcreport.h), as a table or JSON (overview.c), with
 * an exit status a Nagios/Zabbix check can use; --watch redraws it
 * (status_watch.c); "job JID" accounts for one Salt job (status_job.c),
 * "minions [DC]" lists the registry (status_minions.c) and "forget DC"
 * retires a DC (status_forget.c).
 *
 * It reads saltrelay-up's config file (cluster, redis, mode, stale_after and
 * the status_* thresholds) through the daemons' own loader. */
#include "status.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "outfmt.h"
#include "overview.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: saltrelay-status -c FILE [--json | --watch] [job JID | minions [DC]]\n"
               "       saltrelay-status -c FILE forget DC\n"
               "  -c, --config FILE  saltrelay-up's configuration (cluster, redis, thresholds)\n"
               "      --json         machine-readable output\n"
               "      --watch        live view of the DCs, redrawn every second (Ctrl-C quits)\n"
               "      --job-cache DIR  the MoM's job cache (instead of job_cache_dir)\n"
               "  job JID            expected / returned / missing minions of one Salt job\n"
               "  minions [DC]       the minions the relays have seen, per DC\n"
               "  forget DC          retire a DC that is gone for good: its report, reply stream and\n"
               "                     minions (refused while its saltrelay-down runs)\n"
               "  -V, --version      print the version\n"
               "  -h, --help         this text\n"
               "Exit status: 0 ok, 1 warning, 2 critical (or an error).\n");
}

/* The DC overview once, as a table or JSON; the exit status is its verdict. */
static int status_overview(const struct status_opts *o)
{
    struct overview ov;
    if (overview_load(o->rc, o->cfg, &ov) < 0) {
        printf("%s\n", ov.error);
        return 2;
    }
    if (o->json)
        overview_print_json(&ov, o->cfg);
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
    int forget = rest == 2 && !strcmp(cmd, "forget");
    if (!*path || !(rest == 0 || (rest == 2 && !strcmp(cmd, "job")) || (rest <= 2 && !strcmp(cmd, "minions")) || forget) ||
        (*watch && (rest || *json)) || (forget && *json))
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
    const char *problem = !o.rc ? "out of memory" : !rconn_get(o.rc) ? rconn_problem(o.rc) : NULL;
    if (problem && cfg.redis_url.master[0])
        printf("SALTRELAY CRITICAL - Redis master '%s' %s (sentinels)\n", cfg.redis_url.master, problem);
    else if (problem)
        printf("SALTRELAY CRITICAL - Redis at %s:%d %s\n", cfg.redis_url.host, cfg.redis_url.port, problem);
    else
        rc = optind == argc                    ? (watch ? status_watch(&o) : status_overview(&o))
             : !strcmp(argv[optind], "job")    ? status_job(&o, argv[optind + 1])
             : !strcmp(argv[optind], "forget") ? status_forget(&o, argv[optind + 1])
                                               : status_minions(&o, argv[optind + 1]);
    rconn_destroy(&o.rc);
    config_free(&cfg);
    return rc;
}
