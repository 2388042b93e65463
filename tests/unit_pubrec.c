/* unit_pubrec.c -- the publication record (proto/pubrec.c): XADD argv,
 * decoding of well-formed and malformed stream entries (replies built from
 * RESP bytes with hiredis's reader, as saltrelay-down gets them), and the
 * channel-mode msgpack record. Frames are arbitrary bytes: not UTF-8, NUL,
 * empty. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pubrec.h"
#include "resp.h"
#include "unit.h"

/* Frames no text codec would pass: invalid UTF-8, NUL, 0xff, and empty. */
static const char f_bin[] = "\xff\xfe\x00\xc3\x28\x80";
static const char f_topic[] = "ccef3b504e540b9402f1e8b6a93928fb436710c6";

static struct pubrec sample(size_t nframes)
{
    struct pubrec rec = {.id = {1700000000123ULL, 42}, .serial = 18446744073709551615ULL, .nframes = nframes};
    for (size_t i = 0; i < nframes; i++) {
        rec.frame[i] = i % 3 == 0 ? f_bin : i % 3 == 1 ? "" : f_topic;
        rec.len[i] = i % 3 == 0 ? sizeof f_bin - 1 : i % 3 == 1 ? 0 : strlen(f_topic);
    }
    return rec;
}

static void check_same(const struct pubrec *a, const struct pubrec *b)
{
    CHECK_INT(a->nframes, b->nframes);
    CHECK_INT(a->serial, b->serial);
    for (size_t i = 0; i < a->nframes; i++)
        CHECK_MEM(a->frame[i], a->len[i], b->frame[i], b->len[i]);
}

UNIT_TEST(xadd_argv_with_maxlen)
{
    struct pubrec rec = {.id = {1700000000123ULL, 7}, .serial = 99, .nframes = 2,
                         .frame = {"syndic", "payload"}, .len = {6, 7}};
    const char *argv[PUBREC_ARGC_MAX];
    size_t argvlen[PUBREC_ARGC_MAX];
    struct pubrec_scratch s;
    int argc = pubrec_xadd_argv(&rec, "saltrelay:{c}:pub", 100000, &s, argv, argvlen);
    static const char *const want[] = {"XADD", "saltrelay:{c}:pub", "MAXLEN", "~", "100000",
                                       "1700000000123-7", "v", "1", "s", "99", "f0", "syndic",
                                       "f1", "payload", NULL};
    CHECK_INT(argc, 14);
    CHECK_ARGV(argv, argvlen, argc, want);
}

UNIT_TEST(xadd_argv_without_maxlen)
{
    struct pubrec rec = {.id = {5, 0}, .serial = 1, .nframes = 1, .frame = {""}, .len = {0}};
    const char *argv[PUBREC_ARGC_MAX];
    size_t argvlen[PUBREC_ARGC_MAX];
    struct pubrec_scratch s;
    int argc = pubrec_xadd_argv(&rec, "k", 0, &s, argv, argvlen);
    static const char *const want[] = {"XADD", "k", "5-0", "v", "1", "s", "1", "f0", "", NULL};
    CHECK_ARGV(argv, argvlen, argc, want);
}

UNIT_TEST(xadd_argv_refuses_frame_counts)
{
    const char *argv[PUBREC_ARGC_MAX];
    size_t argvlen[PUBREC_ARGC_MAX];
    struct pubrec_scratch s;
    struct pubrec none = sample(0), nine = sample(PUBREC_MAX_FRAMES);
    nine.nframes = PUBREC_MAX_FRAMES + 1;
    CHECK_INT(pubrec_xadd_argv(&none, "k", 10, &s, argv, argvlen), -1);
    CHECK_INT(pubrec_xadd_argv(&nine, "k", 10, &s, argv, argvlen), -1);
}

