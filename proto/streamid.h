/* streamid.h -- Redis stream entry IDs ("<ms>-<seq>"): parse, format, order. */
#ifndef SALTRELAY_STREAMID_H
#define SALTRELAY_STREAMID_H

#include <stddef.h>
#include <stdint.h>

struct streamid {
    uint64_t ms;
    uint64_t seq;
};

#define STREAMID_STRLEN 42 /* two 20-digit numbers, '-', NUL */

/* Parse exactly LEN bytes of decimal digits (1 to 20, no sign, no overflow). */
int decimal_parse(const char *s, size_t len, uint64_t *out);
/* Parse exactly LEN bytes; returns -1 unless they are "<digits>-<digits>". */
int streamid_parse(const char *s, size_t len, struct streamid *id);
/* Writes into buf (at least STREAMID_STRLEN bytes); returns buf. */
char *streamid_format(struct streamid id, char *buf);
int streamid_cmp(struct streamid a, struct streamid b);
/* The smallest ID greater than LAST whose time is at least NOW_MS. */
struct streamid streamid_next(struct streamid last, uint64_t now_ms);

#endif
