/* statusjob.c -- saltrelay-status job JID (placeholder until job accounting lands). */
#include "status.h"

#include <stdio.h>

int status_job(const struct status_opts *o, const char *jid)
{
    (void)o;
    fprintf(stderr, "saltrelay-status: job %s: not implemented yet\n", jid);
    return 2;
}
