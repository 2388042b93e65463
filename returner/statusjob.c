/* statusjob.c -- saltrelay-status job JID: expected, returned and missing
 * minions per DC, and why each missing one is missing.
 *
 * Expected and returned minions come from the MoM's job cache (jobcache.h);
 * each minion's DC from the minion registry saltrelay-down keeps (hash
 * key_minion: dc, first_auth, last_auth, last_request); whether that DC got
 * the job from its report (dcstate.h): a DC whose delivered cursor is older
 * than the jid's time, or that is stale, has not delivered it. */
#include "status.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dcstate.h"
#include "jobcache.h"
#include "keys.h"
#include "outfmt.h"

#define NO_DC "(unknown)"

enum reason { R_NONE, R_NOT_DELIVERED, R_NEVER_SEEN, R_NO_RETURN };
static const char *const reason_text[] = {"", "DC not delivered", "never seen by its relay", "no return"};

struct minion {
    const char *id;
    int expected, returned;
    char dc[DC_NAME_MAX]; /* "" if the registry does not know it */
    int dc_index;         /* into the DC table, -1 for NO_DC */
    enum reason reason;
    char detail[96];
};

struct job_dc {
    struct dc_state st;
    int delivered; /* the job's time is covered by the cursor and the DC is not stale */
    long expected, returned, missing;
};

struct accounting {
    const struct status_opts *o;
    struct job job;
    long long jid_ms, now_ms;
    struct minion *m;
    size_t nm;
    struct job_dc dcs[STATUS_MAX_DCS + 1]; /* the last: NO_DC */
    int ndcs;
};

/* Merge the two sorted id sets into one row per minion. */
static int collect_minions(struct accounting *a)
{
    const struct idset *e = &a->job.expected, *r = &a->job.returned;
    a->m = calloc(e->n + r->n + 1, sizeof *a->m);
    if (!a->m)
        return -1;
    size_t i = 0, j = 0;
    while (i < e->n || j < r->n) {
        int c = i == e->n ? 1 : j == r->n ? -1 : strcmp(e->ids[i], r->ids[j]);
        struct minion *m = &a->m[a->nm++];
        m->id = c <= 0 ? e->ids[i] : r->ids[j];
        m->expected = c <= 0;
        m->returned = c >= 0;
        i += c <= 0;
        j += c >= 0;
    }
    return 0;
}

/* Keep the registry's answer for M: its DC, if it ever authenticated or asked. */
static void take_registry(struct minion *m, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        fprintf(stderr, "saltrelay-status: registry entry of minion %s: unexpected reply\n", m->id);
        return;
    }
    const redisReply *dc = r->element[0];
    int seen = 0;
    for (size_t k = 1; k < 4; k++)
        seen |= r->element[k]->type == REDIS_REPLY_STRING;
    if (dc->type != REDIS_REPLY_STRING || !seen)
        return;
    char name[DC_NAME_MAX] = "";
    if (dc->len < sizeof name)
        memcpy(name, dc->str, dc->len);
    if (dc->len >= sizeof name || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != dc->len || !dc->len)
        fprintf(stderr, "saltrelay-status: registry entry of minion %s: invalid DC name; ignored\n", m->id);
    else
        memcpy(m->dc, name, sizeof name);
}

/* One pipelined HMGET per minion. -1 if Redis failed. */
static int lookup_registry(struct accounting *a)
{
    redisContext *c = rconn_get(a->o->rc);
    if (!c)
        return -1;
    char key[KEY_MAX];
    for (size_t i = 0; i < a->nm; i++) {
        if (key_minion(key, a->o->cfg->cluster, a->m[i].id) >= KEY_MAX)
            key[0] = '\0'; /* too long for a key: the relay cannot have recorded it either */
        redisAppendCommand(c, "HMGET %s dc first_auth last_auth last_request", key);
    }
    for (size_t i = 0; i < a->nm; i++) {
        redisReply *r = rconn_reply(a->o->rc);
        if (!r)
            return -1;
        take_registry(&a->m[i], r);
        freeReplyObject(r);
    }
    return 0;
}

