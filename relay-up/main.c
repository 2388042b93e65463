/* main.c -- saltrelay-up: runs beside the MoM. Its parts: publication intake
 * (MoM PUB -> Redis, pub_intake.c), request forwarding (Redis -> MoM request
 * port -> Redis, req_forward.c), the heartbeat (heartbeat.c) and, with
 * sync_source set, tree sync (tree_publish.c). */
#include "daemon.h"
#include "redis_gate.h"
#include "heartbeat.h"
#include "pub_intake.h"
#include "req_forward.h"
#include "tree_publish.h"

static size_t pick_parts(const struct config *cfg, const struct part_def **parts, size_t max)
{
    (void)max;
    /* the heartbeat comes first so that it stops last: its "stopped"
     * heartbeat then holds the counters after the other parts drained */
    parts[0] = &heartbeat_part;
    parts[1] = &pub_intake_part;
    parts[2] = &req_forward_part;
    if (!*cfg->sync_source)
        return 3;
    parts[3] = &tree_publish_part;
    return 4;
}

int main(int argc, char **argv)
{
    return daemon_main(argc, argv, CONFIG_UP, "saltrelay-up", pick_parts, &redis_gate);
}