/* XADD argv -> the entry Redis would return -> decoded record. */
static void stream_round_trip(size_t nframes, long long maxlen)
{
    struct pubrec in = sample(nframes), out;
    const char *argv[PUBREC_ARGC_MAX], *why = NULL;
    size_t argvlen[PUBREC_ARGC_MAX];
    struct pubrec_scratch s;
    int argc = pubrec_xadd_argv(&in, "saltrelay:{c}:pub", maxlen, &s, argv, argvlen);
    CHECK(argc > 0 && argc <= PUBREC_ARGC_MAX); /* 8 frames + MAXLEN once overflowed argv */
    struct resp r = {0};
    resp_entry_from_xadd(&r, argc, argv, argvlen);
    redisReply *e = unit_resp(r.buf, r.len);
    if (pubrec_from_entry(e, &out, &why) != 0)
        unit_fail(__FILE__, __LINE__, "%zu frames: decoding failed: %s", nframes, why);
    CHECK_INT(out.id.ms, in.id.ms);
    CHECK_INT(out.id.seq, in.id.seq);
    check_same(&in, &out);
    freeReplyObject(e);
    resp_free(&r);
}

UNIT_TEST(stream_round_trip_binary_and_empty_frames)
{
    for (size_t n = 1; n <= PUBREC_MAX_FRAMES; n++) {
        stream_round_trip(n, 0);
        stream_round_trip(n, 100000);
    }
}

/* A merged record (version 2): argv, round trip through Redis's reply shape
 * and the channel-mode msgpack. */
UNIT_TEST(merged_record_round_trip)
{
    static const char topics[] = "\x06syndic\x09" "broadcast";
    struct pubrec in = {.id = {1700000000123ULL, 9}, .serial = 5, .nframes = 1, .frame = {f_bin},
                        .len = {sizeof f_bin - 1}, .topics = topics, .topics_len = sizeof topics - 1}, out;
    const char *argv[PUBREC_ARGC_MAX], *why = NULL;
    size_t argvlen[PUBREC_ARGC_MAX];
    struct pubrec_scratch s;
    int argc = pubrec_xadd_argv(&in, "k", 0, &s, argv, argvlen);
    CHECK_INT(argc, 11);
    CHECK_STR(argv[4], "2");
    CHECK_STR(argv[7], "t");
    CHECK_MEM(argv[10], argvlen[10], f_bin, sizeof f_bin - 1);
    CHECK_MEM(argv[8], argvlen[8], topics, sizeof topics - 1);
    struct resp r = {0};
    resp_entry_from_xadd(&r, argc, argv, argvlen);
    redisReply *e = unit_resp(r.buf, r.len);
    CHECK_INT(pubrec_from_entry(e, &out, &why), 0);
    CHECK_MEM(out.topics, out.topics_len, topics, sizeof topics - 1);
    check_same(&in, &out);
    freeReplyObject(e);
    resp_free(&r);
    size_t len;
    char *buf = pubrec_pack(&in, &len);
    CHECK_INT(pubrec_unpack(buf, len, &out, &why), 0);
    CHECK_MEM(out.topics, out.topics_len, topics, sizeof topics - 1);
    check_same(&in, &out);
    free(buf);
    in.nframes = 2; /* a merged record carries the payload only */
    CHECK_INT(pubrec_xadd_argv(&in, "k", 0, &s, argv, argvlen), -1);
}

/* An entry "<id>" with the fields of SPEC, space-separated tokens; "<int>"
 * is an integer reply, "<nil>" a nil, "<empty>" an empty string. */
static redisReply *entry(const char *id, const char *spec)
{
    char *copy = strdup(spec), *save = NULL;
    const char *tok[64];
    long n = 0;
    for (char *t = strtok_r(copy, " ", &save); t && n < 64; t = strtok_r(NULL, " ", &save))
        tok[n++] = t;
    struct resp r = {0};
    resp_array(&r, 2);
    resp_str(&r, id);
    resp_array(&r, n);
    for (long i = 0; i < n; i++) {
        if (strcmp(tok[i], "<int>") == 0)
            resp_raw(&r, ":1\r\n");
        else if (strcmp(tok[i], "<nil>") == 0)
            resp_raw(&r, "$-1\r\n");
        else
            resp_str(&r, strcmp(tok[i], "<empty>") == 0 ? "" : tok[i]);
    }
    redisReply *e = unit_resp(r.buf, r.len);
    resp_free(&r);
    free(copy);
    return e;
}

