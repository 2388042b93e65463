/* reqrec.c -- encode and decode return-path records; see reqrec.h.
 * Decoding trusts nothing: field names, order, count and every value's
 * syntax are checked before a pointer is handed out. */
#include "reqrec.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "streamid.h"

static const char *const status_name[ST__COUNT] = {"ok", "timeout", "oversize", "expired",
                                                    "mom_unreachable"};

const char *reprec_status_name(enum reprec_status st)
{
    return st < ST__COUNT ? status_name[st] : "?";
}

struct argbuf {
    const char **argv;
    size_t *argvlen;
    size_t n;
};

static void arg(struct argbuf *a, const char *s, size_t len)
{
    a->argv[a->n] = s;
    a->argvlen[a->n] = len;
    a->n++;
}

static void args(struct argbuf *a, const char *s) { arg(a, s, strlen(s)); }

/* "XADD KEY [MINID ~ N] * v 1" */
static void xadd_head(struct argbuf *a, const char *key, long long minid_ms, struct reqrec_scratch *s)
{
    args(a, "XADD");
    args(a, key);
    if (minid_ms > 0) {
        snprintf(s->minid, sizeof s->minid, "%lld", minid_ms);
        args(a, "MINID");
        args(a, "~");
        args(a, s->minid);
    }
    args(a, "*");
    args(a, "v");
    args(a, "1");
}

/* One "name value" pair of the field list. */
static void pair(struct argbuf *a, const char *name, const char *value, size_t len)
{
    args(a, name);
    arg(a, value, len);
}

int reqrec_xadd_argv(const struct reqrec *rec, const char *key, long long minid_ms,
                     struct reqrec_scratch *s, const char **argv, size_t *argvlen)
{
    struct argbuf a = {argv, argvlen, 0};
    const char *cmd = rec->cmd == REQREC_AUTH ? "auth" : "req";
    xadd_head(&a, key, minid_ms, s);
    pair(&a, "dc", rec->dc, rec->dclen);
    pair(&a, "rid", rec->rid, rec->ridlen);
    pair(&a, "dl", s->dl, (size_t)snprintf(s->dl, sizeof s->dl, "%lld", rec->dl_ms));
    pair(&a, "c", cmd, strlen(cmd));
    pair(&a, "p", rec->payload, rec->len);
    return (int)a.n;
}

int reprec_xadd_argv(const struct reprec *rec, const char *key, long long minid_ms,
                     struct reqrec_scratch *s, const char **argv, size_t *argvlen)
{
    struct argbuf a = {argv, argvlen, 0};
    const char *st = reprec_status_name(rec->st);
    xadd_head(&a, key, minid_ms, s);
    pair(&a, "rid", rec->rid, rec->ridlen);
    pair(&a, "st", st, strlen(st));
    if (rec->st == ST_OK)
        pair(&a, "p", rec->payload, rec->len);
    return (int)a.n;
}

static int is(const char *p, size_t l, const char *s)
{
    return l == strlen(s) && memcmp(p, s, l) == 0;
}

/* Only characters saltrelay-down puts in a rid or a DC name. */
static int valid_token(const char *p, size_t l, size_t max, const char *extra)
{
    if (l == 0 || l > max)
        return 0;
    for (size_t i = 0; i < l; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || strchr(extra, c)) ||
            c == '\0')
            return 0;
    }
    return 1;
}

/* Check that field I is named NAME; returns its value's index. */
static int field(const char *const *fv, const size_t *fl, size_t n, size_t i, const char *name)
{
    return 2 * i + 1 < n && is(fv[2 * i], fl[2 * i], name) ? (int)(2 * i + 1) : -1;
}

int reqrec_decode(const char *const *fv, const size_t *fl, size_t n, struct reqrec *rec, const char **why)
{
    memset(rec, 0, sizeof *rec);
    int v = field(fv, fl, n, 0, "v"), dc = field(fv, fl, n, 1, "dc"), rid = field(fv, fl, n, 2, "rid");
    int dl = field(fv, fl, n, 3, "dl"), c = field(fv, fl, n, 4, "c"), p = field(fv, fl, n, 5, "p");
    uint64_t dl_ms;
    if (n != 12 || v < 0 || dc < 0 || rid < 0 || dl < 0 || c < 0 || p < 0)
        *why = "not the fields v dc rid dl c p";
    else if (!is(fv[v], fl[v], "1"))
        *why = "unknown record version";
    else if (!valid_token(fv[dc], fl[dc], 64, "-_."))
        *why = "bad dc";
    else if (!valid_token(fv[rid], fl[rid], REQREC_RID_MAX, "-"))
        *why = "bad rid";
    else if (decimal_parse(fv[dl], fl[dl], &dl_ms) < 0 || dl_ms > INT64_MAX / 2)
        *why = "bad deadline";
    else if (!is(fv[c], fl[c], "auth") && !is(fv[c], fl[c], "req"))
        *why = "bad request class";
    else {
        *rec = (struct reqrec){.dc = fv[dc], .dclen = fl[dc], .rid = fv[rid], .ridlen = fl[rid],
                               .payload = fv[p], .len = fl[p], .dl_ms = (long long)dl_ms,
                               .cmd = is(fv[c], fl[c], "auth") ? REQREC_AUTH : REQREC_REQ};
        return 0;
    }
    return -1;
}

static int status_parse(const char *p, size_t l)
{
    for (int i = 0; i < ST__COUNT; i++)
        if (is(p, l, status_name[i]))
            return i;
    return -1;
}

int reprec_decode(const char *const *fv, const size_t *fl, size_t n, struct reprec *rec, const char **why)
{
    memset(rec, 0, sizeof *rec);
    int v = field(fv, fl, n, 0, "v"), rid = field(fv, fl, n, 1, "rid"), st = field(fv, fl, n, 2, "st");
    int p = field(fv, fl, n, 3, "p");
    int status = st < 0 ? -1 : status_parse(fv[st], fl[st]);
    if ((n != 6 && n != 8) || v < 0 || rid < 0 || st < 0 || (n == 8 && p < 0))
        *why = "not the fields v rid st [p]";
    else if (!is(fv[v], fl[v], "1"))
        *why = "unknown record version";
    else if (!valid_token(fv[rid], fl[rid], REQREC_RID_MAX, "-"))
        *why = "bad rid";
    else if (status < 0)
        *why = "unknown status";
    else if ((status == ST_OK) != (p >= 0))
        *why = "payload present without st ok, or missing with it";
    else {
        *rec = (struct reprec){.rid = fv[rid], .ridlen = fl[rid], .st = (enum reprec_status)status,
                               .payload = p >= 0 ? fv[p] : NULL, .len = p >= 0 ? fl[p] : 0};
        return 0;
    }
    return -1;
}
