/* fuzz_channel.c -- libFuzzer target: the channel-mode record
 * (pubrec_unpack). What unpacks must pack again and unpack to the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pubrec.h"

static void same_or_trap(const struct pubrec *a, const struct pubrec *b)
{
    if (a->nframes != b->nframes || a->serial != b->serial || a->id.ms != b->id.ms ||
        a->topics_len != b->topics_len || !a->topics != !b->topics ||
        (a->topics_len && memcmp(a->topics, b->topics, a->topics_len) != 0))
        __builtin_trap();
    for (size_t i = 0; i < a->nframes; i++)
        if (a->len[i] != b->len[i] || (a->len[i] && memcmp(a->frame[i], b->frame[i], a->len[i]) != 0))
            __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pubrec rec, again;
    const char *why = NULL;
    if (pubrec_unpack((const char *)data, size, &rec, &why) != 0) {
        if (!why)
            __builtin_trap();
        return 0;
    }
    size_t len;
    char *buf = pubrec_pack(&rec, &len);
    if (!buf || pubrec_unpack(buf, len, &again, &why) != 0)
        __builtin_trap();
    same_or_trap(&rec, &again);
    free(buf);
    return 0;
}
