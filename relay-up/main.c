/* main.c -- saltrelay-up: runs beside the MoM. Its parts: publication intake
 * (MoM PUB -> Redis, pub_intake.c), request forwarding (Redis -> MoM request
 * port -> Redis, req_forward.c) and the heartbeat (heartbeat.c). */
#include "daemon.h"
#include "heartbeat.h"
#include "pub_intake.h"
#include "req_forward.h"

static size_t pick_parts(const struct config *cfg, const struct part_def **parts, size_t max)
{
    (void)cfg;
    (void)max;
    /* the heartbeat comes first so that it stops last: its "stopped"
     * heartbeat then holds the counters after the other parts drained */
    parts[0] = &heartbeat_part;
    parts[1] = &pub_intake_part;
    parts[2] = &req_forward_part;
    return 3;
}

int main(int argc, char **argv)
{
    return daemon_main(argc, argv, CONFIG_UP, "saltrelay-up", pick_parts);
}
