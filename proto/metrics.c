/* metrics.c -- storage and names of the process-wide counters (metrics.h). */
#include "metrics.h"

_Atomic int64_t metrics[M__COUNT];

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
