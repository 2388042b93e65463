/* metrics_http.c -- Prometheus text exposition over HTTP (metrics_http.h).
 *
 * The page is rendered on each scrape from the relaxed atomics, so a scrape
 * never blocks a data path. libmicrohttpd runs its own polling thread, with
 * a small connection limit and timeout so a stuck scraper costs little. */
#include "metrics_http.h"

#include <microhttpd.h>
#include <netdb.h>
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
    char info[256]; /* the saltrelay_info labels */
};

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

/* The process's resident and virtual memory (/proc/self/statm), named as
 * Prometheus' own client libraries name them so dashboards find them. */
static void render_memory(FILE *f)
{
    unsigned long long size = 0, resident = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    int ok = statm && fscanf(statm, "%llu %llu", &size, &resident) == 2;
    if (statm)
        fclose(statm);
    if (!ok)
        return;
    unsigned long long page = (unsigned long long)sysconf(_SC_PAGESIZE);
    fprintf(f, "# HELP process_resident_memory_bytes Resident memory size in bytes\n"
               "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n"
               "# HELP process_virtual_memory_bytes Virtual memory size in bytes\n"
               "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n",
            resident * page, size * page);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            status == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain");
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
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        fputs("only GET\n", f);
    } else if (strcmp(url, "/metrics") != 0 && strcmp(url, "/") != 0) {
        status = MHD_HTTP_NOT_FOUND;
        fputs("see /metrics\n", f);
    } else {
        fprintf(f, "# HELP " PREFIX "info Which daemon this is\n# TYPE " PREFIX "info gauge\n" PREFIX
                   "info{%s} 1\n", mh->info);
        render_metrics(f, mh->role);
        render_histograms(f, mh->role);
        render_memory(f);
    }
    if (fclose(f) != 0) {
        free(body);
        return MHD_NO;
    }
    return reply(conn, status, body, len);
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
