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
        if (k != j && k->used && k->has_rec && k->rec.cmd == REQREC_AUTH && k->conn < 0 && !k->drop &&
            k->order < j->order && strcmp(k->id, j->id) == 0)
            shed_auth(h, k, "a newer _auth of the same minion");
    }
}

/* Keep waiting _auth within AUTH_WAIT_MAX: the oldest go. */
static void shed_overload(struct req_held *h)
{
    size_t waiting = 0;
    for (size_t i = 0; i < HOLD_MAX; i++) {
        const struct held_req *j = &h->job[i];
        waiting += j->used && j->has_rec && j->rec.cmd == REQREC_AUTH && j->conn < 0 && !j->drop;
    }
    while (waiting-- > AUTH_WAIT_MAX) {
        struct held_req *oldest = NULL;
        for (size_t i = 0; i < HOLD_MAX; i++) {
            struct held_req *j = &h->job[i];
            if (j->used && j->has_rec && j->rec.cmd == REQREC_AUTH && j->conn < 0 && !j->drop &&
                (!oldest || j->order < oldest->order))
                oldest = j;
        }
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

static int held(struct req_held *h, zmq_msg_t *entry)
{
    for (size_t i = 0; i < HOLD_MAX; i++)
        if (h->job[i].used && zmq_msg_size(&h->job[i].m[0]) == zmq_msg_size(entry) &&
            memcmp(zmq_msg_data(&h->job[i].m[0]), zmq_msg_data(entry), zmq_msg_size(entry)) == 0)
            return 1;
    return 0;
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
    if (j->n == 1) { /* trimmed while pending: past any deadline */
        req_held_drop(j, ST_EXPIRED, M_REQ_EXPIRED);
        return;
    }
    if (j->n <= JOB_FRAMES) {
        frames_view(j->m, 0, j->n, fv, fl);
        if (reqrec_decode(fv + 1, fl + 1, j->n - 1, &j->rec, &why) == 0) {
            j->has_rec = 1;
            note_auth_id(h, j);
            return;
        }
    }
    warn_throttled(h->warn, "skipping malformed entry of %s: %s", h->key, why);
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
        if (held(h, &j->m[0])) { /* read again after a reconnect: already ours */
            frames_close(j->m, j->n, JOB_FRAMES);
            h->credit_due++;
            continue;
        }
        take_entry(h, j);
    }
}

/* The job that may go now, or NULL: the oldest ordinary request, else the
 * newest _auth if the MoM has room for one more (and auth_rate a token). */
struct held_req *req_held_next(struct req_held *h, int auth_ok)
{
    struct held_req *req = NULL, *auth = NULL;
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *j = &h->job[i];
        if (!j->used || j->conn >= 0 || j->drop)
            continue;
        if (j->rec.cmd != REQREC_AUTH && (!req || j->order < req->order))
            req = j;
        else if (j->rec.cmd == REQREC_AUTH && auth_ok && (!auth || j->order > auth->order))
            auth = j;
    }
    return req ? req : auth;
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

void req_held_init(struct req_held *h, const char *key, struct warnrate *warn)
{
    h->key = key;
    h->warn = warn;
}

void req_held_fini(struct req_held *h)
{
    for (size_t i = 0; i < HOLD_MAX; i++)
        if (h->job[i].used)
            frames_close(h->job[i].m, h->job[i].n, JOB_FRAMES);
}