UNIT_TEST(entry_well_formed)
{
    redisReply *e = entry("1700000000000-3", "v 1 s 12 f0 broadcast f1 <empty>");
    struct pubrec rec;
    const char *why = NULL;
    CHECK_INT(pubrec_from_entry(e, &rec, &why), 0);
    CHECK_INT(rec.id.ms, 1700000000000LL);
    CHECK_INT(rec.id.seq, 3);
    CHECK_INT(rec.serial, 12);
    CHECK_INT(rec.nframes, 2);
    CHECK_MEM(rec.frame[0], rec.len[0], "broadcast", 9);
    CHECK_INT(rec.len[1], 0);
    freeReplyObject(e);
}

static void expect_bad(redisReply *e, const char *want, const char *label)
{
    struct pubrec rec;
    const char *why = NULL;
    int rc = pubrec_from_entry(e, &rec, &why); /* before WHY is read */
    CHECK_REFUSED(rc, why, want, label);
    CHECK_INT(rec.nframes, 0);
    freeReplyObject(e);
}

/* Version 3: the one field <serial> <record> as the store script writes it. */
static redisReply *v3_entry(const char *name, const char *value, size_t len)
{
    struct resp r = {0};
    resp_array(&r, 2);
    resp_str(&r, "1700000000123-9");
    resp_array(&r, 2);
    resp_str(&r, name);
    resp_bulk(&r, value, len);
    redisReply *e = unit_resp(r.buf, r.len);
    resp_free(&r);
    return e;
}

static const unsigned char hash12[PUBREC_HASH_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0xff};

static void v3_round_trip(const struct pubrec *in)
{
    size_t size = pubrec_v3_size(in);
    CHECK(size > PUBREC_HASH_LEN);
    char *value = malloc(size);
    pubrec_v3_write(in, hash12, value);
    char name[24];
    snprintf(name, sizeof name, "%llu", (unsigned long long)in->serial);
    redisReply *e = v3_entry(name, value, size);
    struct pubrec out;
    const char *why = NULL;
    if (pubrec_from_entry(e, &out, &why) != 0)
        unit_fail(__FILE__, __LINE__, "%zu frames: decoding failed: %s", in->nframes, why);
    CHECK_INT(out.version, 3);
    CHECK_MEM(out.hash, out.hashlen, hash12, PUBREC_HASH_LEN);
    CHECK_MEM(out.topics, out.topics_len, in->topics, in->topics_len);
    check_same(in, &out);
    freeReplyObject(e);
    free(value);
}

UNIT_TEST(v3_round_trip_binary_empty_and_long_frames)
{
    for (size_t n = 1; n <= PUBREC_MAX_FRAMES; n++) {
        struct pubrec in = sample(n);
        v3_round_trip(&in);
    }
    static char big[70000]; /* lengths of three LEB128 bytes */
    memset(big, 'x', sizeof big);
    struct pubrec two = {.serial = 1, .nframes = 2, .frame = {big, "tail"}, .len = {sizeof big, 4}};
    v3_round_trip(&two);
    static const char topics[] = "\x06syndic\x09" "broadcast";
    struct pubrec merged = {.serial = 2, .nframes = 1, .frame = {f_bin}, .len = {sizeof f_bin - 1},
                            .topics = topics, .topics_len = sizeof topics - 1};
    v3_round_trip(&merged);
    struct pubrec none = sample(0), nine = sample(PUBREC_MAX_FRAMES);
    nine.nframes = PUBREC_MAX_FRAMES + 1;
    merged.nframes = 2;
    CHECK_INT(pubrec_v3_size(&none), 0);
    CHECK_INT(pubrec_v3_size(&nine), 0);
    CHECK_INT(pubrec_v3_size(&merged), 0);
}

/* A version-3 value: the tag byte, REST, then the 12 hash bytes. */
static void expect_bad_v3(const char *name, unsigned char tag, const char *rest, size_t restlen, const char *want,
                          const char *label)
{
    char value[64];
    value[0] = (char)tag;
    memcpy(value + 1, rest, restlen);
    memcpy(value + 1 + restlen, hash12, PUBREC_HASH_LEN);
    expect_bad(v3_entry(name, value, 1 + PUBREC_HASH_LEN + restlen), want, label);
}

