/* switchmsg.c -- the "+switch-master" message; see switchmsg.h. */
#include "switchmsg.h"

#include <string.h>

#define FIELDS 5

/* No control character (a field never holds a space: they separate them). */
static int printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
            return 0;
    return 1;
}

/* A host as Sentinel announces it (an IP address, or a host name with
 * announce-hostnames), that fits a redis_addr. */
static int host_ok(const char *s, size_t len)
{
    return len < sizeof ((struct redis_addr *)0)->host && printable(s, len);
}

/* 1..65535 in decimal digits, no sign, no leading zero. */
static int port_of(const char *s, size_t len)
{
    if (len == 0 || len > 5 || s[0] == '0')
        return 0;
    int port = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        port = port * 10 + (s[i] - '0');
    }
    return port <= 65535 ? port : 0;
}

static void set_addr(struct redis_addr *a, const char *host, size_t hostlen, int port)
{
    memcpy(a->host, host, hostlen);
    a->host[hostlen] = '\0';
    a->port = port;
}

int switchmsg_parse(const char *text, size_t len, struct switchmsg *out, const char **why)
{
    const char *f[FIELDS];
    size_t flen[FIELDS], n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != ' ')
            continue;
        if (n == FIELDS) {
            *why = "+switch-master: more than five fields";
            return -1;
        }
        f[n] = text + start, flen[n] = i - start;
        if (flen[n] == 0) {
            *why = "+switch-master: an empty field";
            return -1;
        }
        n++;
        start = i + 1;
    }
    if (n != FIELDS) {
        *why = "+switch-master: fewer than five fields";
        return -1;
    }
    if (!printable(f[0], flen[0])) {
        *why = "+switch-master: bad master name";
        return -1;
    }
    int from_port = port_of(f[2], flen[2]), to_port = port_of(f[4], flen[4]);
    if (!host_ok(f[1], flen[1]) || !host_ok(f[3], flen[3])) {
        *why = "+switch-master: bad address";
        return -1;
    }
    if (!from_port || !to_port) {
        *why = "+switch-master: bad port";
        return -1;
    }
    out->name = f[0], out->namelen = flen[0];
    set_addr(&out->from, f[1], flen[1], from_port);
    set_addr(&out->to, f[3], flen[3], to_port);
    return 0;
}

int switchmsg_is(const struct switchmsg *m, const char *name)
{
    return strlen(name) == m->namelen && memcmp(m->name, name, m->namelen) == 0;
}
