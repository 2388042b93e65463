/* unit_reqrec.c -- the return path's records (proto/reqrec.c): XADD argv of
 * requests and replies, and decoding of well-formed and malformed field
 * lists as saltrelay-up (requests) and saltrelay-down (replies) get them from
 * a stream entry. Payloads are Salt frames, arbitrary bytes: not UTF-8, NUL,
 * empty; they are handed over byte for byte, never checked as text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reqrec.h"
#include "unit.h"

/* A payload no text codec would pass: invalid UTF-8, NUL, 0xff. */
static const char p_bin[] = "\xff\xfe\x00\xc3\x28\x80";

#define FIELDS_MAX 24

/* A field list, from space-separated tokens; see fields(). */
struct fields {
    char *copy;
    const char *fv[FIELDS_MAX];
    size_t fl[FIELDS_MAX];
    size_t n;
};

/* Tokens standing for what a space-separated spec cannot hold. */
static const struct {
    const char *token, *bytes;
    size_t len;
} specials[] = {{"<empty>", "", 0}, {"<nul>", "1\0", 2}, {"<space>", "a b", 3}, {"<bin>", p_bin, sizeof p_bin - 1}};

static struct fields fields(const char *spec)
{
    struct fields f = {.copy = strdup(spec)};
    char *save = NULL;
    for (char *t = strtok_r(f.copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (f.n == FIELDS_MAX)
            unit_fail(__FILE__, __LINE__, "more than %d fields in '%s'", FIELDS_MAX, spec);
        f.fv[f.n] = t;
        f.fl[f.n] = strlen(t);
        for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
            if (strcmp(t, specials[i].token) == 0) {
                f.fv[f.n] = specials[i].bytes;
                f.fl[f.n] = specials[i].len;
            }
        f.n++;
    }
    return f;
}

/* A string of N times C (N < 128), for the length limits. */
static const char *repeat(char c, size_t n)
{
    static char buf[2][128];
    static int turn;
    char *b = buf[turn ^= 1];
    memset(b, c, n);
    b[n] = '\0';
    return b;
}

/* The field list of an XADD argv: whatever follows the ID "*". */
static struct fields fields_of_argv(int argc, const char **argv, const size_t *argvlen)
{
    struct fields f = {0};
    int id = 2;
    while (id < argc && !(argvlen[id] == 1 && argv[id][0] == '*'))
        id++;
    for (int i = id + 1; i < argc; i++) {
        f.fv[f.n] = argv[i];
        f.fl[f.n++] = argvlen[i];
    }
    return f;
}

/* ---- encoding */

UNIT_TEST(req_xadd_argv_with_minid)
{
    struct reqrec rec = {.dc = "dc1", .dclen = 3, .rid = "00ff00ff00ff00ff-7-3", .ridlen = 20,
                         .payload = "salt-frame", .len = 10, .dl_ms = 1700000030000LL, .cmd = REQREC_REQ};
    const char *argv[REQREC_ARGC_MAX];
    size_t argvlen[REQREC_ARGC_MAX];
    struct reqrec_scratch s;
    int argc = reqrec_xadd_argv(&rec, "saltrelay:{c}:req", 1699999910000LL, &s, argv, argvlen);
    static const char *const want[] = {"XADD", "saltrelay:{c}:req", "MINID", "~", "1699999910000", "*",
                                       "v", "1", "dc", "dc1", "rid", "00ff00ff00ff00ff-7-3", "dl",
                                       "1700000030000", "c", "req", "p", "salt-frame", NULL};
    CHECK_INT(argc, 18);
    CHECK_ARGV(argv, argvlen, argc, want);
}

UNIT_TEST(req_xadd_argv_auth_without_minid_binary_payload)
{
    struct reqrec rec = {.dc = "a-b_c.d", .dclen = 7, .rid = "r", .ridlen = 1, .payload = p_bin,
                         .len = sizeof p_bin - 1, .dl_ms = 0, .cmd = REQREC_AUTH};
    const char *argv[REQREC_ARGC_MAX];
    size_t argvlen[REQREC_ARGC_MAX];
    struct reqrec_scratch s;
    int argc = reqrec_xadd_argv(&rec, "k", 0, &s, argv, argvlen);
    static const char *const want[] = {"XADD", "k", "*", "v", "1", "dc", "a-b_c.d", "rid", "r", "dl", "0",
                                       "c", "auth", "p", NULL};
    CHECK_INT(argc, 15);
    CHECK_ARGV(argv, argvlen, argc - 1, want);
    CHECK(argv[14] == p_bin); /* the payload is pointed to, not copied */
    CHECK_MEM(argv[14], argvlen[14], p_bin, sizeof p_bin - 1);
}

UNIT_TEST(rep_xadd_argv_ok)
{
    struct reprec rec = {.rid = "00ff00ff00ff00ff-7-3", .ridlen = 20, .payload = "answer", .len = 6,
                         .st = ST_OK};
    const char *argv[REQREC_ARGC_MAX];
    size_t argvlen[REQREC_ARGC_MAX];
    struct reqrec_scratch s;
    int argc = reprec_xadd_argv(&rec, "saltrelay:{c}:rep:dc1", 5, &s, argv, argvlen);
    static const char *const want[] = {"XADD", "saltrelay:{c}:rep:dc1", "MINID", "~", "5", "*", "v", "1",
                                       "rid", "00ff00ff00ff00ff-7-3", "st", "ok", "p", "answer", NULL};
    CHECK_INT(argc, 14);
    CHECK_ARGV(argv, argvlen, argc, want);
}

UNIT_TEST(rep_xadd_argv_failures_have_no_payload)
{
    static const char *const names[] = {"timeout", "oversize", "expired", "mom_unreachable"};
    for (int st = ST_TIMEOUT; st < ST__COUNT; st++) {
        /* a payload left in the record must not be written */
        struct reprec rec = {.rid = "r-1", .ridlen = 3, .payload = "x", .len = 1, .st = (enum reprec_status)st};
        const char *argv[REQREC_ARGC_MAX];
        size_t argvlen[REQREC_ARGC_MAX];
        struct reqrec_scratch s;
        int argc = reprec_xadd_argv(&rec, "k", 0, &s, argv, argvlen);
        const char *const want[] = {"XADD", "k", "*", "v", "1", "rid", "r-1", "st", names[st - 1], NULL};
        CHECK_INT(argc, 9);
        CHECK_ARGV(argv, argvlen, argc, want);
    }
}

UNIT_TEST(status_names)
{
    CHECK_STR(reprec_status_name(ST_OK), "ok");
    CHECK_STR(reprec_status_name(ST_TIMEOUT), "timeout");
    CHECK_STR(reprec_status_name(ST_OVERSIZE), "oversize");
    CHECK_STR(reprec_status_name(ST_EXPIRED), "expired");
    CHECK_STR(reprec_status_name(ST_MOM_UNREACHABLE), "mom_unreachable");
    CHECK_STR(reprec_status_name(ST__COUNT), "?");
}

/* ---- round trips: XADD argv -> the fields Redis returns -> decoded record */

UNIT_TEST(req_round_trip_binary_and_empty_payloads)
{
    static char all_bytes[256];
    for (int i = 0; i < 256; i++)
        all_bytes[i] = (char)i;
    const char *payload[] = {p_bin, "", all_bytes};
    size_t len[] = {sizeof p_bin - 1, 0, sizeof all_bytes};
    for (size_t i = 0; i < 3; i++)
        for (int cmd = REQREC_REQ; cmd <= REQREC_AUTH; cmd++) {
            struct reqrec in = {.dc = repeat('d', 64), .dclen = 64, .rid = repeat('7', 64), .ridlen = 64,
                                .payload = payload[i], .len = len[i], .dl_ms = 4611686018427387903LL,
                                .cmd = (enum reqrec_cmd)cmd}, out;
            const char *argv[REQREC_ARGC_MAX], *why = NULL;
            size_t argvlen[REQREC_ARGC_MAX];
            struct reqrec_scratch s;
            int argc = reqrec_xadd_argv(&in, "k", 1000, &s, argv, argvlen);
            struct fields f = fields_of_argv(argc, argv, argvlen);
            if (reqrec_decode(f.fv, f.fl, f.n, &out, &why) != 0)
                unit_fail(__FILE__, __LINE__, "payload %zu, cmd %d: refused: %s", i, cmd, why);
            CHECK_MEM(out.dc, out.dclen, in.dc, in.dclen);
            CHECK_MEM(out.rid, out.ridlen, in.rid, in.ridlen);
            CHECK_MEM(out.payload, out.len, in.payload, in.len);
            CHECK(out.payload == in.payload); /* points into the entry */
            CHECK_INT(out.dl_ms, in.dl_ms);
            CHECK_INT(out.cmd, in.cmd);
        }
}

UNIT_TEST(rep_round_trip_every_status)
{
    for (int st = ST_OK; st < ST__COUNT; st++)
        for (size_t i = 0; i < 2; i++) {
            struct reprec in = {.rid = "0123456789abcdef-18446744073709551615-255", .ridlen = 41,
                                .payload = i ? "" : p_bin, .len = i ? 0 : sizeof p_bin - 1,
                                .st = (enum reprec_status)st}, out;
            const char *argv[REQREC_ARGC_MAX], *why = NULL;
            size_t argvlen[REQREC_ARGC_MAX];
            struct reqrec_scratch s;
            int argc = reprec_xadd_argv(&in, "k", 0, &s, argv, argvlen);
            struct fields f = fields_of_argv(argc, argv, argvlen);
            if (reprec_decode(f.fv, f.fl, f.n, &out, &why) != 0)
                unit_fail(__FILE__, __LINE__, "status %s: refused: %s", reprec_status_name(in.st), why);
            CHECK_MEM(out.rid, out.ridlen, in.rid, in.ridlen);
            CHECK_INT(out.st, in.st);
            if (st == ST_OK)
                CHECK_MEM(out.payload, out.len, in.payload, in.len);
            else
                CHECK(out.payload == NULL && out.len == 0);
        }
}

/* ---- decoding */

UNIT_TEST(req_decode_well_formed)
{
    struct fields f = fields("v 1 dc Dc-9_x.y rid 0af-12-3 dl 1700000030000 c auth p <bin>");
    struct reqrec rec;
    const char *why = NULL;
    CHECK_INT(reqrec_decode(f.fv, f.fl, f.n, &rec, &why), 0);
    CHECK_MEM(rec.dc, rec.dclen, "Dc-9_x.y", 8);
    CHECK_MEM(rec.rid, rec.ridlen, "0af-12-3", 8);
    CHECK_INT(rec.dl_ms, 1700000030000LL);
    CHECK_INT(rec.cmd, REQREC_AUTH);
    CHECK(rec.payload == p_bin);
    CHECK_INT(rec.len, sizeof p_bin - 1);
    free(f.copy);
}

UNIT_TEST(req_decode_limits_and_odd_payloads)
{
    char spec[512];
    static const char *const payloads[] = {"<empty>", "<bin>", "<nul>", "\xc3\x28", "\xed\xa0\x80", "\xff"};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        snprintf(spec, sizeof spec, "v 1 dc %s rid %s dl %s c req p %s", repeat('z', 64), repeat('-', 64),
                 i % 2 ? "0" : "4611686018427387903", payloads[i]);
        struct fields f = fields(spec);
        struct reqrec rec;
        const char *why = NULL;
        if (reqrec_decode(f.fv, f.fl, f.n, &rec, &why) != 0)
            unit_fail(__FILE__, __LINE__, "payload %s: refused: %s", payloads[i], why);
        CHECK_INT(rec.dclen, 64);
        CHECK_INT(rec.ridlen, 64);
        CHECK_INT(rec.cmd, REQREC_REQ);
        CHECK_INT(rec.dl_ms, i % 2 ? 0 : 4611686018427387903LL);
        CHECK_MEM(rec.payload, rec.len, f.fv[11], f.fl[11]);
        free(f.copy);
    }
}

