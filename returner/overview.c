/* overview.c -- saltrelay-status's DC overview: every DC's report and the
 * cluster's newest entries read from Redis and judged at once (dcstate.h,
 * upstate.h), and the overview as JSON; overview_text.c prints it as a
 * table. */
#include "overview.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "outfmt.h"

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
    printf(", \"stale\": %s, \"stopped\": %s, \"never_reported\": %s, \"cursor\": \"%s\"", dc->stale ? "true" : "false",
           dc->stopped ? "true" : "false", dc->never ? "true" : "false", streamid_format(dc->cursor, id));
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

void overview_print_json(const struct overview *ov, const struct config *cfg)
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

int overview_load(struct rconn *rc, const struct config *cfg, struct overview *ov)
{
    static char names[DC_LIST_MAX][DC_NAME_MAX];
    memset(ov, 0, sizeof *ov);
    ov->n = dc_list(rc, cfg, names, DC_LIST_MAX);
    if (ov->n < 0 || stream_head_load(rc, cfg, &ov->head) < 0 ||
        ups_load(rc, cfg, clock_wall_ms(), &ov->ups) < 0) {
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
        if (dc_load(rc, cfg, names[i], ov->at_ms, dc) < 0 || dc_assess(rc, cfg, &ov->head, dc, ov->at_ms) < 0) {
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
