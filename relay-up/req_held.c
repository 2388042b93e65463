/* req_forward_auth.c -- request forwarding's handling of _auth storms (see
 * req_forward.c): which waiting _auth are shed unsent, and the one log line
 * per shedding episode. */
#include "req_held.h"

#include <string.h>

#include "clock.h"
#include "log.h"

#define SHED_QUIET_MS 5000  /* no _auth shed for this long: the episode is over */

/* Shed _auth job J (REASON for the episode's log line). */
void fwd_shed_auth(struct req_forward *o, struct held_req *j, const char *reason)
{
    fwd_held_drop(j, ST_EXPIRED, M_REQ_EXPIRED);
    o->shed_at = clock_mono_ms();
    o->shed_count++;
    if (!o->shedding)
        log_warn("shedding _auth requests (first: %s); the MoM is not keeping up with re-authentication "
                 "(counted in auth_shed_total)", reason);
    o->shedding = 1;
}

void fwd_end_shedding(struct req_forward *o)
{
    if (!o->shedding || clock_mono_ms() - o->shed_at < SHED_QUIET_MS)
        return;
    log_info("no _auth shed for %d s: shedding over (%lld shed)", SHED_QUIET_MS / 1000,
             (long long)o->shed_count);
    o->shedding = 0;
    o->shed_count = 0;
}

/* A newer _auth of minion J->id was read: an older one still waiting is
 * abandoned by its minion (it re-sent on a new socket). */
static void shed_older_auth(struct req_forward *o, const struct held_req *j)
{
    for (size_t i = 0; i < HOLD_MAX; i++) {
        struct held_req *k = &o->held[i];
        if (k != j && k->used && k->has_rec && k->rec.cmd == REQREC_AUTH && k->conn < 0 && !k->drop &&
            k->order < j->order && strcmp(k->id, j->id) == 0)
            fwd_shed_auth(o, k, "a newer _auth of the same minion");
    }
}

/* Keep waiting _auth within AUTH_WAIT_MAX: the oldest go. */
void fwd_shed_overload(struct req_forward *o)
{
    size_t waiting = 0;
    for (size_t i = 0; i < HOLD_MAX; i++) {
        const struct held_req *j = &o->held[i];
        waiting += j->used && j->has_rec && j->rec.cmd == REQREC_AUTH && j->conn < 0 && !j->drop;
    }
    while (waiting-- > AUTH_WAIT_MAX) {
        struct held_req *oldest = NULL;
        for (size_t i = 0; i < HOLD_MAX; i++) {
            struct held_req *j = &o->held[i];
            if (j->used && j->has_rec && j->rec.cmd == REQREC_AUTH && j->conn < 0 && !j->drop &&
                (!oldest || j->order < oldest->order))
                oldest = j;
        }
        fwd_shed_auth(o, oldest, "more waiting than the read-ahead keeps");
    }
}

/* An _auth: read its minion id in clear, shed an older attempt of that id. */
void fwd_note_auth_id(struct req_forward *o, struct held_req *j)
{
    struct salt_envelope env;
    const char *why;
    j->id[0] = '\0';
    if (j->rec.cmd != REQREC_AUTH || envelope_peek(j->rec.payload, j->rec.len, &env, &why) < 0 || !env.id[0])
        return;
    memcpy(j->id, env.id, sizeof j->id);
    shed_older_auth(o, j);
}