UNIT_TEST(rep_decode_well_formed)
{
    struct fields f = fields("v 1 rid 0af-12-3 st ok p <bin>");
    struct reprec rec;
    const char *why = NULL;
    CHECK_INT(reprec_decode(f.fv, f.fl, f.n, &rec, &why), 0);
    CHECK_MEM(rec.rid, rec.ridlen, "0af-12-3", 8);
    CHECK_INT(rec.st, ST_OK);
    CHECK(rec.payload == p_bin);
    CHECK_INT(rec.len, sizeof p_bin - 1);
    free(f.copy);
    static const char *const ok[] = {"v 1 rid r st ok p <empty>", "v 1 rid r st ok p \xc3\x28",
                                     "v 1 rid r st timeout", "v 1 rid r st oversize", "v 1 rid r st expired",
                                     "v 1 rid r st mom_unreachable"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        f = fields(ok[i]);
        if (reprec_decode(f.fv, f.fl, f.n, &rec, &why) != 0)
            unit_fail(__FILE__, __LINE__, "'%s' refused: %s", ok[i], why);
        free(f.copy);
    }
}

/* SPEC decoded as a request (REQ) or a reply must be refused with WANT and
 * leave the record empty (no pointer into the refused entry). */
static void expect_bad(int req, const char *spec, const char *want, const char *label)
{
    struct fields f = fields(spec);
    struct reqrec q;
    struct reprec r;
    const char *why = NULL;
    int rc = req ? reqrec_decode(f.fv, f.fl, f.n, &q, &why) : reprec_decode(f.fv, f.fl, f.n, &r, &why);
    CHECK_REFUSED(rc, why, want, label);
    if (req)
        CHECK(!q.dc && !q.rid && !q.payload && !q.dclen && !q.ridlen && !q.len && !q.dl_ms);
    else
        CHECK(!r.rid && !r.payload && !r.ridlen && !r.len);
    free(f.copy);
}

