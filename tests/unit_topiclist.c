/* unit_topiclist.c -- the merged record's topic list (proto/topiclist.c) and
 * the string set behind the merge and the subscription table
 * (runtime/strset.c): exact round trips, compact sha1 topics, malformed lists
 * refused, set removal keeping every other member findable. */
#include <stdio.h>
#include <string.h>

#include "strset.h"
#include "topiclist.h"
#include "unit.h"

static const char sha[] = "ccef3b504e540b9402f1e8b6a93928fb436710c6";

UNIT_TEST(round_trip_exact_bytes)
{
    static const char *const topics[] = {sha, "syndic", "broadcast", "CCEF3B504E540B9402F1E8B6A93928FB436710C6",
                                         "ccef3b504e540b9402f1e8b6a93928fb436710c", "\x00\xff", "g0ef3b504e540b9402f1e8b6a93928fb436710c6"};
    static const size_t lens[] = {40, 6, 9, 40, 39, 2, 40};
    struct topiclist tl = {0};
    for (size_t i = 0; i < 7; i++)
        CHECK_INT(topiclist_append(&tl, topics[i], lens[i]), 0);
    CHECK_INT(tl.count, 7);
    CHECK_INT(tl.len, 21 + 7 + 10 + 41 + 40 + 3 + 41); /* only lowercase 40-hex is packed */
    CHECK_INT(topiclist_count(tl.buf, tl.len), 7);
    struct topiclist_iter it;
    char out[TOPICLIST_MAX_TOPIC];
    size_t n;
    topiclist_iter_init(&it, tl.buf, tl.len);
    for (size_t i = 0; i < 7; i++) {
        CHECK_INT(topiclist_next(&it, out, &n), 1);
        CHECK_MEM(out, n, topics[i], lens[i]);
    }
    CHECK_INT(topiclist_next(&it, out, &n), 0);
    topiclist_free(&tl);
}

UNIT_TEST(ten_thousand_minions_cost_21_bytes_each)
{
    struct topiclist tl = {0};
    char t[41];
    for (int i = 0; i < 10000; i++) {
        snprintf(t, sizeof t, "%040x", i * 2654435761u);
        CHECK_INT(topiclist_append(&tl, t, 40), 0);
    }
    CHECK_INT(tl.len, 21 * 10000);
    CHECK_INT(topiclist_count(tl.buf, tl.len), 10000);
    topiclist_free(&tl);
}

UNIT_TEST(refuses_unencodable_topics)
{
    struct topiclist tl = {0};
    char big[256] = {0};
    CHECK_INT(topiclist_append(&tl, "", 0), -1);
    CHECK_INT(topiclist_append(&tl, big, 256), -1);
    CHECK_INT(topiclist_append(&tl, big, 255), 0);
    CHECK_INT(tl.count, 1);
    topiclist_free(&tl);
}

UNIT_TEST(malformed_lists)
{
    CHECK_INT(topiclist_count("", 0), -1);                       /* empty */
    CHECK_INT(topiclist_count("\x00" "abc", 4), -1);             /* sha1 cut short */
    CHECK_INT(topiclist_count("\x05" "abc", 4), -1);             /* raw topic cut short */
    CHECK_INT(topiclist_count("\x03" "abc" "\x01", 5), -1);      /* trailing header */
    CHECK_INT(topiclist_count("\x03" "abc" "\x01" "x", 6), 2);
}

UNIT_TEST(strset_counted_refs)
{
    /* saltrelay-down's subscriptions (pub_subs.c): a topic stays while any subscriber holds it */
    struct strset s;
    strset_init(&s, 2);
    CHECK_INT(strset_ref(&s, "a", 1), 1);
    CHECK_INT(strset_ref(&s, "a", 1), 0);
    CHECK_INT(strset_ref(&s, "", 0), 1);
    CHECK_INT(strset_ref(&s, "b", 1), -1); /* the bound */
    CHECK_INT(strset_unref(&s, "a", 1), 0);
    CHECK_INT(strset_has(&s, "a", 1), 1);
    CHECK_INT(strset_unref(&s, "a", 1), 1);
    CHECK_INT(strset_has(&s, "a", 1), 0);
    CHECK_INT(strset_unref(&s, "a", 1), -1);
    CHECK_INT(strset_unref(&s, "", 0), 1);
    CHECK_INT(s.count, 0);
    strset_free(&s);
}

UNIT_TEST(strset_add_remove_has)
{
    struct strset s;
    strset_init(&s, 5000);
    char t[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(t, sizeof t, "topic-%d", i);
        CHECK_INT(strset_add(&s, t, strlen(t)), 1);
    }
    CHECK_INT(strset_add(&s, "topic-7", 7), 0);
    CHECK_INT(strset_add(&s, "one more", 8), -1); /* the bound */
    for (int i = 0; i < 5000; i += 2) {
        snprintf(t, sizeof t, "topic-%d", i);
        CHECK_INT(strset_remove(&s, t, strlen(t)), 1);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(t, sizeof t, "topic-%d", i);
        CHECK_INT(strset_has(&s, t, strlen(t)), i % 2);
    }
    CHECK_INT(s.count, 2500);
    CHECK_INT(strset_has(&s, "", 0), 0);
    CHECK_INT(strset_add(&s, "", 0), 1); /* the empty subscription is a member like any */
    CHECK_INT(strset_has(&s, "", 0), 1);
    strset_clear(&s);
    CHECK_INT(s.count, 0);
    CHECK_INT(strset_has(&s, "topic-1", 7), 0);
    strset_free(&s);
}
