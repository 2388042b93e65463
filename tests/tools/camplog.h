/* camplog.h -- the random-fault campaign's history lines (tests/campaign/):
 * each tool appends JSON objects, one per line, every one stamped with the
 * wall clock ("w", seconds) and the monotonic clock ("m", seconds) of the
 * moment it describes. Line buffered: a SIGKILL loses no finished line.
 * Only ids, numbers and names of our own making are written (no escaping). */
#ifndef SALTRELAY_TEST_CAMPLOG_H
#define SALTRELAY_TEST_CAMPLOG_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct stamp { double w, m; };

static inline struct stamp stamp_now(void)
{
    struct timespec w, m;
    clock_gettime(CLOCK_REALTIME, &w);
    clock_gettime(CLOCK_MONOTONIC, &m);
    struct stamp s = {w.tv_sec + w.tv_nsec / 1e9, m.tv_sec + m.tv_nsec / 1e9};
    return s;
}

static inline FILE *camplog_open(const char *path)
{
    FILE *f = fopen(path, "a");
    if (!f) {
        perror(path);
        exit(2);
    }
    setvbuf(f, NULL, _IOLBF, 0);
    return f;
}

/* Start a line {"k":KIND,"w":..,"m":.. ; the caller adds fields and ends it
 * with camplog_end(). */
static inline void camplog_begin(FILE *f, const char *kind, struct stamp s)
{
    fprintf(f, "{\"k\":\"%s\",\"w\":%.6f,\"m\":%.6f", kind, s.w, s.m);
}

static inline void camplog_end(FILE *f)
{
    fputs("}\n", f);
}

/* The campaign's deterministic random numbers (xorshift64*). */
static inline uint64_t camp_rand(uint64_t *st)
{
    uint64_t x = *st ? *st : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return x * 0x2545f4914f6cdd1dull;
}

static inline double camp_uniform(uint64_t *st, double lo, double hi)
{
    return lo + (hi - lo) * (double)(camp_rand(st) >> 11) / 9007199254740992.0;
}

/* The id that follows MARK ("CPUB " or "CREQ ") in DATA, copied to OUT
 * (printable, up to CAP-1 bytes, ended by a space); 0 if there is none. */
static inline int camp_find_id(const void *data, size_t len, const char *mark, char *out, size_t cap)
{
    size_t ml = strlen(mark);
    const char *d = data;
    for (size_t i = 0; i + ml < len; i++) {
        if (memcmp(d + i, mark, ml) != 0)
            continue;
        size_t n = 0;
        for (size_t j = i + ml; j < len && n + 1 < cap && d[j] > ' ' && d[j] < 127 && d[j] != '"'; j++)
            out[n++] = d[j];
        out[n] = '\0';
        return n > 0;
    }
    return 0;
}

/* A minimal msgpack writer for Salt-shaped envelopes. */
struct mpw { unsigned char *b; size_t n, cap; };

static inline void mpw_raw(struct mpw *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = realloc(w->b, w->cap);
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static inline void mpw_byte(struct mpw *w, unsigned char c) { mpw_raw(w, &c, 1); }

static inline void mpw_be32(struct mpw *w, uint32_t v)
{
    unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};
    mpw_raw(w, b, 4);
}

static inline void mpw_map(struct mpw *w, unsigned n) { mpw_byte(w, 0x80 | n); }

static inline void mpw_str(struct mpw *w, const char *s)
{
    size_t n = strlen(s);
    if (n < 32)
        mpw_byte(w, 0xa0 | n);
    else {
        mpw_byte(w, 0xdb);
        mpw_be32(w, n);
    }
    mpw_raw(w, s, n);
}

static inline void mpw_bin(struct mpw *w, const void *p, size_t n)
{
    mpw_byte(w, 0xc6);
    mpw_be32(w, n);
    mpw_raw(w, p, n);
}

static inline void mpw_int(struct mpw *w, unsigned v) { mpw_byte(w, v & 0x7f); }

#endif
