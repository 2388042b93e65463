/* keys.h -- names of every Redis key of a cluster. The "{cluster}" hash tag
 * keeps one cluster's keys in one Redis Cluster slot, so multi-key commands
 * and MULTI work there too. Lifetimes are in docs/architecture.md. */
#ifndef SALTRELAY_KEYS_H
#define SALTRELAY_KEYS_H

#include <stdio.h>
#include <string.h>

/* The longest: "saltrelay:{" + 64-byte cluster + "}:reg:" + 64-byte DC + ":"
 * + 255-byte minion id. */
#define KEY_MAX 448

/* Publication stream (stream mode), written by saltrelay-up. */
#define key_pub_stream(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:pub", cluster)
/* Last serial given to a publication by saltrelay-ups before issue 21 (read once
 * by the store script where its index is missing, pubstore.h). */
#define key_pub_serial(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:pubserial", cluster)
/* The store script's index of what the stream holds (pubstore.h): a hash
 * (top, serial, b0, b1) and two sets of hashes, one per time bucket; never
 * replicated, rebuilt from the stream where missing. */
#define key_pub_index(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:pubidx", cluster)
#define key_pub_index_set(buf, cluster, n) snprintf(buf, KEY_MAX, "saltrelay:{%s}:pubidx:%d", cluster, n)
/* Hash of the saltrelay-ups waiting for the publication before their next
 * (pubstore.h; not replicated). */
#define key_pub_order(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:puborder", cluster)
/* Publication channel (channel mode). */
#define key_pub_channel(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:pubch", cluster)
/* Everything a DC writes is under a key of its own (req:<dc>, reqhi:<dc>,
 * rep:<dc>, dc:<dc>, dc:<dc>:owner, minions:<dc>, reg:<dc>:<id>; DC names
 * hold no ':'), so that a Redis ACL user per DC can be confined to them
 * (docs/security.md); the one shared key a DC writes is its name in
 * key_dc_set. */
/* Request stream of one DC, read by saltrelay-up's consumer group. */
#define key_req_stream(buf, cluster, dc) snprintf(buf, KEY_MAX, "saltrelay:{%s}:req:%s", cluster, dc)
/* Hash: per saltrelay-down incarnation (boot id) of the DC, the highest request sequence number stored. */
#define key_req_high(buf, cluster, dc) snprintf(buf, KEY_MAX, "saltrelay:{%s}:reqhi:%s", cluster, dc)
/* Set by saltrelay-up: it reads the per-DC request streams (the upgrade from
 * the shared one, docs/deployment.md). */
#define key_req_layout(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:reqstreams", cluster)
/* Before per-DC streams (until every saltrelay-up reads those): the request
 * stream every DC shared, and its stored sequence numbers. */
#define key_req_shared(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:req", cluster)
#define key_req_high_shared(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:reqhi", cluster)
/* Reply stream of one DC. */
#define key_rep_stream(buf, cluster, dc) snprintf(buf, KEY_MAX, "saltrelay:{%s}:rep:%s", cluster, dc)
/* Hash of one DC's last report (cursor, subscribers, counters). */
#define key_dc_status(buf, cluster, dc) snprintf(buf, KEY_MAX, "saltrelay:{%s}:dc:%s", cluster, dc)
/* The running saltrelay-down of one DC: its lease (redis/dclease.h), under
 * the DC's own prefix as its other keys. */
#define key_dc_owner(buf, cluster, dc) snprintf(buf, KEY_MAX, "saltrelay:{%s}:dc:%s:owner", cluster, dc)
/* Set of DC names that served (reported while ready). */
#define key_dc_set(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:dcs", cluster)
/* Sorted set of saltrelay-up instance names, scored by their last heartbeat (upreport.h). */
#define key_up_set(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:ups", cluster)
/* Hash of one saltrelay-up instance's heartbeat (upreport.h). */
#define key_up_status(buf, cluster, name) snprintf(buf, KEY_MAX, "saltrelay:{%s}:up:%s", cluster, name)
/* Hash of one minion's registry entry in one DC (first_auth, last_auth, last_request). */
#define key_minion(buf, cluster, dc, id) snprintf(buf, KEY_MAX, "saltrelay:{%s}:reg:%s:%s", cluster, dc, id)
/* Before per-DC entries: one minion's entry for all DCs (dc, first_auth,
 * last_auth, last_request), read by saltrelay-status until they expire. */
#define key_minion_shared(buf, cluster, id) snprintf(buf, KEY_MAX, "saltrelay:{%s}:minion:%s", cluster, id)
/* Set of the minion ids seen by one DC. */
#define key_dc_minions(buf, cluster, dc) snprintf(buf, KEY_MAX, "saltrelay:{%s}:minions:%s", cluster, dc)
/* Tree sync (treerec.h): the newest version record, the kept version records,
 * one content chunk by its SHA-1 hex, and the set of every stored chunk id. */
#define key_tree_head(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:tree:head", cluster)
#define key_tree_version(buf, cluster, v) snprintf(buf, KEY_MAX, "saltrelay:{%s}:tree:v:%llu", cluster, (unsigned long long)(v))
#define key_tree_chunk(buf, cluster, hex) snprintf(buf, KEY_MAX, "saltrelay:{%s}:tree:c:%s", cluster, hex)
#define key_tree_chunks(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:tree:chunks", cluster)
/* The saltrelay-up instance that publishes the tree (a lease: one publisher
 * among active-active instances). */
#define key_tree_lease(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:tree:publisher", cluster)

/* Whether LEN bytes at S can name a cluster or DC in a key: 1 to
 * KEY_NAME_MAX of [A-Za-z0-9._-] (what the configs accept), so no ':' and
 * no glob character: an ACL key pattern per DC matches that DC's keys only. */
#define KEY_NAME_MAX 64
static inline int key_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > KEY_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!s[i] || !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]))
            return 0;
    return 1;
}

#endif
