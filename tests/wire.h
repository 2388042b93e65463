/* wire.h -- walk the records of a salt-wire capture (../shared/salt-wire),
 * for the unit tests and the fuzzers' seed corpora. Frames point into the
 * file's buffer, valid during the callback only. */
#ifndef SALTRELAY_WIRE_H
#define SALTRELAY_WIRE_H

#include <stddef.h>

#define WIRE_MAX_FRAMES 16

struct wire_record {
    const char *dir;  /* "pub", "req" or "rep" */
    const char *peer; /* "flat" or "syndic" */
    size_t nframes;
    const char *frame[WIRE_MAX_FRAMES];
    size_t len[WIRE_MAX_FRAMES];
};

typedef void (*wire_fn)(const struct wire_record *rec, void *arg);

/* Call FN for each record of the capture at PATH whose dir is DIR (NULL: all).
 * Returns the number of records passed to FN, or -1 if PATH is unreadable. */
long wire_each(const char *path, const char *dir, wire_fn fn, void *arg);

/* The names of the s*.msgpack captures, NULL-terminated. */
extern const char *const wire_captures[];

#endif