UNIT_TEST(v3_entry_malformed)
{
    const char *cut = "field list is missing or truncated";
    expect_bad_v3("x", 0x30, "p", 1, "missing or bad serial", "serial not a number");
    expect_bad_v3("", 0x30, "p", 1, "missing or bad serial", "empty serial");
    expect_bad_v3("18446744073709551616", 0x30, "p", 1, "missing or bad serial", "serial past 64 bits");
    expect_bad_v3("1", 0x20, "p", 1, "unknown record version", "version 2 tag");
    expect_bad_v3("1", 0x40, "p", 1, "unknown record version", "version 4 tag");
    expect_bad(v3_entry("1", "\x30" "0123456789a", 12), "unknown record version", "hash cut short");
    expect_bad_v3("1", 0x39, "\x01" "ab", 3, "version 2 needs exactly a topic list and a payload", "topics, 2 frames");
    expect_bad_v3("1", 0x31, "", 0, cut, "no length for frame 0");
    expect_bad_v3("1", 0x31, "\x80", 1, cut, "length cut short");
    expect_bad_v3("1", 0x31, "\x05" "ab", 3, cut, "frame 0 past the end");
    expect_bad_v3("1", 0x32, "\x01\x02" "ab", 4, cut, "frames past the end");
    expect_bad_v3("1", 0x31, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10, cut, "length of 64 bits");
    expect_bad_v3("1", 0x38, "\x00" "p", 2, "bad topic list", "empty topic list");
    expect_bad_v3("1", 0x38, "\x02\x05" "ap", 4, "bad topic list", "topic cut short");
    /* what is well formed: an empty last frame, a one-byte record */
    struct pubrec rec;
    const char *why = NULL;
    char value[1 + PUBREC_HASH_LEN] = {0x30};
    redisReply *e = v3_entry("7", value, sizeof value);
    CHECK_INT(pubrec_from_entry(e, &rec, &why), 0);
    CHECK_INT(rec.serial, 7);
    CHECK_INT(rec.nframes, 1);
    CHECK_INT(rec.len[0], 0);
    freeReplyObject(e);
}

UNIT_TEST(merged_entry_malformed)
{
    const char *shape = "version 2 needs exactly a topic list and a payload";
    expect_bad(entry("1-1", "v 2 s 1 f0 x"), shape, "no topic list");
    expect_bad(entry("1-1", "v 2 s 1 t \x01" "a f0 x f1 y"), shape, "two frames");
    expect_bad(entry("1-1", "v 2 s 1 x \x01" "a f0 x"), shape, "topic list misnamed");
    expect_bad(entry("1-1", "v 2 s 1 t <empty> f0 x"), "bad topic list", "empty topic list");
    expect_bad(entry("1-1", "v 2 s 1 t \x05" "ab f0 x"), "bad topic list", "topic cut short");
    expect_bad(entry("1-1", "v 3 s 1 t \x01" "a f0 x"), "unknown record version", "version 3");
}

UNIT_TEST(entry_wrong_shape)
{
    const char *want = "entry is not [id, fields]";
    expect_bad(unit_resps("$3\r\n1-1\r\n"), want, "a string");
    expect_bad(unit_resps(":7\r\n"), want, "an integer");
    expect_bad(unit_resps("*-1\r\n"), want, "a nil array");
    expect_bad(unit_resps("*0\r\n"), want, "an empty array");
    expect_bad(unit_resps("*1\r\n$3\r\n1-1\r\n"), want, "[id]");
    expect_bad(unit_resps("*3\r\n$3\r\n1-1\r\n*0\r\n*0\r\n"), want, "[id, fields, extra]");
    expect_bad(unit_resps("*2\r\n:1\r\n*0\r\n"), want, "integer id");
    expect_bad(unit_resps("*2\r\n$-1\r\n*0\r\n"), want, "nil id");
    expect_bad(unit_resps("*2\r\n*0\r\n*0\r\n"), want, "array id");
}

