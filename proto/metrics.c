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
