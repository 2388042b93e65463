/* sentinel_watch.c -- the +switch-master subscription and the newest
 * primary known; see sentinel_watch.h. */
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
#include "switchmsg.h"

#define WATCH_MAX 4          /* sentinel:// URLs of one process (saltrelay-down has two URLs) */
#define TIMEOUT_MS 500       /* connect and command timeout per Sentinel, as rconn's */
#define POLL_MS 200          /* how often the thread looks at the stop flag */
#define RETRY_MS 1000        /* no Sentinel took the subscription: try again after */
#define CHANNEL "+switch-master"

/* Where an address of the primary comes from (see learn). */
enum source {
    ANNOUNCED, /* a +switch-master message */
    CHECKED,   /* the watch asked, after subscribing */
    OFFERED,   /* a connection's Sentinel answered */
};

struct sentinel_watch {
    pthread_t thread;
    atomic_int stop;
    atomic_uint version;          /* bumped at every change of newest's address */
    pthread_mutex_t lock;         /* guards newest */
    struct sentinel_answer newest; /* the newest primary known ("" before the first) */
    struct redis_url url;         /* the thread's copy (sentinel_resolve reorders it) */
    struct redis_addr sub_at;     /* the Sentinel subscribed to */
    int subscribed;               /* for the log: one line per state change */
    int bad_logged;               /* a malformed message logged for this subscription */
};

/* Registered before the other threads start and removed after they stopped:
 * plain reads are safe in between. */
static struct sentinel_watch *watches[WATCH_MAX];

static struct timeval ms_tv(int ms)
{
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

static int same_addr(const struct redis_addr *a, const struct redis_addr *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* Is A newer than the newest primary known? A +switch-master is (a switch
 * happened; the message carries no epoch: the new one is at least one
 * more); an answer is if its configuration epoch is larger. Without epochs
 * (a Sentinel that refuses SENTINEL MASTER) the watch's own look after
 * subscribing is taken, as the address the Sentinels name now. */
static int newer(const struct sentinel_watch *w, const struct sentinel_answer *a, enum source src)
{
    if (!w->newest.addr.host[0] || src == ANNOUNCED)
        return 1;
    return a->epoch > w->newest.epoch || (src == CHECKED && a->epoch < 0 && w->newest.epoch < 0);
}

/* Under the lock: the primary is A (from SRC). Keeps it if newer; a new
 * address after a known one is a switch (counted, logged, and every
 * connection made elsewhere moves). */
static void learn(struct sentinel_watch *w, const struct sentinel_answer *a, enum source src)
{
    int known = w->newest.addr.host[0] != '\0';
    if (known && same_addr(&a->addr, &w->newest.addr)) {
        if (a->epoch > w->newest.epoch) /* the exact epoch of an announced switch */
            w->newest.epoch = a->epoch;
        return;
    }
    if (!newer(w, a, src))
        return;
    long long epoch = a->epoch;
    if (src == ANNOUNCED)
        epoch = w->newest.epoch >= 0 ? w->newest.epoch + 1 : -1;
    if (known) {
        metric_add(M_REDIS_SWITCHES, 1);
        log_info("sentinels switched master '%s' to %s:%d (%s): connections move there", w->url.master,
                 a->addr.host, a->addr.port, src == ANNOUNCED ? CHANNEL : src == CHECKED ? "found on subscribing"
                 : "a sentinel's newer configuration");
    }
    w->newest.addr = a->addr;
    w->newest.epoch = epoch;
    atomic_fetch_add(&w->version, 1);
}

static void learn_locked(struct sentinel_watch *w, const struct sentinel_answer *a, enum source src)
{
    pthread_mutex_lock(&w->lock);
    learn(w, a, src);
    pthread_mutex_unlock(&w->lock);
}

/* Ask for the primary's address (after each subscribe: a switch announced
 * while there was no subscription is not missed). */
static void check_primary(struct sentinel_watch *w)
{
    struct sentinel_answer a;
    char why[300];
    if (sentinel_resolve(&w->url, TIMEOUT_MS, &a, why, sizeof why) == 0)
        learn_locked(w, &a, CHECKED);
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
            w->sub_at = *s;
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
    struct switchmsg m;
    const char *why = "not a message";
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING &&
             switchmsg_parse(r->element[2]->str, r->element[2]->len, &m, &why) == 0;
    if (!ok) {
        metric_add(M_SENTINEL_BAD, 1);
        if (!w->bad_logged)
            log_warn("sentinel: malformed %s message ignored (%s; counted in sentinel_bad_messages_total)", CHANNEL,
                     why);
        w->bad_logged = 1;
        return;
    }
    if (!switchmsg_is(&m, w->url.master))
        return;
    learn_locked(w, &(struct sentinel_answer){.addr = m.to, .epoch = -1}, ANNOUNCED);
    /* the switch's exact epoch, from the Sentinel that announced it (it has
     * the new configuration): an answer of an epoch between the old one and
     * it is then known to be older */
    struct sentinel_answer a;
    char whyask[300];
    if (sentinel_ask(&w->url, &w->sub_at, TIMEOUT_MS, &a, whyask, sizeof whyask) > 0)
        learn_locked(w, &a, OFFERED);
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

static struct sentinel_watch *watch_of(const struct redis_url *u)
{
    for (int i = 0; u->master[0] && i < WATCH_MAX; i++)
        if (watches[i] && strcmp(watches[i]->url.master, u->master) == 0)
            return watches[i];
    return NULL;
}

struct sentinel_watch *sentinel_watch_start(const struct redis_url *u)
{
    if (!u->master[0] || watch_of(u))
        return NULL;
    int slot = 0;
    while (slot < WATCH_MAX && watches[slot])
        slot++;
    struct sentinel_watch *w = slot < WATCH_MAX ? calloc(1, sizeof *w) : NULL;
    if (!w)
        return NULL;
    w->url = *u;
    w->newest.epoch = -1;
    pthread_mutex_init(&w->lock, NULL);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        log_error("cannot start the %s watch for master '%s'", CHANNEL, u->master);
        pthread_mutex_destroy(&w->lock);
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
    pthread_mutex_destroy(&w->lock);
    free(w);
    *wp = NULL;
}

void sentinel_watch_offer(const struct redis_url *u, const struct sentinel_answer *a, struct redis_addr *use,
                          unsigned *seen)
{
    struct sentinel_watch *w = watch_of(u);
    *use = a->addr;
    *seen = 0;
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    learn(w, a, OFFERED);
    *use = w->newest.addr;
    *seen = atomic_load(&w->version);
    pthread_mutex_unlock(&w->lock);
}

int sentinel_watch_moved(const struct redis_url *u, unsigned *seen, const struct redis_addr *at)
{
    struct sentinel_watch *w = watch_of(u);
    if (!w || atomic_load(&w->version) == *seen)
        return 0;
    pthread_mutex_lock(&w->lock);
    int moved = w->newest.addr.host[0] && !same_addr(&w->newest.addr, at);
    if (!moved) /* changed and back (or only learned): nothing to do until the next change */
        *seen = atomic_load(&w->version);
    pthread_mutex_unlock(&w->lock);
    return moved;
}
