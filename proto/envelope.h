/* envelope.h -- what saltrelay may read of a Salt request in clear.
 *
 * A request frame is a msgpack map {enc, load, [id], version, ...}. With
 * enc "clear" the load is a map whose "cmd" and "id" are readable (_auth).
 * With enc "aes" the load is opaque, but version 3 puts the minion "id" at
 * the top level. Salt packs bytes as msgpack str that is often not UTF-8:
 * nothing here checks UTF-8, and the frame is never re-encoded. */
#ifndef SALTRELAY_ENVELOPE_H
#define SALTRELAY_ENVELOPE_H

#include <stddef.h>

enum salt_enc { ENC_OTHER, ENC_CLEAR, ENC_AES };

#define ENVELOPE_ID_MAX 256

struct salt_envelope {
    enum salt_enc enc;
    int version;            /* -1 if absent */
    int is_auth;            /* clear load with cmd "_auth" */
    int has_token;          /* _auth re-auth (load carries "token") */
    char id[ENVELOPE_ID_MAX]; /* minion id, "" if not readable */
};

/* Parse the clear parts of a request. Returns 0, or -1 with WHY if the frame
 * is not a Salt request envelope. A minion id that is empty, longer than
 * ENVELOPE_ID_MAX-1 or holds control characters or '/' is left out (id ""). */
int envelope_peek(const char *buf, size_t len, struct salt_envelope *env, const char **why);

/* 1 if BUF is the MoM's reply to an _auth that accepted the minion: a clear
 * map whose load (a map, or since Salt 3007 a str holding a msgpack map), or
 * the map itself (older Salt), carries the minion's "aes" or "session" key.
 * A refusal ({"load": {"ret": false}}, "full") or anything else gives 0. */
int envelope_auth_accepted(const char *buf, size_t len);

#endif
