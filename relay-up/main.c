/* main.c -- saltrelay-up: runs beside the MoM. Its parts: publication intake
 * (MoM PUB -> Redis, pub_intake.c), request forwarding (Redis -> MoM request
 * port -> Redis, req_forward.c) and the heartbeat (heartbeat.c). */
#include "daemon.h"
#include "heartbeat.h"
#include "pub_intake.h"
#include "req_forward.h"

static size_t pick_parts(const struct config *cfg, struct part *parts, size_t max)
{
    (void)cfg;
    (void)max;
    /* the heartbeat comes first so that it stops last: its "stopped"
     * heartbeat then holds the counters after the other parts drained */
    parts[0] = (struct part){"heartbeat", heartbeat_actor};
    parts[1] = (struct part){"publication intake", pub_intake_actor};
    parts[2] = (struct part){"request forwarding", req_forward_actor};
    return 3;
}

int main(int argc, char **argv)
{
    return daemon_main(argc, argv, CONFIG_UP, "saltrelay-up", pick_parts);
}