UNIT_TEST(entry_bad_id)
{
    const char *f = "v 1 s 1 f0 x", *want = "bad entry id";
    expect_bad(entry("17", f), want, "no dash");
    expect_bad(entry("1-", f), want, "no sequence");
    expect_bad(entry("-1", f), want, "no time");
    expect_bad(entry("1-2-3", f), want, "two dashes");
    expect_bad(entry("x-1", f), want, "letters");
    expect_bad(entry("+1-1", f), want, "sign");
    expect_bad(entry("18446744073709551616-0", f), want, "time overflows 64 bits");
    expect_bad(entry("9223372036854775808-0", f), want, "time past INT64_MAX (its age would overflow)");
    expect_bad(entry("1-000000000000000000001", f), want, "21 digits");
    expect_bad(entry("<empty>", f), want, "empty");
}

UNIT_TEST(entry_truncated_fields)
{
    const char *want = "field list is missing or truncated";
    expect_bad(unit_resps("*2\r\n$3\r\n1-1\r\n$-1\r\n"), want, "nil field list");
    expect_bad(unit_resps("*2\r\n$3\r\n1-1\r\n$2\r\nv1\r\n"), want, "string field list");
    expect_bad(entry("1-1", "<empty>"), want, "one field");
    expect_bad(entry("1-1", "v 1 s 1"), want, "no frame");
    expect_bad(entry("1-1", "v 1 s 1 f0"), want, "odd count");
    expect_bad(entry("1-1", "v 1 s 1 f0 x f1"), want, "odd count after a frame");
    expect_bad(unit_resps("*2\r\n$3\r\n1-1\r\n*0\r\n"), want, "no fields");
}

UNIT_TEST(entry_field_not_string)
{
    const char *want = "field is not a string";
    expect_bad(entry("1-1", "v 1 s 1 f0 <int>"), want, "integer frame");
    expect_bad(entry("1-1", "v 1 s 1 f0 <nil>"), want, "nil frame");
    expect_bad(entry("1-1", "<int> 1 s 1 f0 x"), want, "integer key");
    expect_bad(entry("1-1", "v 1 s <nil> f0 x"), want, "nil serial");
    expect_bad(unit_resps("*2\r\n$3\r\n1-1\r\n*6\r\n$1\r\nv\r\n$1\r\n1\r\n$1\r\ns\r\n$1\r\n1\r\n"
                          "$2\r\nf0\r\n*1\r\n$1\r\nx\r\n"), want, "array frame");
}

UNIT_TEST(entry_unknown_version)
{
    const char *want = "unknown record version";
    expect_bad(entry("1-1", "v 3 s 1 f0 x"), want, "version 3");
    expect_bad(entry("1-1", "v <empty> s 1 f0 x"), want, "empty version");
    expect_bad(entry("1-1", "s 1 v 1 f0 x"), want, "serial first");
    expect_bad(entry("1-1", "V 1 s 1 f0 x"), want, "capital V");
}

UNIT_TEST(entry_bad_serial)
{
    const char *want = "missing or bad serial";
    expect_bad(entry("1-1", "v 1 t 1 f0 x"), want, "key t");
    expect_bad(entry("1-1", "v 1 f0 x s 1"), want, "frame before serial");
    expect_bad(entry("1-1", "v 1 s <empty> f0 x"), want, "empty");
    expect_bad(entry("1-1", "v 1 s -1 f0 x"), want, "negative");
    expect_bad(entry("1-1", "v 1 s 1x f0 x"), want, "trailing letter");
    expect_bad(entry("1-1", "v 1 s 18446744073709551616 f0 x"), want, "overflow");
}

UNIT_TEST(entry_too_many_frames)
{
    expect_bad(entry("1-1", "v 1 s 1 f0 a f1 a f2 a f3 a f4 a f5 a f6 a f7 a f8 a"), "too many frames",
               "nine frames");
}

UNIT_TEST(entry_frames_out_of_order)
{
    const char *want = "frames out of order";
    expect_bad(entry("1-1", "v 1 s 1 f1 a f0 b"), want, "f1 first");
    expect_bad(entry("1-1", "v 1 s 1 f0 a f0 b"), want, "f0 twice");
    expect_bad(entry("1-1", "v 1 s 1 f0 a f2 b"), want, "f1 missing");
    expect_bad(entry("1-1", "v 1 s 1 g0 a"), want, "g0");
    expect_bad(entry("1-1", "v 1 s 1 f00 a"), want, "f00");
}

