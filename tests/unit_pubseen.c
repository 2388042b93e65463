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
    CHECK_INT(pubseen_check(ps, hex(1, b), 40), 0);
    CHECK_INT(pubseen_check(ps, hex(1, b), 40), 1);
    for (unsigned long long n = 2; n <= PUBSEEN_MAX; n++)
        CHECK_INT(pubseen_check(ps, hex(n, b), 40), 0);
    CHECK_INT(pubseen_check(ps, hex(1, b), 40), 1); /* still among the last PUBSEEN_MAX */
    CHECK_INT(pubseen_check(ps, hex(PUBSEEN_MAX + 1, b), 40), 0); /* evicts 1 */
    CHECK_INT(pubseen_check(ps, hex(1, b), 40), 0);
    for (unsigned long long n = 3 * PUBSEEN_MAX; n < 5 * PUBSEEN_MAX; n++)
        CHECK_INT(pubseen_check(ps, hex(n, b), 40), 0);
    for (unsigned long long n = 4 * PUBSEEN_MAX; n < 5 * PUBSEEN_MAX; n++)
        if (pubseen_check(ps, hex(n, b), 40) != 1)
            unit_fail(__FILE__, __LINE__, "publication %llu of the last window forgotten", n);
    pubseen_free(ps);
}

UNIT_TEST(not_a_hash)
{
    struct pubseen *ps = pubseen_new();
    CHECK_INT(pubseen_check(ps, "0123456789abcde", 15), -1);
    CHECK_INT(pubseen_check(ps, "0123456789abcdeX0000", 20), -1);
    CHECK_INT(pubseen_check(ps, "0123456789ABCDEF0000", 20), -1);
    CHECK_INT(pubseen_check(ps, "0000000000000000", 16), 0); /* key 0 is mapped to 1 */
    CHECK_INT(pubseen_check(ps, "0000000000000000", 16), 1);
    pubseen_free(ps);
}
