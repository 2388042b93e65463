/* unit_streamid.c -- stream IDs and decimal parsing (proto/streamid.c). */
#include <string.h>

#include "streamid.h"
#include "unit.h"

static int dec(const char *s, uint64_t *v) { return decimal_parse(s, strlen(s), v); }

UNIT_TEST(decimal_bounds)
{
    uint64_t v = 7;
    CHECK_INT(dec("0", &v), 0);
    CHECK_INT(v, 0);
    CHECK_INT(dec("18446744073709551615", &v), 0);
    CHECK(v == UINT64_MAX);
    CHECK_INT(dec("00000000000000000009", &v), 0);
    CHECK_INT(v, 9);
    v = 7;
    CHECK_INT(dec("18446744073709551616", &v), -1);
    CHECK_INT(dec("99999999999999999999", &v), -1);
    CHECK_INT(dec("000000000000000000001", &v), -1);
    CHECK_INT(dec("", &v), -1);
    CHECK_INT(dec("-1", &v), -1);
    CHECK_INT(dec("+1", &v), -1);
    CHECK_INT(dec("1 ", &v), -1);
    CHECK_INT(v, 7); /* untouched on error */
    CHECK_INT(decimal_parse("12", 1, &v), 0); /* only LEN bytes are read */
    CHECK_INT(v, 1);
}

UNIT_TEST(parse_and_format)
{
    struct streamid id;
    char buf[STREAMID_STRLEN];
    CHECK_INT(streamid_parse("1700000000123-45", 16, &id), 0);
    CHECK_INT(id.ms, 1700000000123LL);
    CHECK_INT(id.seq, 45);
    CHECK_STR(streamid_format(id, buf), "1700000000123-45");
    id = (struct streamid){UINT64_MAX, UINT64_MAX};
    CHECK_STR(streamid_format(id, buf), "18446744073709551615-18446744073709551615");
    CHECK_INT(strlen(buf) + 1, STREAMID_STRLEN);
    struct streamid back;
    CHECK_INT(streamid_parse(buf, strlen(buf), &back), 0);
    CHECK(streamid_cmp(id, back) == 0);
    static const char *const bad[] = {"", "-", "1", "1-", "-1", "1-2-3", "a-1", "1-b", "1--2", " 1-2", "1-2 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (streamid_parse(bad[i], strlen(bad[i]), &id) == 0)
            unit_fail(__FILE__, __LINE__, "'%s' parsed as an ID", bad[i]);
    CHECK_INT(streamid_parse("5-6trailing", 3, &id), 0); /* only LEN bytes */
    CHECK_INT(id.seq, 6);
}

UNIT_TEST(order_and_next)
{
    struct streamid a = {5, 9}, b = {6, 0}, c = {6, 1};
    CHECK_INT(streamid_cmp(a, b), -1);
    CHECK_INT(streamid_cmp(c, b), 1);
    CHECK_INT(streamid_cmp(b, b), 0);
    struct streamid n = streamid_next(a, 10); /* clock ahead: new ms, seq 0 */
    CHECK(n.ms == 10 && n.seq == 0);
    n = streamid_next(a, 5); /* same ms: next seq */
    CHECK(n.ms == 5 && n.seq == 10);
    n = streamid_next(a, 3); /* clock went back: stay after the last ID */
    CHECK(n.ms == 5 && n.seq == 10);
    CHECK_INT(streamid_cmp(n, a), 1);
    struct streamid top = {7, UINT64_MAX}; /* a foreign entry took the last sequence */
    n = streamid_next(top, 7);
    CHECK(n.ms == 8 && n.seq == 0);
}
