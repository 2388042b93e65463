/* unit_replinfo.c -- INFO replication parsing (redis/replinfo.c), on answers
 * of Redis 7.0 (primary, replica with link up, link down) and damaged ones. */
#include <string.h>

#include "replinfo.h"
#include "unit.h"

static int parse(const char *text, struct replinfo *ri, const char **why)
{
    *why = NULL;
    return replinfo_parse(text, strlen(text), ri, why);
}

UNIT_TEST(primary_and_replica)
{
    static const struct {
        const char *text;
        struct replinfo want;
    } cases[] = {
        {"# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=7,state=online\r\n"
         "master_repl_offset:9\r\n",
         {0, 1, 0, REPLINFO_ABSENT, REPLINFO_ABSENT}},
        {"# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:1\r\nmaster_link_status:up\r\n"
         "master_last_io_seconds_ago:3\r\nmaster_sync_in_progress:0\r\n",
         {1, 1, 0, REPLINFO_ABSENT, 3}},
        {"role:slave\r\nmaster_link_status:down\r\nmaster_last_io_seconds_ago:-1\r\n"
         "master_sync_in_progress:1\r\nmaster_link_down_since_seconds:14\r\n",
         {1, 0, 1, 14, REPLINFO_ABSENT}},
        /* never connected; LF only, no final newline */
        {"role:slave\nmaster_link_status:down\nmaster_link_down_since_seconds:-1", {1, 0, 0, REPLINFO_ABSENT, REPLINFO_ABSENT}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct replinfo ri;
        const char *why;
        CHECK_INT(parse(cases[i].text, &ri, &why), 0);
        CHECK_INT(ri.replica, cases[i].want.replica);
        CHECK_INT(ri.link_up, cases[i].want.link_up);
        CHECK_INT(ri.syncing, cases[i].want.syncing);
        CHECK_INT(ri.down_s, cases[i].want.down_s);
        CHECK_INT(ri.last_io_s, cases[i].want.last_io_s);
    }
}

/* TEXT must be refused with reason WANT. */
static void refused(const char *text, const char *want, const char *label)
{
    struct replinfo ri;
    const char *why;
    int rc = parse(text, &ri, &why);
    CHECK_REFUSED(rc, why, want, label);
}

UNIT_TEST(damaged_refused)
{
    refused("", "INFO replication: no role", "empty");
    refused("master_link_status:up\r\n", "INFO replication: no role", "no role line");
    refused("role:sentinel\r\n", "INFO replication: bad value", "unknown role");
    refused("role:slave\r\nmaster_link_status:maybe\r\n", "INFO replication: bad value", "link status");
    refused("role:slave\r\nmaster_link_down_since_seconds:-5\r\n", "INFO replication: bad value", "negative");
    refused("role:slave\r\nmaster_last_io_seconds_ago:99999999999999999999\r\n", "INFO replication: bad value",
            "huge duration");
    char longline[400];
    memset(longline, 'x', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    refused(longline, "INFO replication: line too long", "long line");
}
