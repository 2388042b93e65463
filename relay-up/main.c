/* main.c -- saltrelay-up: runs beside the MoM. Its parts: publication intake
 * (MoM PUB -> Redis, pub_intake.c) and request forwarding (Redis -> MoM request
 * port -> Redis, req_forward.c). */
#include "daemon.h"
#include "pub_intake.h"
#include "req_forward.h"

static size_t pick_parts(const struct config *cfg, struct part *parts, size_t max)
{
    (void)cfg;
    (void)max;
    parts[0] = (struct part){"publication intake", pub_intake_actor};
    parts[1] = (struct part){"request forwarding", req_forward_actor};
    return 2;
}

int main(int argc, char **argv)
{
    return daemon_main(argc, argv, CONFIG_UP, "saltrelay-up", pick_parts);
}
