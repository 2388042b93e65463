/* pub_subs.c -- see pub_subs.h. The XPUB is verboser: it hands over every
 * subscriber's subscription (0x01 + topic) and every unsubscription (0x00 +
 * topic, also one per subscription of a subscriber that disconnects), so a
 * topic stays in the set while some subscriber holds it (counted) and LIVE
 * counts the subscriptions held. The XPUB socket updates its own filter and
 * queues these messages in the same step, so after a drain the set matches
 * what ZeroMQ itself would deliver to: skipping changes nothing a minion
 * receives. */
#include "pub_subs.h"

#include <string.h>
#include <zmq.h>

#include "log.h"
#include "pub_flow.h"

void pub_subs_init(struct pub_subs *s)
{
    memset(s, 0, sizeof *s);
    strset_init(&s->set, PUB_SUBS_MAX);
}

void pub_subs_free(struct pub_subs *s) { strset_free(&s->set); }

void pub_subs_socket(void *xpub)
{
    int on = 1;
    zmq_setsockopt(xpub, ZMQ_XPUB_VERBOSER, &on, sizeof on);
}

static void note(struct pub_subs *s, const unsigned char *m, size_t len)
{
    if (len < 1 || m[0] > 1)
        return; /* not a subscription */
    if (m[0] == 1)
        s->live++;
    else
        s->live -= s->live > 0;
    if (len - 1 > STRSET_MAX_LEN) { /* longer than any topic we skip; pub_subs_class must know of it */
        if (m[0] == 1)
            s->long_subs++;
        else
            s->long_subs -= s->long_subs > 0;
        return;
    }
    const char *topic = (const char *)m + 1;
    size_t tlen = len - 1;
    if (m[0] == 0) {
        if (strset_unref(&s->set, topic, tlen) == 1)
            s->by_len[tlen]--;
        return;
    }
    int r = strset_ref(&s->set, topic, tlen);
    if (r == 1)
        s->by_len[tlen]++;
    if (r < 0 && !s->overflow)
        log_warn("more than %d distinct subscriptions: every topic is sent from now on", PUB_SUBS_MAX);
    s->overflow |= r < 0;
}

int pub_subs_drain(struct pub_subs *s, void *xpub)
{
    unsigned char buf[STRSET_MAX_LEN + 2];
    int i;
    for (i = 0; i < 1000000; i++) { /* bounded: at most one message per subscription change */
        int n = zmq_recv(xpub, buf, sizeof buf, ZMQ_DONTWAIT);
        if (n < 0)
            break;
        note(s, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf + 1);
    }
    return i;
}

int pub_subs_class(const struct pub_subs *s, const char *topic, size_t len)
{
    if (s->overflow || (s->long_subs && len > STRSET_MAX_LEN))
        return PUB_FLOW_UNTRACKED;
    for (size_t k = len < STRSET_MAX_LEN ? len : STRSET_MAX_LEN;; k--) {
        if (s->by_len[k] && strset_has(&s->set, topic, k))
            return (int)k;
        if (k == 0)
            return PUB_FLOW_NOBODY;
    }
}
