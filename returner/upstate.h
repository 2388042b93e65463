/* upstate.h -- the saltrelay-up instances alive, for saltrelay-status: the
 * members of saltrelay:{C}:ups (upreport.h) whose last heartbeat is at most
 * stale_after old, newest first. */
#ifndef SALTRELAY_UPSTATE_H
#define SALTRELAY_UPSTATE_H

#include <stdio.h>

#include "config.h"
#include "upreport.h"

#define UPS_SHOWN 32

struct up_state {
    char name[UP_NAME_MAX];
    long long heartbeat_ms; /* wall time of its last heartbeat */
};

struct up_list {
    struct up_state up[UPS_SHOWN];
    int n;     /* shown */
    int alive; /* all alive (more than UPS_SHOWN: not all shown) */
};

struct rconn;
/* 0, or -1 if Redis failed (the caller says CRITICAL). */
int ups_load(struct rconn *rc, const struct config *cfg, long long now_ms, struct up_list *out);
/* "saltrelay-up instances alive: N (name 0.4 s ago, ...)" */
void ups_print_text(const struct up_list *l, long long now_ms, FILE *f);
/* "\"ups\": [{...}, ...]" */
void ups_print_json(const struct up_list *l, long long now_ms, FILE *f);

#endif
