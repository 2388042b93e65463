/* metrics_http.c -- Prometheus text exposition over HTTP (metrics_http.h).
 *
 * The page is rendered on each scrape from the relaxed atomics, so a scrape
 * never blocks a data path. libmicrohttpd runs its own polling thread, with
 * a small connection limit and timeout so a stuck scraper costs little. */
#include "metrics_http.h"

#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"

#define PREFIX "saltrelay_"
#define MAX_CONNECTIONS 8
#define CONNECTION_TIMEOUT_S 10

struct metrics_http {
    struct MHD_Daemon *mhd;
    int role;
    char info[256];    /* the saltrelay_info labels */
    double started_s;  /* process_start_time_seconds; 0: unknown */
};

static _Atomic int health_state = HEALTH_STARTING;
static const char *_Atomic health_stalled; /* a part's name: static, never freed */
static atomic_int health_was_serving;
static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static char wait_why[400]; /* under wait_lock */

void health_set(enum health state, const char *stalled)
{
    atomic_store(&health_stalled, stalled);
    atomic_store(&health_state, (int)state);
    if (state == HEALTH_SERVING)
        atomic_store(&health_was_serving, 1);
}

void health_waiting(const char *why)
{
    pthread_mutex_lock(&wait_lock);
    snprintf(wait_why, sizeof wait_why, "%s", why);
    pthread_mutex_unlock(&wait_lock);
    atomic_store(&health_state, HEALTH_WAITING);
}

int health_served(void) { return atomic_load(&health_was_serving); }

static void render_metrics(FILE *f, int role)
{
    for (int m = 0; m < M__COUNT; m++) {
        if (!(metric_roles((enum metric_id)m) & role))
            continue;
        const char *name = metric_name((enum metric_id)m);
        fprintf(f, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n" PREFIX "%s %lld\n", name,
                metric_help((enum metric_id)m), name, metric_kind((enum metric_id)m), name,
                (long long)metric_get((enum metric_id)m));
    }
}

static void render_histograms(FILE *f, int role)
{
    for (int h = 0; h < H__COUNT; h++) {
        if (!(hist_roles((enum hist_id)h) & role))
            continue;
        const char *name = hist_name((enum hist_id)h);
        const struct histogram *hg = &histograms[h];
        fprintf(f, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s histogram\n", name,
                hist_help((enum hist_id)h), name);
        long long cum = 0;
        for (int b = 0; b <= HIST_NBOUNDS; b++) {
            cum += (long long)atomic_load_explicit(&hg->bucket[b], memory_order_relaxed);
            if (b < HIST_NBOUNDS)
                fprintf(f, PREFIX "%s_bucket{le=\"%g\"} %lld\n", name, hist_bounds_us[b] / 1e6, cum);
            else
                fprintf(f, PREFIX "%s_bucket{le=\"+Inf\"} %lld\n", name, cum);
        }
        fprintf(f, PREFIX "%s_sum %.6f\n" PREFIX "%s_count %lld\n", name,
                (double)atomic_load_explicit(&hg->sum_us, memory_order_relaxed) / 1e6, name, cum);
    }
}

/* The fields of /proc/self/stat after the command name (which may hold
 * spaces and parentheses): FIELDS[0] is field 3 (state), as proc(5) counts. */
static int proc_stat(unsigned long long *fields, int n)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[len] = '\0';
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2])
        return -1;
    p += 3; /* field 3 is a letter */
    fields[0] = 0;
    for (int i = 1; i < n; i++) {
        char *end;
        p = strchr(p, ' ');
        if (!p)
            return -1;
        fields[i] = strtoull(p + 1, &end, 10);
        p = end;
    }
    return 0;
}

/* The process's start time in seconds since the epoch: its start in clock
 * ticks after boot (stat field 22) plus the boot time (/proc/stat btime). */
