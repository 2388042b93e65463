/* lease.h -- a lease kept in one Redis key, which names its holder by a
 * token: tree sync's publisher among saltrelay-ups (relay-up/tree_store.c)
 * and the one running saltrelay-down of a datacenter (dclease.h). The key
 * is only ever taken, extended and released by these scripts, each one
 * atomic: a holder's extension never overwrites a successor's token. */
#ifndef SALTRELAY_LEASE_H
#define SALTRELAY_LEASE_H

#include <stddef.h>

#define LEASE_TOKEN_MAX 256

/* EVAL LEASE_TAKE_LUA 1 KEY MINE FRESH MS DEAD: extend the lease for MS if
 * it holds MINE; take it with FRESH if it is free, or if it holds DEAD (a
 * holder the caller knows has ended; "" for none); either way return the
 * token it holds now. */
extern const char LEASE_TAKE_LUA[];
/* EVAL LEASE_RELEASE_LUA 1 KEY MINE: delete the lease if it holds MINE. */
extern const char LEASE_RELEASE_LUA[];

/* A new token in TOK: "NAME#" and a random number (NAME must not hold '#'). */
void lease_token_new(const char *name, char *tok, size_t len);
/* The holder's name in TOKEN (LEN bytes, from Redis): what precedes its
 * first '#', control characters shown as '?'. */
void lease_holder(const char *token, size_t len, char *name, size_t namelen);

#endif
