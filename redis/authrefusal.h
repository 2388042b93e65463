/* authrefusal.h -- whether Redis's error reply to a login says the
 * credentials (or the user's rights to PING/SELECT) are refused, not that
 * Redis is away: a wrong password is not an outage and is logged and
 * counted as its own thing (rconn.h). */
#ifndef SALTRELAY_AUTHREFUSAL_H
#define SALTRELAY_AUTHREFUSAL_H

#include <string.h>

/* WRONGPASS (bad user or password, user disabled), NOAUTH (a password is
 * wanted and none was given), NOPERM (the user may not run PING or SELECT),
 * and the ERR a server without a password answers to AUTH. */
static inline int auth_refusal(const char *err)
{
    return !strncmp(err, "WRONGPASS", 9) || !strncmp(err, "NOAUTH", 6) || !strncmp(err, "NOPERM", 6) ||
           (!strncmp(err, "ERR", 3) && strstr(err, "AUTH") != NULL);
}

#endif
