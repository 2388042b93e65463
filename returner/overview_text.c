/* overview_text.c -- saltrelay-status's DC table: the verdict line a
 * Nagios/Zabbix check shows, then one aligned row per DC (see overview.h).
 * The live view (status_watch.c) adds per-DC rates. */
#include <stdio.h>
#include <string.h>

#include "outfmt.h"
#include "overview.h"

/* "12", or "?" when unknown (negative). */
static const char *num(long long v, char *buf)
{
    if (v < 0)
        return "?";
    snprintf(buf, 24, "%lld", v);
    return buf;
}

/* The REPL_S cell, the Redis the DC reads as replhealth.c saw it: the
 * replication delay in seconds, "down" (replica link down), "noanswer",
 * "-" (it reads the primary) or "?" (no heartbeat or an older report). */
static void repl_cell(struct table *t, const struct dc_state *dc)
{
    const long long *c = dc->counter;
    if (c[DCF_SOURCE_UP] == 0)
        table_cell(t, "noanswer");
    else if (c[DCF_REPL_LINK_UP] == 0)
        table_cell(t, "down");
    else if (c[DCF_SOURCE_REPLICA] == 0)
        table_cell(t, "-");
    else if (c[DCF_HEARTBEAT_SEEN_MS] > 0 && c[DCF_REPL_DELAY_MS] >= 0)
        table_cell(t, "%.1f", c[DCF_REPL_DELAY_MS] / 1000.0);
    else
        table_cell(t, "?");
}

/* The TREE cell: the DC's tree version, with "(-N)" when N versions behind
 * the newest, "-" without tree sync. */
static void tree_cell(struct table *t, const struct dc_state *dc, const struct stream_head *head)
{
    const long long *c = dc->counter;
    if (c[DCF_TREE_SYNC] != 1)
        table_cell(t, "-");
    else if (dc->tree_behind && c[DCF_TREE_VERSION] < (long long)head->tree_version)
        table_cell(t, "%lld (-%lld)", c[DCF_TREE_VERSION], (long long)head->tree_version - c[DCF_TREE_VERSION]);
    else
        table_cell(t, "%lld%s", c[DCF_TREE_VERSION], dc->tree_behind ? " (other)" : "");
}

static void text_row(struct table *t, const struct dc_state *dc, const struct dc_rates *rate,
                     const struct stream_head *head)
{
    char b[24];
    table_row(t, dc->health);
    table_cell(t, "%s", dc->name);
    table_cell(t, "%s", dc->health == HEALTH_OK ? "ok" : dc->never ? "never" : dc->stale ? "stale"
                        : dc->stopped ? "stopped" : health_name(dc->health));
    table_cell(t, "%s", dc->lag_known ? num(dc->lag_entries, b) : "?");
    table_cell(t, dc->lag_known ? "%.1f" : "?", dc->lag_ms / 1000.0);
    repl_cell(t, dc);
    tree_cell(t, dc, head);
    if (rate) {
        table_cell(t, rate->pub >= 0 ? "%.1f" : "?", rate->pub);
        table_cell(t, rate->req >= 0 ? "%.1f" : "?", rate->req);
    }
    table_cell(t, "%s", num(dc->counter[DCF_SUBSCRIBERS], b));
    table_cell(t, "%s", num(dc->minions, b));
    table_cell(t, "%s", num(dc->counter[DCF_REQ_INFLIGHT], b));
    table_cell(t, "%s", num(dc->counter[DCF_REQ_TIMEOUT], b));
    table_cell(t, "%s", num(dc->counter[DCF_PUB_EXPIRED], b));
    table_cell(t, "%s", num(dc->counter[DCF_PUB_GAP], b));
    table_cell(t, dc->reported ? "%.1f s ago" : "never", dc->report_age_ms / 1000.0);
}

static void print_summary(FILE *f, const struct dc_state *dcs, int n, enum health worst,
                          const struct stream_head *head, int colour)
{
    fprintf(f, "%sSALTRELAY %s%s - ", health_colour(worst, colour), worst == HEALTH_OK ? "OK" : worst == HEALTH_WARN ? "WARNING" : "CRITICAL",
           colour_reset(colour));
    if (n == 0)
        fprintf(f, "no DC has reported yet");
    const char *sep = "";
    for (int i = 0; i < n; i++)
        if (dcs[i].health != HEALTH_OK) {
            fprintf(f, "%s%s: %s", sep, dcs[i].name, dcs[i].problem);
            sep = "; ";
        }
    if (worst == HEALTH_OK && n > 0)
        fprintf(f, "%d DC(s) up to date", n);
    if (head->known && !head->empty)
        fprintf(f, " | newest publication serial %llu", (unsigned long long)head->serial);
    if (head->tree_version)
        fprintf(f, " | newest tree version %llu", (unsigned long long)head->tree_version);
    fputc('\n', f);
}

void overview_print_text(const struct overview *ov, const struct dc_rates *rates, int colour, FILE *f)
{
    static const char *const heads[] = {"DC",    "HEALTH",  "LAG",      "LAG_S",    "REPL_S",  "TREE", "SUBS", "MINIONS",
                                        "INFLIGHT", "TIMEOUTS", "EXPIRED", "GAPS", "REPORTED", NULL};
    static const char *const live[] = {"DC",    "HEALTH", "LAG",     "LAG_S",    "REPL_S",   "TREE", "PUB/S",   "REQ/S", "SUBS",
                                       "MINIONS", "INFLIGHT", "TIMEOUTS", "EXPIRED", "GAPS", "REPORTED", NULL};
    print_summary(f, ov->dcs, ov->n, ov->worst, &ov->head, colour);
    if (ov->n > 0) {
        struct table t;
        table_init(&t, rates ? live : heads);
        for (int i = 0; i < ov->n; i++)
            text_row(&t, &ov->dcs[i], rates ? &rates[i] : NULL, &ov->head);
        table_print(&t, f, colour);
        table_free(&t);
    }
    ups_print_text(&ov->ups, ov->at_ms, f);
}
