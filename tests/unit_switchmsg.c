/* unit_switchmsg.c -- the Sentinels' "+switch-master" message
 * (redis/switchmsg.c): well-formed ones as Redis 7.0 publishes them, a
 * longer name that starts with ours (issue 18 item 8: "%127s" took it for
 * ours), and damaged ones. */
#include <string.h>

#include "switchmsg.h"
#include "unit.h"

static int parse(const char *text, struct switchmsg *m, const char **why)
{
    *why = NULL;
    return switchmsg_parse(text, strlen(text), m, why);
}

UNIT_TEST(well_formed)
{
    struct switchmsg m;
    const char *why;
    CHECK_INT(parse("mymaster 127.0.0.1 6379 127.0.0.1 6380", &m, &why), 0);
    CHECK(switchmsg_is(&m, "mymaster"));
    CHECK_STR(m.from.host, "127.0.0.1");
    CHECK_INT(m.from.port, 6379);
    CHECK_STR(m.to.host, "127.0.0.1");
    CHECK_INT(m.to.port, 6380);
    /* IPv6 as Sentinel prints it (no brackets), a host name (announce-hostnames) */
    CHECK_INT(parse("saltrelay ::1 1 redis-b.example.net 65535", &m, &why), 0);
    CHECK_STR(m.from.host, "::1");
    CHECK_STR(m.to.host, "redis-b.example.net");
    CHECK_INT(m.to.port, 65535);
}

UNIT_TEST(whole_name_compared)
{
    struct switchmsg m;
    const char *why;
    CHECK_INT(parse("mymaster-other 127.0.0.1 7000 127.0.0.1 7001", &m, &why), 0);
    CHECK(!switchmsg_is(&m, "mymaster"));
    CHECK(switchmsg_is(&m, "mymaster-other"));
    CHECK_INT(parse("my 127.0.0.1 7000 127.0.0.1 7001", &m, &why), 0);
    CHECK(!switchmsg_is(&m, "mymaster"));
    /* a name longer than any we can hold is another master's, not a malformed message */
    char longer[400];
    memset(longer, 'm', 300);
    strcpy(longer + 300, " 10.0.0.1 1 10.0.0.2 2");
    CHECK_INT(parse(longer, &m, &why), 0);
    CHECK_INT(m.namelen, 300);
    CHECK(!switchmsg_is(&m, "mmmmmmmm"));
}

/* TEXT must be refused with reason WANT. */
static void refused(const char *text, const char *want)
{
    struct switchmsg m;
    const char *why;
    int rc = parse(text, &m, &why);
    CHECK_REFUSED(rc, why, want, text);
}

UNIT_TEST(damaged_refused)
{
    refused("", "+switch-master: an empty field");
    refused("mymaster 127.0.0.1 6379 127.0.0.1", "+switch-master: fewer than five fields");
    refused("mymaster 127.0.0.1 6379 127.0.0.1 6380 extra", "+switch-master: more than five fields");
    refused("mymaster 127.0.0.1 6379 127.0.0.1 6380 ", "+switch-master: more than five fields");
    refused("mymaster  127.0.0.1 6379 127.0.0.1 6380", "+switch-master: an empty field");
    refused(" mymaster 127.0.0.1 6379 127.0.0.1 6380", "+switch-master: an empty field");
    refused("mymaster 127.0.0.1 6379 127.0.0.1 0", "+switch-master: bad port");
    refused("mymaster 127.0.0.1 6379 127.0.0.1 65536", "+switch-master: bad port");
    refused("mymaster 127.0.0.1 6379 127.0.0.1 6380x", "+switch-master: bad port");
    refused("mymaster 127.0.0.1 -1 127.0.0.1 6380", "+switch-master: bad port");
    refused("mymaster 127.0.0.1 06379 127.0.0.1 6380", "+switch-master: bad port");
    refused("mymaster 127.0.0.1 6379 127.0.0.1 99999999999", "+switch-master: bad port");
    refused("mymaster 127.0.0.1 6379 127.0.\t0.1 6380", "+switch-master: bad address");
    refused("my\nmaster 127.0.0.1 6379 127.0.0.1 6380", "+switch-master: bad master name");
    char host[400];
    memset(host, 'h', 300);
    strcpy(host + 300, " 1");
    char text[500] = "mymaster 127.0.0.1 6379 ";
    strcat(text, host);
    refused(text, "+switch-master: bad address");
}

UNIT_TEST(not_terminated)
{
    /* the parser reads LEN bytes only: a message cut inside its last field */
    const char text[] = "mymaster 127.0.0.1 6379 127.0.0.1 6380";
    struct switchmsg m;
    const char *why = NULL;
    CHECK_INT(switchmsg_parse(text, sizeof text - 3, &m, &why), 0);
    CHECK_INT(m.to.port, 63);
}