static int dc_slot(struct accounting *a, const char *name)
{
    if (!*name)
        return -1;
    for (int i = 0; i < a->ndcs; i++)
        if (!strcmp(a->dcs[i].st.name, name))
            return i;
    if (a->ndcs == STATUS_MAX_DCS)
        return -1;
    struct job_dc *d = &a->dcs[a->ndcs];
    if (dc_load(a->o->rc, a->o->cfg, name, a->now_ms, &d->st) < 0)
        return -2;
    d->delivered = d->st.reported && !d->st.stale && (long long)d->st.cursor.ms >= a->jid_ms;
    return a->ndcs++;
}

static void explain(struct accounting *a, struct minion *m)
{
    if (m->dc_index < 0) {
        m->reason = R_NEVER_SEEN;
        snprintf(m->detail, sizeof m->detail, "no _auth or request in the registry");
        return;
    }
    const struct job_dc *d = &a->dcs[m->dc_index];
    if (d->delivered) {
        m->reason = R_NO_RETURN;
        snprintf(m->detail, sizeof m->detail, "job sent %.1f s ago", (a->now_ms - a->jid_ms) / 1000.0);
    } else {
        m->reason = R_NOT_DELIVERED;
        if (d->st.stale)
            snprintf(m->detail, sizeof m->detail, "DC stale: %s", d->st.reported ? "no report for a while" : "never reported");
        else
            snprintf(m->detail, sizeof m->detail, "DC cursor %.1f s older than the job",
                     (a->jid_ms - (long long)d->st.cursor.ms) / 1000.0);
    }
}

/* DC of every minion, the counts per DC, and the reason of each missing one. */
static int account(struct accounting *a)
{
    for (size_t i = 0; i < a->nm; i++) {
        struct minion *m = &a->m[i];
        m->dc_index = dc_slot(a, m->dc);
        if (m->dc_index == -2)
            return -1;
        struct job_dc *d = &a->dcs[m->dc_index < 0 ? STATUS_MAX_DCS : m->dc_index];
        d->expected += m->expected;
        d->returned += m->returned;
        if (m->expected && !m->returned) {
            d->missing++;
            explain(a, m);
        }
    }
    snprintf(a->dcs[STATUS_MAX_DCS].st.name, DC_NAME_MAX, NO_DC);
    return 0;
}

static long count_of(const struct accounting *a, int returned)
{
    long n = 0;
    for (size_t i = 0; i < a->nm; i++)
        n += returned ? a->m[i].returned : a->m[i].expected;
    return n;
}

static long missing_of(const struct accounting *a)
{
    long n = 0;
    for (size_t i = 0; i < a->nm; i++)
        n += a->m[i].reason != R_NONE;
    return n;
}

/* The DC rows that have minions: the known DCs, then NO_DC. */
static const struct job_dc *dc_row(const struct accounting *a, int i)
{
    const struct job_dc *d = i < a->ndcs ? &a->dcs[i] : &a->dcs[STATUS_MAX_DCS];
    return d->expected || d->returned ? d : NULL;
}

static void print_dc_table(const struct accounting *a)
{
    static const char *const heads[] = {"DC", "EXPECTED", "RETURNED", "MISSING", "JOB", NULL};
    struct table t;
    table_init(&t, heads);
    for (int i = 0; i <= a->ndcs; i++) {
        const struct job_dc *d = dc_row(a, i);
        if (!d)
            continue;
        int known = i < a->ndcs;
        table_row(&t, known && !d->delivered ? HEALTH_CRIT : d->missing ? HEALTH_WARN : HEALTH_OK);
        table_cell(&t, "%s", d->st.name);
        table_cell(&t, "%ld", d->expected);
        table_cell(&t, "%ld", d->returned);
        table_cell(&t, "%ld", d->missing);
        table_cell(&t, "%s", !known ? "-" : d->delivered ? "delivered" : "not delivered");
    }
    table_print(&t, stdout, a->o->colour);
    table_free(&t);
}

