/* fuzz_envelope.c -- libFuzzer target: envelope_peek, which reads the clear
 * parts of every request a minion sends (untrusted bytes), and
 * envelope_auth_accepted, which reads the MoM's reply to an _auth. A minion
 * id it hands out must be a short, NUL-terminated name without '/' or
 * controls; an accepted reply is always a well-formed document. */
#include <stdint.h>
#include <string.h>

#include "envelope.h"
#include "mpwalk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct salt_envelope env;
    const char *why = NULL;
    int rc = envelope_peek((const char *)data, size, &env, &why);
    if (rc != 0 && !why)
        __builtin_trap();
    size_t n = strnlen(env.id, sizeof env.id);
    if (n == sizeof env.id || strchr(env.id, '/'))
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)env.id[i] < 0x20 || env.id[i] == 0x7f)
            __builtin_trap();
    if (envelope_auth_accepted((const char *)data, size) && !mpwalk_plausible((const char *)data, size))
        __builtin_trap();
    return 0;
}
