/* fuzz_entry.c -- libFuzzer target: the publication record decoder as
 * saltrelay-down uses it. Bytes are fed to hiredis's reply reader; when they
 * form an XREAD-shaped reply ([[key, [entry...]]...]) each entry goes to
 * pubrec_from_entry, and so does every reply and element of any shape.
 *
 * hiredis 0.14 callocs an array reply's element table at its header, before
 * the elements arrive ("*1000000000" asks for 8 GB). That is hiredis reading
 * our own Redis, not saltrelay's decoder, so such inputs are skipped. */
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <string.h>

#include "pubrec.h"

static void check_record(const struct pubrec *rec)
{
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

/* The XREAD reply: one [key, entries] pair per stream. */
static void decode_xread(const redisReply *r)
{
    decode(r);
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t s = 0; s < r->elements; s++) {
        const redisReply *pair = r->element[s];
        decode(pair);
        if (pair->type != REDIS_REPLY_ARRAY || pair->elements != 2 || pair->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        for (size_t i = 0; i < pair->element[1]->elements; i++)
            decode(pair->element[1]->element[i]);
    }
}

/* 1 if some "*N" header claims more elements than the input has bytes. */
static int claims_too_much(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if (data[i] != '*')
            continue;
        unsigned long long n = 0;
        for (size_t j = i + 1; j < size && data[j] >= '0' && data[j] <= '9' && n <= size; j++)
            n = n * 10 + (data[j] - '0');
        if (n > size)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (claims_too_much(data, size))
        return 0;
    redisReader *rd = redisReaderCreate();
    redisReaderFeed(rd, (const char *)data, size);
    void *reply = NULL;
    while (redisReaderGetReply(rd, &reply) == REDIS_OK && reply) {
        decode_xread(reply);
        freeReplyObject(reply);
        reply = NULL;
    }
    redisReaderFree(rd);
    return 0;
}