UNIT_TEST(channel_round_trip_binary_and_empty_frames)
{
    for (size_t n = 1; n <= PUBREC_MAX_FRAMES; n++) {
        struct pubrec in = sample(n), out;
        size_t len;
        const char *why = NULL;
        char *buf = pubrec_pack(&in, &len);
        CHECK(buf != NULL);
        if (pubrec_unpack(buf, len, &out, &why) != 0)
            unit_fail(__FILE__, __LINE__, "%zu frames: unpack failed: %s", n, why);
        CHECK_INT(out.id.ms, in.id.ms);
        CHECK_INT(out.id.seq, 0);
        check_same(&in, &out);
        free(buf);
    }
}

static void expect_bad_channel(const char *buf, size_t len, const char *want, const char *label)
{
    struct pubrec rec;
    const char *why = NULL;
    int rc = pubrec_unpack(buf, len, &rec, &why); /* before WHY is read */
    CHECK_REFUSED(rc, why, want, label);
}

#define BAD_CHANNEL(lit, want, label) expect_bad_channel(lit, sizeof lit - 1, want, label)

UNIT_TEST(channel_malformed)
{
    BAD_CHANNEL("", "not a msgpack document", "empty");
    BAD_CHANNEL("\xc1", "not a msgpack document", "reserved byte");
    BAD_CHANNEL("\x94\x01\x01\x01\xc4\x05" "ab", "not a msgpack document", "truncated frame");
    BAD_CHANNEL("\x94\x01\x01\x01\xc4\x00\x00", "trailing bytes after the record", "trailing byte");
    BAD_CHANNEL("\x81\x01\x01", "not an array of 4 to 11 items", "a map");
    BAD_CHANNEL("\x93\x01\x01\x01", "not an array of 4 to 11 items", "no frame");
    BAD_CHANNEL("\x9c\x01\x01\x01\xc4\x00\xc4\x00\xc4\x00\xc4\x00\xc4\x00\xc4\x00\xc4\x00\xc4\x00\xc4\x00",
                "not an array of 4 to 11 items", "nine frames");
    BAD_CHANNEL("\x94\x03\x01\x01\xc4\x00", "bad version, serial or time", "version 3");
    BAD_CHANNEL("\x94\x02\x01\x01\xc4\x00", "version 2 needs exactly a topic list and a payload", "version 2 without topics");
    BAD_CHANNEL("\x94\x01\xff\x01\xc4\x00", "bad version, serial or time", "negative serial");
    BAD_CHANNEL("\x94\x01\x01\xa1x\xc4\x00", "bad version, serial or time", "time as str");
    BAD_CHANNEL("\x94\x01\x01\x01\xa1x", "frame is not bin", "frame as str");
    BAD_CHANNEL("\x95\x01\x01\x01\xc4\x00\xc0", "frame is not bin", "nil frame");
    BAD_CHANNEL("\xdd\x40\x00\x00\x00\x01\x01\x01", "not a msgpack document", "array32 claiming 1G items");
}

UNIT_TEST(entry_with_hash)
{
    redisReply *e = entry("5-0", "v 1 s 9 h 0a1b2c f0 broadcast f1 payload");
    struct pubrec rec;
    const char *why = NULL;
    CHECK_INT(pubrec_from_entry(e, &rec, &why), 0);
    CHECK_MEM(rec.hash, rec.hashlen, "0a1b2c", 6);
    CHECK_INT(rec.nframes, 2);
    CHECK_MEM(rec.frame[1], rec.len[1], "payload", 7);
    freeReplyObject(e);
    e = entry("5-0", "v 1 s 9 f0 x");
    CHECK_INT(pubrec_from_entry(e, &rec, &why), 0);
    CHECK(rec.hash == NULL);
    freeReplyObject(e);
    expect_bad(entry("1-1", "v 1 s 1 h abc"), "field list is missing or truncated", "a hash and no frame");
    expect_bad(entry("1-1", "v 1 s 1 h abc h abc f0 x"), "frames out of order", "two hashes");
}
