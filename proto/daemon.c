/* daemon.c -- program skeleton shared by both daemons; see daemon.h.
 *
 * The main thread owns no data path: it loads the config, starts the parts,
 * tells systemd when they are up and fed, and on SIGTERM/SIGINT stops them in
 * order (each stores or answers what it holds before it returns). */
#include "daemon.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "clock.h"
#include "log.h"
#include "metrics_http.h"
#include "rconn.h"

#define MAX_PARTS 8
#define STALL_MS 10000 /* a part silent this long starves the watchdog */
#define TURN_MAX_MS 500 /* part_every marks its part alive at least this often */

static volatile sig_atomic_t got_hup;

static void on_hup(int sig)
{
    (void)sig;
    got_hup = 1;
}

void part_started(zsock_t *pipe, struct part_ctx *ctx, int ok)
{
    if (!ok)
        atomic_store(&ctx->failed, 1);
    zsock_signal(pipe, ok ? 0 : 1);
}

int part_stop_requested(zsock_t *pipe)
{
    char *cmd = zstr_recv(pipe);
    int stop = !cmd || strcmp(cmd, "$TERM") == 0;
    free(cmd);
    return stop;
}

void part_every(zsock_t *pipe, struct part_ctx *ctx, long long interval_ms, void (*turn)(void *arg),
                void *arg)
{
    long long interval = interval_ms > 0 ? interval_ms : 1000;
    long long due = clock_mono_ms();
    zpoller_t *poller = zpoller_new(pipe, NULL);
    zpoller_set_nonstop(poller, true);
    for (;;) {
        long long now = clock_mono_ms();
        part_alive(ctx, now);
        if (now >= due) {
            turn(arg);
            due = now + interval;
        }
        long long wait = due - clock_mono_ms();
        if (zpoller_wait(poller, wait > TURN_MAX_MS ? TURN_MAX_MS : wait < 0 ? 0 : (int)wait) &&
            part_stop_requested(pipe))
            break;
    }
    zpoller_destroy(&poller);
}

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "Usage: %s -c FILE [--check-config]\n"
            "  -c, --config FILE   YAML configuration (see /etc/saltrelay/)\n"
            "      --check-config  validate FILE, print the effective configuration, exit 0 or 2\n"
            "  -V, --version       print the version\n"
            "  -h, --help          this text\n"
            "Runs in the foreground and logs to stderr (or log_file). SIGTERM/SIGINT drain and\n"
            "exit 0; SIGHUP re-reads FILE: log_level and log_file apply at once, other\n"
            "changed keys are logged as needing a restart. A bad config exits 2.\n",
            prog);
}

/* Wait (bounded, interruptible) until Redis answers, so READY=1 means it. */
static void wait_for_redis(const struct config *cfg)
{
    struct rconn *rc = rconn_new(cfg->role == CONFIG_DOWN ? &cfg->redis_primary_url : &cfg->redis_url,
                                 "startup check", 2000);
    while (!zsys_interrupted && !rconn_get(rc))
        zclock_sleep(rconn_retry_in_ms(rc) > 200 ? 200 : rconn_retry_in_ms(rc) + 1);
    rconn_destroy(&rc);
}

static int parts_alive(struct part_ctx *ctx, size_t n, long long now)
{
    for (size_t i = 0; i < n; i++)
        if (now - atomic_load(&ctx[i].alive_ms) > STALL_MS)
            return 0;
    return 1;
}

/* CFG as --check-config prints it, in a malloc'd string. */
static char *config_text(const struct config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f) {
        config_print(cfg, f);
        fclose(f);
    }
    return buf;
}

/* Log each key whose effective value differs between OLD and NEW, except
 * those a reload applies. Both texts list the same keys in the same order. */
static void name_changed_keys(const char *old, const char *new, const char *path)
{
    while (old && new && *old && *new) {
        size_t ol = strcspn(old, "\n"), nl = strcspn(new, "\n");
        size_t kl = strcspn(new, ":");
        int applied = !strncmp(new, "log_level:", 10) || !strncmp(new, "log_file:", 9);
        if (*new != '#' && !applied && (ol != nl || memcmp(old, new, ol) != 0))
            log_warn("SIGHUP: %.*s changed in %s: restart to apply it", (int)kl, new, path);
        old += ol + (old[ol] == '\n');
        new += nl + (new[nl] == '\n');
    }
}

/* SIGHUP: re-read the file. log_level and log_file take effect at once; the
 * worker threads keep the configuration they started with (they read it
 * without locks), so any other change is named as needing a restart. */
