/* fuzz_jobcache.c -- libFuzzer target: jobcache_parse_minions, which reads a
 * job's .minions.p (msgpack that Salt wrote on the MoM) for saltrelay-status.
 * Every id it keeps must be a usable minion id (not empty, shorter than
 * MINION_ID_MAX, no '/'), nothing is kept from what is refused, and the
 * set comes out of idset_finish sorted, without duplicates and found by
 * idset_has. */
#include <stdint.h>
#include <string.h>

#include "jobcache.h"

static void check_set(const struct idset *set, size_t bad, size_t size)
{
    if (set->n + bad > size) /* every entry takes at least a byte */
        __builtin_trap();
    for (size_t i = 0; i < set->n; i++) {
        size_t len = strlen(set->ids[i]);
        if (len == 0 || len >= MINION_ID_MAX || strchr(set->ids[i], '/') ||
            (i && strcmp(set->ids[i - 1], set->ids[i]) >= 0) || !idset_has(set, set->ids[i]))
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct idset set = {0};
    size_t bad = 0;
    if (jobcache_parse_minions(data, size, &set, &bad) == 0) {
        idset_finish(&set);
        check_set(&set, bad, size);
    } else if (set.n) {
        __builtin_trap();
    }
    idset_free(&set);
    return 0;
}
