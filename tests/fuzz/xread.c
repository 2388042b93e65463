/* xread.c -- see xread.h.
 *
 * hiredis 0.14 callocs an array reply's element table at its header, before
 * the elements arrive ("*1000000000" asks for 8 GB). That is hiredis reading
 * our own Redis, not saltrelay's decoders, so such inputs are skipped. */
#include "xread.h"

/* The XREAD reply: one [key, entries] pair per stream. */
static void walk(const redisReply *r, xread_fn decode)
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

void fuzz_xread(const uint8_t *data, size_t size, xread_fn decode)
{
    if (claims_too_much(data, size))
        return;
    redisReader *rd = redisReaderCreate();
    redisReaderFeed(rd, (const char *)data, size);
    void *reply = NULL;
    while (redisReaderGetReply(rd, &reply) == REDIS_OK && reply) {
        walk(reply, decode);
        freeReplyObject(reply);
        reply = NULL;
    }
    redisReaderFree(rd);
}
