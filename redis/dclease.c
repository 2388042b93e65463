/* dclease.c -- the DC's lease; see dclease.h. */
#include "dclease.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hostproc.h"
#include "keys.h"
#include "lease.h"
#include "log.h"
#include "rconn.h"

#define REDIS_TIMEOUT_MS 2000

struct dclease {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;                       /* under lock */
    enum dclease_state state;       /* under lock */
    char holder[LEASE_TOKEN_MAX];   /* the other holder's token, under lock */
    int refused;                    /* Redis answered with an error (logged once) */
    struct rconn *rc;               /* the thread's */
    char key[KEY_MAX];
    char dc[72];
};

static pthread_once_t token_once = PTHREAD_ONCE_INIT;
static char token[LEASE_TOKEN_MAX];

static void make_token(void)
{
    char name[160], mark[HOSTPROC_MARK_MAX], full[240];
    hostproc_name(name, sizeof name);
    hostproc_mark(mark, sizeof mark);
    snprintf(full, sizeof full, "%s#%s", name, mark);
    lease_token_new(full, token, sizeof token);
}

const char *dclease_token(void)
{
    pthread_once(&token_once, make_token);
    return token;
}

/* "host H pid P" from a token's name "H/P" (WHO gets the name as it is if
 * it is not of that form). */
static void describe(const char *tok, char *who, size_t len)
{
    char name[LEASE_TOKEN_MAX];
    lease_holder(tok, strlen(tok), name, sizeof name);
    char *slash = strrchr(name, '/');
    if (slash) {
        *slash = '\0';
        snprintf(who, len, "host %s pid %s", name, slash + 1);
    } else {
        snprintf(who, len, "%s", name);
    }
}

/* Whether the holder of TOK ran on this host and has ended (hostproc.h). */
static int holder_gone(const char *tok)
{
    const char *slash = strchr(tok, '/'), *h1 = strchr(tok, '#');
    const char *h2 = h1 ? strchr(h1 + 1, '#') : NULL;
    if (!slash || !h1 || !h2 || slash > h1)
        return 0;
    char mark[HOSTPROC_MARK_MAX];
    snprintf(mark, sizeof mark, "%.*s", (int)(h2 - h1 - 1), h1 + 1);
    char *end;
    long pid = strtol(slash + 1, &end, 10);
    return end == h1 && hostproc_gone(mark, pid);
}

