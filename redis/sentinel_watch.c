/* sentinel_watch.c -- the +switch-master subscription; see sentinel_watch.h. */
#include "sentinel_watch.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "log.h"
#include "metrics.h"
#include "sentinel.h"

#define WATCH_MAX 4          /* sentinel:// URLs of one process (saltrelay-down has two URLs) */
#define TIMEOUT_MS 500       /* connect and command timeout per Sentinel, as rconn's */
#define POLL_MS 200          /* how often the thread looks at the stop flag */
#define RETRY_MS 1000        /* no Sentinel took the subscription: try again after */
#define CHANNEL "+switch-master"

struct sentinel_watch {
    pthread_t thread;
    atomic_int stop;
    atomic_uint switches;
    struct redis_url url;     /* the thread's copy (sentinel_resolve reorders it) */
    struct redis_addr known;  /* the primary as last known ("" before the first answer) */
    int subscribed;           /* for the log: one line per state change */
    int bad_logged;           /* a malformed message logged for this subscription */
};

/* Registered before the other threads start and removed after they stopped:
 * plain reads are safe in between. */
static struct sentinel_watch *watches[WATCH_MAX];

static struct timeval ms_tv(int ms)
{
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

/* The primary is now HOST:PORT: a switch if it differs from the last known
 * (or, ANNOUNCED by +switch-master, if none was known yet). */
static void note_primary(struct sentinel_watch *w, const char *host, int port, int announced)
{
    int differs = w->known.port != port || strcmp(w->known.host, host) != 0;
    if (w->known.host[0] ? differs : announced) {
        atomic_fetch_add(&w->switches, 1);
        metric_add(M_REDIS_SWITCHES, 1);
        log_info("sentinels switched master '%s' to %s:%d (%s): connections move there", w->url.master, host, port,
                 announced ? CHANNEL : "found on subscribing");
    }
    snprintf(w->known.host, sizeof w->known.host, "%s", host);
    w->known.port = port;
}

/* Ask for the primary's address (after each subscribe: a switch announced
 * while there was no subscription is not missed). */
static void check_primary(struct sentinel_watch *w)
{
    struct redis_addr a;
    char why[300];
    if (sentinel_resolve(&w->url, TIMEOUT_MS, &a, why, sizeof why) == 0)
        note_primary(w, a.host, a.port, 0);
}

/* Is R the confirmation ["subscribe", channel, count]? */
static int subscribed(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING &&
           strcmp(r->element[0]->str, "subscribe") == 0;
}

/* A connection to one of the Sentinels, subscribed; NULL if none took it. */
static redisContext *subscribe_any(struct sentinel_watch *w)
{
    for (int i = 0; i < w->url.nsentinels; i++) {
        const struct redis_addr *s = &w->url.sentinel[i];
        redisContext *c = redisConnectWithTimeout(s->host, s->port, ms_tv(TIMEOUT_MS));
        redisReply *r = NULL;
        int ok = c && !c->err && redisSetTimeout(c, ms_tv(TIMEOUT_MS)) == REDIS_OK &&
                 (r = sentinel_command(c, &w->url, "SUBSCRIBE %s", CHANNEL)) && subscribed(r);
        freeReplyObject(r);
        if (ok) {
            if (!w->subscribed)
                log_info("sentinel %s:%d: watching %s for master '%s'", s->host, s->port, CHANNEL, w->url.master);
            w->subscribed = 1;
            return c;
        }
        redisFree(c);
    }
    if (w->subscribed)
        log_warn("no sentinel takes the %s subscription for master '%s'; retrying (failovers are still noticed "
                 "when a connection breaks or answers READONLY)", CHANNEL, w->url.master);
    w->subscribed = 0;
    return NULL;
}

/* One message: ["message", "+switch-master", "<master> <old ip> <old port> <new ip> <new port>"]. */
static void take_message(struct sentinel_watch *w, const redisReply *r)
{
    char name[sizeof w->url.master], host[256];
    int port = 0;
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING &&
             r->element[2]->len < 700 &&
             sscanf(r->element[2]->str, "%127s %*s %*s %255s %d", name, host, &port) == 3 && port > 0 &&
             port <= 65535;
    if (!ok) {
        metric_add(M_SENTINEL_BAD, 1);
        if (!w->bad_logged)
            log_warn("sentinel: malformed %s message ignored (counted in sentinel_bad_messages_total)", CHANNEL);
        w->bad_logged = 1;
        return;
    }
    if (strcmp(name, w->url.master) == 0)
        note_primary(w, host, port, 1);
}

/* Read messages until the stop or a broken connection. */
static void listen_on(struct sentinel_watch *w, redisContext *c)
{
    while (!atomic_load(&w->stop)) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int n = poll(&pfd, 1, POLL_MS);
        if (n == 0)
            continue;
        if (n < 0 || redisBufferRead(c) != REDIS_OK)
            return;
        void *r = NULL;
        while (redisGetReplyFromReader(c, &r) == REDIS_OK && r) {
            take_message(w, r);
            freeReplyObject(r);
            r = NULL;
        }
        if (c->err)
            return;
    }
}

static void pause_ms(struct sentinel_watch *w, int ms)
{
    for (int t = 0; t < ms && !atomic_load(&w->stop); t += POLL_MS)
        nanosleep(&(struct timespec){0, POLL_MS * 1000000L}, NULL);
}

static void *watch_main(void *arg)
{
    struct sentinel_watch *w = arg;
    while (!atomic_load(&w->stop)) {
        redisContext *c = subscribe_any(w);
        if (!c) {
            pause_ms(w, RETRY_MS);
            continue;
        }
        w->bad_logged = 0;
        check_primary(w);
        listen_on(w, c);
        redisFree(c);
        if (!atomic_load(&w->stop))
            pause_ms(w, POLL_MS); /* a Sentinel that closes at once must not make us spin */
    }
    return NULL;
}

static int slot_of(const struct redis_url *u)
{
    for (int i = 0; i < WATCH_MAX; i++)
        if (watches[i] && strcmp(watches[i]->url.master, u->master) == 0)
            return i;
    return -1;
}

struct sentinel_watch *sentinel_watch_start(const struct redis_url *u)
{
    if (!u->master[0] || slot_of(u) >= 0)
        return NULL;
    int slot = 0;
    while (slot < WATCH_MAX && watches[slot])
        slot++;
    struct sentinel_watch *w = slot < WATCH_MAX ? calloc(1, sizeof *w) : NULL;
    if (!w)
        return NULL;
    w->url = *u;
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        log_error("cannot start the %s watch for master '%s'", CHANNEL, u->master);
        free(w);
        return NULL;
    }
    watches[slot] = w;
    return w;
}

void sentinel_watch_stop(struct sentinel_watch **wp)
{
    struct sentinel_watch *w = *wp;
    if (!w)
        return;
    atomic_store(&w->stop, 1);
    pthread_join(w->thread, NULL);
    for (int i = 0; i < WATCH_MAX; i++)
        if (watches[i] == w)
            watches[i] = NULL;
    free(w);
    *wp = NULL;
}

unsigned sentinel_watch_switches(const struct redis_url *u)
{
    int i = u->master[0] ? slot_of(u) : -1;
    return i < 0 ? 0 : atomic_load(&watches[i]->switches);
}
