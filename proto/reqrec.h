/* reqrec.h -- the request and reply records of the return path, as stored in
 * Redis streams.
 *
 * Request (cluster stream key_req_stream, written by saltrelay-down, read by
 * saltrelay-up's consumer group):
 *     XADD saltrelay:{C}:req MINID ~ <ms> * v 1 dc <dc> rid <rid> dl <ms> c <auth|req> p <payload>
 * Reply (one stream per DC, key_rep_stream, written by saltrelay-up):
 *     XADD saltrelay:{C}:rep:<dc> MINID ~ <ms> * v 1 rid <rid> st <status> [p <payload>]
 * "dl" is the requester's deadline in wall-clock milliseconds; "rid" is opaque
 * to saltrelay-up and never repeats (saltrelay-down makes it from a random
 * boot id). "p" is the Salt frame byte for byte; a reply has "p" exactly
 * when st is "ok". Fields come in this order and no other is allowed: the
 * decoders refuse anything else, so a record of a future version is skipped
 * and counted, never half understood. */
#ifndef SALTRELAY_REQREC_H
#define SALTRELAY_REQREC_H

#include <stddef.h>

#define REQREC_RID_MAX 64
#define REQREC_ARGC_MAX 20

enum reqrec_cmd { REQREC_REQ, REQREC_AUTH };
enum reprec_status { ST_OK, ST_TIMEOUT, ST_OVERSIZE, ST_EXPIRED, ST_MOM_UNREACHABLE, ST__COUNT };

struct reqrec {
    const char *dc, *rid, *payload; /* not NUL-terminated */
    size_t dclen, ridlen, len;
    long long dl_ms;
    enum reqrec_cmd cmd;
};

struct reprec {
    const char *rid, *payload;
    size_t ridlen, len;
    enum reprec_status st;
};

/* Formatted numbers the argv points into. */
struct reqrec_scratch {
    char minid[24];
    char dl[24];
};

const char *reprec_status_name(enum reprec_status st);

/* Fill ARGV/ARGVLEN (room for REQREC_ARGC_MAX) for XADD to KEY; entries
 * older than MINID_MS are trimmed (approximately; 0 = no trimming). */
int reqrec_xadd_argv(const struct reqrec *rec, const char *key, long long minid_ms,
                     struct reqrec_scratch *s, const char **argv, size_t *argvlen);
int reprec_xadd_argv(const struct reprec *rec, const char *key, long long minid_ms,
                     struct reqrec_scratch *s, const char **argv, size_t *argvlen);

/* Decode the field list of one stream entry: N strings, field and value
 * alternating (FV[i] of FL[i] bytes). Pointers in REC point into FV.
 * Returns 0, or -1 with WHY naming what was wrong. */
int reqrec_decode(const char *const *fv, const size_t *fl, size_t n, struct reqrec *rec, const char **why);
int reprec_decode(const char *const *fv, const size_t *fl, size_t n, struct reprec *rec, const char **why);

#endif
