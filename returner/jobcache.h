/* jobcache.h -- read one job from the MoM's Salt job cache (the default
 * local_cache returner, identical in layout on Salt 3006 and 3008):
 *
 *   <job_cache_dir>/<h[0:2]>/<h[2:]>/    h = hash_type(jid) in hex
 *       jid                    the jid, ASCII
 *       .load.p                msgpack map: fun, tgt, jid, ...
 *       .minions.p             msgpack array of the expected minion ids
 *       .minions.<syndic>.p    more expected ids, reported through a syndic
 *       nocache                marker: returns are not stored
 *       <minion id>/return.p   one per minion that returned
 *
 * The job directory is found by its jid file, so any hash_type works. */
#ifndef SALTRELAY_JOBCACHE_H
#define SALTRELAY_JOBCACHE_H

#include <stddef.h>

#define JID_MAX 64
#define MINION_ID_MAX 256

/* A sorted set of minion ids (each a NUL-free string). */
struct idset {
    char **ids;
    size_t n, cap;
};

/* The minions one syndic reported for its tier, from .minions.<syndic>.p:
 * the syndic's id is the file's name part, its minions are also in
 * job.expected. */
struct tier {
    char *syndic;
    struct idset minions;
};

struct job {
    char jid[JID_MAX];
    char fun[128]; /* printable; "" if the load did not say */
    char tgt[256];
    int nocache;
    struct idset expected, returned;
    struct tier *tiers; /* sorted by syndic id */
    size_t ntiers, tiers_cap;
};

/* A Salt jid: 20 digits (YYYYMMDDhhmmssffffff), optionally "_<digits>". */
int jid_valid(const char *jid);
/* The jid's time in ms since the epoch, read in the local time zone (Salt
 * writes jids in the MoM's local time unless utc_jid is set). -1 if invalid. */
long long jid_time_ms(const char *jid);

/* Load JID from JOBS_DIR. Returns 0, or -1 with a one-line reason in ERR.
 * Damaged files are named on stderr and skipped where the rest still makes
 * sense (a damaged .minions.<syndic>.p), fatal otherwise. */
int jobcache_load(const char *jobs_dir, const char *jid, struct job *job, char *err, size_t errlen);
void job_free(struct job *job);
/* Index into job->tiers of the syndic whose list names ID (the first by
 * syndic id if several do), or -1. */
long job_tier_of(const struct job *job, const char *id);
/* Index into job->tiers of syndic ID, or -1. */
long job_tier_named(const struct job *job, const char *id);
/* Parse the content of a .minions*.p file into SET; BAD counts entries that
 * are no usable minion id (skipped). -1 unless BUF is a msgpack list.
 * Separate from jobcache_load so that it can be fuzzed. */
int jobcache_parse_minions(const unsigned char *buf, size_t len, struct idset *set, size_t *bad);
int idset_has(const struct idset *s, const char *id);
/* Append ID (-1 when out of memory); idset_finish sorts and removes
 * duplicates, which idset_has needs. */
int idset_add(struct idset *s, const char *id);
void idset_finish(struct idset *s);
void idset_free(struct idset *s);

#endif
