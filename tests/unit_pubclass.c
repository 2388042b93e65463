/* unit_pubclass.c -- saltrelay-down's messages per subscription class until
 * they have left ZeroMQ (relay-down/pub_class.c): only messages of the same
 * class count, pub_hwm of them and 8 KiB more; the caps refuse, never grow. */
#include <stdio.h>
#include <string.h>

#include "pub_class.h"
#include "unit.h"

static uint64_t last_left;
static size_t nleft, left0; /* left0: how often record 0 was reported */

static void on_left(void *arg, uint64_t rec)
{
    (void)arg;
    last_left = rec;
    nleft++;
    left0 += rec == 0;
}

UNIT_TEST(same_class_counts_others_do_not)
{
    struct pub_class c;
    nleft = left0 = 0;
    pub_class_init(&c, 16, 8192, on_left, NULL);
    CHECK_INT(pub_class_sent(&c, "a", 1, 1000, 0), 0);
    for (uint64_t r = 1; r <= 200; r++) /* another topic: never in a's subscribers' queues */
        CHECK_INT(pub_class_sent(&c, "b", 1, 1000, r), 0);
    CHECK_INT(left0, 0);
    /* a's message 0 left once 17 more of a followed it and 8 KiB beyond the newest 17: message 26 */
    for (uint64_t m = 1; m < 26; m++)
        CHECK_INT(pub_class_sent(&c, "a", 1, 1000, 200 + m), 0);
    CHECK_INT(left0, 0);
    size_t before = nleft;
    CHECK_INT(pub_class_sent(&c, "a", 1, 1000, 226), 0);
    CHECK_INT(nleft, before + 1);
    CHECK_INT(left0, 1);
    pub_class_free(&c);
}

UNIT_TEST(empty_key_is_a_class)
{
    struct pub_class c;
    nleft = 0;
    pub_class_init(&c, 2, 8192, on_left, NULL);
    for (uint64_t r = 0; r < 10; r++) /* 10 KB messages: one engine batch each */
        CHECK_INT(pub_class_sent(&c, "", 0, 10000, r), 0);
    /* message j left once j + 4 was sent (hwm + 1 after it, then one batch) */
    CHECK_INT(nleft, 6);
    CHECK_INT(last_left, 5);
    CHECK_INT(pub_class_waiting(&c), 4);
    pub_class_forget(&c, 8);
    CHECK_INT(pub_class_waiting(&c), 2);
    pub_class_clear(&c);
    CHECK_INT(pub_class_waiting(&c), 0);
    pub_class_free(&c);
}

UNIT_TEST(caps_refuse)
{
    struct pub_class c;
    pub_class_init(&c, 16, 8192, on_left, NULL);
    char key[32];
    for (unsigned i = 0; i < PUB_CLASS_MAX; i++) {
        int n = snprintf(key, sizeof key, "minion-%u", i);
        if (pub_class_sent(&c, key, (size_t)n, 100, i) != 0)
            unit_fail(__FILE__, __LINE__, "class %u refused below the cap", i);
    }
    CHECK_INT(pub_class_sent(&c, "one-more", 8, 100, PUB_CLASS_MAX), -1);
    CHECK_INT(pub_class_sent(&c, "minion-7", 8, 100, PUB_CLASS_MAX), 0); /* a known class still counts */
    pub_class_forget(&c, 1000); /* classes 0..999 have nothing waiting: room for new ones */
    CHECK_INT(pub_class_sent(&c, "one-more", 8, 100, PUB_CLASS_MAX + 1), 0);
    pub_class_clear(&c);
    for (uint64_t m = 0; m < PUB_CLASS_ENTRIES_MAX; m++)
        if (pub_class_sent(&c, "x", 1, 0, m) != 0) /* no bytes: never an engine batch, none leaves */
            unit_fail(__FILE__, __LINE__, "message %llu refused below the cap", (unsigned long long)m);
    CHECK_INT(pub_class_waiting(&c), PUB_CLASS_ENTRIES_MAX);
    CHECK_INT(pub_class_sent(&c, "x", 1, 0, PUB_CLASS_ENTRIES_MAX), -1);
    pub_class_free(&c);
}
