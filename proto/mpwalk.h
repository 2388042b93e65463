/* mpwalk.h -- msgpack-c helpers for untrusted input (Salt frames, job cache
 * files, channel records). */
#ifndef SALTRELAY_MPWALK_H
#define SALTRELAY_MPWALK_H

#include <msgpack.h>
#include <stddef.h>

/* 1 if the msgpack document at the start of BUF is complete and no array or
 * map in it claims more items than there are bytes left. msgpack-c reserves
 * memory for a container's claimed size before its items arrive (5 bytes can
 * ask for 100 GB), so every decoder of untrusted msgpack checks this first. */
int mpwalk_plausible(const char *buf, size_t len);

/* Str or bin bytes of O, or NULL for any other type. */
const char *mpwalk_bytes(const msgpack_object *o, size_t *len);
/* 1 if K is a str or bin equal to S. */
int mpwalk_key_is(const msgpack_object *k, const char *s);

#endif