static double process_start_s(void)
{
    unsigned long long st[20], btime = 0;
    char line[256];
    FILE *f = fopen("/proc/stat", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    if (f)
        fclose(f);
    if (!btime || proc_stat(st, 20) < 0)
        return 0;
    return (double)btime + (double)st[19] / (double)sysconf(_SC_CLK_TCK);
}

/* The process metrics of Prometheus' own client libraries (their process
 * collector), with their names and meaning, so dashboards find them:
 * memory from /proc/self/statm, CPU time (user + system, every thread) from
 * /proc/self/stat fields 14 and 15. */
static void render_process(FILE *f, double started_s)
{
    unsigned long long size = 0, resident = 0, st[13];
    FILE *statm = fopen("/proc/self/statm", "r");
    int ok = statm && fscanf(statm, "%llu %llu", &size, &resident) == 2;
    if (statm)
        fclose(statm);
    if (ok) {
        unsigned long long page = (unsigned long long)sysconf(_SC_PAGESIZE);
        fprintf(f, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                   "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n"
                   "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                   "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n",
                resident * page, size * page);
    }
    if (proc_stat(st, 13) == 0)
        fprintf(f, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                   "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n",
                (double)(st[11] + st[12]) / (double)sysconf(_SC_CLK_TCK));
    if (started_s > 0)
        fprintf(f, "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                   "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n", started_s);
}

/* GET /healthz: one line, and whether the daemon serves. */
static unsigned render_health(FILE *f)
{
    int state = atomic_load(&health_state);
    const char *stalled = atomic_load(&health_stalled);
    switch (state) {
    case HEALTH_SERVING: fputs("serving\n", f); return MHD_HTTP_OK;
    case HEALTH_STALLED:
        fprintf(f, "stalled: %s has not turned for 10 s\n", stalled ? stalled : "a worker thread");
        break;
    case HEALTH_STOPPING: fputs("stopping\n", f); break;
    case HEALTH_WAITING:
        pthread_mutex_lock(&wait_lock);
        fprintf(f, "waiting: %s\n", wait_why);
        pthread_mutex_unlock(&wait_lock);
        break;
    default: fputs("starting: waiting for the worker threads and Redis\n", f); break;
    }
    return MHD_HTTP_SERVICE_UNAVAILABLE;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, int exposition, char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            exposition ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain");
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)req_cls;
    const struct metrics_http *mh = cls;
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    if (!f)
        return MHD_NO;
    unsigned status = MHD_HTTP_OK;
    int exposition = 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        fputs("only GET\n", f);
    } else if (strcmp(url, "/healthz") == 0) {
        status = render_health(f);
    } else if (strcmp(url, "/metrics") != 0 && strcmp(url, "/") != 0) {
        status = MHD_HTTP_NOT_FOUND;
        fputs("see /metrics and /healthz\n", f);
    } else {
        exposition = 1;
        fprintf(f, "# HELP " PREFIX "info Which daemon this is\n# TYPE " PREFIX "info gauge\n" PREFIX
                   "info{%s} 1\n", mh->info);
        render_metrics(f, mh->role);
        render_histograms(f, mh->role);
        render_process(f, mh->started_s);
    }
    if (fclose(f) != 0) {
        free(body);
        return MHD_NO;
    }
    return reply(conn, status, exposition, body, len);
}

/* "tcp://host:port" or "host:port" -> an IPv4 socket address. */
static int parse_bind(const char *bind, struct sockaddr_storage *sa, char *err, size_t errlen)
{
    const char *hp = strncmp(bind, "tcp://", 6) == 0 ? bind + 6 : bind;
    const char *colon = strrchr(hp, ':');
    char host[256];
    if (!colon || colon == hp || (size_t)(colon - hp) >= sizeof host || !colon[1]) {
        snprintf(err, errlen, "metrics_bind '%s': expected host:port or tcp://host:port", bind);
        return -1;
    }
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = '\0';
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE}, *ai = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "metrics_bind '%s': %s", bind, rc ? gai_strerror(rc) : "no address");
        return -1;
    }
    memcpy(sa, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

struct metrics_http *metrics_http_start(const struct config *cfg, char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    if (parse_bind(cfg->metrics_bind, &sa, err, errlen) < 0)
        return NULL;
    struct metrics_http *mh = calloc(1, sizeof *mh);
    if (!mh) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    mh->role = cfg->role;
    snprintf(mh->info, sizeof mh->info, "role=\"%s\",cluster=\"%s\",datacenter=\"%s\",version=\"%s\"",
             cfg->role == CONFIG_UP ? "up" : "down", cfg->cluster, cfg->datacenter ? cfg->datacenter : "",
             SALTRELAY_VERSION);
    mh->started_s = process_start_s();
    /* poll or epoll, not select(): beside thousands of minion connections the
     * listening socket's fd is past FD_SETSIZE and select() refuses it */
    mh->mhd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL, handle, mh,
                               MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
                               (unsigned)MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                               (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (!mh->mhd) {
        snprintf(err, errlen, "metrics_bind '%s': cannot listen there (address in use or not local?)",
                 cfg->metrics_bind);
        free(mh);
        return NULL;
    }
    return mh;
}

void metrics_http_stop(struct metrics_http **mhp)
{
    if (!*mhp)
        return;
    MHD_stop_daemon((*mhp)->mhd);
    free(*mhp);
    *mhp = NULL;
}
