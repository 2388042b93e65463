/* unit_envelope.c -- envelope_peek (proto/envelope.c) on every request of
 * the salt-wire captures (clear _auth: minion id and is_auth; aes v3: the
 * top-level id) and on malformed or hostile frames. */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "envelope.h"
#include "mpwalk.h"
#include "unit.h"
#include "wire.h"

struct tally {
    const char *capture;
    long reqs, auths, tokens;
};

static void check_request(const struct wire_record *rec, void *arg)
{
    struct tally *t = arg;
    struct salt_envelope env;
    const char *why = NULL;
    const char *want_id = strcmp(rec->peer, "flat") == 0 ? "cap-flat-1" : "cap-syndic-1";
    CHECK_INT(rec->nframes, 1);
    if (envelope_peek(rec->frame[0], rec->len[0], &env, &why) != 0)
        unit_fail(__FILE__, __LINE__, "%s: request %ld refused: %s", t->capture, t->reqs, why);
    CHECK_INT(env.version, 3);
    CHECK_STR(env.id, want_id);
    if (env.enc == ENC_CLEAR) {
        CHECK(env.is_auth);
        t->auths++;
        t->tokens += env.has_token;
    } else {
        CHECK_INT(env.enc, ENC_AES);
        CHECK(!env.is_auth && !env.has_token);
    }
    t->reqs++;
}

UNIT_TEST(every_captured_request)
{
    struct tally all = {0};
    for (const char *const *c = wire_captures; *c; c++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", unit_wire_dir(), *c);
        struct tally t = {.capture = *c};
        if (wire_each(path, "req", check_request, &t) < 0)
            unit_fail(__FILE__, __LINE__, "cannot read %s (set SALTRELAY_WIRE)", path);
        all.reqs += t.reqs;
        all.auths += t.auths;
        all.tokens += t.tokens;
    }
    CHECK_INT(all.reqs, 58);  /* the salt-wire README: 58 requests */
    CHECK_INT(all.auths, 6);  /* s1, s4 first auths; s3a, s7 re-auths of flat and syndic */
    CHECK_INT(all.tokens, 4); /* re-auths carry a token */
}

