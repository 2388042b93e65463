/* status_job.c -- saltrelay-status job JID: expected, returned and missing
 * minions per DC, and why each missing one is missing.
 *
 * Expected and returned minions come from the MoM's job cache (jobcache.h);
 * each minion's DC from the minion registry the saltrelay-downs keep (the DC
 * it was seen in last, regmap.h); whether that DC got
 * the job from its report (dcstate.h) and the returns: a DC whose delivered
 * cursor is older than the jid's time, or that is stale, has not delivered
 * it. A cursor past the jid's time is no proof that it did: the jid is made
 * before the publication, which can be stored much later (saltrelay-up
 * holding it while Redis is away). A return from a minion of the DC is proof;
 * without one the delivery is "maybe". (The publications are encrypted: which
 * stream entry is the job cannot be told.)
 *
 * Behind a syndic (a salt-syndic talking to a saltrelay-down), the minions
 * the syndic listed for its tier (.minions.<syndic>.p) authenticate at the
 * lower master, not through the relay: one that is not in the registry
 * takes the DC of its syndic, which authenticates through the relay like a
 * minion. The syndic's own id, which Salt expects but which never returns,
 * is not counted unless it returned; the syndic table says so. */
#include "status.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dcstate.h"
#include "jobcache.h"
#include "keys.h"
#include "outfmt.h"
#include "regmap.h"

#define NO_DC "(unknown)"

enum reason { R_NONE, R_NOT_DELIVERED, R_NEVER_SEEN, R_SYNDIC_NEVER_SEEN, R_NO_RETURN, R_MAYBE };
static const char *const reason_text[] = {"", "DC not delivered", "never seen by its relay",
                                          "syndic never seen by its relay", "no return", "DC delivery unproven"};

enum delivery { D_NOT, D_DELIVERED, D_MAYBE };

struct minion {
    const char *id;
    int expected, returned;
    char dc[DC_NAME_MAX]; /* "" if neither the registry nor its syndic tell */
    int dc_index;         /* into the DC table, -1 for NO_DC */
    long tier;            /* into job.tiers: the syndic that listed it, -1 if none */
    enum reason reason;
    char detail[160];     /* tables show the first TABLE_CELL bytes, --json all */
};

/* A syndic of the job (one per job.tiers entry). */
struct syndic {
    char dc[DC_NAME_MAX]; /* from its own registry entry, "" if none */
    long expected, returned, missing;
    int own_id_dropped;   /* Salt expected its id, it did not return: not counted */
};

struct job_dc {
    struct dc_state st;
    enum delivery delivered; /* see the top comment */
    long expected, returned, missing;
};

struct accounting {
    const struct status_opts *o;
    struct job job;
    long long jid_ms, now_ms;
    struct minion *m;
    size_t nm;
    struct syndic *syn; /* job.ntiers of them */
    struct job_dc dcs[DC_LIST_MAX + 1]; /* the last: NO_DC */
    int ndcs;
};

/* A syndic's own id that Salt expected and that did not return is no
 * missing minion: not counted, noted in its syndic's row. */
static void drop_syndic_id(struct accounting *a, struct minion *m)
{
    long s = job_tier_named(&a->job, m->id);
    if (s < 0 || !m->expected || m->returned)
        return;
    m->expected = 0;
    a->syn[s].own_id_dropped = 1;
}

/* Merge the two sorted id sets into one row per minion. */
static int collect_minions(struct accounting *a)
{
    const struct idset *e = &a->job.expected, *r = &a->job.returned;
    a->m = calloc(e->n + r->n + 1, sizeof *a->m);
    a->syn = calloc(a->job.ntiers + 1, sizeof *a->syn);
    if (!a->m || !a->syn)
        return -1;
    size_t i = 0, j = 0;
    while (i < e->n || j < r->n) {
        int c = i == e->n ? 1 : j == r->n ? -1 : strcmp(e->ids[i], r->ids[j]);
        struct minion *m = &a->m[a->nm++];
        m->id = c <= 0 ? e->ids[i] : r->ids[j];
        m->expected = c <= 0;
        m->returned = c >= 0;
        m->tier = job_tier_of(&a->job, m->id);
        drop_syndic_id(a, m);
        i += c <= 0;
        j += c >= 0;
    }
    return 0;
}

