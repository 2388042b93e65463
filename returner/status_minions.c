/* status_minions.c -- saltrelay-status minions [DC]: the minions the relays
 * have seen, per DC, from the minion registry (regmap.h: the DC an id was
 * seen in last), so that an operator can target one DC (salt -L) and the
 * Salt runner (returner/runners/saltrelay.py) can list them without reading
 * Redis itself. A minion is listed under one DC only, the one its newest
 * entry is in, and only if that entry counts as seen (regentry.h, as for
 * per-job accounting). */
#include "status.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "outfmt.h"
#include "regmap.h"

struct dc_minions {
    char name[DC_NAME_MAX];
    const struct regmap_item **m; /* into the registry, sorted by id */
    size_t n;
};

/* Every DC's minions, from REG. */
static int split(const struct regmap *reg, struct dc_minions *dcs, int n)
{
    for (int i = 0; i < n; i++)
        if (!(dcs[i].m = calloc(reg->n + 1, sizeof *dcs[i].m)))
            return -1;
    for (size_t k = 0; k < reg->n; k++)
        for (int i = 0; i < n; i++)
            if (!strcmp(reg->v[k].e.dc, dcs[i].name))
                dcs[i].m[dcs[i].n++] = &reg->v[k];
    return 0;
}

static void free_dcs(struct dc_minions *dcs, int n)
{
    for (int i = 0; i < n; i++)
        free(dcs[i].m);
    free(dcs);
}

/* Age of wall time MS as "12.3 s ago", or "-" when unknown. */
static void age_cell(struct table *t, long long ms, long long now_ms)
{
    if (ms < 0)
        table_cell(t, "-");
    else
        table_cell(t, "%.1f s ago", (now_ms - ms) / 1000.0);
}

static void print_text(const struct dc_minions *dcs, int n, int colour)
{
    static const char *const heads[] = {"DC", "MINION", "FIRST_AUTH", "LAST_AUTH", "LAST_REQUEST", NULL};
    struct table t;
    char id[TABLE_CELL];
    long long now = clock_wall_ms();
    printf("minions seen by the relays:");
    for (int i = 0; i < n; i++)
        printf("%s %s %zu", i ? "," : "", dcs[i].name, dcs[i].n);
    printf("%s\n", n ? "" : " no DC has reported");
    table_init(&t, heads);
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < dcs[i].n; k++) {
            const struct regmap_item *s = dcs[i].m[k];
            table_row(&t, HEALTH_OK);
            table_cell(&t, "%s", dcs[i].name);
            table_cell(&t, "%s", printable(s->id, strlen(s->id), id, sizeof id));
            age_cell(&t, s->e.first_auth_ms, now);
            age_cell(&t, s->e.last_auth_ms, now);
            age_cell(&t, s->e.last_request_ms, now);
        }
    if (t.nrows)
        table_print(&t, stdout, colour);
    table_free(&t);
}

/* ', "KEY": V', or null when unknown. */
static void json_ms(const char *key, long long v)
{
    if (v < 0)
        printf(", \"%s\": null", key);
    else
        printf(", \"%s\": %lld", key, v);
}

static void print_json(const struct config *cfg, const struct dc_minions *dcs, int n)
{
    printf("{\"cluster\": \"%s\", \"dcs\": [", cfg->cluster);
    for (int i = 0; i < n; i++) {
        printf("%s\n  {\"name\": \"%s\", \"minions\": [", i ? "," : "", dcs[i].name);
        for (size_t k = 0; k < dcs[i].n; k++) {
            const struct regmap_item *s = dcs[i].m[k];
            printf("%s\n    {\"id\": ", k ? "," : "");
            json_string(stdout, s->id, strlen(s->id));
            json_ms("first_auth_ms", s->e.first_auth_ms);
            json_ms("last_auth_ms", s->e.last_auth_ms);
            json_ms("last_request_ms", s->e.last_request_ms);
            printf("}");
        }
        printf("]}");
    }
    printf("]}\n");
}

/* The DCs that reported into NAMES (N of them); 0, -1 if Redis failed, or
 * -2 if ONLY is given and is none of them. */
static int reported(const struct status_opts *o, const char *only, char names[][DC_NAME_MAX], int *n)
{
    *n = dc_list(o->rc, o->cfg, names, DC_LIST_MAX);
    if (*n < 0)
        return -1;
    for (int i = 0; only && i < *n; i++)
        if (!strcmp(names[i], only))
            return 0;
    if (!only)
        return 0;
    char esc[TABLE_CELL];
    fprintf(stderr, "saltrelay-status: no DC named %s has reported (%d DC%s have: ",
            printable(only, strlen(only), esc, sizeof esc), *n, *n == 1 ? "" : "s");
    for (int i = 0; i < *n; i++)
        fprintf(stderr, "%s%s", i ? ", " : "", names[i]);
    fprintf(stderr, ")\n");
    return -2;
}

int status_minions(const struct status_opts *o, const char *only)
{
    static char names[DC_LIST_MAX][DC_NAME_MAX];
    int n, rv = reported(o, only, names, &n);
    if (rv == -2)
        return 2;
    struct regmap reg = {0};
    /* every DC's entries, also for one DC: a minion that moved is listed where it is now */
    struct dc_minions *dcs = rv == 0 ? calloc((size_t)n + 1, sizeof *dcs) : NULL;
    int keep = 0;
    for (int i = 0; dcs && i < n; i++)
        if (!only || !strcmp(names[i], only))
            memcpy(dcs[keep++].name, names[i], DC_NAME_MAX);
    if (!dcs || regmap_load(o->rc, o->cfg, names, n, NULL, 0, &reg) < 0 || split(&reg, dcs, keep) < 0) {
        fprintf(stderr, "saltrelay-status: Redis failed while reading the minion registry\n");
        if (dcs)
            free_dcs(dcs, keep);
        regmap_free(&reg);
        return 2;
    }
    if (o->json)
        print_json(o->cfg, dcs, keep);
    else
        print_text(dcs, keep, o->colour);
    free_dcs(dcs, keep);
    regmap_free(&reg);
    return 0;
}
