/* keys.h -- names of every Redis key of a cluster. The "{cluster}" hash tag
 * keeps one cluster's keys in one Redis Cluster slot, so multi-key commands
 * and MULTI work there too. Lifetimes are in docs/architecture.md. */
#ifndef SALTRELAY_KEYS_H
#define SALTRELAY_KEYS_H

#include <stdio.h>

/* The longest: "saltrelay:{" + 64-byte cluster + "}:minion:" + 255-byte id. */
#define KEY_MAX 384

/* Publication stream (stream mode), written by saltrelay-up. */
#define key_pub_stream(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:pub", cluster)
/* Last serial given to a publication (pubstore.h). */
#define key_pub_serial(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:pubserial", cluster)
/* "Publication HASH is stored" (pubstore.h), expires after pub_dedup_window. */
#define key_pub_seen(buf, cluster, hash) snprintf(buf, KEY_MAX, "saltrelay:{%s}:pubseen:%s", cluster, hash)
/* Publication channel (channel mode). */
#define key_pub_channel(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:pubch", cluster)
/* Request stream: every DC's requests, read by saltrelay-up's consumer group. */
#define key_req_stream(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:req", cluster)
/* Hash: per saltrelay-down incarnation (boot id), the highest request sequence number stored. */
#define key_req_high(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:reqhi", cluster)
/* Reply stream of one DC. */
#define key_rep_stream(buf, cluster, dc) snprintf(buf, KEY_MAX, "saltrelay:{%s}:rep:%s", cluster, dc)
/* Hash of one DC's last report (cursor, subscribers, counters). */
#define key_dc_status(buf, cluster, dc) snprintf(buf, KEY_MAX, "saltrelay:{%s}:dc:%s", cluster, dc)
/* Set of DC names that ever reported. */
#define key_dc_set(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:dcs", cluster)
/* Sorted set of saltrelay-up instance names, scored by their last heartbeat (upreport.h). */
#define key_up_set(buf, cluster) snprintf(buf, KEY_MAX, "saltrelay:{%s}:ups", cluster)
/* Hash of one saltrelay-up instance's heartbeat (upreport.h). */
#define key_up_status(buf, cluster, name) snprintf(buf, KEY_MAX, "saltrelay:{%s}:up:%s", cluster, name)
/* Hash of one minion's registry entry (dc, first_auth, last_auth, last_request). */
#define key_minion(buf, cluster, id) snprintf(buf, KEY_MAX, "saltrelay:{%s}:minion:%s", cluster, id)
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

#endif
