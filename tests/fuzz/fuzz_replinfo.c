/* fuzz_replinfo.c -- libFuzzer target: replinfo_parse, which reads the INFO
 * replication answer of the Redis a DC reads (untrusted text). A refusal
 * gives a reason; an answer is a role and durations within bounds. */
#include <stdint.h>

#include "replinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct replinfo ri;
    const char *why = NULL;
    int rc = replinfo_parse((const char *)data, size, &ri, &why);
    if (rc != 0 && !why)
        __builtin_trap();
    if (rc == 0 && (ri.down_s < REPLINFO_ABSENT || ri.last_io_s < REPLINFO_ABSENT || (!ri.replica && !ri.link_up)))
        __builtin_trap();
    return 0;
}
