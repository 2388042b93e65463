/* unit_hreport.c -- report hashes (redis/hreport.c): argument list, bound,
 * and that the DC report and the saltrelay-up heartbeat fit in it. */
#include <string.h>

#include "dcreport.h"
#include "hreport.h"
#include "unit.h"
#include "upreport.h"

UNIT_TEST(args_and_bound)
{
    struct hreport h;
    hreport_init(&h, "k");
    hreport_text(&h, "state", "running");
    hreport_int(&h, "n", -42);
    CHECK_INT(h.argc, 6);
    CHECK_STR(h.argv[0], "HSET");
    CHECK_STR(h.argv[1], "k");
    CHECK_STR(h.argv[3], "running");
    CHECK_STR(h.argv[5], "-42");
    CHECK_INT(h.argvlen[5], 3);
    for (int i = 0; i < HREPORT_MAX_FIELDS + 5; i++)
        hreport_int(&h, "x", 9223372036854775807LL);
    CHECK_INT(h.argc, 2 + 2 * HREPORT_MAX_FIELDS); /* the rest ignored, nothing overwritten */
    CHECK_STR(h.argv[5], "-42");
    CHECK_STR(h.argv[h.argc - 1], "9223372036854775807");
}

#define ONE(name, id) +1
UNIT_TEST(reports_fit)
{
    /* the fixed fields of returner/report.c and relay-up/heartbeat.c, plus the metric lists */
    CHECK(10 + (0 REPORT_FIELDS(ONE)) <= HREPORT_MAX_FIELDS);
    CHECK(8 + (0 UP_REPORT_FIELDS(ONE)) <= HREPORT_MAX_FIELDS);
}