static void reload(const struct config *cfg)
{
    struct config fresh;
    char err[600];
    if (config_load(&fresh, cfg->role, cfg->path, err, sizeof err) < 0) {
        log_error("SIGHUP: %s; keeping the running configuration", err);
        config_free(&fresh);
        return;
    }
    log_set_level((enum log_level)log_level_parse(fresh.log_level));
    int reopened = log_open_file(fresh.log_file) == 0;
    if (!reopened) /* the log stays where it was: say so there, not "stderr" */
        log_error("SIGHUP: cannot open log_file %s (%s); still logging where it did before", fresh.log_file,
                  strerror(errno));
    log_info("SIGHUP: configuration re-read: log_level %s%s", fresh.log_level, reopened ? ", log file reopened" : "");
    char *old = config_text(cfg), *new = config_text(&fresh);
    name_changed_keys(old, new, cfg->path);
    free(old);
    free(new);
    config_free(&fresh);
}

static void run_until_signal(const struct config *cfg, struct part_ctx *ctx, size_t n)
{
    uint64_t wd_usec = 0;
    int watchdog = sd_watchdog_enabled(0, &wd_usec) > 0;
    int stalled = 0;
    while (!zsys_interrupted) {
        zclock_sleep(watchdog && wd_usec / 4000 < 500 ? (int)(wd_usec / 4000) + 1 : 500);
        long long now = clock_mono_ms();
        int ok = parts_alive(ctx, n, now);
        if (watchdog && ok)
            sd_notify(0, "WATCHDOG=1");
        if ((!ok) != stalled)
            log_msg(ok ? LOG_LVL_INFO : LOG_LVL_ERROR, "worker threads %s", ok ? "running again" : "stalled");
        stalled = !ok;
        if (got_hup) {
            got_hup = 0;
            reload(cfg);
        }
    }
}

int daemon_main(int argc, char **argv, int role, const char *progname, part_picker pick)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"check-config", no_argument, 0, 'k'},
                                         {"version", no_argument, 0, 'V'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *path = NULL;
    int check = 0, c;
    while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'k': check = 1; break;
        case 'V': printf("%s %s\n", progname, SALTRELAY_VERSION); return 0;
        case 'h': usage(stdout, progname); return 0;
        default: usage(stderr, progname); return 2;
        }
    }
    if (!path || optind != argc) {
        usage(stderr, progname);
        return 2;
    }
    struct config cfg;
    char err[600];
    if (config_load(&cfg, role, path, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", progname, err);
        config_free(&cfg);
        return 2;
    }
    if (check) {
        config_print(&cfg, stdout);
        config_free(&cfg);
        return 0;
    }
    log_init(progname, (enum log_level)log_level_parse(cfg.log_level));
    if (log_open_file(cfg.log_file) < 0) {
        fprintf(stderr, "%s: cannot open log_file %s\n", progname, cfg.log_file);
        config_free(&cfg);
        return 2;
    }
    signal(SIGHUP, on_hup);
    signal(SIGPIPE, SIG_IGN);
    zsys_init();
    zsys_set_logstream(NULL); /* czmq's own messages would break our line format */

    struct metrics_http *mh = NULL;
    if (*cfg.metrics_bind && !(mh = metrics_http_start(&cfg, err, sizeof err))) {
        log_error("%s", err);
        config_free(&cfg);
        return 1;
    }
    if (mh)
        log_info("serving Prometheus metrics on %s (GET /metrics)", cfg.metrics_bind);
    struct part parts[MAX_PARTS];
    size_t n = pick(&cfg, parts, MAX_PARTS);
    struct part_ctx ctx[MAX_PARTS];
    zactor_t *actors[MAX_PARTS] = {0};
    int rc = 0;
    log_info("%s %s starting (cluster %s, mode %s)", progname, SALTRELAY_VERSION, cfg.cluster, cfg.mode);
    for (size_t i = 0; i < n; i++) {
        ctx[i].cfg = &cfg;
        atomic_store(&ctx[i].alive_ms, clock_mono_ms());
        atomic_store(&ctx[i].failed, 0);
        actors[i] = zactor_new(parts[i].fn, &ctx[i]);
        if (!actors[i] || atomic_load(&ctx[i].failed)) {
            log_error("cannot start %s; stopping", parts[i].name);
            rc = 1;
            break;
        }
    }
    if (rc == 0) {
        wait_for_redis(&cfg);
        sd_notify(0, "READY=1");
        log_info("ready");
        run_until_signal(&cfg, ctx, n);
        sd_notify(0, "STOPPING=1");
        log_info("stopping: draining what is in flight");
    }
    for (size_t i = n; i-- > 0;)
        zactor_destroy(&actors[i]);
    metrics_http_stop(&mh);
    log_info("stopped");
    config_free(&cfg);
    return rc;
}
