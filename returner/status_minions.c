/* status_minions.c -- saltrelay-status minions [DC]: the minions the relays
 * have seen, per DC, from the minion registry (registry.h), so that an
 * operator can target one DC (salt -L) and the Salt runner
 * (returner/runners/saltrelay.py) can list them without reading Redis itself.
 *
 * A DC's set (key_dc_minions) keeps an id after the minion moved to another
 * DC or after its own entry expired (the set's lifetime is renewed by any of
 * its members): the minion's entry (key_minion) is the truth. A minion is
 * listed under a DC only when its entry exists, counts as seen (regentry.h,
 * as for per-job accounting) and names that DC. */
#include "status.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jobcache.h"
#include "keys.h"
#include "outfmt.h"
#include "regentry.h"

struct seen {
    char *id;
    struct regentry e;
};

struct dc_minions {
    char name[DC_NAME_MAX];
    struct seen *m;
    size_t n;
};

static int cmp_seen(const void *a, const void *b)
{
    return strcmp(((const struct seen *)a)->id, ((const struct seen *)b)->id);
}

/* A set member that can be a registered minion id: what registry.c can
 * have written (no NUL, fits a key). */
static int usable_id(const redisReply *e)
{
    char key[KEY_MAX];
    return e->type == REDIS_REPLY_STRING && e->len > 0 && e->len < MINION_ID_MAX && !memchr(e->str, 0, e->len) &&
           key_minion(key, "", e->str) < KEY_MAX;
}

/* Keep the members of SET whose entry (one pipelined HMGET each) names D. */
static int take_members(struct rconn *rc, const struct config *cfg, const redisReply *set, struct dc_minions *d)
{
    redisContext *c = rconn_get(rc);
    d->m = calloc(set->elements + 1, sizeof *d->m);
    if (!c || !d->m)
        return -1;
    char key[KEY_MAX];
    size_t bad = 0;
    for (size_t i = 0; i < set->elements; i++) {
        if (!usable_id(set->element[i]))
            continue;
        key_minion(key, cfg->cluster, set->element[i]->str);
        redisAppendCommand(c, REGENTRY_HMGET, key);
    }
    for (size_t i = 0; i < set->elements; i++) {
        const redisReply *member = set->element[i];
        if (!usable_id(member)) {
            bad++;
            continue;
        }
        redisReply *r = rconn_reply(rc);
        if (!r)
            return -1;
        struct seen *s = &d->m[d->n];
        regentry_parse(r, member->str, &s->e);
        freeReplyObject(r);
        if (strcmp(s->e.dc, d->name))
            continue; /* expired, never seen, or now in another DC */
        if (!(s->id = strdup(member->str)))
            return -1;
        d->n++;
    }
    if (bad)
        fprintf(stderr, "saltrelay-status: %zu members of the minion set of DC %s are no usable minion ids; ignored\n",
                bad, d->name);
    qsort(d->m, d->n, sizeof *d->m, cmp_seen);
    return 0;
}

/* D's minions; -1 if Redis failed (a damaged set is named and taken as empty). */
static int load_dc(struct rconn *rc, const struct config *cfg, struct dc_minions *d)
{
    char key[KEY_MAX];
    key_dc_minions(key, cfg->cluster, d->name);
    redisReply *set = rconn_command(rc, "SMEMBERS %s", key);
    if (!set)
        return -1;
    int rc_ = 0;
    if (set->type == REDIS_REPLY_ARRAY)
        rc_ = take_members(rc, cfg, set, d);
    else
        fprintf(stderr, "saltrelay-status: SMEMBERS %s: %s; no minions shown for DC %s\n", key,
                set->type == REDIS_REPLY_ERROR ? set->str : "not a set", d->name);
    freeReplyObject(set);
    return rc_;
}

static void free_dcs(struct dc_minions *dcs, int n)
{
    for (int i = 0; i < n; i++) {
        for (size_t k = 0; k < dcs[i].n; k++)
            free(dcs[i].m[k].id);
        free(dcs[i].m);
    }
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
            const struct seen *s = &dcs[i].m[k];
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
            const struct seen *s = &dcs[i].m[k];
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

/* The DCs to list: every DC that reported, or only ONLY (which must be one). */
static int pick_dcs(const struct status_opts *o, const char *only, struct dc_minions **out)
{
    static char names[DC_LIST_MAX][DC_NAME_MAX];
    int n = dc_list(o->rc, o->cfg, names, DC_LIST_MAX);
    if (n < 0)
        return -1;
    int keep = only ? 0 : n;
    for (int i = 0; only && i < n; i++)
        if (!strcmp(names[i], only))
            memcpy(names[keep++], names[i], DC_NAME_MAX);
    if (only && !keep) {
        char esc[TABLE_CELL];
        fprintf(stderr, "saltrelay-status: no DC named %s has reported (%d DC%s have: ",
                printable(only, strlen(only), esc, sizeof esc), n, n == 1 ? "" : "s");
        for (int i = 0; i < n; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", names[i]);
        fprintf(stderr, ")\n");
        return -2;
    }
    *out = calloc((size_t)keep + 1, sizeof **out);
    if (!*out)
        return -1;
    for (int i = 0; i < keep; i++)
        memcpy((*out)[i].name, names[i], DC_NAME_MAX);
    return keep;
}

int status_minions(const struct status_opts *o, const char *only)
{
    struct dc_minions *dcs = NULL;
    int n = pick_dcs(o, only, &dcs);
    if (n == -2)
        return 2;
    for (int i = 0; n >= 0 && i < n; i++)
        if (load_dc(o->rc, o->cfg, &dcs[i]) < 0) {
            free_dcs(dcs, i + 1);
            n = -1;
        }
    if (n < 0) {
        fprintf(stderr, "saltrelay-status: Redis failed while reading the minion registry\n");
        return 2;
    }
    if (o->json)
        print_json(o->cfg, dcs, n);
    else
        print_text(dcs, n, o->colour);
    free_dcs(dcs, n);
    return 0;
}
