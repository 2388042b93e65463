/* metrics.c -- storage and names of the process-wide counters (metrics.h). */
#include "metrics.h"

#include <pthread.h>

_Atomic int64_t metrics[M__COUNT];

static pthread_mutex_t cursor_lock = PTHREAD_MUTEX_INITIALIZER;

void metric_cursor_set(int64_t ms, int64_t seq, int64_t serial, int64_t delivered_at_ms)
{
    pthread_mutex_lock(&cursor_lock);
    metric_set(M_CURSOR_MS, ms);
    metric_set(M_CURSOR_SEQ, seq);
    metric_set(M_CURSOR_SERIAL, serial);
    if (delivered_at_ms)
        metric_set(M_DELIVERED_AT_MS, delivered_at_ms);
    pthread_mutex_unlock(&cursor_lock);
}

void metric_cursor_get(struct metric_cursor *c)
{
    pthread_mutex_lock(&cursor_lock);
    c->ms = metric_get(M_CURSOR_MS);
    c->seq = metric_get(M_CURSOR_SEQ);
    c->serial = metric_get(M_CURSOR_SERIAL);
    c->delivered_at_ms = metric_get(M_DELIVERED_AT_MS);
    pthread_mutex_unlock(&cursor_lock);
}

struct metric_desc {
    const char *name, *kind, *help;
    int roles;
};

static const struct metric_desc descs[M__COUNT] = {
#define METRIC_DESC(id, name, kind, roles, help) [M_##id] = {name, kind, help, roles},
    METRICS_LIST(METRIC_DESC)
#undef METRIC_DESC
};

const char *metric_name(enum metric_id m) { return descs[m].name; }
const char *metric_kind(enum metric_id m) { return descs[m].kind; }
const char *metric_help(enum metric_id m) { return descs[m].help; }
int metric_roles(enum metric_id m) { return descs[m].roles; }

struct histogram histograms[H__COUNT];
const int64_t hist_bounds_us[HIST_NBOUNDS] = HIST_BOUNDS_US;

static const struct metric_desc hdescs[H__COUNT] = {
#define HIST_DESC(id, name, roles, help) [H_##id] = {name, "histogram", help, roles},
    HISTOGRAMS_LIST(HIST_DESC)
#undef HIST_DESC
};

const char *hist_name(enum hist_id h) { return hdescs[h].name; }
const char *hist_help(enum hist_id h) { return hdescs[h].help; }
int hist_roles(enum hist_id h) { return hdescs[h].roles; }
