/* daemon.c -- program skeleton shared by both daemons; see daemon.h.
 *
 * The main thread owns no data path: it loads the config, starts the parts,
 * tells systemd when they are up and fed, and on SIGTERM/SIGINT stops them in
 * order (each stores or answers what it holds before it returns).
 *
 * Signals: SIGTERM, SIGINT and SIGHUP are blocked before any thread exists
 * (so every thread inherits the mask) and read by the main thread from a
 * signalfd; czmq's own handler is never installed (zsys_handler_set(NULL)),
 * so zsys_interrupted stays 0 and no czmq call in a part ends early. During
 * the stop, signals are logged and ignored: the whole stop, parts and
 * ZeroMQ's closing of its sockets, ends within stop_timeout (stopguard.h). */
#include "daemon.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics_http.h"
#include "stopguard.h"

#define MAX_PARTS 8
#define STALL_MS 10000 /* a part silent this long starves the watchdog */
#define MMAP_THRESHOLD (256 * 1024)
#define STOP_POLL_MS 200 /* signals during the stop are logged this often */

/* Block the signals the main thread takes; the signalfd to read them, or -1. */
static int signals_take(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* The next signal received, waiting up to TIMEOUT_MS for it; 0 if none. */
static int signal_next(int sfd, int timeout_ms)
{
    struct pollfd pfd = {.fd = sfd, .events = POLLIN};
    struct signalfd_siginfo si;
    if (poll(&pfd, 1, timeout_ms) <= 0 || read(sfd, &si, sizeof si) != (ssize_t)sizeof si)
        return 0;
    return (int)si.ssi_signo;
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

/* The name of a part silent for STALL_MS, or NULL if every part turns. */
static const char *part_stalled(struct part **parts, size_t n, long long now)
{
    for (size_t i = 0; i < n; i++)
        if (now - part_last_turn(parts[i]) > STALL_MS)
            return part_name(parts[i]);
    return NULL;
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

/* Act on signal SIG while running; 1 if it asks to stop. */
static int take_signal(const struct config *cfg, int sig)
{
    if (sig == SIGHUP)
        reload(cfg);
    return sig == SIGTERM || sig == SIGINT;
}

struct signal_ctx {
    const struct config *cfg;
    int sfd;
};

/* daemon_signal_wait, for the gate's READY check. */
static int wait_signal(void *arg, int timeout_ms)
{
    struct signal_ctx *c = arg;
    return take_signal(c->cfg, signal_next(c->sfd, timeout_ms));
}

void daemon_waiting(const char *why)
{
    health_waiting(why);
    sd_notifyf(0, "STATUS=waiting: %s", why);
}

/* Serve until a stop signal (0) or until the gate says this daemon lost its
 * place (1). */
static int run_until_signal(const struct config *cfg, int sfd, struct part **parts, size_t n,
                            const struct daemon_gate *gate, void *gated)
{
    uint64_t wd_usec = 0;
    int watchdog = sd_watchdog_enabled(0, &wd_usec) > 0;
    int stalled = 0;
    for (;;) {
        int sig = signal_next(sfd, watchdog && wd_usec / 4000 < 500 ? (int)(wd_usec / 4000) + 1 : 500);
        const char *silent = part_stalled(parts, n, clock_mono_ms());
        int ok = !silent;
        if (watchdog && ok)
            sd_notify(0, "WATCHDOG=1");
        health_set(ok ? HEALTH_SERVING : HEALTH_STALLED, silent);
        if ((!ok) != stalled)
            log_msg(ok ? LOG_LVL_INFO : LOG_LVL_ERROR, "worker threads %s%s", ok ? "running again" : "stalled: ",
                    ok ? "" : silent);
        stalled = !ok;
        char why[400];
        if (gate->lost(gated, why, sizeof why)) {
            log_error("stepping down: %s", why);
            return 1;
        }
        if (take_signal(cfg, sig))
            return 0;
    }
}

/* Stop the parts in reverse order, each waited for until its thread ended:
 * a signal now cannot cut a drain short nor free what a part still reads.
 * A part that never ends is the stop guard's (stopguard.h): it ends the
 * process at stop_timeout, naming the part. */
static void stop_parts(int sfd, struct part **parts, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        const char *name = part_name(parts[i]);
        stopguard_waiting_for(name, 1);
        part_stop_request(parts[i]);
        while (!part_wait(&parts[i], STOP_POLL_MS)) {
            int sig;
            while ((sig = signal_next(sfd, 0)) != 0)
                log_warn("%s while stopping (%s draining): ignored; the drain is bounded (the stop by stop_timeout)",
                         strsignal(sig), name);
        }
    }
    /* exit() then waits in zmq_ctx_term until libzmq closed every socket;
     * past every linger that only costs time (N^2 with N filtered
     * subscribers still connected: docs/performance-history.md) */
    stopguard_waiting_for("ZeroMQ closing its sockets", 0);
    stopguard_limit(STOPGUARD_CLOSE_MS);
}

/* Start the parts; the number started (all N, or fewer if one failed). */
static size_t start_parts(const struct config *cfg, const struct part_def **defs, size_t n, struct part **parts)
{
    for (size_t i = 0; i < n; i++)
        if (!(parts[i] = part_start(defs[i], cfg))) {
            log_error("cannot start %s; stopping", defs[i]->name);
            return i;
        }
    return n;
}

static int run(const struct config *cfg, int sfd, const char *progname, part_picker pick,
               const struct daemon_gate *gate)
{
    const struct part_def *defs[MAX_PARTS];
    struct part *parts[MAX_PARTS];
    size_t n = pick(cfg, defs, MAX_PARTS);
    log_info("%s %s starting (cluster %s, mode %s)", progname, SALTRELAY_VERSION, cfg->cluster, cfg->mode);
    void *gated = gate->open(cfg);
    struct signal_ctx sc = {cfg, sfd};
    int claim = gate->claim(gated, cfg, wait_signal, &sc), claimed = claim == 0, lost = claim == -2;
    size_t started = claimed ? start_parts(cfg, defs, n, parts) : 0;
    if (claimed && started == n && gate->ready(cfg, wait_signal, &sc) == 0) {
        sd_notify(0, "READY=1\nSTATUS=serving");
        health_set(HEALTH_SERVING, NULL);
        log_info("ready");
        lost = run_until_signal(cfg, sfd, parts, n, gate, gated);
    }
    sd_notify(0, "STOPPING=1");
    health_set(HEALTH_STOPPING, NULL);
    stopguard_start(cfg->stop_timeout_ms, cfg->role == CONFIG_DOWN ? cfg->state_dir : "");
    if (started == n && claimed)
        log_info("stopping: draining what is in flight");
    stop_parts(sfd, parts, started);
    gate->close(gated);
    return (!claimed || started == n) && !lost ? 0 : 1;
}

int daemon_main(int argc, char **argv, int role, const char *progname, part_picker pick,
                const struct daemon_gate *gate)
{
    /* before any thread exists, so that every thread inherits the mask */
    int sfd = signals_take();
    if (sfd < 0) {
        fprintf(stderr, "%s: cannot take signals: %s\n", progname, strerror(errno));
        return 1;
    }
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
    if (config_load(&cfg, role, path, err, sizeof err) < 0 || config_check_state_dir(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", progname, err);
        config_free(&cfg);
        return 2;
    }
    if (check) {
        config_print(&cfg, stdout);
        config_free(&cfg);
        return 0;
    }
    if (config_make_state_dir(&cfg) < 0) { /* checked above: only a race gets here */
        fprintf(stderr, "%s: cannot create state_dir %s: %s\n", progname, cfg.state_dir, strerror(errno));
        config_free(&cfg);
        return 1;
    }
    log_init(progname, (enum log_level)log_level_parse(cfg.log_level));
    if (log_open_file(cfg.log_file) < 0) {
        fprintf(stderr, "%s: cannot open log_file %s\n", progname, cfg.log_file);
        config_free(&cfg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Frames this large each get their own mapping, returned to the system
     * when freed: glibc's threshold would otherwise rise to 32 MiB after the
     * first such free and keep a burst of 1 MiB requests in the heap for good. */
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    zsys_handler_set(NULL); /* before zsys_init: czmq installs no handler, zsys_interrupted stays 0 */
    zsys_init();
    zsys_set_logstream(NULL); /* czmq's own messages would break our line format */

    struct metrics_http *mh = NULL;
    if (*cfg.metrics_bind && !(mh = metrics_http_start(&cfg, err, sizeof err))) {
        log_error("%s", err);
        config_free(&cfg);
        return 1;
    }
    if (mh)
        log_info("serving Prometheus metrics on %s (GET /metrics, GET /healthz)", cfg.metrics_bind);
    int rc = run(&cfg, sfd, progname, pick, gate);
    metrics_http_stop(&mh);
    log_info("stopped");
    config_free(&cfg);
    close(sfd);
    return rc;
}
