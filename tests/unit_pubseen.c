/* unit_pubseen.c -- saltrelay-down's set of publications delivered lately
 * (relay-down/pubseen.c): seen again, forgotten after PUBSEEN_MAX newer ones,
 * lookups still right after evictions shifted probe runs. */
#include <stdio.h>

#include "pubseen.h"
#include "unit.h"

static const char *hex(unsigned long long n, char buf[41])
{
    /* an odd multiplier is a bijection: distinct N, distinct keys, spread out */
    snprintf(buf, 41, "%016llx%024d", n * 0x9e3779b97f4a7c15ULL, 0);
    return buf;
}

UNIT_TEST(seen_again_and_forgotten)
{
    struct pubseen *ps = pubseen_new();
    char b[41];
    CHECK(ps != NULL);
    CHECK_INT(pubseen_check(ps, hex(1, b), 40, 0), 0);
    CHECK_INT(pubseen_check(ps, hex(1, b), 40, 0), 1);
    for (unsigned long long n = 2; n <= PUBSEEN_MAX; n++)
        CHECK_INT(pubseen_check(ps, hex(n, b), 40, 0), 0);
    CHECK_INT(pubseen_check(ps, hex(1, b), 40, 0), 1); /* still among the last PUBSEEN_MAX */
    CHECK_INT(pubseen_check(ps, hex(PUBSEEN_MAX + 1, b), 40, 0), 0); /* evicts 1 */
    CHECK_INT(pubseen_check(ps, hex(1, b), 40, 0), 0);
    for (unsigned long long n = 3 * PUBSEEN_MAX; n < 5 * PUBSEEN_MAX; n++)
        CHECK_INT(pubseen_check(ps, hex(n, b), 40, 0), 0);
    for (unsigned long long n = 4 * PUBSEEN_MAX; n < 5 * PUBSEEN_MAX; n++)
        if (pubseen_check(ps, hex(n, b), 40, 0) != 1)
            unit_fail(__FILE__, __LINE__, "publication %llu of the last window forgotten", n);
    pubseen_free(ps);
}

UNIT_TEST(not_a_hash)
{
    struct pubseen *ps = pubseen_new();
    CHECK_INT(pubseen_check(ps, "0123456789abcde", 15, 0), -1);
    CHECK_INT(pubseen_check(ps, "0123456789abcdeX0000", 20, 0), -1);
    CHECK_INT(pubseen_check(ps, "0123456789ABCDEF0000", 20, 0), -1);
    CHECK_INT(pubseen_check(ps, "0000000000000000", 16, 0), 0); /* key 0 is mapped to 1 */
    CHECK_INT(pubseen_check(ps, "0000000000000000", 16, 0), 1);
    pubseen_free(ps);
}

/* Version 3 carries the hash raw, older entries as hex: one publication
 * re-sent across an upgrade is the same key either way. */
UNIT_TEST(raw_and_hex_agree)
{
    struct pubseen *ps = pubseen_new();
    CHECK_INT(pubseen_check(ps, "\x01\x23\x45\x67\x89\xab\xcd\xef\x00\x00\x00\x00", 12, 1), 0);
    CHECK_INT(pubseen_check(ps, "0123456789abcdef00000000", 24, 0), 1);
    CHECK_INT(pubseen_check(ps, "fedcba9876543210", 16, 0), 0);
    CHECK_INT(pubseen_check(ps, "\xfe\xdc\xba\x98\x76\x54\x32\x10", 8, 1), 1);
    CHECK_INT(pubseen_check(ps, "\x01\x02", 2, 1), -1); /* too short */
    pubseen_free(ps);
}
