/* seeds.c -- writes the fuzzers' seed corpora from the salt-wire captures:
 *   fuzz_seeds WIRE_DIR OUT_DIR
 * OUT_DIR/entry/    XREAD replies (RESP) holding each captured publication
 *                   as saltrelay-up stores it, one per file and one batch
 * OUT_DIR/channel/  each publication packed as a channel-mode record
 * OUT_DIR/envelope/ each captured request and reply frame
 * OUT_DIR/reqrec/   XREADGROUP replies of request records and XREAD replies
 *                   of reply records (a few captured frames as payloads,
 *                   every status), one per file and one batch of each
 * OUT_DIR/config.dict  the loader's key names, a libFuzzer dictionary
 * (the config seeds are the .yaml files of conf/, copied by run.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pubrec.h"
#include "topiclist.h"
#include "reqrec.h"
#include "resp.h"
#include "wire.h"

#define REQREC_SEEDS 6 /* requests and replies each taken from the captures */

/* Every entry of one kind, for one big reply. */
struct batch {
    const char *kind, *key;
    struct resp entries;
    long n;
};

struct out {
    const char *dir;
    long n;
    struct batch pub, req, rep;
};

static void write_seed(struct out *o, const char *kind, const char *buf, size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/seed-%04ld", o->dir, kind, o->n++);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void xread_reply(struct resp *r, const struct batch *b, const struct resp *entries, long n)
{
    resp_array(r, 1);
    resp_array(r, 2);
    resp_str(r, b->key);
    resp_array(r, n);
    resp_raw(r, entries->buf);
}

/* The entry of an XADD argv, alone in a reply as a seed, and into B. */
static void seed_entry(struct out *o, struct batch *b, int argc, const char **argv, const size_t *argvlen)
{
    struct resp one = {0}, reply = {0};
    resp_entry_from_xadd(&one, argc, argv, argvlen);
    xread_reply(&reply, b, &one, 1);
    write_seed(o, b->kind, reply.buf, reply.len);
    resp_entry_from_xadd(&b->entries, argc, argv, argvlen);
    b->n++;
    resp_free(&one);
    resp_free(&reply);
}

static void seed_batch(struct out *o, struct batch *b)
{
    struct resp all = {0};
    xread_reply(&all, b, &b->entries, b->n);
    write_seed(o, b->kind, all.buf, all.len);
    resp_free(&all);
    resp_free(&b->entries);
}

/* REC also as the store script writes it (version 3, pubrec.h). */
static void seed_v3(struct out *o, const struct pubrec *rec)
{
    static const unsigned char hash[PUBREC_HASH_LEN] = {0xde, 0xad, 0xbe, 0xef};
    size_t size = pubrec_v3_size(rec);
    char *value = malloc(size ? size : 1), id[STREAMID_STRLEN], serial[24];
    if (!size || !value) {
        free(value);
        return;
    }
    pubrec_v3_write(rec, hash, value);
    snprintf(serial, sizeof serial, "%llu", (unsigned long long)rec->serial);
    const char *argv[] = {"XADD", o->pub.key, streamid_format(rec->id, id), serial, value};
    size_t argvlen[] = {4, strlen(o->pub.key), strlen(id), strlen(serial), size};
    seed_entry(o, &o->pub, 5, argv, argvlen);
    free(value);
}

/* A [topic, payload] publication also as a merged record (version 2): its
 * topic and a syndic copy. */
static void seed_merged(struct out *o, const struct pubrec *two)
{
    struct topiclist tl = {0};
    topiclist_append(&tl, two->frame[0], two->len[0]);
    topiclist_append(&tl, "syndic", 6);
    struct pubrec rec = {.id = two->id, .serial = two->serial, .nframes = 1, .frame = {two->frame[1]},
                         .len = {two->len[1]}, .topics = tl.buf, .topics_len = tl.len};
    const char *argv[PUBREC_ARGC_MAX];
    size_t argvlen[PUBREC_ARGC_MAX], len;
    struct pubrec_scratch s;
    int argc = pubrec_xadd_argv(&rec, o->pub.key, 100000, &s, argv, argvlen);
    if (argc > 0)
        seed_entry(o, &o->pub, argc, argv, argvlen);
    seed_v3(o, &rec);
    char *packed = pubrec_pack(&rec, &len);
    write_seed(o, "channel", packed, len);
    free(packed);
    topiclist_free(&tl);
}

static void on_pub(const struct wire_record *w, void *arg)
{
    struct out *o = arg;
    struct pubrec rec = {.id = {1700000000000ULL + (uint64_t)o->n, 0}, .serial = (uint64_t)o->n + 1,
                         .nframes = w->nframes};
    for (size_t i = 0; i < w->nframes && i < PUBREC_MAX_FRAMES; i++) {
        rec.frame[i] = w->frame[i];
        rec.len[i] = w->len[i];
    }
    const char *argv[PUBREC_ARGC_MAX];
    size_t argvlen[PUBREC_ARGC_MAX], len;
    struct pubrec_scratch s;
    seed_entry(o, &o->pub, pubrec_xadd_argv(&rec, o->pub.key, 100000, &s, argv, argvlen), argv, argvlen);
    seed_v3(o, &rec);
    char *packed = pubrec_pack(&rec, &len);
    write_seed(o, "channel", packed, len);
    free(packed);
    if (w->nframes == 2)
        seed_merged(o, &rec);
}

/* A return-path record's XADD ARGV (no MINID) with the entry id Redis would
 * give it in place of "*". */
static void seed_return_record(struct out *o, struct batch *b, int argc, const char **argv, size_t *argvlen)
{
    char id[32];
    argvlen[2] = (size_t)snprintf(id, sizeof id, "1700000000000-%ld", b->n);
    argv[2] = id;
    seed_entry(o, b, argc, argv, argvlen);
}

static void seed_reply(struct out *o, enum reprec_status st, const char *payload, size_t len)
{
    char rid[32];
    struct reprec rec = {.rid = rid, .ridlen = (size_t)snprintf(rid, sizeof rid, "00ff00ff00ff00ff-%ld-0", o->rep.n),
                         .st = st, .payload = payload, .len = len};
    const char *argv[REQREC_ARGC_MAX];
    size_t argvlen[REQREC_ARGC_MAX];
    struct reqrec_scratch s;
    seed_return_record(o, &o->rep, reprec_xadd_argv(&rec, o->rep.key, 0, &s, argv, argvlen), argv, argvlen);
}

static void on_frame(const struct wire_record *w, void *arg)
{
    if (w->len[0] < 8192) /* the 1 MiB file chunks teach nothing more */
        write_seed(arg, "envelope", w->frame[0], w->len[0]);
}

static void on_req(const struct wire_record *w, void *arg)
{
    struct out *o = arg;
    on_frame(w, o);
    if (w->len[0] >= 8192 || o->req.n >= REQREC_SEEDS)
        return;
    char rid[32];
    struct reqrec rec = {.dc = "dc1", .dclen = 3, .rid = rid,
                         .ridlen = (size_t)snprintf(rid, sizeof rid, "00ff00ff00ff00ff-%ld-1", o->req.n),
                         .payload = w->frame[0], .len = w->len[0], .dl_ms = 1700000030000LL + o->req.n,
                         .cmd = o->req.n % 2 ? REQREC_AUTH : REQREC_REQ};
    const char *argv[REQREC_ARGC_MAX];
    size_t argvlen[REQREC_ARGC_MAX];
    struct reqrec_scratch s;
    seed_return_record(o, &o->req, reqrec_xadd_argv(&rec, o->req.key, 0, &s, argv, argvlen), argv, argvlen);
}

static void on_rep(const struct wire_record *w, void *arg)
{
    struct out *o = arg;
    on_frame(w, o);
    if (w->len[0] < 8192 && o->rep.n < REQREC_SEEDS)
        seed_reply(o, ST_OK, w->frame[0], w->len[0]);
}

static void write_dict(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.dict", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    for (size_t i = 0; i < config_key_count(); i++)
        fprintf(f, "\"%s: \"\n", config_key_name(i));
    fputs("\"redis://\"\n\"tcp://\"\n\"ipc://\"\n\"---\"\n\"- \"\n\"{\"\n\"[\"\n\"&a\"\n\"*a\"\n", f);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fuzz_seeds WIRE_DIR OUT_DIR\n");
        return 2;
    }
    struct out o = {.dir = argv[2], .pub = {.kind = "entry", .key = "saltrelay:{c}:pub"},
                    .req = {.kind = "reqrec", .key = "saltrelay:{c}:req"},
                    .rep = {.kind = "reqrec", .key = "saltrelay:{c}:rep:dc1"}};
    for (const char *const *c = wire_captures; *c; c++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", argv[1], *c);
        if (wire_each(path, "pub", on_pub, &o) < 0 || wire_each(path, "req", on_req, &o) < 0 ||
            wire_each(path, "rep", on_rep, &o) < 0) {
            fprintf(stderr, "fuzz_seeds: cannot read %s\n", path);
            return 1;
        }
    }
    for (int st = ST_TIMEOUT; st < ST__COUNT; st++)
        seed_reply(&o, (enum reprec_status)st, NULL, 0);
    seed_batch(&o, &o.pub);
    seed_batch(&o, &o.req);
    seed_batch(&o, &o.rep);
    write_dict(argv[2]);
    printf("fuzz_seeds: %ld seeds\n", o.n);
    return 0;
}
