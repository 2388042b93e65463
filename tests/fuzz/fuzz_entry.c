/* fuzz_entry.c -- libFuzzer target: the publication record decoder as
 * saltrelay-down uses it. Bytes are fed to hiredis's reply reader; when they
 * form an XREAD-shaped reply ([[key, [entry...]]...]) each entry goes to
 * pubrec_from_entry, and so does every reply and element of any shape (see
 * xread.h). */
#include <stdint.h>

#include "pubrec.h"
#include "topiclist.h"
#include "xread.h"

/* A decoded version-2 record's topic list must read to its end. */
static void check_topics(const struct pubrec *rec)
{
    struct topiclist_iter it;
    char t[TOPICLIST_MAX_TOPIC];
    size_t n, count = 0;
    int r;
    topiclist_iter_init(&it, rec->topics, rec->topics_len);
    while ((r = topiclist_next(&it, t, &n)) > 0)
        count += n > 0;
    if (r < 0 || count == 0 || rec->nframes != 1)
        __builtin_trap();
}

static void check_record(const struct pubrec *rec)
{
    if (rec->topics)
        check_topics(rec);
    size_t sum = 0;
    for (size_t i = 0; i < rec->nframes; i++) /* touch every byte handed out */
        for (size_t j = 0; j < rec->len[i]; j++)
            sum += (unsigned char)rec->frame[i][j];
    if (rec->nframes < 1 || rec->nframes > PUBREC_MAX_FRAMES || sum == (size_t)-1)
        __builtin_trap();
}

static void decode(const redisReply *e)
{
    struct pubrec rec;
    const char *why = NULL;
    if (pubrec_from_entry(e, &rec, &why) == 0)
        check_record(&rec);
    else if (!why)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_xread(data, size, decode);
    return 0;
}