#define REQ_BAD(spec, want, label) expect_bad(1, spec, want, label)
#define REP_BAD(spec, want, label) expect_bad(0, spec, want, label)

UNIT_TEST(req_wrong_fields)
{
    const char *want = "not the fields v dc rid dl c p";
    REQ_BAD("", want, "no fields");
    REQ_BAD("v", want, "a name alone");
    REQ_BAD("v 1 dc d rid r dl 1 c req", want, "p missing");
    REQ_BAD("v 1 dc d rid r dl 1 c req p", want, "p without value");
    REQ_BAD("v 1 dc d rid r dl 1 p x", want, "c missing");
    REQ_BAD("v 1 rid r dl 1 c req p x", want, "dc missing");
    REQ_BAD("dc d rid r dl 1 c req p x", want, "v missing");
    REQ_BAD("v 1 dc d rid r dl 1 c req p x q y", want, "extra field at the end");
    REQ_BAD("v 1 x y dc d rid r dl 1 c req p x", want, "extra field in between");
    REQ_BAD("v 1 dc d rid r dl 1 c req p x p x", want, "p twice");
    REQ_BAD("v 1 rid r dc d dl 1 c req p x", want, "rid before dc");
    REQ_BAD("v 1 dc d rid r c req dl 1 p x", want, "c before dl");
    REQ_BAD("p x v 1 dc d rid r dl 1 c req", want, "p first");
    REQ_BAD("V 1 dc d rid r dl 1 c req p x", want, "capital V");
    REQ_BAD("v 1 DC d rid r dl 1 c req p x", want, "capital DC");
    REQ_BAD("v 1 dc d rid r dl 1 cmd req p x", want, "c spelled cmd");
    REQ_BAD("v 1 dc d rid r dl 1 c req <empty> x", want, "empty name for p");
    REQ_BAD("v 1 dc d rid r dl 1 c req <nul> x", want, "NUL name");
    REQ_BAD("v 1 rid r st ok p x", want, "a reply");
}

