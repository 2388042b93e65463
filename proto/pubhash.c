/* pubhash.c -- SipHash-2-4 (128-bit output) over a publication's parts; see
 * pubhash.h. After the reference description by Aumasson and Bernstein:
 * 64-bit little-endian words, 2 compression rounds per word, 4
 * finalization rounds per half of the output. */
#include "pubhash.h"

#include <endian.h>
#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

/* The hash being computed, fed in pieces. */
struct sip {
    uint64_t v0, v1, v2, v3;
    uint64_t tail; /* bytes not yet forming a word, low first */
    size_t len;    /* bytes fed so far */
};

static inline __attribute__((always_inline)) void round_(struct sip *s)
{
    s->v0 += s->v1;
    s->v1 = ROTL(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = ROTL(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = ROTL(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = ROTL(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = ROTL(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = ROTL(s->v2, 32);
}

static inline __attribute__((always_inline)) void word(struct sip *s, uint64_t m)
{
    s->v3 ^= m;
    round_(s);
    round_(s);
    s->v0 ^= m;
}

static uint64_t load64(const unsigned char *p)
{
    uint64_t m;
    memcpy(&m, p, sizeof m);
    return le64toh(m);
}

static void sip_init(struct sip *s, const unsigned char key[16])
{
    uint64_t k0 = load64(key), k1 = load64(key + 8);
    s->v0 = 0x736f6d6570736575ULL ^ k0;
    s->v1 = 0x646f72616e646f6dULL ^ k1 ^ 0xee; /* 0xee: the 128-bit output */
    s->v2 = 0x6c7967656e657261ULL ^ k0;
    s->v3 = 0x7465646279746573ULL ^ k1;
    s->tail = 0;
    s->len = 0;
}

static void sip_feed(struct sip *s, const unsigned char *p, size_t n)
{
    while (n && (s->len & 7)) { /* complete the pending word */
        s->tail |= (uint64_t)*p++ << (8 * (s->len & 7));
        n--;
        if ((++s->len & 7) == 0) {
            word(s, s->tail);
            s->tail = 0;
        }
    }
    for (; n >= 8; p += 8, n -= 8, s->len += 8)
        word(s, load64(p));
    for (; n; n--)
        s->tail |= (uint64_t)*p++ << (8 * (s->len++ & 7));
}

static void store64(unsigned char *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof v);
}

static void sip_final(struct sip *s, unsigned char out[16])
{
    word(s, s->tail | (uint64_t)s->len << 56);
    s->v2 ^= 0xee;
    for (int i = 0; i < 4; i++)
        round_(s);
    store64(out, s->v0 ^ s->v1 ^ s->v2 ^ s->v3);
    s->v1 ^= 0xdd;
    for (int i = 0; i < 4; i++)
        round_(s);
    store64(out + 8, s->v0 ^ s->v1 ^ s->v2 ^ s->v3);
}

void pubhash_siphash128(const void *in, size_t len, const unsigned char key[16], unsigned char out[16])
{
    struct sip s;
    sip_init(&s, key);
    sip_feed(&s, in, len);
    sip_final(&s, out);
}

static const unsigned char pub_key[16] = "saltrelay pubrec";

static void feed_part(struct sip *s, const char *data, size_t size)
{
    unsigned char len[8];
    store64(len, size);
    sip_feed(s, len, sizeof len);
    sip_feed(s, (const unsigned char *)data, size);
}

void pubhash(const struct pubrec *rec, unsigned char out[PUBREC_HASH_LEN])
{
    struct sip s;
    unsigned char full[16];
    sip_init(&s, pub_key);
    if (rec->topics)
        feed_part(&s, rec->topics, rec->topics_len);
    for (size_t i = 0; i < rec->nframes; i++)
        feed_part(&s, rec->frame[i], rec->len[i]);
    sip_final(&s, full);
    memcpy(out, full, PUBREC_HASH_LEN);
}
