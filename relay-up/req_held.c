/* req_held.c -- request forwarding's read-ahead (see req_held.h, and
 * req_forward.c for the whole): the reader's entries taken into jobs (a
 * copy read again after a reconnect is recognised by its entry id), which
 * job goes next, and _auth storms: which waiting _auth are shed unsent, and
 * the one log line per shedding episode. */
#include "req_held.h"

#include <string.h>

#include "clock.h"
#include "frames.h"
#include "log.h"

#define AUTH_WAIT_MAX (HOLD_MAX - 128) /* waiting _auth beyond: the oldest are shed (room for requests) */
#define SHED_QUIET_MS 5000  /* no _auth shed for this long: the episode is over */

/* An _auth waiting for a socket. */
static int waiting_auth(const struct held_req *j)
{
    return j->used && j->has_rec && j->rec.cmd == REQREC_AUTH && j->conn < 0 && !j->drop;
}

/* Shed _auth job J (REASON for the episode's log line). */
static void shed_auth(struct req_held *h, struct held_req *j, const char *reason)
{
    req_held_drop(j, ST_EXPIRED, M_REQ_EXPIRED);
    h->shed_at = clock_mono_ms();
    h->shed_count++;
    if (!h->shedding)
        log_warn("shedding _auth requests (first: %s); the MoM is not keeping up with re-authentication "
                 "(counted in auth_shed_total)", reason);
    h->shedding = 1;
}

static void end_shedding(struct req_held *h)
{
    if (!h->shedding || clock_mono_ms() - h->shed_at < SHED_QUIET_MS)
        return;
    log_info("no _auth shed for %d s: shedding over (%lld shed)", SHED_QUIET_MS / 1000,
             (long long)h->shed_count);
    h->shedding = 0;
    h->shed_count = 0;
}

/* A newer _auth of minion J->id was read: an older one still waiting is
 * abandoned by its minion (it re-sent on a new socket). */
static void shed_older_auth(struct req_held *h, const struct held_req *j)
{
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *k = &h->job[i];
        if (k != j && waiting_auth(k) && k->order < j->order && strcmp(k->id, j->id) == 0)
            shed_auth(h, k, "a newer _auth of the same minion");
    }
}

/* Keep waiting _auth within AUTH_WAIT_MAX: the DC with the most waiting
 * loses its oldest, so that a DC's storm does not shed another's _auth. */
static void shed_overload(struct req_held *h)
{
    int per_src[HELD_SOURCES] = {0};
    size_t waiting = 0;
    for (size_t i = 0; i < HOLD_MAX; i++)
        if (waiting_auth(&h->job[i])) {
            per_src[h->job[i].src]++;
            waiting++;
        }
    for (; waiting > AUTH_WAIT_MAX; waiting--) {
        int most = 0;
        for (int k = 1; k < h->nsrc; k++)
            most = per_src[k] > per_src[most] ? k : most;
        struct held_req *oldest = NULL;
        for (size_t i = 0; i < HOLD_MAX; i++) {
            struct held_req *j = &h->job[i];
            if (waiting_auth(j) && j->src == most && (!oldest || j->order < oldest->order))
                oldest = j;
        }
        per_src[most]--;
        shed_auth(h, oldest, "more waiting than the read-ahead keeps");
    }
}

/* An _auth: read its minion id in clear, shed an older attempt of that id. */
static void note_auth_id(struct req_held *h, struct held_req *j)
{
    struct salt_envelope env;
    const char *why;
    j->id[0] = '\0';
    if (j->rec.cmd != REQREC_AUTH || envelope_peek(j->rec.payload, j->rec.len, &env, &why) < 0 || !env.id[0])
        return;
    memcpy(j->id, env.id, sizeof j->id);
    shed_older_auth(h, j);
}

/* Job J is done with: one more entry granted to the reader. */
void req_held_free(struct req_held *h, struct held_req *j)
{
    frames_close(j->m, j->n, JOB_FRAMES);
    j->used = 0;
    h->credit_due++;
}

/* Drop job J unsent, once its entry is acknowledged: reply record ST (if it
 * has one), counted in METRIC (and in auth_shed_total if an _auth). */
void req_held_drop(struct held_req *j, enum reprec_status st, enum metric_id metric)
{
    j->drop = 1;
    j->st = st;
    j->metric = metric;
}

static int same(zmq_msg_t *a, zmq_msg_t *b)
{
    return zmq_msg_size(a) == zmq_msg_size(b) && memcmp(zmq_msg_data(a), zmq_msg_data(b), zmq_msg_size(a)) == 0;
}

/* Entry M (stream, id) is held already. */
static int held(struct req_held *h, zmq_msg_t *m)
{
    for (size_t i = 0; i < HOLD_MAX; i++)
        if (h->job[i].used && same(&h->job[i].m[1], &m[1]) && same(&h->job[i].m[0], &m[0]))
            return 1;
    return 0;
}

/* The source of stream KEY (LEN bytes): known, new, or one no job holds
 * any more (streams come and go with DCs). */
