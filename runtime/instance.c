/* instance.c -- this saltrelay-up instance's name; see instance.h. */
#include "instance.h"

#include <stdio.h>
#include <unistd.h>

void instance_name(const struct config *cfg, char *buf, size_t len)
{
    char host[72] = "";
    if (gethostname(host, sizeof host) != 0 || !host[0])
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    if (cfg->instance && *cfg->instance)
        snprintf(buf, len, "%s/%s", host, cfg->instance);
    else
        snprintf(buf, len, "%s/%ld", host, (long)getpid());
}
