/* fuzz_switchmsg.c -- libFuzzer target: switchmsg_parse, which reads the
 * Sentinels' "+switch-master" messages (untrusted text). A refusal gives a
 * reason; an accepted message printed back from its fields is the input
 * itself (nothing skipped, nothing cut: the name is compared whole). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "switchmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct switchmsg m;
    const char *why = NULL;
    if (switchmsg_parse((const char *)data, size, &m, &why) != 0) {
        if (!why)
            __builtin_trap();
        return 0;
    }
    if (m.name != (const char *)data || m.namelen == 0 || m.from.port < 1 || m.from.port > 65535 ||
        m.to.port < 1 || m.to.port > 65535)
        __builtin_trap();
    char *back = malloc(size + 1);
    int n = snprintf(back, size + 1, "%.*s %s %d %s %d", (int)m.namelen, m.name, m.from.host, m.from.port,
                     m.to.host, m.to.port);
    if (n < 0 || (size_t)n != size || memcmp(back, data, size) != 0)
        __builtin_trap();
    free(back);
    return 0;
}
