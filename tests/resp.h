/* resp.h -- build RESP (Redis protocol) replies byte by byte, as Redis would
 * send them, for the unit tests and the fuzzers' seed corpora. */
#ifndef SALTRELAY_RESP_H
#define SALTRELAY_RESP_H

#include <stddef.h>

struct resp {
    char *buf;
    size_t len, cap;
};

void resp_array(struct resp *r, long n);             /* "*N\r\n" */
void resp_bulk(struct resp *r, const char *p, size_t n); /* "$N\r\n" bytes "\r\n" */
void resp_str(struct resp *r, const char *s);        /* a bulk string from a C string */
void resp_raw(struct resp *r, const char *s);        /* literal bytes (":1\r\n", "$-1\r\n") */
/* One stream entry [id, [field, value, ...]] from the XADD argv of
 * pubrec_xadd_argv (whatever follows the ID are the fields). */
void resp_entry_from_xadd(struct resp *r, int argc, const char **argv, const size_t *argvlen);
void resp_free(struct resp *r);

#endif