/* The I-th id to look up: the minions, then the syndics. */
static const char *lookup_id(const struct accounting *a, size_t i, char **dc_out)
{
    if (i < a->nm) {
        *dc_out = a->m[i].dc;
        return a->m[i].id;
    }
    *dc_out = a->syn[i - a->nm].dc;
    return a->job.tiers[i - a->nm].syndic;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Each minion's and syndic's DC from the registry of the DCs that reported
 * (regmap.h). -1 if Redis failed. */
static int lookup_registry(struct accounting *a)
{
    static char names[DC_LIST_MAX][DC_NAME_MAX];
    int ndcs = dc_list(a->o->rc, a->o->cfg, names, DC_LIST_MAX);
    size_t n = a->nm + a->job.ntiers;
    const char **ids = calloc(n + 1, sizeof *ids);
    char *dc;
    struct regmap reg;
    if (ndcs < 0 || !ids) {
        free(ids);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = lookup_id(a, i, &dc);
    qsort(ids, n, sizeof *ids, cmp_id);
    int rv = regmap_load(a->o->rc, a->o->cfg, names, ndcs, ids, n, &reg);
    for (size_t i = 0; rv == 0 && i < n; i++) {
        const struct regentry *e = regmap_find(&reg, lookup_id(a, i, &dc));
        if (e)
            memcpy(dc, e->dc, sizeof e->dc);
    }
    regmap_free(&reg);
    free(ids);
    return rv;
}

static int dc_slot(struct accounting *a, const char *name)
{
    if (!*name)
        return -1;
    for (int i = 0; i < a->ndcs; i++)
        if (!strcmp(a->dcs[i].st.name, name))
            return i;
    if (a->ndcs == DC_LIST_MAX)
        return -1;
    struct job_dc *d = &a->dcs[a->ndcs];
    if (dc_load(a->o->rc, a->o->cfg, name, a->now_ms, &d->st) < 0)
        return -2;
    return a->ndcs++;
}

/* "behind syndic X, " for a minion a syndic listed, else "". */
static const char *syndic_prefix(const struct accounting *a, const struct minion *m, char *buf, size_t len)
{
    char esc[40];
    const char *s = m->tier < 0 ? NULL : a->job.tiers[m->tier].syndic;
    if (!s)
        return "";
    snprintf(buf, len, "behind syndic %s, ", printable(s, strlen(s), esc, sizeof esc));
    return buf;
}

static void explain(struct accounting *a, struct minion *m)
{
    char via[64];
    const char *p = syndic_prefix(a, m, via, sizeof via);
    if (m->dc_index < 0) {
        int syndic_unseen = m->tier >= 0 && !a->syn[m->tier].dc[0];
        m->reason = syndic_unseen ? R_SYNDIC_NEVER_SEEN : R_NEVER_SEEN;
        snprintf(m->detail, sizeof m->detail, "%sno _auth or request %sin the registry", p,
                 syndic_unseen ? "from the syndic " : "");
        return;
    }
    const struct job_dc *d = &a->dcs[m->dc_index];
    if (d->delivered == D_DELIVERED) {
        m->reason = R_NO_RETURN;
        snprintf(m->detail, sizeof m->detail, "%sjob sent %.1f s ago", p, (a->now_ms - a->jid_ms) / 1000.0);
    } else if (d->delivered == D_MAYBE) {
        m->reason = R_MAYBE;
        snprintf(m->detail, sizeof m->detail, "%sDC cursor past the jid's time, no return from the DC", p);
    } else {
        m->reason = R_NOT_DELIVERED;
        if (d->st.stale)
            snprintf(m->detail, sizeof m->detail, "%sDC stale: %s", p,
                     d->st.reported ? "no report for a while" : "never reported");
        else
            snprintf(m->detail, sizeof m->detail, "%sDC cursor %.1f s older than the job", p,
                     (a->jid_ms - (long long)d->st.cursor.ms) / 1000.0);
    }
}

/* A minion of a syndic's tier that the registry does not know is in its syndic's DC. */
static void count_tier(struct accounting *a, struct minion *m)
{
    if (m->tier < 0)
        return;
    struct syndic *s = &a->syn[m->tier];
    if (!m->dc[0])
        memcpy(m->dc, s->dc, sizeof m->dc);
    s->expected += m->expected;
    s->returned += m->returned;
    s->missing += m->expected && !m->returned;
}

/* Whether D delivered the job (once its returns are counted). */
static enum delivery delivery_of(const struct accounting *a, const struct job_dc *d)
{
    if (!d->st.reported || d->st.stale || (long long)d->st.cursor.ms < a->jid_ms)
        return D_NOT;
    return d->returned > 0 ? D_DELIVERED : D_MAYBE;
}

/* DC of every minion, the counts per DC, then the reason of each missing one. */
static int account(struct accounting *a)
{
    for (size_t i = 0; i < a->nm; i++) {
        struct minion *m = &a->m[i];
        count_tier(a, m);
        m->dc_index = dc_slot(a, m->dc);
        if (m->dc_index == -2)
            return -1;
        struct job_dc *d = &a->dcs[m->dc_index < 0 ? DC_LIST_MAX : m->dc_index];
        d->expected += m->expected;
        d->returned += m->returned;
    }
    for (int i = 0; i < a->ndcs; i++)
        a->dcs[i].delivered = delivery_of(a, &a->dcs[i]);
    for (size_t i = 0; i < a->nm; i++) {
        struct minion *m = &a->m[i];
        if (m->expected && !m->returned) {
            a->dcs[m->dc_index < 0 ? DC_LIST_MAX : m->dc_index].missing++;
            explain(a, m);
        }
    }
    snprintf(a->dcs[DC_LIST_MAX].st.name, DC_NAME_MAX, NO_DC);
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
    const struct job_dc *d = i < a->ndcs ? &a->dcs[i] : &a->dcs[DC_LIST_MAX];
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
        table_row(&t, known && d->delivered == D_NOT ? HEALTH_CRIT
                      : d->missing || (known && d->delivered == D_MAYBE) ? HEALTH_WARN : HEALTH_OK);
        table_cell(&t, "%s", d->st.name);
        table_cell(&t, "%ld", d->expected);
        table_cell(&t, "%ld", d->returned);
        table_cell(&t, "%ld", d->missing);
        static const char *const shown[] = {"not delivered", "delivered", "maybe"};
        table_cell(&t, "%s", !known ? "-" : shown[d->delivered]);
    }
    table_print(&t, stdout, a->o->colour);
    table_free(&t);
}

static const char *syndic_note(const struct syndic *s)
{
    static const char *const notes[] = {"", "own id not counted (a syndic never returns)", "never seen by its relay",
                                        "never seen by its relay; own id not counted"};
    return notes[s->own_id_dropped + 2 * !s->dc[0]];
}

static void print_syndic_table(const struct accounting *a)
{
    static const char *const heads[] = {"SYNDIC", "DC", "EXPECTED", "RETURNED", "MISSING", "NOTE", NULL};
    struct table t;
    char id[TABLE_CELL];
    table_init(&t, heads);
    for (size_t i = 0; i < a->job.ntiers; i++) {
        const struct syndic *s = &a->syn[i];
        const char *name = a->job.tiers[i].syndic;
        table_row(&t, s->missing || !s->dc[0] ? HEALTH_WARN : HEALTH_OK);
        table_cell(&t, "%s", printable(name, strlen(name), id, sizeof id));
        table_cell(&t, "%s", s->dc[0] ? s->dc : NO_DC);
        table_cell(&t, "%ld", s->expected);
        table_cell(&t, "%ld", s->returned);
        table_cell(&t, "%ld", s->missing);
        table_cell(&t, "%s", syndic_note(s));
    }
    if (t.nrows)
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
    print_syndic_table(a);
    print_missing_table(a);
}

/* ", "KEY": "S"" with S escaped, or null when S is NULL or "". */
static void json_field(const char *key, const char *s)
{
    printf(", \"%s\": ", key);
    if (s && *s)
        json_string(stdout, s, strlen(s));
    else
        printf("null");
}

static void print_json_syndics(const struct accounting *a)
{
    const char *sep = "\n";
    printf("],\n \"syndics\": [");
    for (size_t i = 0; i < a->job.ntiers; i++) {
        const struct syndic *s = &a->syn[i];
        printf("%s  {\"syndic\": ", sep);
        json_string(stdout, a->job.tiers[i].syndic, strlen(a->job.tiers[i].syndic));
        json_field("dc", s->dc);
        printf(", \"expected\": %ld, \"returned\": %ld, \"missing\": %ld, \"own_id_not_counted\": %s}", s->expected,
               s->returned, s->missing, s->own_id_dropped ? "true" : "false");
        sep = ",\n";
    }
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
               i == a->ndcs || d->delivered == D_MAYBE ? "null" : d->delivered == D_DELIVERED ? "true" : "false");
        sep = ",\n";
    }
    print_json_syndics(a);
    printf("],\n \"missing_minions\": [");
    sep = "\n";
    for (size_t i = 0; i < a->nm; i++) {
        const struct minion *m = &a->m[i];
        if (m->reason == R_NONE)
            continue;
        printf("%s  {\"minion\": ", sep);
        json_string(stdout, m->id, strlen(m->id));
        json_field("dc", m->dc);
        json_field("syndic", m->tier < 0 ? NULL : a->job.tiers[m->tier].syndic);
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
    free(a.syn);
    job_free(&a.job);
    return rc;
}