UNIT_TEST(req_unknown_version)
{
    const char *want = "unknown record version";
    REQ_BAD("v 2 dc d rid r dl 1 c req p x", want, "version 2");
    REQ_BAD("v 0 dc d rid r dl 1 c req p x", want, "version 0");
    REQ_BAD("v <empty> dc d rid r dl 1 c req p x", want, "empty");
    REQ_BAD("v 01 dc d rid r dl 1 c req p x", want, "leading zero");
    REQ_BAD("v 1.0 dc d rid r dl 1 c req p x", want, "1.0");
    REQ_BAD("v <nul> dc d rid r dl 1 c req p x", want, "1 and a NUL");
}

UNIT_TEST(req_bad_dc)
{
    const char *want = "bad dc";
    char spec[256];
    snprintf(spec, sizeof spec, "v 1 dc %s rid r dl 1 c req p x", repeat('d', 65));
    REQ_BAD(spec, want, "65 characters");
    REQ_BAD("v 1 dc <empty> rid r dl 1 c req p x", want, "empty");
    REQ_BAD("v 1 dc dc/1 rid r dl 1 c req p x", want, "slash");
    REQ_BAD("v 1 dc dc:1 rid r dl 1 c req p x", want, "colon (key separator)");
    REQ_BAD("v 1 dc {dc} rid r dl 1 c req p x", want, "braces (cluster hash tag)");
    REQ_BAD("v 1 dc <space> rid r dl 1 c req p x", want, "space");
    REQ_BAD("v 1 dc <nul> rid r dl 1 c req p x", want, "NUL");
    REQ_BAD("v 1 dc d\xc3\xa9 rid r dl 1 c req p x", want, "UTF-8 letter");
    REQ_BAD("v 1 dc \xff rid r dl 1 c req p x", want, "0xff");
}