static int source_of(struct req_held *h, const char *key, size_t len)
{
    for (int k = 0; k < h->nsrc; k++)
        if (strlen(h->src[k].key) == len && memcmp(h->src[k].key, key, len) == 0)
            return k;
    int k = h->nsrc < HELD_SOURCES ? h->nsrc++ : -1;
    for (int c = 0; k < 0 && c < HELD_SOURCES; c++) {
        k = c;
        for (size_t i = 0; i < HOLD_MAX && k >= 0; i++)
            k = h->job[i].used && h->job[i].src == c ? -1 : k;
    }
    if (k < 0)
        return 0; /* cannot be: no more streams are read than there are sources */
    snprintf(h->src[k].key, sizeof h->src[k].key, "%.*s", (int)len, key);
    h->src[k].served = 0;
    return k;
}

/* Which DC record REC of stream KEY may name: a DC's own stream holds its
 * requests only (else another DC's reply stream would get the answer). */
static int dc_matches(const struct req_held *h, const char *key, const struct reqrec *rec)
{
    size_t pl = strlen(h->prefix);
    if (!strcmp(key, h->shared))
        return 1;
    return strncmp(key, h->prefix, pl) == 0 && strlen(key + pl) == rec->dclen &&
           memcmp(key + pl, rec->dc, rec->dclen) == 0;
}

/* Take one entry from the reader into job J (a free slot). It counts as
 * read (requests_in) once its XACK took it. */
static void take_entry(struct req_held *h, struct held_req *j)
{
    const char *fv[JOB_FRAMES];
    size_t fl[JOB_FRAMES];
    const char *why = "too many fields";
    j->used = 1;
    j->conn = -1;
    j->drop = j->has_rec = 0;
    j->acking = j->acked = j->counted = 0;
    j->order = ++h->order;
    j->src = source_of(h, zmq_msg_data(&j->m[0]), zmq_msg_size(&j->m[0]));
    if (j->n == 2) { /* trimmed while pending: past any deadline */
        req_held_drop(j, ST_EXPIRED, M_REQ_EXPIRED);
        return;
    }
    if (j->n <= JOB_FRAMES) {
        frames_view(j->m, 0, j->n, fv, fl);
        if (reqrec_decode(fv + 2, fl + 2, j->n - 2, &j->rec, &why) == 0) {
            why = "its dc is not its stream's";
            j->has_rec = dc_matches(h, h->src[j->src].key, &j->rec);
        }
        if (j->has_rec) {
            note_auth_id(h, j);
            return;
        }
    }
    warn_throttled(h->warn, "skipping malformed entry of %s: %s", h->src[j->src].key, why);
    req_held_drop(j, ST_EXPIRED, M_REQ_BAD);
}

void req_held_take(struct req_held *h, void *sock)
{
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *j = &h->job[i];
        if (j->used)
            continue;
        j->n = frames_recv(sock, j->m, JOB_FRAMES);
        if (j->n == 0)
            return;
        if (j->n < 2 || held(h, j->m)) { /* read again after a reconnect: already ours */
            frames_close(j->m, j->n, JOB_FRAMES);
            h->credit_due++;
            continue;
        }
        take_entry(h, j);
    }
}

/* Whether job J goes before BEST: its DC was served longer ago, or, of the
 * same DC, an ordinary request older or an _auth newer than BEST. */
static int before(const struct req_held *h, const struct held_req *j, const struct held_req *best)
{
    uint64_t sj = h->src[j->src].served, sb = h->src[best->src].served;
    if (sj != sb)
        return sj < sb;
    return j->rec.cmd == REQREC_AUTH ? j->order > best->order : j->order < best->order;
}

/* The job that may go now, or NULL: of the DC served longest ago, the
 * oldest ordinary request; else, if AUTH_OK, the newest _auth likewise. */
struct held_req *req_held_next(struct req_held *h, int auth_ok)
{
    struct held_req *req = NULL, *auth = NULL;
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *j = &h->job[i];
        if (!j->used || j->conn >= 0 || j->drop)
            continue;
        if (j->rec.cmd != REQREC_AUTH && (!req || before(h, j, req)))
            req = j;
        else if (j->rec.cmd == REQREC_AUTH && auth_ok && (!auth || before(h, j, auth)))
            auth = j;
    }
    return req ? req : auth;
}

void req_held_picked(struct req_held *h, const struct held_req *j)
{
    h->src[j->src].served = ++h->turn;
}

/* Drop what is past its deadline. */
void req_held_drop_expired(struct req_held *h, long long now_wall, int mom_down)
{
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *j = &h->job[i];
        if (!j->used || j->conn >= 0 || j->drop || j->rec.dl_ms > now_wall)
            continue;
        if (j->has_rec && j->rec.cmd == REQREC_AUTH && !mom_down)
            shed_auth(h, j, "older than its minion waits (auth_timeout)");
        else
            req_held_drop(j, mom_down ? ST_MOM_UNREACHABLE : ST_EXPIRED,
                          mom_down ? M_REQ_MOM_UNREACHABLE : M_REQ_EXPIRED);
    }
}

void req_held_shed_overload(struct req_held *h)
{
    shed_overload(h);
    end_shedding(h);
}

void req_held_init(struct req_held *h, const char *prefix, const char *shared, struct warnrate *warn)
{
    h->prefix = prefix;
    h->shared = shared;
    h->warn = warn;
}

void req_held_fini(struct req_held *h)
{
    for (size_t i = 0; i < HOLD_MAX; i++)
        if (h->job[i].used)
            frames_close(h->job[i].m, h->job[i].n, JOB_FRAMES);
}
