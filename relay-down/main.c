/* main.c -- saltrelay-down: one per datacenter. Its parts: publication output
 * (Redis -> PUB, pub_output.c), request intake (ROUTER -> Redis -> ROUTER,
 * req_intake.c), the DC report (returner/report.c) and, with sync_target
 * set, tree sync (tree_apply.c). */
#include "daemon.h"
#include "redis_gate.h"
#include "pub_output.h"
#include "req_intake.h"
#include "report.h"
#include "tree_apply.h"

static size_t pick_parts(const struct config *cfg, const struct part_def **parts, size_t max)
{
    (void)max;
    /* the report comes first so that it stops last: its final report then
     * holds the cursor and counters after the other parts drained */
    parts[0] = &report_part;
    parts[1] = &pub_output_part;
    parts[2] = &req_intake_part;
    if (!*cfg->sync_target)
        return 3;
    parts[3] = &tree_apply_part;
    return 4;
}

int main(int argc, char **argv)
{
    return daemon_main(argc, argv, CONFIG_DOWN, "saltrelay-down", pick_parts, &redis_gate);
}