UNIT_TEST(req_bad_rid)
{
    const char *want = "bad rid";
    char spec[256];
    snprintf(spec, sizeof spec, "v 1 dc d rid %s dl 1 c req p x", repeat('7', 65));
    REQ_BAD(spec, want, "65 characters");
    REQ_BAD("v 1 dc d rid <empty> dl 1 c req p x", want, "empty");
    REQ_BAD("v 1 dc d rid a_b dl 1 c req p x", want, "underscore");
    REQ_BAD("v 1 dc d rid a.b dl 1 c req p x", want, "dot");
    REQ_BAD("v 1 dc d rid <space> dl 1 c req p x", want, "space");
    REQ_BAD("v 1 dc d rid <nul> dl 1 c req p x", want, "NUL");
    REQ_BAD("v 1 dc d rid \xc3\xa9 dl 1 c req p x", want, "UTF-8 letter");
}

UNIT_TEST(req_bad_deadline)
{
    const char *want = "bad deadline";
    REQ_BAD("v 1 dc d rid r dl <empty> c req p x", want, "empty");
    REQ_BAD("v 1 dc d rid r dl -1 c req p x", want, "negative");
    REQ_BAD("v 1 dc d rid r dl +1 c req p x", want, "plus sign");
    REQ_BAD("v 1 dc d rid r dl 1.5 c req p x", want, "fraction");
    REQ_BAD("v 1 dc d rid r dl 1e3 c req p x", want, "exponent");
    REQ_BAD("v 1 dc d rid r dl 0x10 c req p x", want, "hex");
    REQ_BAD("v 1 dc d rid r dl 1s c req p x", want, "unit");
    REQ_BAD("v 1 dc d rid r dl <nul> c req p x", want, "trailing NUL");
    REQ_BAD("v 1 dc d rid r dl 4611686018427387904 c req p x", want, "over INT64_MAX / 2");
    REQ_BAD("v 1 dc d rid r dl 18446744073709551616 c req p x", want, "over 64 bits");
    REQ_BAD("v 1 dc d rid r dl 000000000000000000001 c req p x", want, "21 digits");
}