static void print_missing_table(const struct accounting *a)
{
    static const char *const heads[] = {"MISSING MINION", "DC", "REASON", "DETAIL", NULL};
    struct table t;
    char id[TABLE_CELL];
    table_init(&t, heads);
    for (size_t i = 0; i < a->nm; i++) {
        const struct minion *m = &a->m[i];
        if (m->reason == R_NONE)
            continue;
        table_row(&t, m->reason == R_NOT_DELIVERED ? HEALTH_CRIT : HEALTH_WARN);
        table_cell(&t, "%s", printable(m->id, strlen(m->id), id, sizeof id));
        table_cell(&t, "%s", m->dc[0] ? m->dc : NO_DC);
        table_cell(&t, "%s", reason_text[m->reason]);
        table_cell(&t, "%s", m->detail);
    }
    if (t.nrows)
        table_print(&t, stdout, a->o->colour);
    table_free(&t);
}

static void print_text(const struct accounting *a)
{
    char tgt[sizeof a->job.tgt * 4];
    printf("job %s: %s on '%s'; expected %ld, returned %ld, missing %ld%s\n", a->job.jid,
           a->job.fun[0] ? a->job.fun : "?", printable(a->job.tgt, strlen(a->job.tgt), tgt, sizeof tgt),
           count_of(a, 0), count_of(a, 1), missing_of(a),
           a->job.nocache ? " (job ran with nocache: returns are not in the job cache)" : "");
    print_dc_table(a);
    print_missing_table(a);
}

static void print_json(const struct accounting *a)
{
    printf("{\"jid\": \"%s\", \"fun\": ", a->job.jid);
    json_string(stdout, a->job.fun, strlen(a->job.fun));
    printf(", \"tgt\": ");
    json_string(stdout, a->job.tgt, strlen(a->job.tgt));
    printf(", \"jid_time_ms\": %lld, \"nocache\": %s, \"expected\": %ld, \"returned\": %ld, \"missing\": %ld,\n"
           " \"dcs\": [", a->jid_ms, a->job.nocache ? "true" : "false", count_of(a, 0), count_of(a, 1), missing_of(a));
    const char *sep = "\n";
    for (int i = 0; i <= a->ndcs; i++) {
        const struct job_dc *d = dc_row(a, i);
        if (!d)
            continue;
        printf("%s  {\"name\": \"%s\", \"expected\": %ld, \"returned\": %ld, \"missing\": %ld, \"delivered\": %s}",
               sep, d->st.name, d->expected, d->returned, d->missing,
               i == a->ndcs ? "null" : d->delivered ? "true" : "false");
        sep = ",\n";
    }
    printf("],\n \"missing_minions\": [");
    sep = "\n";
    for (size_t i = 0; i < a->nm; i++) {
        const struct minion *m = &a->m[i];
        if (m->reason == R_NONE)
            continue;
        printf("%s  {\"minion\": ", sep);
        json_string(stdout, m->id, strlen(m->id));
        printf(m->dc[0] ? ", \"dc\": \"%s\"" : ", \"dc\": null%s", m->dc);
        printf(", \"reason\": \"%s\", \"detail\": ", reason_text[m->reason]);
        json_string(stdout, m->detail, strlen(m->detail));
        printf("}");
        sep = ",\n";
    }
    printf("]}\n");
}

int status_job(const struct status_opts *o, const char *jid)
{
    static struct accounting a;
    memset(&a, 0, sizeof a);
    a.o = o;
    char err[4200];
    if (jobcache_load(o->cfg->job_cache_dir, jid, &a.job, err, sizeof err) < 0) {
        fprintf(stderr, "saltrelay-status: %s\n", err);
        job_free(&a.job);
        return 2;
    }
    a.jid_ms = jid_time_ms(jid);
    a.now_ms = clock_wall_ms();
    int rc = 2;
    if (collect_minions(&a) < 0 || lookup_registry(&a) < 0 || account(&a) < 0) {
        fprintf(stderr, "saltrelay-status: job %s: Redis failed while reading the registry\n", jid);
    } else {
        if (o->json)
            print_json(&a);
        else
            print_text(&a);
        rc = missing_of(&a) ? 1 : 0;
    }
    free(a.m);
    job_free(&a.job);
    return rc;
}
