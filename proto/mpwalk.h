/* mpwalk.h -- msgpack-c helpers for untrusted input (Salt frames, job cache
 * files, channel records). */
#ifndef SALTRELAY_MPWALK_H
#define SALTRELAY_MPWALK_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/* 1 if the msgpack document at the start of BUF is complete and no array or
 * map in it claims more items than there are bytes left. msgpack-c reserves
 * memory for a container's claimed size before its items arrive (5 bytes can
 * ask for 100 GB), so every decoder of untrusted msgpack checks this first. */
int mpwalk_plausible(const char *buf, size_t len);
/* Move *OFF past the complete object there (containers with all they hold),
 * allocating nothing. Returns -1 if it is truncated or malformed. */
int mpwalk_skip(const char *buf, size_t len, size_t *off);

/* Walking without unpacking: a decoder that needs a few values of a large
 * document (a request envelope) reads headers one by one and skips the rest,
 * so memory stays constant whatever the document declares or holds. */
enum mpwalk_kind { MPWALK_OTHER, MPWALK_MAP, MPWALK_ARRAY, MPWALK_BYTES, MPWALK_UINT };
struct mpwalk_item {
    enum mpwalk_kind kind;
    uint64_t count;    /* MAP: pairs, ARRAY: items, BYTES: length */
    const char *bytes; /* BYTES (str or bin): the payload, inside the buffer */
    uint64_t u;        /* UINT: the value (any integer type holding one >= 0) */
};
/* Read the object at *OFF: a scalar whole, a container's header only (its
 * items follow at the new *OFF). Returns -1 if truncated or malformed. */
int mpwalk_next(const char *buf, size_t len, size_t *off, struct mpwalk_item *it);
/* 1 if IT is a str or bin equal to S. */
int mpwalk_item_is(const struct mpwalk_item *it, const char *s);

/* Str or bin bytes of O, or NULL for any other type. */
const char *mpwalk_bytes(const msgpack_object *o, size_t *len);
/* 1 if K is a str or bin equal to S. */
int mpwalk_key_is(const msgpack_object *k, const char *s);

#endif