UNIT_TEST(req_bad_class)
{
    const char *want = "bad request class";
    REQ_BAD("v 1 dc d rid r dl 1 c <empty> p x", want, "empty");
    REQ_BAD("v 1 dc d rid r dl 1 c AUTH p x", want, "AUTH");
    REQ_BAD("v 1 dc d rid r dl 1 c Req p x", want, "Req");
    REQ_BAD("v 1 dc d rid r dl 1 c request p x", want, "request");
    REQ_BAD("v 1 dc d rid r dl 1 c au p x", want, "prefix of auth");
    REQ_BAD("v 1 dc d rid r dl 1 c <nul> p x", want, "NUL");
}

UNIT_TEST(rep_wrong_fields)
{
    const char *want = "not the fields v rid st [p]";
    REP_BAD("", want, "no fields");
    REP_BAD("v 1 rid r", want, "st missing");
    REP_BAD("v 1 rid r st", want, "st without value");
    REP_BAD("v 1 st ok p x", want, "rid missing");
    REP_BAD("rid r st ok p x", want, "v missing");
    REP_BAD("v 1 rid r st ok p", want, "p without value");
    REP_BAD("v 1 rid r st ok p x q y", want, "extra field after p");
    REP_BAD("v 1 rid r st ok p x p x", want, "p twice");
    REP_BAD("v 1 rid r x y st ok", want, "extra field in between");
    REP_BAD("v 1 st ok rid r", want, "st before rid");
    REP_BAD("rid r v 1 st ok p x", want, "rid first");
    REP_BAD("v 1 RID r st ok p x", want, "capital RID");
    REP_BAD("v 1 rid r st ok payload x", want, "p spelled payload");
    /* these two were accepted once: only a count of 8 was required */
    REP_BAD("v 1 rid r st timeout q x", want, "other field than p after a failure");
    REP_BAD("v 1 rid r st ok q x", want, "other field than p after ok");
    REP_BAD("v 1 rid r st timeout <empty> <empty>", want, "empty field after a failure");
    REP_BAD("v 1 dc d rid r dl 1 c req p x", want, "a request");
}

UNIT_TEST(rep_unknown_version)
{
    const char *want = "unknown record version";
    REP_BAD("v 2 rid r st ok p x", want, "version 2");
    REP_BAD("v <empty> rid r st timeout", want, "empty");
    REP_BAD("v <nul> rid r st timeout", want, "1 and a NUL");
}

UNIT_TEST(rep_bad_rid)
{
    const char *want = "bad rid";
    char spec[256];
    snprintf(spec, sizeof spec, "v 1 rid %s st ok p x", repeat('a', 65));
    REP_BAD(spec, want, "65 characters");
    REP_BAD("v 1 rid <empty> st ok p x", want, "empty");
    REP_BAD("v 1 rid a_b st timeout", want, "underscore");
    REP_BAD("v 1 rid <nul> st ok p x", want, "NUL");
    REP_BAD("v 1 rid \xff st ok p x", want, "0xff");
}

UNIT_TEST(rep_unknown_status)
{
    const char *want = "unknown status";
    REP_BAD("v 1 rid r st <empty>", want, "empty");
    REP_BAD("v 1 rid r st OK p x", want, "OK");
    REP_BAD("v 1 rid r st Timeout", want, "Timeout");
    REP_BAD("v 1 rid r st mom-unreachable", want, "dash for underscore");
    REP_BAD("v 1 rid r st error", want, "error");
    REP_BAD("v 1 rid r st ? p x", want, "the name of no status");
    REP_BAD("v 1 rid r st o p x", want, "prefix of ok");
    REP_BAD("v 1 rid r st <space> p x", want, "space");
}

UNIT_TEST(rep_payload_exactly_with_ok)
{
    const char *want = "payload present without st ok, or missing with it";
    REP_BAD("v 1 rid r st ok", want, "ok without p");
    REP_BAD("v 1 rid r st timeout p x", want, "timeout with p");
    REP_BAD("v 1 rid r st oversize p x", want, "oversize with p");
    REP_BAD("v 1 rid r st expired p <empty>", want, "expired with an empty p");
    REP_BAD("v 1 rid r st mom_unreachable p <bin>", want, "mom_unreachable with p");
}
