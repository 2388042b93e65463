/* pub_subs.h -- the subscriptions of saltrelay-down's local subscribers, as
 * its XPUB socket reports them, so that a merged record's topics nobody in
 * this DC asked for are not even handed to ZeroMQ. */
#ifndef SALTRELAY_PUB_SUBS_H
#define SALTRELAY_PUB_SUBS_H

#include <stddef.h>

#include "strset.h"

#define PUB_SUBS_MAX 1000000 /* distinct subscriptions tracked; past it nothing is skipped */

struct pub_subs {
    struct strset set;
    unsigned long by_len[STRSET_MAX_LEN + 1]; /* subscriptions of each length */
    int overflow; /* could not track every subscription: skip nothing */
    unsigned long long_subs; /* subscriptions longer than STRSET_MAX_LEN (not in SET) */
    unsigned long live; /* subscriptions held by the connected subscribers, one per subscriber and topic */
};

void pub_subs_init(struct pub_subs *s);
void pub_subs_free(struct pub_subs *s);
/* Make the XPUB socket report every subscriber's (un)subscriptions (verboser). */
void pub_subs_socket(void *xpub);
/* Read every subscription message waiting on the XPUB socket; how many. */
int pub_subs_drain(struct pub_subs *s, void *xpub);
/* The class of a message on TOPIC (pub_class.h): the length of the longest
 * subscription that is a prefix of it (that prefix of TOPIC is the class
 * key), PUB_FLOW_NOBODY if none is, PUB_FLOW_UNTRACKED if the set cannot
 * tell (it overflowed, or a longer subscription than it keeps may match). */
int pub_subs_class(const struct pub_subs *s, const char *topic, size_t len);

#endif
