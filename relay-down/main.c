/* main.c -- saltrelay-down: one per datacenter. Its parts: publication output
 * (Redis -> PUB, pubout.c), request intake (ROUTER -> Redis -> ROUTER,
 * returner/reqin.c) and the DC report (returner/report.c). */
#include "daemon.h"
#include "pubout.h"
#include "reqin.h"
#include "report.h"

static size_t pick_parts(const struct config *cfg, struct part *parts, size_t max)
{
    (void)cfg;
    (void)max;
    /* the report comes first so that it stops last: its final report then
     * holds the cursor and counters after the other parts drained */
    parts[0] = (struct part){"DC report", report_actor};
    parts[1] = (struct part){"publication output", pubout_actor};
    parts[2] = (struct part){"request intake", reqin_actor};
    return 3;
}

int main(int argc, char **argv)
{
    return daemon_main(argc, argv, CONFIG_DOWN, "saltrelay-down", pick_parts);
}