/* A msgpack document built with msgpack-c; text of BUF is valid until freed. */
struct doc {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

static void doc_init(struct doc *d)
{
    msgpack_sbuffer_init(&d->sb);
    msgpack_packer_init(&d->pk, &d->sb, msgpack_sbuffer_write);
}

static void put_str(struct doc *d, const char *s, size_t n)
{
    msgpack_pack_str(&d->pk, n);
    msgpack_pack_str_body(&d->pk, s, n);
}

static void put_cstr(struct doc *d, const char *s) { put_str(d, s, strlen(s)); }

/* {enc: ENC, load: {cmd: CMD, id: LOAD_ID}, id: TOP_ID, version: 3}; NULLs are left out. */
static void request(struct doc *d, const char *enc, const char *cmd, const char *load_id, const char *top_id)
{
    doc_init(d);
    msgpack_pack_map(&d->pk, 3 + (top_id != NULL));
    put_cstr(d, "enc");
    put_cstr(d, enc);
    put_cstr(d, "load");
    msgpack_pack_map(&d->pk, (cmd != NULL) + (load_id != NULL));
    if (cmd) {
        put_cstr(d, "cmd");
        put_cstr(d, cmd);
    }
    if (load_id) {
        put_cstr(d, "id");
        put_cstr(d, load_id);
    }
    if (top_id) {
        put_cstr(d, "id");
        put_cstr(d, top_id);
    }
    put_cstr(d, "version");
    msgpack_pack_uint32(&d->pk, 3);
}

static struct salt_envelope peek_ok(const struct doc *d)
{
    struct salt_envelope env;
    const char *why = NULL;
    if (envelope_peek(d->sb.data, d->sb.size, &env, &why) != 0)
        unit_fail(__FILE__, __LINE__, "refused: %s", why);
    return env;
}

UNIT_TEST(clear_auth_and_aes)
{
    struct doc d;
    request(&d, "clear", "_auth", "m1", NULL);
    struct salt_envelope env = peek_ok(&d);
    CHECK(env.enc == ENC_CLEAR && env.is_auth && !env.has_token);
    CHECK_STR(env.id, "m1");
    msgpack_sbuffer_destroy(&d.sb);

    request(&d, "aes", "_auth", NULL, "m2"); /* cmd of an aes load is not believed */
    env = peek_ok(&d);
    CHECK(env.enc == ENC_AES && !env.is_auth);
    CHECK_STR(env.id, "m2");
    msgpack_sbuffer_destroy(&d.sb);

    request(&d, "clear", "_pillar", "m3", "other"); /* the load's id wins */
    env = peek_ok(&d);
    CHECK(!env.is_auth);
    CHECK_STR(env.id, "m3");
    msgpack_sbuffer_destroy(&d.sb);
}

UNIT_TEST(ids_that_cannot_be_minions)
{
    static const char *const bad[] = {"", "a/b", "../x", "tab\there", "nl\n", "del\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct doc d;
        request(&d, "aes", NULL, NULL, bad[i]);
        struct salt_envelope env = peek_ok(&d);
        if (env.id[0])
            unit_fail(__FILE__, __LINE__, "id %zu accepted as '%s'", i, env.id);
        msgpack_sbuffer_destroy(&d.sb);
    }
    char longid[ENVELOPE_ID_MAX + 1];
    memset(longid, 'a', sizeof longid - 1);
    longid[ENVELOPE_ID_MAX] = '\0';
    struct doc d;
    request(&d, "aes", NULL, NULL, longid);
    CHECK_STR(peek_ok(&d).id, "");
    msgpack_sbuffer_destroy(&d.sb);
    longid[ENVELOPE_ID_MAX - 1] = '\0'; /* the longest kept */
    request(&d, "aes", NULL, NULL, longid);
    CHECK_STR(peek_ok(&d).id, longid);
    msgpack_sbuffer_destroy(&d.sb);
}

UNIT_TEST(non_utf8_id_kept_as_bytes)
{
    struct doc d;
    request(&d, "aes", NULL, NULL, "caf\xc3\xa9-\xff\xfe");
    CHECK_STR(peek_ok(&d).id, "caf\xc3\xa9-\xff\xfe");
    msgpack_sbuffer_destroy(&d.sb);
}

static void expect_refused(const char *buf, size_t len, const char *want, const char *label)
{
    struct salt_envelope env;
    const char *why = NULL;
    int rc = envelope_peek(buf, len, &env, &why); /* before WHY is read */
    CHECK_REFUSED(rc, why, want, label);
    CHECK_STR(env.id, "");
}

#define REFUSED(lit, want, label) expect_refused(lit, sizeof lit - 1, want, label)

UNIT_TEST(malformed_frames)
{
    REFUSED("", "not a msgpack document", "empty");
    REFUSED("\xc1", "not a msgpack document", "reserved byte");
    REFUSED("\x82\xa3" "enc\xa5" "clear\xa4" "load", "not a msgpack document", "truncated");
    REFUSED("\xdf\xff\xff\xff\xff", "not a msgpack document", "map32 header only");
    REFUSED("\x92\x01\x02", "not a msgpack map", "an array");
    REFUSED("\xa4" "load", "not a msgpack map", "a str");
    REFUSED("\x81\xa3" "enc\xa5" "clear", "no 'load' key", "no load");
    REFUSED("\x80", "no 'load' key", "empty map");
    /* containers claiming more items than bytes follow: msgpack-c would
     * reserve memory for them all (the map32 one asks for 256 GB) */
    REFUSED("\xdd\x00\x10\x00\x00\x01\x02", "not a msgpack document", "array32 of 1M with 2 items");
    REFUSED("\x81\xa4" "load\xde\x00\x03\x01\x01\x01\x01", "not a msgpack document", "map16 of 3 with 2 items");
}

/* Every msgpack type, as msgpack-c packs it. */
static void pack_all_types(struct doc *d)
{
    static const char bytes[300] = {0};
    doc_init(d);
    msgpack_pack_array(&d->pk, 20);
    msgpack_pack_nil(&d->pk);
    msgpack_pack_true(&d->pk);
    msgpack_pack_int8(&d->pk, -100);
    msgpack_pack_int16(&d->pk, -1000);
    msgpack_pack_int32(&d->pk, -100000);
    msgpack_pack_int64(&d->pk, -10000000000LL);
    msgpack_pack_uint8(&d->pk, 200);
    msgpack_pack_uint16(&d->pk, 60000);
    msgpack_pack_uint32(&d->pk, 4000000000U);
    msgpack_pack_uint64(&d->pk, 10000000000ULL);
    msgpack_pack_float(&d->pk, 1.5f);
    msgpack_pack_double(&d->pk, 2.5);
    put_str(d, bytes, 40);  /* str8 */
    put_str(d, bytes, 300); /* str16 */
    msgpack_pack_bin(&d->pk, 3);
    msgpack_pack_bin_body(&d->pk, bytes, 3);
    msgpack_pack_ext(&d->pk, 4, 7); /* fixext4 */
    msgpack_pack_ext_body(&d->pk, bytes, 4);
    msgpack_pack_ext(&d->pk, 5, 7); /* ext8 */
    msgpack_pack_ext_body(&d->pk, bytes, 5);
    msgpack_pack_array(&d->pk, 17); /* array16 */
    for (int i = 0; i < 17; i++)
        msgpack_pack_int(&d->pk, i - 8);
    msgpack_pack_map(&d->pk, 0);
    msgpack_pack_map(&d->pk, 16); /* map16 */
    for (int i = 0; i < 16; i++) {
        msgpack_pack_int(&d->pk, i);
        msgpack_pack_nil(&d->pk);
    }
}

UNIT_TEST(plausible_every_type_and_truncation)
{
    struct doc d;
    pack_all_types(&d);
    CHECK(mpwalk_plausible(d.sb.data, d.sb.size));
    for (size_t n = 0; n < d.sb.size; n++)
        if (mpwalk_plausible(d.sb.data, n))
            unit_fail(__FILE__, __LINE__, "a document cut at %zu of %zu bytes passed", n, d.sb.size);
    msgpack_sbuffer_destroy(&d.sb);
    CHECK(!mpwalk_plausible("\xc1", 1));
    CHECK(!mpwalk_plausible("\xdf\xff\xff\xff\xff", 5));
    CHECK(mpwalk_plausible("\x90", 1) && mpwalk_plausible("\x01trailing", 9));
}

UNIT_TEST(odd_but_accepted)
{
    struct salt_envelope env;
    const char *why;
    /* load not a map, version absent, enc unknown, keys as bin */
    static const char a[] = "\x82\xc4\x03" "enc\xa3" "rsa\xc4\x04" "load\x01";
    CHECK_INT(envelope_peek(a, sizeof a - 1, &env, &why), 0);
    CHECK(env.enc == ENC_OTHER && env.version == -1 && !env.is_auth);
    static const char b[] = "\x83\xa3" "enc\xa5" "clear\xa4" "load\xc0\xa7" "version\xcd\x13\x88";
    CHECK_INT(envelope_peek(b, sizeof b - 1, &env, &why), 0);
    CHECK(env.enc == ENC_CLEAR && env.version == -1 && !env.is_auth); /* version 5000 ignored */
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Issue 10 item 7: {"load": [nil x 10M]} (10 MB) is peeked without
 * unpacking it: msgpack-c made a 24-byte object per nil (240 MB). */
UNIT_TEST(huge_container_costs_no_memory)
{
    size_t n = 10u * 1000 * 1000, len = 1 + 5 + 5 + n;
    char *buf = malloc(len);
    memcpy(buf, "\x81\xa4load\xdd", 7);
    buf[7] = (char)(n >> 24), buf[8] = (char)(n >> 16), buf[9] = (char)(n >> 8), buf[10] = (char)n;
    memset(buf + 11, 0xc0, n);
    long before = maxrss_kb();
    struct salt_envelope env;
    const char *why;
    CHECK_INT(envelope_peek(buf, len, &env, &why), 0);
    CHECK(maxrss_kb() - before < 32 * 1024);
    buf[1] = (char)0x82; /* a second pair that is not there */
    CHECK_INT(envelope_peek(buf, len, &env, &why), -1);
    CHECK(maxrss_kb() - before < 32 * 1024);
    free(buf);
}

/* Values the walk reads: signed integers >= 0 count as versions (as
 * msgpack-c's POSITIVE_INTEGER did), negative ones not; ids and cmd as bin. */
UNIT_TEST(walk_reads_values_like_unpack)
{
    struct salt_envelope env;
    const char *why;
    static const char a[] = "\x83\xa3" "enc\xa5" "clear\xa7" "version\xd0\x03\xa4" "load"
                            "\x83\xa3" "cmd\xc4\x05" "_auth\xa2" "id\xc4\x02" "m1\xa5" "token\x90";
    CHECK_INT(envelope_peek(a, sizeof a - 1, &env, &why), 0);
    CHECK(env.enc == ENC_CLEAR && env.version == 3 && env.is_auth && env.has_token);
    CHECK_STR(env.id, "m1");
    static const char b[] = "\x83\xa7" "version\xd0\xfd\xa4" "load\xc0\xa2" "id\x92\xa1x\xa1y";
    CHECK_INT(envelope_peek(b, sizeof b - 1, &env, &why), 0);
    CHECK(env.version == -1);
    CHECK_STR(env.id, "");
}

static void count_auth_request(const struct wire_record *rec, void *arg)
{
    struct salt_envelope env;
    const char *why;
    if (envelope_peek(rec->frame[0], rec->len[0], &env, &why) == 0 && env.is_auth)
        ++*(long *)arg;
}

static void count_accepted_reply(const struct wire_record *rec, void *arg)
{
    *(long *)arg += envelope_auth_accepted(rec->frame[0], rec->len[0]);
}

/* Issue 10 item 8: every captured _auth was accepted, and only the replies
 * to them say so; a refusal or a made-up reply does not. */
UNIT_TEST(auth_accepted_replies)
{
    long auths = 0, accepted = 0;
    for (const char *const *c = wire_captures; *c; c++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", unit_wire_dir(), *c);
        wire_each(path, "req", count_auth_request, &auths);
        wire_each(path, "rep", count_accepted_reply, &accepted);
    }
    CHECK(auths > 0);
    CHECK_INT(accepted, auths);
    static const char refused[] = "\x82\xa3" "enc\xa5" "clear\xa4" "load\x81\xa3" "ret\xc2";
    static const char full[] = "\x82\xa3" "enc\xa5" "clear\xa4" "load\x81\xa3" "ret\xa4" "full";
    static const char older[] = "\x82\xa3" "enc\xa3" "pub\xa3" "aes\xa1x"; /* the reply is the load */
    static const char inner[] = "\x81\xa4" "load\xa6\x81\xa3" "aes\xc0"; /* load: str holding a map */
    CHECK(!envelope_auth_accepted(refused, sizeof refused - 1));
    CHECK(!envelope_auth_accepted(full, sizeof full - 1));
    CHECK(!envelope_auth_accepted("\xa3" "aes", 4));
    CHECK(!envelope_auth_accepted(inner, sizeof inner - 2)); /* truncated */
    CHECK(envelope_auth_accepted(older, sizeof older - 1));
    CHECK(envelope_auth_accepted(inner, sizeof inner - 1));
}
