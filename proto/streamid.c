/* streamid.c -- see streamid.h. */
#include "streamid.h"

#include <inttypes.h>
#include <stdio.h>

int decimal_parse(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int streamid_parse(const char *s, size_t len, struct streamid *id)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '-')
            return decimal_parse(s, i, &id->ms) < 0 || decimal_parse(s + i + 1, len - i - 1, &id->seq) < 0
                       ? -1
                       : 0;
    return -1;
}

char *streamid_format(struct streamid id, char *buf)
{
    snprintf(buf, STREAMID_STRLEN, "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
    return buf;
}

int streamid_cmp(struct streamid a, struct streamid b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    return 0;
}

struct streamid streamid_next(struct streamid last, uint64_t now_ms)
{
    if (now_ms > last.ms)
        return (struct streamid){now_ms, 0};
    if (last.seq == UINT64_MAX) /* a foreign entry took the last sequence of its millisecond */
        return (struct streamid){last.ms + 1, 0};
    return (struct streamid){last.ms, last.seq + 1};
}
