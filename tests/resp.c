/* resp.c -- see resp.h. */
#include "resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(struct resp *r, const char *p, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        r->cap = (r->len + n + 1) * 2;
        r->buf = realloc(r->buf, r->cap);
        if (!r->buf)
            abort();
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    r->buf[r->len] = '\0';
}

static void header(struct resp *r, char kind, long n)
{
    char h[32];
    int l = snprintf(h, sizeof h, "%c%ld\r\n", kind, n);
    put(r, h, (size_t)l);
}

void resp_array(struct resp *r, long n) { header(r, '*', n); }

void resp_bulk(struct resp *r, const char *p, size_t n)
{
    header(r, '$', (long)n);
    put(r, p, n);
    put(r, "\r\n", 2);
}

void resp_str(struct resp *r, const char *s) { resp_bulk(r, s, strlen(s)); }

void resp_raw(struct resp *r, const char *s) { put(r, s, strlen(s)); }

void resp_entry_from_xadd(struct resp *r, int argc, const char **argv, const size_t *argvlen)
{
    int id = 2; /* XADD key [MAXLEN ~ n] id field value ... */
    if (argc > 2 && argvlen[2] == 6 && memcmp(argv[2], "MAXLEN", 6) == 0)
        id = 5;
    resp_array(r, 2);
    resp_bulk(r, argv[id], argvlen[id]);
    resp_array(r, argc - id - 1);
    for (int i = id + 1; i < argc; i++)
        resp_bulk(r, argv[i], argvlen[i]);
}

void resp_free(struct resp *r)
{
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
}
