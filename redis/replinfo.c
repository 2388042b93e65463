/* replinfo.c -- INFO replication parsing (see replinfo.h). Lines are
 * "field:value" separated by CRLF; sections start with '#'. Only the fields
 * named in replinfo.h are read; a known field with a bad value refuses the
 * whole answer. */
#include "replinfo.h"

#include <string.h>

#include "streamid.h"

#define LINE_MAX_LEN 256
#define DURATION_MAX 1000000000LL /* ~31 years, in seconds */

/* "-1" or a decimal up to DURATION_MAX; -2 when bad. */
static long long duration(const char *v, size_t len)
{
    uint64_t x;
    if (len == 2 && !memcmp(v, "-1", 2))
        return REPLINFO_ABSENT;
    if (decimal_parse(v, len, &x) < 0 || x > DURATION_MAX)
        return -2;
    return (long long)x;
}

static int is(const char *f, size_t flen, const char *name)
{
    return flen == strlen(name) && !memcmp(f, name, flen);
}

/* One "field:value" line; 0, or -1 if a field we read is bad. */
static int take(struct replinfo *o, const char *f, size_t flen, const char *v, size_t vlen, int *role_seen)
{
    if (is(f, flen, "role")) {
        *role_seen = 1;
        o->replica = vlen == 5 && !memcmp(v, "slave", 5);
        return o->replica || (vlen == 6 && !memcmp(v, "master", 6)) ? 0 : -1;
    }
    if (is(f, flen, "master_link_status")) {
        o->link_up = vlen == 2 && !memcmp(v, "up", 2);
        return o->link_up || (vlen == 4 && !memcmp(v, "down", 4)) ? 0 : -1;
    }
    if (is(f, flen, "master_sync_in_progress")) {
        o->syncing = vlen == 1 && v[0] == '1';
        return vlen == 1 && (v[0] == '0' || v[0] == '1') ? 0 : -1;
    }
    long long *slot = is(f, flen, "master_link_down_since_seconds") ? &o->down_s
                      : is(f, flen, "master_last_io_seconds_ago")   ? &o->last_io_s
                                                                     : NULL;
    if (!slot)
        return 0;
    *slot = duration(v, vlen);
    return *slot == -2 ? -1 : 0;
}

int replinfo_parse(const char *text, size_t len, struct replinfo *out, const char **why)
{
    memset(out, 0, sizeof *out);
    out->down_s = out->last_io_s = REPLINFO_ABSENT;
    int role_seen = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        size_t n = (size_t)(eol - p);
        if (n && p[n - 1] == '\r')
            n--;
        const char *colon = memchr(p, ':', n);
        if (n > LINE_MAX_LEN) {
            *why = "INFO replication: line too long";
            return -1;
        }
        if (n && p[0] != '#' && colon &&
            take(out, p, (size_t)(colon - p), colon + 1, n - (size_t)(colon - p) - 1, &role_seen) < 0) {
            *why = "INFO replication: bad value";
            return -1;
        }
        p = nl ? nl + 1 : end;
    }
    if (!role_seen) {
        *why = "INFO replication: no role";
        return -1;
    }
    if (!out->replica)
        out->link_up = 1; /* a primary has no link to lose, whatever else the text says */
    return 0;
}
