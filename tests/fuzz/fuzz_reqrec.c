/* fuzz_reqrec.c -- libFuzzer target: the return path's record decoders,
 * reqrec_decode (saltrelay-up reading the request stream with XREADGROUP)
 * and reprec_decode (saltrelay-down reading its reply stream with XREAD).
 * Each stream entry [id, [field, value, ...]] of a reply (see xread.h) has
 * its field list decoded as a request and as a reply. What decodes must
 * encode to the same field names again and decode to the same record: the
 * decoders take the fields in one order and nothing else. */
#include <stdint.h>
#include <string.h>

#include "reqrec.h"
#include "xread.h"

#define FIELDS_MAX 32

struct fields {
    const char *fv[FIELDS_MAX];
    size_t fl[FIELDS_MAX];
    size_t n;
};

/* The field list of entry E, as redis/stream_reader.c hands it on (a nil list,
 * an entry deleted while pending, is none). 0 unless E is no entry. */
static int entry_fields(const redisReply *e, struct fields *f)
{
    f->n = 0;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
        return -1;
    const redisReply *l = e->element[1];
    if (l->type == REDIS_REPLY_NIL)
        return 0;
    if (l->type != REDIS_REPLY_ARRAY || l->elements > FIELDS_MAX)
        return -1;
    for (size_t i = 0; i < l->elements; i++) {
        if (l->element[i]->type != REDIS_REPLY_STRING)
            return -1;
        f->fv[i] = l->element[i]->str;
        f->fl[i] = (size_t)l->element[i]->len;
    }
    f->n = l->elements;
    return 0;
}

static int same(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* ARGV, an XADD without MINID ("XADD k * field value ..."), has the field
 * names of F; returns its field list in OUT. */
static void same_names(int argc, const char **argv, const size_t *argvlen, const struct fields *f,
                       struct fields *out)
{
    if (argc < 3 || (size_t)argc - 3 != f->n)
        __builtin_trap();
    out->n = f->n;
    for (size_t i = 0; i < f->n; i++) {
        out->fv[i] = argv[3 + i];
        out->fl[i] = argvlen[3 + i];
        if (i % 2 == 0 && !same(f->fv[i], f->fl[i], out->fv[i], out->fl[i]))
            __builtin_trap();
    }
}

static void check_request(const struct fields *f)
{
    struct reqrec rec, again;
    struct reqrec_scratch s;
    struct fields enc;
    const char *argv[REQREC_ARGC_MAX], *why = NULL;
    size_t argvlen[REQREC_ARGC_MAX];
    if (reqrec_decode(f->fv, f->fl, f->n, &rec, &why) != 0) {
        if (!why || rec.dc || rec.rid || rec.payload)
            __builtin_trap();
        return;
    }
    same_names(reqrec_xadd_argv(&rec, "k", 0, &s, argv, argvlen), argv, argvlen, f, &enc);
    if (reqrec_decode(enc.fv, enc.fl, enc.n, &again, &why) != 0 || !same(rec.dc, rec.dclen, again.dc, again.dclen) ||
        !same(rec.rid, rec.ridlen, again.rid, again.ridlen) || !same(rec.payload, rec.len, again.payload, again.len) ||
        rec.dl_ms != again.dl_ms || rec.dl_ms < 0 || rec.cmd != again.cmd)
        __builtin_trap();
}

static void check_reply(const struct fields *f)
{
    struct reprec rec, again;
    struct reqrec_scratch s;
    struct fields enc;
    const char *argv[REQREC_ARGC_MAX], *why = NULL;
    size_t argvlen[REQREC_ARGC_MAX];
    if (reprec_decode(f->fv, f->fl, f->n, &rec, &why) != 0) {
        if (!why || rec.rid || rec.payload)
            __builtin_trap();
        return;
    }
    same_names(reprec_xadd_argv(&rec, "k", 0, &s, argv, argvlen), argv, argvlen, f, &enc);
    if (reprec_decode(enc.fv, enc.fl, enc.n, &again, &why) != 0 || !same(rec.rid, rec.ridlen, again.rid, again.ridlen) ||
        !same(rec.payload, rec.len, again.payload, again.len) || rec.st != again.st || rec.st >= ST__COUNT)
        __builtin_trap();
}

static void decode(const redisReply *e)
{
    struct fields f;
    if (entry_fields(e, &f) < 0)
        return;
    check_request(&f);
    check_reply(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_xread(data, size, decode);
    return 0;
}