/* One take-or-extend; the holder's token in SEEN. DEAD: a holder known ended. */
static enum dclease_state attempt(struct dclease *l, const char *dead, char *seen, size_t len)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%d", DCLEASE_MS);
    const char *tok = dclease_token();
    redisReply *r = rconn_command(l->rc, "EVAL %s 1 %s %s %s %s %s", LEASE_TAKE_LUA, l->key, tok, tok, ms, dead);
    enum dclease_state st = DCLEASE_UNKNOWN;
    if (r && r->type == REDIS_REPLY_STRING && r->len < len) {
        memcpy(seen, r->str, r->len);
        seen[r->len] = '\0';
        st = strcmp(seen, tok) == 0 ? DCLEASE_OURS : DCLEASE_OTHER;
    } else if (r && !l->refused) {
        log_error("datacenter %s: Redis refuses its lease (%s); retrying", l->dc,
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    l->refused = r && st == DCLEASE_UNKNOWN;
    freeReplyObject(r);
    return st;
}

/* Log the change from the state known so far to NEW (holder SEEN); ENDED:
 * the token of a holder found to have ended, taken over. Under the lock. */
static void note(const struct dclease *l, enum dclease_state new, const char *seen, const char *ended)
{
    char who[300], was[300];
    describe(seen, who, sizeof who);
    describe(ended[0] ? ended : l->holder, was, sizeof was);
    if (new == DCLEASE_OTHER && l->state == DCLEASE_OURS)
        return; /* the daemon steps down and says so (redis_gate.c) */
    if (new == DCLEASE_OTHER)
        log_error("datacenter %s is held by saltrelay-down on %s (two saltrelay-downs with the same datacenter?): "
                  "not serving it; taking over once that one stops (its lease runs out %d s after its last renewal)",
                  l->dc, who, DCLEASE_MS / 1000);
    else if (ended[0])
        log_info("datacenter %s: saltrelay-down on %s has ended on this host: taking over its lease", l->dc, was);
    else if (l->holder[0])
        log_info("datacenter %s: the lease of saltrelay-down on %s has ended: this one holds it now", l->dc, was);
    else
        log_info("datacenter %s: this saltrelay-down holds its lease", l->dc);
}

/* What one attempt found; an attempt without an answer changes nothing
 * (Redis is away: the last holder known stays). */
static void publish(struct dclease *l, enum dclease_state st, const char *seen, const char *ended)
{
    pthread_mutex_lock(&l->lock);
    const char *holder = st == DCLEASE_OTHER ? seen : "";
    if (st != DCLEASE_UNKNOWN && (st != l->state || strcmp(holder, l->holder) != 0)) {
        note(l, st, seen, ended);
        l->state = st;
        snprintf(l->holder, sizeof l->holder, "%s", holder);
    }
    pthread_mutex_unlock(&l->lock);
}

/* Wait until DCLEASE_RENEW_MS from now or the stop; under the lock. */
static void pause_renewal(struct dclease *l)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + (long long)DCLEASE_RENEW_MS * 1000000LL;
    until.tv_sec += (time_t)(ns / 1000000000LL);
    until.tv_nsec = (long)(ns % 1000000000LL);
    while (!l->stop && pthread_cond_timedwait(&l->wake, &l->lock, &until) == 0)
        ;
}

static void *run(void *arg)
{
    struct dclease *l = arg;
    char seen[LEASE_TOKEN_MAX] = "", ended[LEASE_TOKEN_MAX];
    pthread_mutex_lock(&l->lock);
    while (!l->stop) {
        pthread_mutex_unlock(&l->lock);
        ended[0] = '\0';
        enum dclease_state st = attempt(l, "", seen, sizeof seen);
        if (st == DCLEASE_OTHER && holder_gone(seen)) {
            snprintf(ended, sizeof ended, "%s", seen);
            st = attempt(l, ended, seen, sizeof seen);
        }
        publish(l, st, seen, st == DCLEASE_OURS ? ended : "");
        pthread_mutex_lock(&l->lock);
        pause_renewal(l);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

struct dclease *dclease_start(const struct config *cfg)
{
    struct dclease *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    dclease_token();
    key_dc_owner(l->key, cfg->cluster, cfg->datacenter);
    snprintf(l->dc, sizeof l->dc, "%s", cfg->datacenter);
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->wake, NULL);
    l->rc = rconn_new(&cfg->redis_primary_url, "DC lease", REDIS_TIMEOUT_MS);
    if (!l->rc || pthread_create(&l->thread, NULL, run, l) != 0) {
        log_error("datacenter %s: cannot start its lease", l->dc);
        rconn_destroy(&l->rc);
        free(l);
        return NULL;
    }
    return l;
}

enum dclease_state dclease_get(struct dclease *l, char *who, size_t len)
{
    pthread_mutex_lock(&l->lock);
    enum dclease_state st = l->state;
    describe(l->holder, who, len);
    pthread_mutex_unlock(&l->lock);
    return st;
}

void dclease_stop(struct dclease **lp)
{
    struct dclease *l = *lp;
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = 1;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    if (l->state == DCLEASE_OURS)
        freeReplyObject(rconn_command(l->rc, "EVAL %s 1 %s %s", LEASE_RELEASE_LUA, l->key, dclease_token()));
    rconn_destroy(&l->rc);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->wake);
    free(l);
    *lp = NULL;
}
